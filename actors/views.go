// This file is the engine's index of workspace views: the workspaces in ID
// order, each with the view its actor last published. Lists read it
// without a round trip to any actor. The engine actor adds a workspace
// (with its first view) before it answers the creation and removes it
// before it answers the removal, so a list sees every acknowledged
// creation and no acknowledged removal; each workspace actor replaces its
// own view when its figures change.

package actors

import (
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/shipote/shipote/messages"
)

// viewSlot is one workspace's place in the index. Only its actor stores
// a view in it.
type viewSlot struct {
	id, label string
	view      atomic.Pointer[messages.WorkspaceView]
}

// publish replaces the slot's view with a copy of info (nothing queues it
// for encoding: its first reader encodes it).
func (s *viewSlot) publish(info messages.WorkspaceInfo) {
	spec := info.Spec
	s.publishShared(nil, info, &spec)
}

// publishShared replaces the slot's view with a copy of info whose spec
// is *spec, shared: the caller never changes *spec (a workspace replaces
// its spec when its limits change). With rt, the view is queued for
// encoding by rt's view encoder.
func (s *viewSlot) publishShared(rt *Runtime, info messages.WorkspaceInfo, spec *messages.WorkspaceSpec) {
	if info.Stats != nil {
		st := *info.Stats
		info.Stats = &st
	}
	s.view.Store(messages.NewSharedWorkspaceView(info, spec))
	if rt != nil {
		rt.encodeView(s)
	}
}

// viewEncoder encodes published views in a goroutine of the runtime, so
// that lists find them encoded and no actor runs the JSON encoder: in a
// mailbox goroutine, fresh for each run, the encoder's deep stack cost two
// stack copies per view, more than the encoding itself, and a pass of the
// sampler over 10,000 workspaces spent most of its time there. One
// goroutine drains the queue and ends when it is empty; it encodes a
// slot's current view, so a view replaced meanwhile is never encoded.
type viewEncoder struct {
	mu      sync.Mutex
	queue   []*viewSlot
	running bool
}

// encodeView queues s's view for encoding.
func (rt *Runtime) encodeView(s *viewSlot) {
	q := &rt.viewEnc
	q.mu.Lock()
	q.queue = append(q.queue, s)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		rt.Go(q.drain)
	}
}

func (q *viewEncoder) drain() {
	for {
		q.mu.Lock()
		batch := q.queue
		q.queue = nil
		if len(batch) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
		for i, s := range batch {
			if v := s.view.Load(); v != nil {
				_, _ = v.JSON() // an error is the list's to report
			}
			if i%64 == 63 {
				// Thousands of views after a sampler pass: let the
				// actors run in between.
				runtime.Gosched()
			}
		}
	}
}

// Views is the index of workspace views. Readers take the current
// snapshot, a slice of slots in ID order that never changes once stored,
// and each slot's view, without a lock. A creation or removal costs
// O(1): it only marks the snapshot stale, and the next reader rebuilds
// it once (a merge of the previous snapshot with the slots added since),
// so a burst of creations or a shutdown's removals copies nothing. The
// zero value is an empty index.
type Views struct {
	snap atomic.Pointer[[]*viewSlot] // nil: stale, rebuilt by the next reader

	// mu guards the following (and the rebuild of snap).
	mu    sync.Mutex
	byID  map[string]*viewSlot
	last  []*viewSlot // the last snapshot built
	added []*viewSlot // slots added since last was built
}

// add inserts a workspace's slot, replacing one with the same ID.
func (x *Views) add(s *viewSlot) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.byID == nil {
		x.byID = make(map[string]*viewSlot)
	}
	x.byID[s.id] = s
	x.added = append(x.added, s)
	x.snap.Store(nil)
	if len(x.added) > 1024 && len(x.added) > len(x.byID) {
		// Nothing lists, and workspaces come and go: fold what was
		// added into the snapshot, so removed slots are let go.
		x.rebuildLocked()
	}
}

// remove takes s out of the index (not a later slot with the same ID).
func (x *Views) remove(s *viewSlot) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.byID[s.id] != s {
		return
	}
	delete(x.byID, s.id)
	x.snap.Store(nil)
}

// slots returns the current snapshot, rebuilding it when stale.
func (x *Views) slots() []*viewSlot {
	if p := x.snap.Load(); p != nil {
		return *p
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if p := x.snap.Load(); p != nil {
		return *p
	}
	return x.rebuildLocked()
}

// rebuildLocked builds and stores the snapshot: the live slots of the
// last one merged with those added since. x.mu must be held.
func (x *Views) rebuildLocked() []*viewSlot {
	live := func(s *viewSlot) bool { return x.byID[s.id] == s }
	added := make([]*viewSlot, 0, len(x.added))
	fresh := make(map[*viewSlot]bool, len(x.added))
	for _, s := range x.added {
		if live(s) && !fresh[s] {
			added = append(added, s)
			fresh[s] = true
		}
	}
	slices.SortFunc(added, func(a, b *viewSlot) int { return strings.Compare(a.id, b.id) })
	next := make([]*viewSlot, 0, len(x.byID))
	i := 0
	for _, s := range x.last {
		if !live(s) || fresh[s] { // a slot removed and added again comes from added
			continue
		}
		for i < len(added) && added[i].id < s.id {
			next = append(next, added[i])
			i++
		}
		next = append(next, s)
	}
	next = append(next, added[i:]...)
	x.last, x.added = next, nil
	x.snap.Store(&next)
	return next
}

// Len returns how many workspaces the index holds.
func (x *Views) Len() int { return len(x.slots()) }

// Page returns the views of the workspaces q selects, in ID order, and
// the cursor of the next page ("" when this one is the last), as
// [messages.ListQuery.Select] defines them. The cursor is found by binary
// search, so a page costs the same wherever it starts. q must be valid.
func (x *Views) Page(q messages.ListQuery) ([]*messages.WorkspaceView, string) {
	all := x.slots()
	if q.After != "" {
		after := strings.ToUpper(q.After)
		i, found := slices.BinarySearchFunc(all, after, func(e *viewSlot, id string) int { return strings.Compare(e.id, id) })
		if found {
			i++
		}
		all = all[i:]
	}
	keep, next := q.Select(len(all), func(i int) string { return all[i].id }, func(i int) string { return all[i].label })
	out := make([]*messages.WorkspaceView, 0, len(keep))
	for _, k := range keep {
		out = append(out, all[k].view.Load())
	}
	return out, next
}
