// This file is the engine's index of workspace views: the workspaces in ID
// order, each with the view its actor last published. Lists read it
// without a round trip to any actor. The engine actor adds a workspace
// (with its first view) before it answers the creation and removes it
// before it answers the removal, so a list sees every acknowledged
// creation and no acknowledged removal; each workspace actor replaces its
// own view when its figures change.

package actors

import (
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

// publish replaces the slot's view with a copy of info.
func (s *viewSlot) publish(info messages.WorkspaceInfo) {
	if info.Stats != nil {
		st := *info.Stats
		info.Stats = &st
	}
	s.view.Store(messages.NewWorkspaceView(info))
}

// Views is the index of workspace views. Readers load the current list
// of slots (copy-on-write: a list never changes once stored) and each
// slot's view without a lock. The zero value is an empty index.
type Views struct {
	// mu serializes the writers of list.
	mu   sync.Mutex
	list atomic.Pointer[[]*viewSlot] // sorted by id
}

// add inserts a workspace's slot, replacing one with the same ID.
func (x *Views) add(s *viewSlot) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var old []*viewSlot
	if p := x.list.Load(); p != nil {
		old = *p
	}
	i, found := slices.BinarySearchFunc(old, s.id, func(e *viewSlot, id string) int { return strings.Compare(e.id, id) })
	next := make([]*viewSlot, 0, len(old)+1)
	next = append(next, old[:i]...)
	next = append(next, s)
	if found {
		i++
	}
	next = append(next, old[i:]...)
	x.list.Store(&next)
}

// remove takes s out of the index (not a later slot with the same ID).
func (x *Views) remove(s *viewSlot) {
	x.mu.Lock()
	defer x.mu.Unlock()
	p := x.list.Load()
	if p == nil {
		return
	}
	old := *p
	i, found := slices.BinarySearchFunc(old, s.id, func(e *viewSlot, id string) int { return strings.Compare(e.id, id) })
	if !found || old[i] != s {
		return
	}
	next := make([]*viewSlot, 0, len(old)-1)
	next = append(append(next, old[:i]...), old[i+1:]...)
	x.list.Store(&next)
}

// Len returns how many workspaces the index holds.
func (x *Views) Len() int {
	if p := x.list.Load(); p != nil {
		return len(*p)
	}
	return 0
}

// Page returns the views of the workspaces q selects, in ID order, and
// the cursor of the next page ("" when this one is the last), as
// [messages.ListQuery.Select] defines them. The cursor is found by binary
// search, so a page costs the same wherever it starts. q must be valid.
func (x *Views) Page(q messages.ListQuery) ([]*messages.WorkspaceView, string) {
	p := x.list.Load()
	if p == nil {
		return nil, ""
	}
	all := *p
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
