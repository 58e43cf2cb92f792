package shipote

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

// TestRestartPipelineInBackoff: a supervised run waiting a long backoff
// is launched at once by a restart, with the same run ID.
func TestRestartPipelineInBackoff(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "pr"}); err != nil {
		t.Fatal(err)
	}
	spec := messages.PipelineSpec{
		Label:               "flaky",
		Nodes:               []messages.Node{node("one", "sh", "-c", "exit 1")},
		RestartOnFailure:    true,
		RestartBackoffMs:    600000,
		RestartMaxBackoffMs: 600000,
	}
	run, err := eng.RunPipeline(ctx, "pr", spec, false)
	if err != nil {
		t.Fatal(err)
	}
	waitPipeline(t, eng, run.ID, time.Minute, func(p messages.PipelineInfo) bool { return p.State == messages.PipelineBackoff })
	again, err := eng.RestartPipeline(ctx, "flaky")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != run.ID || again.Restarts != 1 || !again.NextStartAt.IsZero() {
		t.Errorf("restarted: id %s restarts %d next start %v", again.ID, again.Restarts, again.NextStartAt)
	}
	// It fails again and waits again: the policy is unchanged.
	info := waitPipeline(t, eng, run.ID, time.Minute, func(p messages.PipelineInfo) bool {
		return p.State == messages.PipelineBackoff && p.Restarts == 1
	})
	if info.ID != run.ID {
		t.Errorf("id %s", info.ID)
	}
	// A stop ends it; a restart of the ended run is refused, a signal too.
	if _, err := eng.StopPipeline(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.RestartPipeline(ctx, run.ID); !errors.Is(err, messages.ErrConflict) {
		t.Errorf("restart of a stopped run: %v, want conflict", err)
	}
	if _, err := eng.SignalPipeline(ctx, run.ID, "", syscall.SIGHUP); !errors.Is(err, messages.ErrConflict) {
		t.Errorf("signal of a stopped run: %v, want conflict", err)
	}
}

// TestRestartPipelineRunning: every node of a running run gets a new
// process; a node that ignores SIGTERM is killed after the grace.
func TestRestartPipelineRunning(t *testing.T) {
	eng := startEngine(t, Config{Grace: 300 * time.Millisecond})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "pr"}); err != nil {
		t.Fatal(err)
	}
	spec := messages.PipelineSpec{
		Label: "pair",
		Nodes: []messages.Node{
			node("src", "sh", "-c", "trap '' TERM; echo ready >&2; while :; do echo x; sleep 0.05; done"),
			node("sink", "cat"),
		},
		Edges: []messages.Edge{{From: "src", To: "sink"}},
	}
	run, err := eng.RunPipeline(ctx, "pr", spec, false)
	if err != nil {
		t.Fatal(err)
	}
	before := waitPipeline(t, eng, run.ID, time.Minute, func(p messages.PipelineInfo) bool {
		return len(p.Nodes) == 2 && p.Nodes[0].Pid > 0 && p.Nodes[1].Pid > 0
	})
	eventually(t, time.Minute, "src to set its trap", func() bool { return nodeLog(t, eng, "pr", run.ID, "src") == "ready\n" })
	after, err := eng.RestartPipeline(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.State != messages.PipelineRunning || after.Restarts != 1 {
		t.Fatalf("after restart: %s, %d restarts", after.State, after.Restarts)
	}
	for i, n := range after.Nodes {
		if n.Pid <= 0 || n.Pid == before.Nodes[i].Pid {
			t.Errorf("node %s: pid %d (before %d)", n.Label, n.Pid, before.Nodes[i].Pid)
		}
		if alive(before.Nodes[i].Pid) {
			t.Errorf("node %s: the old process %d is alive", n.Label, before.Nodes[i].Pid)
		}
	}
	// Two restarts at once both succeed (one relaunch may answer both).
	errc := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := eng.RestartPipeline(ctx, run.ID)
			errc <- err
		}()
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	if _, err := eng.StopPipeline(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
}

// TestPipelineNodeStopAndSuccess: a node's stop_signal and
// stop_timeout_ms govern a stop of its run, and its success_exit_codes
// its run's success.
func TestPipelineNodeStopAndSuccess(t *testing.T) {
	// A grace far longer than the test's wait: only the node's own
	// timeout can end the stubborn node in time.
	eng := startEngine(t, Config{Grace: 10 * time.Minute})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "pn"}); err != nil {
		t.Fatal(err)
	}
	polite := node("polite", "sh", "-c", "trap 'exit 0' INT; trap '' TERM; echo ready; while :; do sleep 0.05; done")
	polite.StopSignal = "INT"
	stubborn := node("stubborn", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done")
	stubborn.StopTimeoutMs = 200
	run, err := eng.RunPipeline(ctx, "pn", messages.PipelineSpec{Label: "two", Nodes: []messages.Node{polite, stubborn}}, false)
	if err != nil {
		t.Fatal(err)
	}
	// Both have set their traps.
	eventually(t, time.Minute, "both nodes ready", func() bool {
		return nodeLog(t, eng, "pn", run.ID, "polite") == "ready\n" && nodeLog(t, eng, "pn", run.ID, "stubborn") == "ready\n"
	})
	stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	info, err := eng.StopPipeline(stopCtx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	byLabel := map[string]messages.NodeInfo{}
	for _, n := range info.Nodes {
		byLabel[n.Label] = n
	}
	if n := byLabel["polite"]; n.ExitCode == nil || *n.ExitCode != 0 || n.Signal != "" {
		t.Errorf("polite: exit %v signal %q, want exit 0 on its SIGINT", n.ExitCode, n.Signal)
	}
	if n := byLabel["stubborn"]; n.Signal != "SIGKILL" {
		t.Errorf("stubborn: signal %q, want SIGKILL after its timeout", n.Signal)
	}

	// success_exit_codes: exit 3 is a success for this node.
	three := node("three", "sh", "-c", "exit 3")
	three.SuccessExitCodes = []int{0, 3}
	ok, err := eng.RunPipeline(ctx, "pn", messages.PipelineSpec{Label: "three", Nodes: []messages.Node{three}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if p := waitPipeline(t, eng, ok.ID, time.Minute, func(p messages.PipelineInfo) bool { return p.State.Ended() }); p.State != messages.PipelineSucceeded {
		t.Errorf("exit 3 with success_exit_codes [0, 3]: %s", p.State)
	}
	plain, err := eng.RunPipeline(ctx, "pn", messages.PipelineSpec{Label: "plain", Nodes: []messages.Node{node("three", "sh", "-c", "exit 3")}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if p := waitPipeline(t, eng, plain.ID, time.Minute, func(p messages.PipelineInfo) bool { return p.State.Ended() }); p.State != messages.PipelineFailed {
		t.Errorf("exit 3 without success_exit_codes: %s", p.State)
	}
}
