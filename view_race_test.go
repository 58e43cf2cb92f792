package shipote

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

// TestViewsWhileRunsEnd reads pipeline views (their nodes, splitters and
// channels) from several goroutines while a supervised pipeline's runs
// end and restart over and over. Under -race, a view that shared memory
// with the supervisor's state (the channels its run end zeroes) is
// reported.
func TestViewsWhileRunsEnd(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "views"}); err != nil {
		t.Fatal(err)
	}
	spec := messages.PipelineSpec{
		Label: "flaky",
		Nodes: []messages.Node{
			node("gen", "seq", "1", "20000"),
			node("gen2", "seq", "1", "20000"),
			node("sink", "sh", "-c", "cat >/dev/null; exit 3"),
			node("sink2", "sh", "-c", "cat >/dev/null; exit 3"),
			node("sink3", "wc", "-l"),
		},
		Edges: []messages.Edge{
			{From: "gen", To: "sink"}, {From: "gen", To: "sink3"},
			{From: "gen2", To: "sink2"},
		},
		RestartOnFailure:    true,
		RestartBackoffMs:    1,
		RestartMaxBackoffMs: 1,
		RestartMax:          15,
	}
	run, err := eng.RunPipeline(ctx, "views", spec, false)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := 0 // channels read
	read := func(ps ...messages.PipelineInfo) {
		n := 0
		for _, p := range ps {
			for _, nd := range p.Nodes {
				if nd.ExitCode != nil {
					n += *nd.ExitCode
				}
			}
			for _, s := range p.Splitters {
				for _, c := range s.Channels {
					n += int(c.BytesPerSec + c.BytesTotal + c.DroppedBytes)
					seen++
				}
			}
			if _, err := json.Marshal(p); err != nil {
				t.Error(err)
			}
		}
		_ = n
	}
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				ps, err := eng.Pipelines(ctx, "views")
				if err != nil {
					t.Error(err)
					return
				}
				p, err := eng.Pipeline(ctx, run.ID)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				read(append(ps, p)...)
				mu.Unlock()
			}
		}()
	}
	info := waitPipeline(t, eng, run.ID, 2*time.Minute, func(p messages.PipelineInfo) bool { return p.State.Ended() })
	close(done)
	wg.Wait()
	if info.State != messages.PipelineGaveUp || info.Restarts != 15 {
		t.Errorf("pipeline: state %s restarts %d, want gave_up after 15", info.State, info.Restarts)
	}
	if seen == 0 {
		t.Error("no view carried channel counters")
	}
}
