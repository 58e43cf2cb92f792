// Tests of what a panic in a pipeline supervisor or a splitter leaves
// behind: the panic is injected through panicHook into an engine with real
// processes and pipes; no process of the old run may survive, no fd may
// leak, and the run is failed (and relaunched when supervised).
package actors

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/shipote/shipote/internal/askproc"
	"github.com/shipote/shipote/internal/eventhub"
	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/messages"
)

// engineHarness runs an engine actor with its runtime, as package shipote
// does, with the dead-letter hook that fails requests to dead actors.
type engineHarness struct {
	t      *testing.T
	sys    *actor.ActorSystem
	rt     *Runtime
	engine *actor.PID
}

func startEngineHarness(t *testing.T) *engineHarness {
	t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	rt := &Runtime{System: sys, Spawner: proc.NewSpawner(), Events: eventhub.New(100), Log: zap.NewNop(), Grace: time.Second}
	sub := sys.EventStream.Subscribe(func(evt any) {
		if dl, ok := evt.(*actor.DeadLetterEvent); ok {
			FailDeadLetter(sys, dl.Message, dl.Sender)
		}
	})
	pid, err := sys.Root.SpawnNamed(NewEngineProps(EngineConfig{Runtime: rt}).Configure(actor.WithGuardian(ResumeOnPanic(rt.Log, "engine"))), "shipote-"+messages.NewID())
	if err != nil {
		t.Fatal(err)
	}
	h := &engineHarness{t: t, sys: sys, rt: rt, engine: pid}
	t.Cleanup(func() {
		panicHook.Store(nil)
		begin := newTestCall[[]*actor.PID](h)
		wss, err := askPID(h, pid, &BeginShutdown{Reply: begin.Reply}, begin)
		if err != nil {
			t.Errorf("begin shutdown: %v", err)
		}
		for _, ws := range wss {
			r := newTestCall[messages.WorkspaceInfo](h)
			_, _ = askPID(h, ws, ShutdownWorkspace(time.Second, r.Reply), r)
		}
		if err := sys.Root.PoisonFuture(pid).Wait(); err != nil {
			t.Errorf("stop engine actor: %v", err)
		}
		rt.Spawner.Close()
		if !rt.WaitGoroutines(10 * time.Second) {
			t.Error("goroutines of the runtime did not end")
		}
		rt.Events.Close()
		sys.EventStream.Unsubscribe(sub)
		sys.Shutdown()
	})
	return h
}

// newTestCall starts a request whose answer comes to a reply process of
// the harness's runtime.
func newTestCall[T any](h *engineHarness) askproc.Call[T] { return askproc.Begin[T](h.rt.asks()) }

// ask sends msg (whose Reply is c.Reply) to the engine actor and waits
// for its answer.
func ask[T any](h *engineHarness, msg any, c askproc.Call[T]) (T, error) {
	return askPID(h, h.engine, msg, c)
}

// askPID sends msg (whose Reply is c.Reply) to pid and waits for its
// answer.
func askPID[T any](h *engineHarness, pid *actor.PID, msg any, c askproc.Call[T]) (T, error) {
	h.sys.Root.RequestWithCustomSender(pid, msg, c.Sender())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := c.Wait(ctx)
	if ctx.Err() != nil {
		h.t.Fatalf("no answer to %T", msg)
	}
	return v, err
}

func (h *engineHarness) pipeline(ws, run string) messages.PipelineInfo {
	h.t.Helper()
	r := newTestCall[[]messages.PipelineInfo](h)
	ps, err := ask(h, &ListPipelines{Workspace: ws, Reply: r.Reply}, r)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, p := range ps {
		if p.ID == run {
			return p
		}
	}
	h.t.Fatalf("pipeline %s not listed", run)
	return messages.PipelineInfo{}
}

// waitFor polls the pipeline until cond holds.
func (h *engineHarness) waitFor(ws, run, what string, cond func(messages.PipelineInfo) bool) messages.PipelineInfo {
	h.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		p := h.pipeline(ws, run)
		if cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s: %+v", what, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func running(p messages.PipelineInfo) bool {
	if p.State != messages.PipelineRunning || len(p.Nodes) == 0 {
		return false
	}
	for _, n := range p.Nodes {
		if n.State != messages.CommandRunning || n.Pid == 0 {
			return false
		}
	}
	return true
}

// groupAlive reports whether any live process (not a zombie) is in
// process group pgid.
func groupAlive(pgid int) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:]) // state ppid pgrp ...
		if len(f) > 2 && f[0] != "Z" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

// tokenAlive lists the live processes (not zombies) whose command line
// holds token.
func tokenAlive(token string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmd), token) {
			continue
		}
		if st, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			if i := strings.LastIndexByte(string(st), ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}

// noneLeft waits until no process of the test's pipeline is left.
func noneLeft(t *testing.T, token, when string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := tokenAlive(token)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v of the pipeline survived %s", left, when)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// steadyFDs counts the open fds once the count has stayed the same for a
// few reads (the goroutines of an ended run close theirs a little later).
func steadyFDs(t *testing.T) int {
	t.Helper()
	n, same := countFDs(t), 0
	for deadline := time.Now().Add(10 * time.Second); same < 3 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		if m := countFDs(t); m == n {
			same++
		} else {
			n, same = m, 0
		}
	}
	return n
}

// injectOnce makes the first message of kind that match accepts panic.
func injectOnce(t *testing.T, kind string, match func(any) bool) *atomic.Bool {
	t.Helper()
	fired := new(atomic.Bool)
	hook := func(k string, msg any) {
		if k == kind && match(msg) && fired.CompareAndSwap(false, true) {
			panic(fmt.Sprintf("injected panic in the %s actor on %T", kind, msg))
		}
	}
	panicHook.Store(&hook)
	t.Cleanup(func() { panicHook.Store(nil) })
	return fired
}

func shNode(label, script string, args ...string) messages.Node {
	return messages.Node{Label: label, Payload: messages.Payload{Native: &messages.NativePayload{Exec: "sh", Argv: append([]string{"-c", script}, args...)}}}
}

func TestPanicLeavesNothingBehind(t *testing.T) {
	is := func(v any) func(any) bool {
		want := fmt.Sprintf("%T", v)
		return func(m any) bool { return fmt.Sprintf("%T", m) == want }
	}
	cases := []struct {
		name  string
		kind  string
		match func(any) bool
		// mid: the panic comes on a message of a running run; else it
		// comes while the run is being set up.
		mid bool
	}{
		{"splitter while moving bytes", KindSplitter, is(&sampleTick{}), true},
		{"splitter half started", KindSplitter, is(&actor.Started{}), false},
		{"pipeline on a request", KindPipeline, func(m any) bool {
			r, ok := m.(*PipelineRequest)
			return ok && r.Op == OpShow
		}, true},
		{"pipeline on its launched run", KindPipeline, is(&runLaunched{}), false},
		{"pipeline half started", KindPipeline, is(&actor.Started{}), false},
	}
	for _, tc := range cases {
		for _, supervised := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s supervised=%v", tc.name, supervised), func(t *testing.T) {
				testPanicCase(t, tc.kind, tc.match, tc.mid, supervised)
			})
		}
	}
}

func testPanicCase(t *testing.T, kind string, match func(any) bool, mid, supervised bool) {
	h := startEngineHarness(t)
	wr := newTestCall[messages.WorkspaceInfo](h)
	ws, err := ask(h, &CreateWorkspace{Spec: messages.WorkspaceSpec{Label: "panics"}, Reply: wr.Reply}, wr)
	if err != nil {
		t.Fatal(err)
	}
	// A first run warms up what the process keeps open for good (the
	// spawner's namespace, the poller).
	warm := messages.PipelineSpec{Label: "warm", Nodes: []messages.Node{shNode("a", "echo hi"), shNode("b", "cat")},
		Edges: []messages.Edge{{From: "a", To: "b"}}}
	pr := newTestCall[messages.PipelineInfo](h)
	w, err := ask(h, &RunPipeline{Workspace: ws.ID, Spec: warm, Reply: pr.Reply}, pr)
	if err != nil {
		t.Fatal(err)
	}
	h.waitFor(ws.ID, w.ID, "the warm-up run", func(p messages.PipelineInfo) bool { return p.State.Ended() })
	before := steadyFDs(t)

	// Every node's command line holds token, so that a process left
	// behind is found even when the supervisor never learnt its pid.
	token := "panic-test-" + messages.NewID()
	spec := messages.PipelineSpec{
		Label: "victim",
		Nodes: []messages.Node{
			shNode("gen", "while :; do echo tick; sleep 0.05; done", token),
			// A grandchild in the node's group must go with it.
			shNode("sink", "sleep 1000 & cat >/dev/null; wait", token),
		},
		Edges:            []messages.Edge{{From: "gen", To: "sink"}},
		RestartOnFailure: supervised,
		RestartBackoffMs: 10,
		RestartMax:       3,
	}
	var fired *atomic.Bool
	if !mid {
		fired = injectOnce(t, kind, match)
	}
	pr = newTestCall[messages.PipelineInfo](h)
	run, err := ask(h, &RunPipeline{Workspace: ws.ID, Spec: spec, Reply: pr.Reply}, pr)
	if err != nil {
		t.Fatal(err)
	}
	var old messages.PipelineInfo
	if mid {
		old = h.waitFor(ws.ID, run.ID, "the first run", running)
		fired = injectOnce(t, kind, match)
		// A show is answered with the view, or with an error if it
		// panicked; either way it is answered.
		ar := newTestCall[PipelineAnswer](h)
		_, _ = ask(h, &PipelineRequest{Workspace: ws.ID, Run: run.ID, Op: OpShow, Reply: ar.Reply}, ar)
	}
	h.waitFor(ws.ID, run.ID, "the injected panic", func(messages.PipelineInfo) bool { return fired.Load() })

	var after messages.PipelineInfo
	if supervised {
		after = h.waitFor(ws.ID, run.ID, "the relaunched run", func(p messages.PipelineInfo) bool {
			return p.Restarts >= 1 && running(p)
		})
		if after.Restarts != 1 {
			t.Errorf("restarts = %d, want 1", after.Restarts)
		}
	} else {
		after = h.waitFor(ws.ID, run.ID, "the failed run", func(p messages.PipelineInfo) bool { return p.State.Ended() })
		if after.State != messages.PipelineFailed {
			t.Errorf("state = %s, want failed", after.State)
		}
		if after.Error == "" {
			t.Error("a failed run without an error")
		}
		noneLeft(t, token, "the failed run")
	}
	for _, n := range old.Nodes {
		pid := n.Pid
		deadline := time.Now().Add(30 * time.Second)
		for groupAlive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process group %d of node %s survived the panic (%+v)", pid, n.Label, old)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	if supervised {
		ar := newTestCall[PipelineAnswer](h)
		a, err := ask(h, &PipelineRequest{Workspace: ws.ID, Run: run.ID, Op: OpStop, Reply: ar.Reply}, ar)
		if err != nil {
			t.Fatal(err)
		}
		if a.Info.State != messages.PipelineStopped {
			t.Errorf("stop: state %s", a.Info.State)
		}
		noneLeft(t, token, "the stop")
		for _, n := range after.Nodes {
			deadline := time.Now().Add(30 * time.Second)
			for groupAlive(n.Pid) {
				if time.Now().After(deadline) {
					t.Fatalf("process group %d of node %s survived the stop", n.Pid, n.Label)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for countFDs(t) > before {
		if ctx.Err() != nil {
			t.Fatalf("fds: %d before the run, %d after", before, countFDs(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPanicResumes makes the engine and a workspace panic on a request:
// the request is answered with an error, and the actor goes on with its
// state and processes as they were.
func TestPanicResumes(t *testing.T) {
	cases := []struct {
		name string
		kind string
		ask  func(h *engineHarness, ws string) error
	}{
		{"workspace", KindWorkspace, func(h *engineHarness, ws string) error {
			r := newTestCall[[]messages.CommandInfo](h)
			_, err := ask(h, &ListCommands{Workspace: ws, Reply: r.Reply}, r)
			return err
		}},
		{"engine", KindEngine, func(h *engineHarness, _ string) error {
			r := newTestCall[[]WorkspaceRef](h)
			_, err := ask(h, &ListWorkspaces{Reply: r.Reply}, r)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startEngineHarness(t)
			wr := newTestCall[messages.WorkspaceInfo](h)
			ws, err := ask(h, &CreateWorkspace{Spec: messages.WorkspaceSpec{Label: "resumes"}, Reply: wr.Reply}, wr)
			if err != nil {
				t.Fatal(err)
			}
			er := newTestCall[messages.CommandInfo](h)
			c, err := ask(h, &ExecCommand{Workspace: ws.ID, Command: messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: "sleep", Argv: []string{"1000"}}}}, Reply: er.Reply}, er)
			if err != nil {
				t.Fatal(err)
			}
			fired := injectOnce(t, tc.kind, func(m any) bool {
				switch m.(type) {
				case *ListCommands, *ListWorkspaces:
					return true
				}
				return false
			})
			if err := tc.ask(h, ws.ID); err == nil || !strings.Contains(err.Error(), "injected panic") {
				t.Fatalf("the request that panicked: %v, want the panic's error", err)
			}
			if !fired.Load() {
				t.Fatal("the hook did not fire")
			}
			if err := tc.ask(h, ws.ID); err != nil {
				t.Fatalf("after the panic: %v", err)
			}
			lr := newTestCall[[]WorkspaceRef](h)
			refs, err := ask(h, &ListWorkspaces{Reply: lr.Reply}, lr)
			if err != nil || len(refs) != 1 || refs[0].ID != ws.ID {
				t.Fatalf("registry after the panic: %v %v", refs, err)
			}
			cr := newTestCall[[]messages.CommandInfo](h)
			cmds, err := ask(h, &ListCommands{Workspace: ws.ID, Reply: cr.Reply}, cr)
			if err != nil || len(cmds) != 1 || cmds[0].State != messages.CommandRunning || cmds[0].Pid != c.Pid {
				t.Fatalf("commands after the panic: %+v %v", cmds, err)
			}
			if !groupAlive(c.Pid) {
				t.Errorf("command %d died with the panic", c.Pid)
			}
		})
	}
}
