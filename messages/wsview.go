// This file defines the published view of a workspace that lists read
// without asking its actor.

package messages

import gojson "github.com/goccy/go-json"

// WorkspaceView is a workspace's view as its actor last published it: an
// immutable copy that readers share without asking the actor, with its
// JSON form encoded once, when it is published, so that a list writes
// bytes that are ready rather than encoding on the request's path.
type WorkspaceView struct {
	info    WorkspaceInfo
	encoded []byte
	err     error
}

// NewWorkspaceView wraps info, which the caller no longer changes, and
// encodes it.
func NewWorkspaceView(info WorkspaceInfo) *WorkspaceView {
	v := &WorkspaceView{info: info}
	v.encoded, v.err = gojson.MarshalWithOption(&v.info, gojson.DisableHTMLEscape())
	return v
}

// Info returns a copy of the view. Its Stats points to a copy of its own;
// Spec's slices and maps are shared and must not be modified.
func (v *WorkspaceView) Info() WorkspaceInfo {
	info := v.info
	if v.info.Stats != nil {
		s := *v.info.Stats
		info.Stats = &s
	}
	return info
}

// ID returns the workspace's ID.
func (v *WorkspaceView) ID() string { return v.info.ID }

// JSON returns the view's JSON encoding, without HTML escaping (the API's
// encoding), shared by every caller: it must not be modified.
func (v *WorkspaceView) JSON() ([]byte, error) { return v.encoded, v.err }

// SameCounts reports whether the view has these counts and this latest
// sample: a workspace whose figures are unchanged need not publish again.
func (v *WorkspaceView) SameCounts(alive, total, pipelines int, last *Sample) bool {
	i := &v.info
	if i.CommandsAlive != alive || i.CommandsTotal != total || i.PipelinesTotal != pipelines {
		return false
	}
	if i.Stats == nil || last == nil {
		return i.Stats == nil && last == nil
	}
	return *i.Stats == *last
}
