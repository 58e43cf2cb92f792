// Command embed-actor shows an application's own actor driving shipote
// through the protocol alone: it creates a workspace, runs a command,
// reads its output, runs a pipeline and removes the workspace, each step a
// ctx.Request to the engine's PID whose answer (a *protocol.Result) comes
// back as a message in its Receive. The actor never blocks; it polls for
// the ends of the command and the pipeline with a receive timeout.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/internal/logring"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "embed-actor:", err)
		os.Exit(1)
	}
}

// pollEvery is how long the host waits between two looks at a command or
// a pipeline that has not ended.
const pollEvery = 20 * time.Millisecond

func run(out io.Writer) error {
	system := shipote.NewActorSystem(nil)
	eng, err := shipote.Start(context.Background(), system, shipote.Config{Limits: "none"})
	if err != nil {
		return err
	}
	defer func() { _ = eng.Stop(context.Background()) }()

	done := make(chan error, 1)
	host := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &host{engine: eng.PID(), out: out, done: done}
	}))
	defer system.Root.Stop(host)
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		return fmt.Errorf("the host actor did not finish in a minute")
	}
}

// host is the application's actor. Its phase says which answer it waits
// for; answers of the same type (the workspace's creation and its removal)
// are told apart by the phase.
type host struct {
	engine *actor.PID
	out    io.Writer
	done   chan<- error
	phase  string
	ws     messages.WorkspaceInfo
	run    messages.PipelineInfo
}

func (h *host) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		h.phase = "create"
		ctx.Request(h.engine, &protocol.CreateWorkspace{Spec: messages.WorkspaceSpec{Label: "host-demo"}})

	case *protocol.Result[messages.WorkspaceInfo]:
		if m.Err != nil {
			h.finish(fmt.Errorf("%s workspace: %w", h.phase, m.Err))
			return
		}
		if h.phase == "remove" {
			fmt.Fprintf(h.out, "workspace %s removed\n", m.Val.Spec.Label)
			h.finish(nil)
			return
		}
		h.ws = m.Val
		fmt.Fprintf(h.out, "workspace %s created\n", h.ws.Spec.Label)
		h.phase = "exec"
		ctx.Request(h.engine, &protocol.ExecCommand{Workspace: h.ws.ID, Command: messages.CommandRef{
			Label:   "hello",
			Payload: messages.Payload{Native: &messages.NativePayload{Exec: "echo", Argv: []string{"hello from a host actor"}}},
		}})

	case *protocol.Result[messages.CommandInfo]:
		if m.Err != nil {
			h.finish(fmt.Errorf("exec: %w", m.Err))
			return
		}
		fmt.Fprintf(h.out, "command %s started\n", m.Val.Label)
		h.phase = "wait-command"
		ctx.SetReceiveTimeout(pollEvery)

	case *protocol.Result[[]messages.CommandInfo]:
		if m.Err != nil {
			h.finish(fmt.Errorf("list commands: %w", m.Err))
			return
		}
		if len(m.Val) != 1 || !m.Val[0].State.Ended() {
			ctx.SetReceiveTimeout(pollEvery)
			return
		}
		fmt.Fprintf(h.out, "command %s %s\n", m.Val[0].Label, m.Val[0].State)
		h.phase = "logs"
		ctx.Request(h.engine, &protocol.OpenLogs{Workspace: h.ws.ID, Command: "hello"})

	case *protocol.Result[protocol.LogHandle]:
		if m.Err != nil {
			h.finish(fmt.Errorf("open logs: %w", m.Err))
			return
		}
		lines, _ := m.Val.Ring.Read(logring.Query{}) // memory only
		for _, l := range lines {
			fmt.Fprintf(h.out, "log [%s] %s\n", l.Stream, l.Line)
		}
		h.phase = "pipeline"
		ctx.Request(h.engine, &protocol.RunPipeline{Workspace: h.ws.ID, Spec: messages.PipelineSpec{
			Label: "upper",
			Nodes: []messages.Node{
				{Label: "gen", Payload: messages.Payload{Native: &messages.NativePayload{Exec: "printf", Argv: []string{`b\na\n`}}}},
				{Label: "sort", Payload: messages.Payload{Native: &messages.NativePayload{Exec: "sort"}}},
			},
			Edges: []messages.Edge{{From: "gen", To: "sort"}},
		}})

	case *protocol.Result[messages.PipelineInfo]:
		if m.Err != nil {
			h.finish(fmt.Errorf("run pipeline: %w", m.Err))
			return
		}
		h.run = m.Val
		fmt.Fprintf(h.out, "pipeline %s started\n", h.run.Label)
		h.phase = "wait-pipeline"
		ctx.SetReceiveTimeout(pollEvery)

	case *protocol.Result[protocol.PipelineAnswer]:
		if m.Err != nil {
			h.finish(fmt.Errorf("show pipeline: %w", m.Err))
			return
		}
		if !m.Val.Info.State.Ended() {
			ctx.SetReceiveTimeout(pollEvery)
			return
		}
		fmt.Fprintf(h.out, "pipeline %s %s\n", m.Val.Info.Label, m.Val.Info.State)
		h.phase = "remove"
		ctx.Request(h.engine, &protocol.RemoveWorkspace{Workspace: h.ws.ID, Grace: time.Second})

	case *actor.ReceiveTimeout:
		ctx.CancelReceiveTimeout()
		switch h.phase {
		case "wait-command":
			ctx.Request(h.engine, &protocol.ListCommands{Workspace: h.ws.ID})
		case "wait-pipeline":
			ctx.Request(h.engine, &protocol.PipelineRequest{Workspace: h.ws.ID, Run: h.run.ID, Op: protocol.OpShow})
		}
	}
}

// finish reports the outcome to main.
func (h *host) finish(err error) {
	select {
	case h.done <- err:
	default:
	}
}
