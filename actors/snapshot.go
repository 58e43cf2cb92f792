// This file defines the request-reply messages the persistence actor uses
// to build a snapshot: it asks the engine for the registry and the saved
// pipelines, then each workspace for its entry. Replies go with
// ctx.Respond to the asking actor.

package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/shipote/shipote/messages"
)

func (e *engine) snapshot(ctx actor.Context, m *SnapshotEngine) {
	out := &EngineSnapshot{Gen: m.Gen, Workspaces: make([]WorkspacePID, 0, len(e.byID))}
	for id, en := range e.byID {
		if en.removal != nil {
			continue // a user's removal: off the disk before it is stopped
		}
		out.Workspaces = append(out.Workspaces, WorkspacePID{ID: id, PID: en.pid, Spec: en.specNow()})
	}
	sortWorkspacePIDs(out.Workspaces)
	for name, spec := range e.saved {
		out.Saved = append(out.Saved, SavedPipeline{Name: name, Spec: spec})
	}
	sortSaved(out.Saved)
	ctx.Respond(out)
}

func (w *workspace) snapshot(ctx actor.Context, m *SnapshotWorkspace) {
	out := &WorkspaceSnapshot{Gen: m.Gen, ID: w.id, Spec: w.spec}
	if n := len(w.history); n > 0 {
		out.History = append([]messages.Sample(nil), w.history[max(0, n-PersistedSamples):]...)
	}
	for _, id := range w.pipeOrder {
		r := w.pipes[id]
		if r.info.Supervised && !r.info.State.Ended() && r.stop == nil {
			out.Live = append(out.Live, LivePipeline{ID: id, Spec: r.info.Spec, Tap: r.info.Tap})
		}
	}
	for _, id := range w.order {
		if c := w.cmds[id]; c.declared() {
			out.Commands = append(out.Commands, LiveCommand{ID: id, Spec: c.info.Spec})
		}
	}
	// Declared by an apply, to start once it is durable.
	out.Live = append(out.Live, w.declPipes...)
	out.Commands = append(out.Commands, w.declCmds...)
	ctx.Respond(out)
}
