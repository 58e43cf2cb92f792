// This file owns what the dashboard knows about the daemon: the last
// lists, the histories it keeps (stats per workspace, bytes/s per flow
// channel, throttling per splitter), the quota state from events, and the
// filtered, sorted workspace rows.

package top

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/shipote/shipote/messages"
)

// Sizes of the kept histories.
const (
	// statsKeep is how many stats samples are kept per workspace.
	statsKeep = 300
	// rateKeep is how many bytes/s readings are kept per flow channel.
	rateKeep = 120
	// eventsKeep is how many recent events are kept.
	eventsKeep = 50
)

// chanKey names one flow channel of one run.
type chanKey struct {
	run, from, to string
	tap           bool
}

// splitKey names one splitter (producer) of one run.
type splitKey struct{ run, node string }

// throttle is what the dashboard saw of a splitter's throttled_ms.
type throttle struct {
	ms     uint64    // last reading
	at     time.Time // when it was taken
	growth uint64    // increase since the reading before
}

// quotaState is the last quota event of a workspace.
type quotaState struct {
	at     time.Time
	msg    string
	killed bool
}

// state is the data side of the model.
type state struct {
	workspaces []messages.WorkspaceInfo
	pipelines  []messages.PipelineInfo
	commands   []messages.CommandInfo
	// stats is each workspace's history, oldest first.
	stats map[string][]messages.Sample
	// rates is each channel's bytes/s readings, oldest first.
	rates     map[chanKey][]float64
	rateAt    map[chanKey]time.Time // when the last reading was added
	throttles map[splitKey]throttle
	quota     map[string]quotaState
	events    []messages.Event
	// updated is when the last poll answered.
	updated time.Time
}

func newState() state {
	return state{
		stats:     make(map[string][]messages.Sample),
		rates:     make(map[chanKey][]float64),
		rateAt:    make(map[chanKey]time.Time),
		throttles: make(map[splitKey]throttle),
		quota:     make(map[string]quotaState),
	}
}

// apply takes in a successful poll. A bytes/s reading less than minGap
// after the last one of its channel replaces it, so that the throughput
// sparklines keep an even pace when events bring extra polls; throttling
// is measured over minGap at least too.
func (s *state) apply(m snapshotMsg, minGap time.Duration) {
	s.workspaces = m.workspaces
	s.pipelines = m.pipelines
	s.commands = m.commands
	s.updated = m.at
	live := make(map[string]bool, len(m.workspaces))
	for _, w := range m.workspaces {
		live[w.ID] = true
		if hist, ok := m.stats[w.ID]; ok {
			s.stats[w.ID] = keepLast(slices.Clone(hist), statsKeep)
			continue
		}
		if w.Stats != nil {
			hist := s.stats[w.ID]
			if n := len(hist); n == 0 || hist[n-1].TimestampMs < w.Stats.TimestampMs {
				s.stats[w.ID] = keepLast(append(hist, *w.Stats), statsKeep)
			}
		}
	}
	for id := range s.stats {
		if !live[id] {
			delete(s.stats, id)
		}
	}
	for id := range s.quota {
		if !live[id] {
			delete(s.quota, id)
		}
	}
	seenChan := make(map[chanKey]bool)
	seenSplit := make(map[splitKey]bool)
	for _, p := range m.pipelines {
		for _, sp := range p.Splitters {
			k := splitKey{p.ID, sp.Node}
			seenSplit[k] = true
			old, ok := s.throttles[k]
			switch {
			case !ok:
				s.throttles[k] = throttle{ms: sp.ThrottledMs, at: m.at}
			case m.at.Sub(old.at) >= minGap:
				t := throttle{ms: sp.ThrottledMs, at: m.at}
				if sp.ThrottledMs > old.ms {
					t.growth = sp.ThrottledMs - old.ms
				}
				s.throttles[k] = t
			}
			for _, c := range sp.Channels {
				ck := chanKey{p.ID, c.From, c.To, c.Tap}
				seenChan[ck] = true
				if p.State.Ended() {
					continue // an ended run has no rate
				}
				r := s.rates[ck]
				if n := len(r); n > 0 && m.at.Sub(s.rateAt[ck]) < minGap {
					r[n-1] = float64(c.BytesPerSec)
					continue
				}
				s.rates[ck] = keepLast(append(r, float64(c.BytesPerSec)), rateKeep)
				s.rateAt[ck] = m.at
			}
		}
	}
	for k := range s.rates {
		if !seenChan[k] {
			delete(s.rates, k)
			delete(s.rateAt, k)
		}
	}
	for k := range s.throttles {
		if !seenSplit[k] {
			delete(s.throttles, k)
		}
	}
}

// addEvents takes in events; it reports whether any of them changes what
// the lists show (anything but a quota event).
func (s *state) addEvents(evs []messages.Event) (changed bool) {
	for _, e := range evs {
		if e.Kind == messages.EventQuota {
			if q, ok := s.quota[e.Workspace]; !ok || !e.Time.Before(q.at) {
				s.quota[e.Workspace] = quotaState{at: e.Time, msg: e.Message, killed: strings.HasPrefix(e.Message, "killed")}
			}
		} else {
			changed = true
		}
	}
	s.events = keepLast(append(s.events, evs...), eventsKeep)
	return changed
}

func keepLast[T any](s []T, n int) []T {
	if len(s) <= n {
		return s
	}
	return append(s[:0], s[len(s)-n:]...)
}

// workspace returns the workspace with id.
func (s *state) workspace(id string) (messages.WorkspaceInfo, bool) {
	for _, w := range s.workspaces {
		if w.ID == id {
			return w, true
		}
	}
	return messages.WorkspaceInfo{}, false
}

// pipeline returns the run with id.
func (s *state) pipeline(id string) (messages.PipelineInfo, bool) {
	for _, p := range s.pipelines {
		if p.ID == id {
			return p, true
		}
	}
	return messages.PipelineInfo{}, false
}

// commandsOf returns a workspace's commands in start order.
func (s *state) commandsOf(ws string) []messages.CommandInfo {
	var out []messages.CommandInfo
	for _, c := range s.commands {
		if c.Workspace == ws {
			out = append(out, c)
		}
	}
	return out
}

// pipelinesOf returns a workspace's runs, oldest first.
func (s *state) pipelinesOf(ws string) []messages.PipelineInfo {
	var out []messages.PipelineInfo
	for _, p := range s.pipelines {
		if p.Workspace == ws {
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b messages.PipelineInfo) int { return a.StartedAt.Compare(b.StartedAt) })
	return out
}

// latest returns a workspace's newest sample, nil without one.
func (s *state) latest(w messages.WorkspaceInfo) *messages.Sample {
	if hist := s.stats[w.ID]; len(hist) > 0 {
		return &hist[len(hist)-1]
	}
	return w.Stats
}

// sortKey orders the workspace list.
type sortKey int

const (
	sortLabel sortKey = iota
	sortRSS
	sortCPU
	sortTTL
	sortNewest
	sortKeys // count
)

func (k sortKey) String() string {
	return [...]string{"label", "rss", "cpu", "ttl", "newest"}[k]
}

// rows returns the workspaces that match filter (label or ID, any case),
// sorted by key.
func (s *state) rows(filter string, key sortKey) []messages.WorkspaceInfo {
	f := strings.ToLower(strings.TrimSpace(filter))
	var out []messages.WorkspaceInfo
	for _, w := range s.workspaces {
		if f == "" || strings.Contains(strings.ToLower(w.Spec.Label), f) || strings.Contains(strings.ToLower(w.ID), f) ||
			strings.Contains(strings.ToLower(w.Node), f) {
			out = append(out, w)
		}
	}
	rss := func(w messages.WorkspaceInfo) uint64 {
		if l := s.latest(w); l != nil {
			return l.RSSBytes
		}
		return 0
	}
	cpu := func(w messages.WorkspaceInfo) float64 {
		if l := s.latest(w); l != nil {
			return l.CPUPercent
		}
		return 0
	}
	byLabel := func(a, b messages.WorkspaceInfo) int {
		return cmp.Or(cmp.Compare(a.Spec.Label, b.Spec.Label), cmp.Compare(a.ID, b.ID))
	}
	slices.SortStableFunc(out, func(a, b messages.WorkspaceInfo) int {
		var c int
		switch key {
		case sortRSS:
			c = cmp.Compare(rss(b), rss(a))
		case sortCPU:
			c = cmp.Compare(cpu(b), cpu(a))
		case sortTTL:
			switch {
			case a.Deadline.IsZero() && b.Deadline.IsZero():
			case a.Deadline.IsZero():
				c = 1
			case b.Deadline.IsZero():
				c = -1
			default:
				c = a.Deadline.Compare(b.Deadline)
			}
		case sortNewest:
			c = b.CreatedAt.Compare(a.CreatedAt)
		}
		return cmp.Or(c, byLabel(a, b))
	})
	return out
}
