package server_test

import (
	"strconv"
	"testing"

	"github.com/shipote/shipote/messages"
)

// TestWholeListReadsItsWrites: the whole list, answered from its cached
// body while nothing changes, shows every acknowledged change at once: a
// workspace created or removed, a command started or stopped.
func TestWholeListReadsItsWrites(t *testing.T) {
	d := startDaemon(t)
	ctx := testCtx(t)
	list := func() map[string]messages.WorkspaceInfo {
		t.Helper()
		ws, err := d.c.Workspaces(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := make(map[string]messages.WorkspaceInfo, len(ws))
		for _, w := range ws {
			out[w.Spec.Label] = w
		}
		return out
	}
	for i := range 3 {
		if _, err := d.c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "w" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
		if got := list(); len(got) != i+1 {
			t.Fatalf("after creating w%d: %d listed", i, len(got))
		}
	}
	list() // cached
	c, err := d.c.Exec(ctx, "w1", native("sleep", "600"))
	if err != nil {
		t.Fatal(err)
	}
	if got := list()["w1"]; got.CommandsAlive != 1 {
		t.Fatalf("after an exec: %+v", got)
	}
	if _, err := d.c.StopCommand(ctx, "w1", c.ID); err != nil {
		t.Fatal(err)
	}
	if got := list()["w1"]; got.CommandsAlive != 0 || got.CommandsTotal != 1 {
		t.Fatalf("after a stop: %+v", got)
	}
	if _, err := d.c.RemoveWorkspace(ctx, "w0", 0); err != nil {
		t.Fatal(err)
	}
	if got := list(); len(got) != 2 || got["w0"].ID != "" {
		t.Fatalf("after a removal: %v", got)
	}
	if _, err := d.c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "w3"}); err != nil {
		t.Fatal(err)
	}
	if got := list(); len(got) != 3 || got["w3"].ID == "" {
		t.Fatalf("after another creation: %v", got)
	}
}
