package actors

import (
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

// TestRegistryFollowsInPlaceChange checks that the engine's registry, the
// snapshot's fallback entry for a workspace that does not answer, holds the
// limits changed in place, not the ones the workspace was created with.
func TestRegistryFollowsInPlaceChange(t *testing.T) {
	h := startEngineHarness(t)
	wr := newTestCall[messages.WorkspaceInfo](h)
	ws, err := ask(h, &CreateWorkspace{Spec: messages.WorkspaceSpec{Label: "lim", Soma: messages.Soma{PidsMax: 50}}, Reply: wr.Reply}, wr)
	if err != nil {
		t.Fatal(err)
	}
	ur := newTestCall[messages.WorkspaceInfo](h)
	info, err := ask(h, &UpdateSoma{Workspace: ws.ID, Soma: messages.Soma{PidsMax: 70}, Reply: ur.Reply}, ur)
	if err != nil || info.Spec.Soma.PidsMax != 70 {
		t.Fatalf("UpdateSoma = %+v, %v", info.Spec.Soma, err)
	}
	// The registry is told after the answer: poll the engine's snapshot.
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := h.sys.Root.RequestFuture(h.engine, &SnapshotEngine{Gen: 1}, 10*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		snap := res.(*EngineSnapshot)
		if len(snap.Workspaces) != 1 {
			t.Fatalf("registry %+v", snap.Workspaces)
		}
		if got := snap.Workspaces[0].Spec.Soma.PidsMax; got == 70 {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("registry spec pids_max %d after the change in place, want 70", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
