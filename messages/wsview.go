// This file defines the published view of a workspace that lists read
// without asking its actor.

package messages

import (
	"sync"
	"time"

	gojson "github.com/goccy/go-json"
)

// WorkspaceView is a workspace's view as its actor last published it: an
// immutable copy that readers share without asking the actor, with its
// JSON form encoded once, by the first caller of JSON (the engine has a
// background goroutine call it soon after publication, so that a list
// writes bytes that are ready rather than encoding on the request's path,
// and the workspace's own goroutine never runs the encoder). It
// holds the spec by pointer: a workspace's views share the spec its actor
// holds (NewSharedWorkspaceView) rather than each keeping a copy.
type WorkspaceView struct {
	id                      string
	spec                    *WorkspaceSpec
	created, deadline       time.Time
	alive, total, pipelines int
	limitsBackend           string
	stats                   *Sample

	once    sync.Once
	encoded []byte
	err     error
}

// NewWorkspaceView wraps info, which the caller no longer changes.
func NewWorkspaceView(info WorkspaceInfo) *WorkspaceView {
	spec := info.Spec
	return NewSharedWorkspaceView(info, &spec)
}

// NewSharedWorkspaceView is NewWorkspaceView for a view whose spec is
// *spec (info.Spec is ignored): the view keeps the pointer, so the caller
// must never change *spec (it replaces the pointer instead), nor info's
// Stats.
func NewSharedWorkspaceView(info WorkspaceInfo, spec *WorkspaceSpec) *WorkspaceView {
	return &WorkspaceView{id: info.ID, spec: spec, created: info.CreatedAt, deadline: info.Deadline,
		alive: info.CommandsAlive, total: info.CommandsTotal, pipelines: info.PipelinesTotal,
		limitsBackend: info.LimitsBackend, stats: info.Stats}
}

// Info returns a copy of the view. Its Stats points to a copy of its own;
// Spec's slices and maps are shared and must not be modified.
func (v *WorkspaceView) Info() WorkspaceInfo {
	info := WorkspaceInfo{ID: v.id, Spec: *v.spec, CreatedAt: v.created, Deadline: v.deadline,
		CommandsAlive: v.alive, CommandsTotal: v.total, PipelinesTotal: v.pipelines, LimitsBackend: v.limitsBackend}
	if v.stats != nil {
		s := *v.stats
		info.Stats = &s
	}
	return info
}

// ID returns the workspace's ID.
func (v *WorkspaceView) ID() string { return v.id }

// JSON returns the view's JSON encoding, without HTML escaping (the API's
// encoding), made by the first call and shared by every caller: it must
// not be modified.
func (v *WorkspaceView) JSON() ([]byte, error) {
	v.once.Do(func() {
		info := v.Info()
		v.encoded, v.err = gojson.MarshalWithOption(&info, gojson.DisableHTMLEscape())
	})
	return v.encoded, v.err
}

// SameCounts reports whether the view has these counts and this latest
// sample: a workspace whose figures are unchanged need not publish again.
func (v *WorkspaceView) SameCounts(alive, total, pipelines int, last *Sample) bool {
	if v.alive != alive || v.total != total || v.pipelines != pipelines {
		return false
	}
	if v.stats == nil || last == nil {
		return v.stats == nil && last == nil
	}
	return *v.stats == *last
}
