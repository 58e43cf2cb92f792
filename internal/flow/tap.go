// This file owns taps: live copies of a splitter's output that never slow
// it down. Each tap is a pipe; the pump writes to it without ever waiting,
// and whatever does not fit is lost and counted.
package flow

import (
	"fmt"
	"os"
	"slices"
	"sync"
)

// Tap is a live copy of a splitter's output from the moment it was added.
// A slow reader loses bytes (counted by Dropped) and never slows the
// splitter. Read returns io.EOF once the splitter has stopped and the
// buffered bytes are read.
type Tap struct {
	s         *Splitter
	id        uint64
	r         *os.File
	sink      sink // the write side; its I/O belongs to the pump
	closeOnce sync.Once
}

// AddTap attaches a new tap with a buffer of bufBytes (0 means the
// splitter's BufferBytes). It fails with ErrClosed once the splitter has
// stopped.
func (s *Splitter) AddTap(bufBytes int) (*Tap, error) {
	if bufBytes < 0 {
		return nil, fmt.Errorf("%w: tap buffer bytes %d is negative", ErrBadConfig, bufBytes)
	}
	if bufBytes == 0 {
		bufBytes = s.cfg.BufferBytes
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("flow: tap pipe: %w", err)
	}
	fd, err := rawFd(w)
	if err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("flow: tap pipe: %w", err)
	}
	setPipeSize(fd, bufBytes)
	rc, err := w.SyscallConn()
	if err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("flow: tap pipe: %w", err)
	}

	s.tapMu.Lock()
	defer s.tapMu.Unlock()
	if s.finished {
		r.Close()
		w.Close()
		return nil, ErrClosed
	}
	s.nextTap++
	t := &Tap{s: s, id: s.nextTap, r: r}
	t.sink.name = fmt.Sprintf("tap-%d", t.id)
	t.sink.f = w
	t.sink.fd = fd
	t.sink.rc = rc
	t.sink.pollable = true
	t.sink.tap = t
	s.taps = append(s.taps, t)
	s.tapsDirty.Store(true)
	return t, nil
}

// ID returns the tap's number, unique within its splitter.
func (t *Tap) ID() uint64 { return t.id }

// Name returns "tap-<id>", the tap's name in Counters.
func (t *Tap) Name() string { return t.sink.name }

// Read reads the tap's bytes. It blocks until bytes arrive, the splitter
// stops (io.EOF) or the tap is closed (os.ErrClosed).
func (t *Tap) Read(p []byte) (int, error) { return t.r.Read(p) }

// Close detaches the tap. It is idempotent and unblocks a pending Read.
func (t *Tap) Close() error {
	t.closeOnce.Do(func() {
		t.sink.gone.Store(true)
		_ = t.r.Close()
		t.s.unregisterTap(t)
	})
	return nil
}

// Dropped returns the bytes this tap lost because its reader was slow.
func (t *Tap) Dropped() uint64 { return t.sink.dropped.Load() }

// BytesTotal returns the bytes written to this tap.
func (t *Tap) BytesTotal() uint64 { return t.sink.total.Load() }

func (s *Splitter) unregisterTap(t *Tap) {
	s.tapMu.Lock()
	s.taps = slices.DeleteFunc(s.taps, func(x *Tap) bool { return x == t })
	s.tapsDirty.Store(true)
	s.tapMu.Unlock()
}

// removeTap drops a tap whose reader went away. Pump goroutine only.
func (s *Splitter) removeTap(k *sink) {
	k.gone.Store(true)
	s.unregisterTap(k.tap)
}

// refreshTaps returns the pump's tap list, rebuilt when the registry
// changed; it closes the write ends of taps that left. Pump goroutine only.
func (s *Splitter) refreshTaps(cur []*sink) []*sink {
	if !s.tapsDirty.Load() {
		return cur
	}
	s.tapMu.Lock()
	s.tapsDirty.Store(false)
	next := make([]*sink, 0, len(s.taps))
	for _, t := range s.taps {
		next = append(next, &t.sink)
	}
	s.tapMu.Unlock()
	for _, old := range cur {
		if !slices.Contains(next, old) {
			_ = old.f.Close()
		}
	}
	s.pumpTaps = next
	return next
}
