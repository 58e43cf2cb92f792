package shipote

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

// TestRemovedWorkspaceLogsByLabel: while the logs of a removed workspace
// are kept, they are read by its label as by its ID; the label names the
// most recently removed workspace that had it.
func TestRemovedWorkspaceLogsByLabel(t *testing.T) {
	eng := startEngine(t, Config{StatePath: filepath.Join(t.TempDir(), "state.json"), Grace: time.Second})
	ctx := testCtx(t)
	run := func(word string) string {
		ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "gone"})
		if err != nil {
			t.Fatal(err)
		}
		ref := native("echo", word)
		ref.Label = "hello"
		c, err := eng.Exec(ctx, "gone", ref)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 15*time.Second, "echo to exit and its line to be logged", func() bool {
			info, err := eng.Command(ctx, "gone", c.ID)
			lines, _ := eng.Logs(ctx, "gone", "hello", LogQuery{})
			return err == nil && info.State.Ended() && len(lines) == 1
		})
		if _, err := eng.RemoveWorkspace(ctx, "gone", time.Second); err != nil {
			t.Fatal(err)
		}
		return ws.ID
	}
	first := run("first")
	second := run("second")
	for _, tc := range []struct{ ws, want string }{{"gone", "second"}, {second, "second"}, {first, "first"}} {
		lines, err := eng.Logs(ctx, tc.ws, "hello", LogQuery{})
		if err != nil || len(lines) != 1 || lines[0].Line != tc.want {
			t.Errorf("logs %s/hello after removal = %+v, %v; want %q", tc.ws, lines, err, tc.want)
		}
	}
	if _, err := eng.Logs(ctx, "never", "hello", LogQuery{}); !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("logs of an unknown label: %v, want not found", err)
	}
}
