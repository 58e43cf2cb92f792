package shipote

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

// TestListReadsItsWrites holds lists to every acknowledged mutation: a
// workspace whose creation was answered is listed by the next list, one
// whose removal was answered is not, and a command whose exec (or
// removal) was answered is counted (or no longer counted). Several
// creators and removers run at once, durably, while other goroutines list
// and the sampler republishes views.
func TestListReadsItsWrites(t *testing.T) {
	eng := startEngine(t, Config{StatePath: filepath.Join(t.TempDir(), "state.json"), SampleInterval: 20 * time.Millisecond})
	ctx := testCtx(t)
	ids := func(q messages.ListQuery) []string {
		list, _, err := eng.WorkspacePage(ctx, q)
		if err != nil {
			t.Error(err)
			return nil
		}
		out := make([]string, len(list))
		for i, w := range list {
			out[i] = w.ID
		}
		return out
	}

	stop := make(chan struct{})
	var readers sync.WaitGroup
	var lists atomic.Int64
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				got := ids(messages.ListQuery{})
				if !slices.IsSorted(got) {
					t.Errorf("list not in ID order: %v", got)
				}
				lists.Add(1)
			}
		})
	}
	var writers sync.WaitGroup
	for g := range 4 {
		writers.Go(func() {
			for i := range 10 {
				label := fmt.Sprintf("ryw-%d-%d", g, i)
				ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: label})
				if err != nil {
					t.Error(err)
					return
				}
				if got := ids(messages.ListQuery{LabelPrefix: label}); !slices.Equal(got, []string{ws.ID}) {
					t.Errorf("list after creating %s: %v", label, got)
				}
				if _, err := eng.RemoveWorkspace(ctx, ws.ID, 0); err != nil {
					t.Error(err)
					return
				}
				if got := ids(messages.ListQuery{}); slices.Contains(got, ws.ID) {
					t.Errorf("%s listed after its removal was answered", label)
				}
			}
		})
	}
	writers.Wait()

	// Commands: counted once exec is answered, no longer once removed.
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "counts"})
	if err != nil {
		t.Fatal(err)
	}
	counts := func() (alive, total int) {
		list, _, err := eng.WorkspacePage(ctx, messages.ListQuery{LabelPrefix: "counts"})
		if err != nil || len(list) != 1 {
			t.Fatalf("list: %v %v", list, err)
		}
		return list[0].CommandsAlive, list[0].CommandsTotal
	}
	for i := range 3 {
		ref := native("sleep", "60")
		ref.Label = fmt.Sprintf("s%d", i)
		if _, err := eng.Exec(ctx, ws.ID, ref); err != nil {
			t.Fatal(err)
		}
		if alive, total := counts(); alive != i+1 || total != i+1 {
			t.Fatalf("after exec %d: alive %d total %d", i+1, alive, total)
		}
	}
	if _, err := eng.StopCommand(ctx, ws.ID, "s0"); err != nil {
		t.Fatal(err)
	}
	if alive, total := counts(); alive != 2 || total != 3 {
		t.Errorf("after stopping s0: alive %d total %d", alive, total)
	}
	if _, err := eng.RemoveCommand(ctx, ws.ID, "s0"); err != nil {
		t.Fatal(err)
	}
	if alive, total := counts(); alive != 2 || total != 2 {
		t.Errorf("after stopping and removing s0: alive %d total %d", alive, total)
	}
	// Pipeline nodes: counted once the run is answered, no longer alive
	// once its stop is answered (a plain and a supervised run; an ended
	// run's nodes stay in the total until retention forgets the run).
	for i, supervised := range []bool{false, true} {
		run, err := eng.RunPipeline(ctx, ws.ID, messages.PipelineSpec{
			Label: fmt.Sprintf("p%d", i), RestartOnFailure: supervised,
			Nodes: []messages.Node{node("gen", "sleep", "60"), node("sink", "cat")},
			Edges: []messages.Edge{{From: "gen", To: "sink"}},
		}, false)
		if err != nil {
			t.Fatal(err)
		}
		if alive, total := counts(); alive != 4 || total != 4+2*i {
			t.Fatalf("after running pipeline %d: alive %d total %d", i, alive, total)
		}
		if _, err := eng.StopPipeline(ctx, run.ID); err != nil {
			t.Fatal(err)
		}
		if alive, total := counts(); alive != 2 || total != 4+2*i {
			t.Errorf("after stopping pipeline %d (supervised %v): alive %d total %d", i, supervised, alive, total)
		}
	}
	close(stop)
	readers.Wait()
	if lists.Load() == 0 {
		t.Error("no list ran beside the writers")
	}
	if got := ids(messages.ListQuery{}); !slices.Equal(got, []string{ws.ID}) {
		t.Errorf("at the end: %v, want only %s", got, ws.ID)
	}
}
