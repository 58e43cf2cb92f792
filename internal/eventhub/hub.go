// Package eventhub broadcasts lifecycle events to subscribers and keeps the
// most recent ones. Publishing never blocks: a subscriber that does not keep
// up loses events and is told how many.
package eventhub

import (
	"sync"

	"github.com/shipote/shipote/messages"
)

// Hub is safe for concurrent use; its zero value is not usable, use New.
type Hub struct {
	keep int

	mu     sync.Mutex       // guards the following
	recent []messages.Event // ring of the last keep events
	head   int              // index of the oldest once the ring is full
	subs   map[*Subscription]struct{}
	closed bool
}

// Subscription receives events on C until Cancel is called or the hub is
// closed (C is then closed).
type Subscription struct {
	C       <-chan messages.Event
	c       chan messages.Event
	hub     *Hub
	mu      sync.Mutex
	dropped uint64
}

// New returns a hub keeping the last keep events.
func New(keep int) *Hub {
	return &Hub{keep: keep, subs: make(map[*Subscription]struct{})}
}

// Publish records ev and hands it to every subscriber without blocking.
func (h *Hub) Publish(ev messages.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if len(h.recent) < h.keep {
		h.recent = append(h.recent, ev)
	} else if h.keep > 0 {
		h.recent[h.head] = ev
		h.head = (h.head + 1) % h.keep
	}
	for s := range h.subs {
		select {
		case s.c <- ev:
		default:
			s.mu.Lock()
			s.dropped++
			s.mu.Unlock()
		}
	}
}

// Recent returns the retained events, oldest first.
func (h *Hub) Recent() []messages.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]messages.Event, 0, len(h.recent))
	out = append(out, h.recent[h.head:]...)
	return append(out, h.recent[:h.head]...)
}

// Subscribe returns a subscription buffered for buf events.
func (h *Hub) Subscribe(buf int) *Subscription {
	c := make(chan messages.Event, buf)
	s := &Subscription{C: c, c: c, hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(c)
		return s
	}
	h.subs[s] = struct{}{}
	return s
}

// Dropped returns how many events this subscriber lost.
func (s *Subscription) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Cancel ends the subscription and closes C. It is idempotent.
func (s *Subscription) Cancel() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.c)
	}
}

// Close ends every subscription.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for s := range h.subs {
		delete(h.subs, s)
		close(s.c)
	}
}
