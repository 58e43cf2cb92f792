// This file defines the published view of a workspace that lists read
// without asking its actor.

package messages

import "sync/atomic"

// WorkspaceView is a workspace's view as its actor last published it: an
// immutable copy that readers share without asking the actor. Its JSON
// form is encoded on first use and kept, so a list re-encodes only the
// workspaces whose view changed since the last list.
type WorkspaceView struct {
	info    WorkspaceInfo
	encoded atomic.Pointer[[]byte]
}

// NewWorkspaceView wraps info, which the caller no longer changes.
func NewWorkspaceView(info WorkspaceInfo) *WorkspaceView {
	return &WorkspaceView{info: info}
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

// Encoded returns the view encoded by encode, which must always encode the
// same way (the first result is kept and returned to every later call).
// An encoding error is returned and nothing is kept.
func (v *WorkspaceView) Encoded(encode func(*WorkspaceInfo) ([]byte, error)) ([]byte, error) {
	if b := v.encoded.Load(); b != nil {
		return *b, nil
	}
	b, err := encode(&v.info)
	if err != nil {
		return nil, err
	}
	// Two readers may encode the same view at once; either result is
	// the same bytes.
	v.encoded.Store(&b)
	return b, nil
}

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
