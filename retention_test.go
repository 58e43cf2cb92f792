package shipote

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

// waitEnded waits until command id of ws has ended.
func waitEnded(t *testing.T, eng *Engine, ws, id string) {
	t.Helper()
	ctx := testCtx(t)
	eventually(t, 20*time.Second, "command "+id+" ended", func() bool {
		cs, err := eng.Commands(ctx, ws)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.ID == id {
				return c.State.Ended()
			}
		}
		return true // already forgotten
	})
}

// TestRetentionKeepsTheNewestEnded: beyond KeepEnded the oldest ended
// commands and pipeline runs are forgotten (their logs with them), while a
// running command and a stopped supervised one stay.
func TestRetentionKeepsTheNewestEnded(t *testing.T) {
	eng := startEngine(t, Config{KeepEnded: 3})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "w"}); err != nil {
		t.Fatal(err)
	}
	svc := native("sleep", "1000")
	svc.Label = "svc"
	svc.Supervision.Restart = &messages.RestartPolicy{On: messages.RestartAlways, BackoffMs: 10}
	if _, err := eng.Exec(ctx, "w", svc); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.StopCommand(ctx, "w", "svc"); err != nil {
		t.Fatal(err)
	}
	long := native("sleep", "1000")
	long.Label = "long"
	longInfo, err := eng.Exec(ctx, "w", long)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(longInfo.Pid, syscall.SIGKILL) })
	var ids []string
	for range 8 {
		ref := native("sh", "-c", "echo hello")
		ref.Label = "job"
		c, err := eng.Exec(ctx, "w", ref)
		if err != nil {
			t.Fatal(err)
		}
		waitEnded(t, eng, "w", c.ID)
		ids = append(ids, c.ID)
	}
	eventually(t, 20*time.Second, "three jobs kept", func() bool {
		cs, err := eng.Commands(ctx, "w")
		if err != nil {
			t.Fatal(err)
		}
		return len(cs) == 5
	})
	cs, err := eng.Commands(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]messages.CommandState{}
	for _, c := range cs {
		got[c.ID] = c.State
	}
	for i, id := range ids {
		_, kept := got[id]
		if want := i >= len(ids)-3; kept != want {
			t.Errorf("job %d kept: %t; want %t", i, kept, want)
		}
	}
	if s := got[longInfo.ID]; s != messages.CommandRunning {
		t.Errorf("the running command: %q; want running", s)
	}
	if c, err := eng.Command(ctx, "w", "svc"); err != nil || c.State != messages.CommandStopped {
		t.Errorf("the stopped supervised command: %v, %v; want it kept, stopped", c.State, err)
	}
	if _, err := eng.Logs(ctx, "w", ids[0], LogQuery{}); !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("logs of a forgotten command: %v; want ErrNotFound", err)
	}
	if lines, err := eng.Logs(ctx, "w", ids[len(ids)-1], LogQuery{}); err != nil || len(lines) != 1 || lines[0].Line != "hello" {
		t.Errorf("logs of a kept command: %v, %v", lines, err)
	}

	var runs []string
	for range 5 {
		spec := messages.PipelineSpec{Label: "p", Nodes: []messages.Node{node("gen", "seq", "1", "3"), node("sink", "cat")},
			Edges: []messages.Edge{{From: "gen", To: "sink"}}}
		run, err := eng.RunPipeline(ctx, "w", spec, false)
		if err != nil {
			t.Fatal(err)
		}
		waitPipeline(t, eng, run.ID, time.Minute, func(p messages.PipelineInfo) bool { return p.State.Ended() })
		runs = append(runs, run.ID)
	}
	eventually(t, 20*time.Second, "three runs kept", func() bool {
		ps, err := eng.Pipelines(ctx, "w")
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 3 {
			return false
		}
		for i, p := range ps {
			if p.ID != runs[i+2] {
				t.Fatalf("run %d kept is %s; want %s", i, p.ID, runs[i+2])
			}
		}
		return true
	})
}

// TestRetentionForgetsAfterKeepEndedFor: an ended command is forgotten
// once older than KeepEndedFor; a running one is not.
func TestRetentionForgetsAfterKeepEndedFor(t *testing.T) {
	eng := startEngine(t, Config{KeepEndedFor: 200 * time.Millisecond})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "w"}); err != nil {
		t.Fatal(err)
	}
	long := native("sleep", "1000")
	long.Label = "long"
	longInfo, err := eng.Exec(ctx, "w", long)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(longInfo.Pid, syscall.SIGKILL) })
	c, err := eng.Exec(ctx, "w", native("true"))
	if err != nil {
		t.Fatal(err)
	}
	// No other event follows: the retention timer alone forgets it.
	eventually(t, 20*time.Second, "the ended command forgotten", func() bool {
		_, err := eng.Command(ctx, "w", c.ID)
		return errors.Is(err, messages.ErrNotFound)
	})
	if got, err := eng.Command(ctx, "w", "long"); err != nil || got.State != messages.CommandRunning {
		t.Errorf("the running command: %v, %v", got.State, err)
	}
}
