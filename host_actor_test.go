package shipote

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
)

// hostAsk tells the proxy actor to send msg to target with ctx.Request.
type hostAsk struct {
	target *actor.PID
	msg    any
}

// proxy is a host actor: it sends each request it is told to with
// ctx.Request and hands every answer that reaches its Receive to the test.
// Its Receive never blocks (the channel is buffered beyond what a test
// asks).
type proxy struct{ answers chan any }

func (p *proxy) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *hostAsk:
		ctx.Request(m.target, m.msg)
	case interface{ ReplyID() uint64 }:
		p.answers <- m
	}
}

// hostAnswer asks msg through the host actor and returns the answer, which
// must be a *protocol.Result[T].
func hostAnswer[T any](t *testing.T, system *actor.ActorSystem, host, target *actor.PID, answers chan any, msg any) (T, error) {
	t.Helper()
	system.Root.Send(host, &hostAsk{target: target, msg: msg})
	select {
	case a := <-answers:
		res, ok := a.(*protocol.Result[T])
		if !ok {
			t.Fatalf("%T answered with %T", msg, a)
		}
		return res.Val, res.Err
	case <-time.After(30 * time.Second):
		t.Fatalf("%T: no answer reached the host actor", msg)
	}
	panic("unreachable")
}

// TestHostActorGetsEveryRequestAnswered sends every kind of engine and
// workspace request from an actor with ctx.Request: each answer comes to
// the actor as a message.
func TestHostActorGetsEveryRequestAnswered(t *testing.T) {
	system := NewActorSystem(nil)
	eng, err := Start(context.Background(), system, Config{Limits: "none", Grace: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.Stop(testCtx(t)); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	answers := make(chan any, 16)
	host := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &proxy{answers: answers} }))
	t.Cleanup(func() { system.Root.Stop(host) })
	e := eng.PID()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	ws, err := hostAnswer[messages.WorkspaceInfo](t, system, host, e, answers, &protocol.CreateWorkspace{Spec: messages.WorkspaceSpec{Label: "host"}})
	must("create", err)
	refs, err := hostAnswer[[]protocol.WorkspaceRef](t, system, host, e, answers, &protocol.ListWorkspaces{})
	must("list workspaces", err)
	if len(refs) != 1 || refs[0].ID != ws.ID {
		t.Fatalf("workspaces %+v, want %s", refs, ws.ID)
	}
	got, err := hostAnswer[messages.WorkspaceInfo](t, system, host, e, answers, &protocol.GetWorkspace{Workspace: "host"})
	must("get workspace", err)
	if got.ID != ws.ID {
		t.Fatalf("workspace %s, want %s", got.ID, ws.ID)
	}
	_, err = hostAnswer[messages.WorkspaceInfo](t, system, host, e, answers, &protocol.GetWorkspace{Workspace: "nope"})
	if !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("unknown workspace: %v, want not found", err)
	}

	cmd, err := hostAnswer[messages.CommandInfo](t, system, host, e, answers, &protocol.ExecCommand{Workspace: ws.ID, Command: native("sleep", "1000")})
	must("exec", err)
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Pid, syscall.SIGKILL) })
	cmds, err := hostAnswer[[]messages.CommandInfo](t, system, host, e, answers, &protocol.ListCommands{Workspace: ws.ID})
	must("list commands", err)
	if len(cmds) != 1 || cmds[0].ID != cmd.ID {
		t.Fatalf("commands %+v", cmds)
	}
	logs, err := hostAnswer[protocol.LogHandle](t, system, host, e, answers, &protocol.OpenLogs{Workspace: ws.ID, Command: cmd.Label})
	must("open logs", err)
	if logs.Ring == nil || logs.Command.ID != cmd.ID {
		t.Fatalf("log handle %+v", logs)
	}
	for _, op := range []protocol.CommandOp{protocol.CmdSignal, protocol.CmdStop, protocol.CmdStart, protocol.CmdRestart} {
		info, err := hostAnswer[messages.CommandInfo](t, system, host, e, answers, &protocol.ControlCommand{Workspace: ws.ID, Command: cmd.ID, Op: op, Signal: syscall.SIGCONT})
		must(op.String(), err)
		if info.ID != cmd.ID {
			t.Fatalf("%s answered for %s", op, info.ID)
		}
		if info.Pid > 0 {
			pid := info.Pid
			t.Cleanup(func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
		}
	}
	stopped, err := hostAnswer[[]messages.CommandInfo](t, system, host, e, answers, &protocol.StopCommands{Workspace: ws.ID})
	must("stop commands", err)
	if len(stopped) != 1 || !stopped[0].State.Ended() {
		t.Fatalf("stopped %+v", stopped)
	}
	_, err = hostAnswer[messages.CommandInfo](t, system, host, e, answers, &protocol.ControlCommand{Workspace: ws.ID, Command: cmd.ID, Op: protocol.CmdRemove})
	must("rm", err)

	spec := messages.PipelineSpec{Label: "p", Nodes: []messages.Node{node("gen", "sleep", "1000"), node("sink", "cat")}, Edges: []messages.Edge{{From: "gen", To: "sink"}}}
	run, err := hostAnswer[messages.PipelineInfo](t, system, host, e, answers, &protocol.RunPipeline{Workspace: ws.ID, Spec: spec})
	must("run pipeline", err)
	runs, err := hostAnswer[[]messages.PipelineInfo](t, system, host, e, answers, &protocol.ListPipelines{Workspace: ws.ID})
	must("list pipelines", err)
	if len(runs) != 1 || runs[0].ID != run.ID {
		t.Fatalf("pipelines %+v", runs)
	}
	for _, op := range []protocol.PipelineOp{protocol.OpShow, protocol.OpTap, protocol.OpSignal, protocol.OpRestart, protocol.OpStop} {
		a, err := hostAnswer[protocol.PipelineAnswer](t, system, host, e, answers, &protocol.PipelineRequest{Workspace: ws.ID, Run: run.ID, Op: op, Node: "gen", Signal: syscall.SIGCONT})
		must("pipeline op", err)
		if a.Info.ID != run.ID {
			t.Fatalf("op %d answered for %s", op, a.Info.ID)
		}
		if a.Tap != nil {
			a.Tap.Close()
		}
	}
	_, err = hostAnswer[[]messages.Sample](t, system, host, e, answers, &protocol.GetStats{Workspace: ws.ID})
	must("stats", err)

	saved, err := hostAnswer[protocol.SavedPipeline](t, system, host, e, answers, &protocol.SavePipeline{Name: "saved", Spec: spec})
	must("save pipeline", err)
	if saved.Name != "saved" {
		t.Fatalf("saved %+v", saved)
	}
	list, err := hostAnswer[[]protocol.SavedPipeline](t, system, host, e, answers, &protocol.GetSavedPipelines{})
	must("saved pipelines", err)
	if len(list) != 1 {
		t.Fatalf("saved pipelines %+v", list)
	}
	run2, err := hostAnswer[messages.PipelineInfo](t, system, host, e, answers, &protocol.StartSavedPipeline{Name: "saved", Workspace: ws.ID})
	must("start saved pipeline", err)
	if !strings.HasPrefix(run2.Label, "p") {
		t.Fatalf("started %+v", run2)
	}
	_, err = hostAnswer[struct{}](t, system, host, e, answers, &protocol.DeleteSavedPipeline{Name: "saved"})
	must("delete saved pipeline", err)

	removed, err := hostAnswer[messages.WorkspaceInfo](t, system, host, e, answers, &protocol.RemoveWorkspace{Workspace: ws.ID, Grace: time.Second})
	must("remove", err)
	if removed.ID != ws.ID {
		t.Fatalf("removed %s", removed.ID)
	}
	pids, err := hostAnswer[[]*actor.PID](t, system, host, e, answers, &protocol.BeginShutdown{})
	must("begin shutdown", err)
	if len(pids) != 0 {
		t.Fatalf("live workspaces after removal: %v", pids)
	}
	_, err = hostAnswer[messages.WorkspaceInfo](t, system, host, e, answers, &protocol.CreateWorkspace{Spec: messages.WorkspaceSpec{Label: "late"}})
	if !errors.Is(err, messages.ErrStopped) {
		t.Fatalf("create after shutdown began: %v, want ErrStopped", err)
	}
}

// TestHostActorRequestToAGoneActorIsFailed: a request sent with
// ctx.Request to an actor that is gone is answered with not found.
func TestHostActorRequestToAGoneActorIsFailed(t *testing.T) {
	eng := startEngine(t, Config{})
	system := eng.system
	answers := make(chan any, 4)
	host := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &proxy{answers: answers} }))
	t.Cleanup(func() { system.Root.Stop(host) })
	gone := system.Root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	if err := system.Root.StopFuture(gone).Wait(); err != nil {
		t.Fatal(err)
	}
	_, err := hostAnswer[[]messages.CommandInfo](t, system, host, gone, answers, &protocol.ListCommands{Workspace: "x"})
	if !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("request to a gone actor: %v, want not found", err)
	}
}
