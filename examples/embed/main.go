// Command embed shows shipote embedded in a Go program: it starts the
// engine in its own actor system, creates a workspace, runs a supervised
// command that fails and is restarted with a doubling backoff until it
// gives up, and prints every lifecycle event and the command's output.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/messages"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	system := shipote.NewActorSystem(nil)
	eng, err := shipote.Start(ctx, system, shipote.Config{Limits: "auto"})
	if err != nil {
		return err
	}
	defer eng.Stop(context.Background())
	fmt.Printf("engine started (limits backend: %s)\n", eng.LimitsBackend())

	events := eng.Events(64)
	defer events.Cancel()

	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{
		Label:       "demo",
		Soma:        messages.Soma{MemoryMaxBytes: 256 << 20, PidsMax: 32},
		Permissions: messages.Permissions{Env: map[string]string{"GREETING": "hello from a workspace"}},
		TTLMs:       60_000,
	})
	if err != nil {
		return err
	}
	fmt.Printf("workspace %s (%s) created\n", ws.Spec.Label, ws.ID)

	cmd, err := eng.Exec(ctx, ws.ID, messages.CommandRef{
		Label: "flaky",
		Payload: messages.Payload{Native: &messages.NativePayload{
			Exec: "sh",
			// $$ would be the pid in the engine's PID namespace; /proc/self
			// gives the host's, the one the engine reports.
			Argv: []string{"-c", `read -r pid rest </proc/self/stat; echo "$GREETING (pid $pid)"; sleep 0.2; echo "failing" >&2; exit 3`},
		}},
		Supervision: messages.Supervision{Restart: &messages.RestartPolicy{
			On: messages.RestartOnFailure, BackoffMs: 100, MaxBackoffMs: 1000, Max: 3,
		}},
	})
	if err != nil {
		return err
	}
	fmt.Printf("command %s (%s) started, pid %d\n", cmd.Label, cmd.ID, cmd.Pid)

	for ev := range events.C {
		fmt.Printf("%s  %-9s %s %s\n", ev.Time.Format("15:04:05.000"), ev.Kind, ev.Command, ev.Message)
		if ev.Kind == messages.EventGaveUp {
			break
		}
	}
	lines, err := eng.Logs(ctx, ws.ID, "flaky", shipote.LogQuery{})
	if err != nil {
		return err
	}
	fmt.Println("--- output of flaky ---")
	for _, l := range lines {
		fmt.Printf("%s [%s] %s\n", l.Time.Format("15:04:05.000"), l.Stream, l.Line)
	}
	info, err := eng.RemoveWorkspace(ctx, ws.ID, time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("workspace %s removed\n", info.Spec.Label)
	return nil
}
