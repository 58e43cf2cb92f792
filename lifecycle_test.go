package shipote

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

// TestStopConcurrent calls Stop from many goroutines at once: none panics,
// all return the outcome of the one stop, and the command is gone.
func TestStopConcurrent(t *testing.T) {
	dir := t.TempDir()
	eng, err := Start(context.Background(), NewActorSystem(nil), Config{Limits: "none", Grace: time.Second, StatePath: filepath.Join(dir, "state.json")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "stopme"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := eng.Exec(ctx, ws.ID, native("sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-c.Pid, syscall.SIGKILL) })

	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = eng.Stop(ctx)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Stop #%d: %v", i, err)
		}
	}
	if alive(c.Pid) {
		t.Errorf("command %d survived Stop", c.Pid)
	}
	if err := eng.Stop(ctx); err != nil {
		t.Errorf("Stop after Stop: %v", err)
	}
}

// TestCallsAfterStop checks that every call of the engine's API fails
// with ErrStopped once Stop has run, without waiting for its context: the
// context here never ends, so a call that waited would hang the test.
func TestCallsAfterStop(t *testing.T) {
	dir := t.TempDir()
	eng, err := Start(context.Background(), NewActorSystem(nil), Config{Limits: "none", Grace: time.Second, StatePath: filepath.Join(dir, "state.json")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "after"})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	spec := messages.PipelineSpec{Label: "p", Nodes: []messages.Node{{Label: "a", Payload: native("true").Payload}}}
	calls := []struct {
		name string
		call func() error
	}{
		{"CreateWorkspace", func() error { _, err := eng.CreateWorkspace(bg, messages.WorkspaceSpec{Label: "x"}); return err }},
		{"RestoreWorkspace", func() error {
			_, err := eng.RestoreWorkspace(bg, messages.NewID(), messages.WorkspaceSpec{Label: "y"})
			return err
		}},
		{"Workspaces", func() error { _, err := eng.Workspaces(bg); return err }},
		{"Workspace", func() error { _, err := eng.Workspace(bg, ws.ID); return err }},
		{"RemoveWorkspace", func() error { _, err := eng.RemoveWorkspace(bg, ws.ID, 0); return err }},
		{"Exec", func() error { _, err := eng.Exec(bg, ws.ID, native("true")); return err }},
		{"Commands", func() error { _, err := eng.Commands(bg, ws.ID); return err }},
		{"AllCommands", func() error { _, err := eng.AllCommands(bg); return err }},
		{"Command", func() error { _, err := eng.Command(bg, ws.ID, "c"); return err }},
		{"Logs", func() error { _, err := eng.Logs(bg, ws.ID, "c", LogQuery{}); return err }},
		{"FollowLogs", func() error {
			return eng.FollowLogs(bg, ws.ID, "c", LogQuery{}, func([]messages.LogLine) error { return nil })
		}},
		{"NodeLogs", func() error { _, err := eng.NodeLogs(bg, "p", "a", LogQuery{}); return err }},
		{"ReopenLogs", func() error { return eng.ReopenLogs() }},
		{"RunPipeline", func() error { _, err := eng.RunPipeline(bg, ws.ID, spec, false); return err }},
		{"RestorePipeline", func() error { _, err := eng.RestorePipeline(bg, ws.ID, messages.NewID(), spec, false); return err }},
		{"Pipelines", func() error { _, err := eng.Pipelines(bg, ""); return err }},
		{"Pipeline", func() error { _, err := eng.Pipeline(bg, "p"); return err }},
		{"StopPipeline", func() error { _, err := eng.StopPipeline(bg, "p"); return err }},
		{"RestartPipeline", func() error { _, err := eng.RestartPipeline(bg, "p"); return err }},
		{"SignalPipeline", func() error { _, err := eng.SignalPipeline(bg, "p", "a", syscall.SIGTERM); return err }},
		{"Tap", func() error { _, err := eng.Tap(bg, "p", ""); return err }},
		{"SavePipeline", func() error { return eng.SavePipeline(bg, "s", spec) }},
		{"SavedPipelines", func() error { _, err := eng.SavedPipelines(bg); return err }},
		{"DeleteSavedPipeline", func() error { return eng.DeleteSavedPipeline(bg, "s") }},
		{"StartSavedPipeline", func() error { _, err := eng.StartSavedPipeline(bg, "s", ws.ID, false); return err }},
		{"Stats", func() error { _, err := eng.Stats(bg, ws.ID); return err }},
		{"StopCommand", func() error { _, err := eng.StopCommand(bg, ws.ID, "c"); return err }},
		{"StartCommand", func() error { _, err := eng.StartCommand(bg, ws.ID, "c"); return err }},
		{"RestartCommand", func() error { _, err := eng.RestartCommand(bg, ws.ID, "c"); return err }},
		{"SignalCommand", func() error { _, err := eng.SignalCommand(bg, ws.ID, "c", syscall.SIGTERM); return err }},
		{"RemoveCommand", func() error { _, err := eng.RemoveCommand(bg, ws.ID, "c"); return err }},
		{"StopCommands", func() error { _, err := eng.StopCommands(bg, ws.ID); return err }},
		{"SaveSnapshot", func() error { _, err := eng.SaveSnapshot(bg); return err }},
		{"Snapshot", func() error { _, err := eng.Snapshot(bg); return err }},
		{"KeptEntries", func() error { _, err := eng.KeptEntries(bg); return err }},
		{"DropKept", func() error { _, err := eng.DropKept(bg, "x"); return err }},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- tc.call() }()
			select {
			case err := <-done:
				if !errors.Is(err, messages.ErrStopped) {
					t.Errorf("%s after Stop: %v, want ErrStopped", tc.name, err)
				}
			case <-ctx.Done():
				t.Fatalf("%s after Stop did not return", tc.name)
			}
		})
	}
}

// TestCallsDuringStop keeps callers busy while the engine stops: each
// call ends (with its answer or ErrStopped), none waits for its context.
func TestCallsDuringStop(t *testing.T) {
	dir := t.TempDir()
	eng, err := Start(context.Background(), NewActorSystem(nil), Config{Limits: "none", Grace: time.Second, StatePath: filepath.Join(dir, "state.json")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "busy"})
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	var wg sync.WaitGroup
	errc := make(chan error, 64)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var err error
				if _, err = eng.SaveSnapshot(bg); err == nil {
					_, err = eng.Workspaces(bg)
				}
				if err == nil {
					var c messages.CommandInfo
					if c, err = eng.Exec(bg, ws.ID, native("true")); err == nil {
						_, err = eng.Command(bg, ws.ID, c.ID)
					}
				}
				if err != nil {
					if !errors.Is(err, messages.ErrStopped) && !errors.Is(err, messages.ErrNotFound) && !errors.Is(err, messages.ErrConflict) {
						errc <- err
					}
					return
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // let the callers get going
	if err := eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
		t.Fatal("callers still waiting after Stop")
	}
	close(errc)
	for err := range errc {
		t.Errorf("call during Stop: %v", err)
	}
}

// TestStartRestoreCancelled starts an engine on a state file with a
// context that has ended: Start fails with the context's error, leaves
// the file as it was, and releases its lock.
func TestStartRestoreCancelled(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	eng, err := Start(context.Background(), NewActorSystem(nil), Config{Limits: "none", Grace: time.Second, StatePath: path})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "kept"}); err != nil {
		t.Fatal(err)
	}
	if err := eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Start(cancelled, NewActorSystem(nil), Config{Limits: "none", Grace: time.Second, StatePath: path}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a cancelled context: %v, want context.Canceled", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Errorf("the state file changed:\nbefore %s\nafter  %s", before, after)
	}
	eng = startEngine(t, Config{StatePath: path})
	wss, err := eng.Workspaces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(wss) != 1 || wss[0].Spec.Label != "kept" {
		t.Errorf("workspaces after a cancelled start: %+v", wss)
	}
	if _, err := Start(context.Background(), nil, Config{}); err == nil {
		t.Error("Start without an actor system succeeded")
	}
	//lint:ignore SA1012 a nil context is the bad input checked here
	if _, err := Start(nil, NewActorSystem(nil), Config{}); err == nil {
		t.Error("Start without a context succeeded")
	}
}
