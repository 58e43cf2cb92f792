package shipote

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

// TestEndedMeansOutputRead checks that a command or pipeline reported as
// ended has its whole output in its log: the exit is held back until the
// output pipes reach EOF. Several rounds give the race its chances.
func TestEndedMeansOutputRead(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "drain"}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		ref := native("seq", "3000")
		ref.Label = fmt.Sprintf("seq-%d", i)
		c, err := eng.Exec(ctx, "drain", ref)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "exited "+c.Label, func() bool {
			ci, err := eng.Command(ctx, "drain", c.ID)
			return err == nil && ci.State.Ended()
		})
		lines, err := eng.Logs(ctx, "drain", c.ID, LogQuery{Tail: 1})
		if err != nil || len(lines) != 1 || lines[0].Line != "3000" {
			t.Fatalf("round %d: command ended with last log line %v (%v), want 3000", i, lines, err)
		}

		run, err := eng.RunPipeline(ctx, "drain", messages.PipelineSpec{
			Label: fmt.Sprintf("p-%d", i),
			Nodes: []messages.Node{node("gen", "seq", "1000"), node("count", "wc", "-l"), node("copy", "cat")},
			Edges: []messages.Edge{{From: "gen", To: "count"}, {From: "gen", To: "copy"}},
		}, false)
		if err != nil {
			t.Fatal(err)
		}
		info := waitPipeline(t, eng, run.ID, 10*time.Second, func(p messages.PipelineInfo) bool { return p.State.Ended() })
		if info.State != messages.PipelineSucceeded {
			t.Fatalf("round %d: pipeline %s", i, info.State)
		}
		if got := strings.TrimSpace(nodeLog(t, eng, "drain", run.ID, "count")); got != "1000" {
			t.Fatalf("round %d: pipeline ended with sink log %q, want 1000", i, got)
		}
		if got := nodeLog(t, eng, "drain", run.ID, "copy"); !strings.HasSuffix(got, "\n999\n1000\n") {
			t.Fatalf("round %d: pipeline ended with copy log ending %q, want 1000 last", i, got[max(0, len(got)-20):])
		}
	}
}
