package actors

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/shipote/shipote/internal/logfile"
	"github.com/shipote/shipote/messages"
)

func TestCloseLogsLeftClosesWhatNoWorkspaceHolds(t *testing.T) {
	defer goleak.VerifyNone(t)
	rt := &Runtime{Log: zap.NewNop(), LogDir: t.TempDir()}
	var ws []*logfile.Writer
	for _, name := range []string{"a", "b"} {
		w, err := rt.openLog("ws1", 0, 0, name)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	rt.closeLog(ws[0]) // its workspace closed this one
	rt.CloseLogsLeft()
	if !rt.WaitGoroutines(30 * time.Second) {
		t.Fatal("the closes did not end")
	}
	for i, w := range ws {
		if err := w.Reopen(); !errors.Is(err, logfile.ErrClosed) {
			t.Errorf("writer %d: reopen after CloseLogsLeft: %v, want ErrClosed", i, err)
		}
	}
	if n := len(rt.logs); n != 0 {
		t.Errorf("%d log files still registered", n)
	}
}

// holdOn blocks the actor that receives it while the test's hook says so
// (panicHook runs at the top of every Receive).
type holdOn struct{}

// A result of an actor's goroutine that is still in the actor's mailbox
// when the actor stops is never read: protoactor drops it. The stop
// releases what it holds, at once rather than at the engine's stop: a
// command's or a pipeline's log files are closed, a spawned command's or
// a launched run's processes are killed, and a waiting caller is
// answered.
func TestResultLeftInAStoppedActorIsReleased(t *testing.T) {
	exec := func(h *engineHarness, ws string, to *actor.PID, token string) func(context.Context) error {
		c := newTestCall[messages.CommandInfo](h)
		ref := messages.CommandRef{Label: "c", Payload: messages.Payload{Native: &messages.NativePayload{
			Exec: "sh", Argv: []string{"-c", "sleep 1000 & wait", token}}}}
		h.sys.Root.RequestWithCustomSender(to, &ExecCommand{Workspace: ws, Command: ref, Reply: c.Reply}, c.Sender())
		return func(ctx context.Context) error { _, err := c.Wait(ctx); return err }
	}
	pipeline := func(h *engineHarness, ws string, to *actor.PID, token, id string) func(context.Context) error {
		c := newTestCall[messages.PipelineInfo](h)
		// Shells that neither write nor end: only a kill ends them.
		spec := messages.PipelineSpec{Label: "p", Nodes: []messages.Node{shNode("a", "sleep 1000 & wait", token),
			shNode("b", "sleep 1000 & cat >/dev/null; wait", token)}, Edges: []messages.Edge{{From: "a", To: "b"}}}
		h.sys.Root.RequestWithCustomSender(to, &RunPipeline{Workspace: ws, Spec: spec, ID: id, Reply: c.Reply}, c.Sender())
		return func(ctx context.Context) error { _, err := c.Wait(ctx); return err }
	}
	is := func(kind string, v any) func(string, any) bool {
		want := fmt.Sprintf("%T", v)
		return func(k string, m any) bool { return k == kind && fmt.Sprintf("%T", m) == want }
	}
	cases := []struct {
		name string
		// trigger: the message at whose Receive holdOn is queued, so
		// that the result its handling leads to comes after holdOn.
		trigger func(kind string, msg any) bool
		// target: the actor that is held and stopped.
		target   func(ws *actor.PID, run string) *actor.PID
		pipeline bool
		// answered: the caller must get an error.
		answered bool
	}{
		{"exec: log file opened", is(KindWorkspace, &ExecCommand{}), nil, false, true},
		{"exec: command spawned", is(KindWorkspace, &execResolved{}), nil, false, true},
		{"pipeline: log files opened", is(KindWorkspace, &RunPipeline{}), nil, true, true},
		{"pipeline: run launched", is(KindPipeline, &actor.Started{}), func(ws *actor.PID, run string) *actor.PID {
			return actor.NewPID(ws.Address, ws.Id+"/pipe-"+run)
		}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startEngineHarness(t)
			h.rt.LogDir = t.TempDir()
			ws, wsPID := createWorkspace(t, h, "held")
			runID := messages.NewID()
			target := wsPID
			if tc.target != nil {
				target = tc.target(wsPID, runID)
			}
			release := make(chan struct{})
			var queued atomic.Bool
			hook := func(kind string, msg any) {
				if _, ok := msg.(*holdOn); ok {
					<-release
					return
				}
				if tc.trigger(kind, msg) && queued.CompareAndSwap(false, true) {
					h.sys.Root.Send(target, &holdOn{})
				}
			}
			panicHook.Store(&hook)
			defer func() {
				select {
				case <-release:
				default:
					close(release)
				}
			}()

			token := "held-test-" + messages.NewID()
			t.Cleanup(func() {
				// Even when the test fails, nothing it started stays:
				// each shell leads its own process group.
				for _, pid := range tokenAlive(token) {
					_ = syscall.Kill(-pid, syscall.SIGKILL)
				}
			})
			var answer func(context.Context) error
			if tc.pipeline {
				answer = pipeline(h, ws.ID, wsPID, token, runID)
			} else {
				answer = exec(h, ws.ID, wsPID, token)
			}
			held := stopHolding(t, h, target, "the result", release)

			if tc.answered {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := answer(ctx); err == nil || ctx.Err() != nil {
					t.Fatalf("answer to the caller: %v (context: %v), want an error", err, ctx.Err())
				}
			}
			eventually(t, "nothing held", func() bool { return held() == 0 })
			noneLeft(t, token, "the stop")
			if tc.target == nil {
				eventually(t, "every log file closed", func() bool {
					h.rt.logMu.Lock()
					defer h.rt.logMu.Unlock()
					return len(h.rt.logs) == 0
				})
			}
		})
	}
}

// createWorkspace creates a workspace labelled label and returns its view
// and its actor's PID.
func createWorkspace(t *testing.T, h *engineHarness, label string) (messages.WorkspaceInfo, *actor.PID) {
	t.Helper()
	wr := newTestCall[messages.WorkspaceInfo](h)
	ws, err := ask(h, &CreateWorkspace{Spec: messages.WorkspaceSpec{Label: label}, Reply: wr.Reply}, wr)
	if err != nil {
		t.Fatal(err)
	}
	pid, ok := h.rt.Directory.Lookup(ws.ID)
	if !ok {
		t.Fatal("workspace not in the directory")
	}
	return ws, pid
}

// stopHolding waits until one message is held for the actor pid, which a
// holdOn blocks, then stops pid (the stop, a system message, overtakes
// what its mailbox holds) and lets holdOn go. It returns how many are held
// for pid.
func stopHolding(t *testing.T, h *engineHarness, pid *actor.PID, what string, release chan struct{}) func() int {
	t.Helper()
	held := func() int {
		h.rt.heldMu.Lock()
		defer h.rt.heldMu.Unlock()
		return len(h.rt.held[pid.Id])
	}
	eventually(t, what+" queued behind holdOn", func() bool { return held() == 1 })
	h.sys.Root.Stop(pid)
	close(release)
	return held
}

// A request still in a workspace's mailbox when the workspace stops is
// dropped unread by protoactor, with no dead letter. Its caller is
// answered ErrNotFound at the stop, not when its context ends: sent
// straight to the workspace (the Engine API, Runtime.SendRequest) or
// routed by the engine actor.
func TestRequestLeftInAStoppedWorkspaceIsAnswered(t *testing.T) {
	for _, routed := range []bool{false, true} {
		t.Run(fmt.Sprintf("routed=%v", routed), func(t *testing.T) {
			h := startEngineHarness(t)
			ws, wsPID := createWorkspace(t, h, "asked")
			release, holding := make(chan struct{}), make(chan struct{})
			hook := func(kind string, msg any) {
				if _, ok := msg.(*holdOn); ok {
					close(holding)
					<-release
				}
			}
			panicHook.Store(&hook)
			defer func() {
				select {
				case <-release:
				default:
					close(release)
				}
			}()
			h.sys.Root.Send(wsPID, &holdOn{})
			<-holding

			c := newTestCall[messages.WorkspaceInfo](h)
			req := &GetWorkspace{Workspace: ws.ID, Reply: c.Reply}
			if routed {
				h.sys.Root.RequestWithCustomSender(h.engine, req, c.Sender())
			} else {
				h.rt.SendRequest(wsPID, req, c.Sender())
			}
			held := stopHolding(t, h, wsPID, "the request", release)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := c.Wait(ctx); !errors.Is(err, messages.ErrNotFound) || ctx.Err() != nil {
				t.Fatalf("answer: %v (context: %v), want ErrNotFound at the stop", err, ctx.Err())
			}
			eventually(t, "nothing held", func() bool { return held() == 0 })
		})
	}
}
