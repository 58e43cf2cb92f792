package server_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/messages"
)

func TestCommandControlRoutes(t *testing.T) {
	d := startDaemon(t)
	c, ctx := d.c, testCtx(t)
	if _, err := c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "ctl"}); err != nil {
		t.Fatal(err)
	}
	ref := native("sleep", "600")
	ref.Label = "nap"
	ci, err := c.Exec(ctx, "ctl", ref)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "nap to run", func() bool {
		got, err := c.Command(ctx, "ctl", "nap")
		return err == nil && got.Alive() && got.Pid > 0
	})

	// A running command cannot be started or forgotten.
	if _, err := c.StartCommand(ctx, "ctl", "nap"); !errors.Is(err, messages.ErrConflict) {
		t.Errorf("start of a running command: %v, want conflict", err)
	}
	if _, err := c.RemoveCommand(ctx, "ctl", "nap"); !errors.Is(err, messages.ErrConflict) {
		t.Errorf("rm of a running command: %v, want conflict", err)
	}

	stopped, err := c.StopCommand(ctx, "ctl", "nap")
	if err != nil {
		t.Fatal(err)
	}
	if stopped.State != messages.CommandStopped || stopped.StopReason != messages.StopUser ||
		!strings.HasPrefix(stopped.StopResult, "stopped by SIGTERM after ") {
		t.Errorf("stopped = state %s reason %q result %q", stopped.State, stopped.StopReason, stopped.StopResult)
	}
	if _, err := c.StopCommand(ctx, "ctl", "nap"); !errors.Is(err, messages.ErrConflict) {
		t.Errorf("second stop: %v, want conflict", err)
	}
	if _, err := c.SignalCommand(ctx, "ctl", "nap", "HUP"); !errors.Is(err, messages.ErrConflict) {
		t.Errorf("signal of a stopped command: %v, want conflict", err)
	}

	started, err := c.StartCommand(ctx, "ctl", "nap")
	if err != nil {
		t.Fatal(err)
	}
	if started.ID != ci.ID || started.Pid <= 0 || started.Pid == stopped.Pid && stopped.Pid != 0 {
		t.Errorf("started = id %s pid %d, want id %s and a new pid", started.ID, started.Pid, ci.ID)
	}
	restarted, err := c.RestartCommand(ctx, "ctl", ci.ID)
	if err != nil {
		t.Fatal(err)
	}
	if restarted.ID != ci.ID || restarted.Pid <= 0 || restarted.Pid == started.Pid {
		t.Errorf("restarted = id %s pid %d, want id %s and a pid other than %d", restarted.ID, restarted.Pid, ci.ID, started.Pid)
	}

	// Bad signals name the field.
	var ae *api.Error
	if _, err := c.SignalCommand(ctx, "ctl", "nap", "NOPE"); !errors.As(err, &ae) || ae.Status != 400 || ae.Field != "signal" {
		t.Errorf("bad signal: %v, want 400 on field signal", err)
	}
	resp, body := d.raw(t, http.MethodPost, "/v1/workspaces/ctl/commands/nap/signal", "")
	if resp.StatusCode != 400 || !strings.Contains(body, `"field":"signal"`) || !strings.Contains(body, "required") {
		t.Errorf("signal without one = %d %s", resp.StatusCode, body)
	}
	resp, body = d.raw(t, http.MethodPost, "/v1/workspaces/ctl/commands/nap/signal?signal=TERM", `{"signal":"HUP"}`)
	if resp.StatusCode != 400 || !strings.Contains(body, "twice") {
		t.Errorf("two signals = %d %s", resp.StatusCode, body)
	}
	// The signal may come in the query; KILL ends the one-shot command.
	resp, body = d.raw(t, http.MethodPost, "/v1/workspaces/ctl/commands/nap/signal?signal=9", "")
	if resp.StatusCode != 200 {
		t.Fatalf("signal 9 = %d %s", resp.StatusCode, body)
	}
	eventually(t, 10*time.Second, "nap to die of SIGKILL", func() bool {
		got, err := c.Command(ctx, "ctl", "nap")
		return err == nil && got.State.Ended() && got.Signal == "SIGKILL"
	})

	if _, err := c.RemoveCommand(ctx, "ctl", "nap"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Command(ctx, "ctl", "nap"); !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("command after rm: %v, want not found", err)
	}
	for name, call := range map[string]func() error{
		"stop":    func() error { _, err := c.StopCommand(ctx, "ctl", "nap"); return err },
		"start":   func() error { _, err := c.StartCommand(ctx, "ctl", "nap"); return err },
		"restart": func() error { _, err := c.RestartCommand(ctx, "ctl", "nap"); return err },
		"signal":  func() error { _, err := c.SignalCommand(ctx, "ctl", "nap", "TERM"); return err },
		"rm":      func() error { _, err := c.RemoveCommand(ctx, "ctl", "nap"); return err },
		"ws stop": func() error { _, err := c.StopCommands(ctx, "nowhere"); return err },
	} {
		if err := call(); !errors.Is(err, messages.ErrNotFound) {
			t.Errorf("%s of an unknown ref: %v, want not found", name, err)
		}
	}

	// Stop every command of the workspace.
	for _, l := range []string{"a", "b"} {
		r := native("sleep", "600")
		r.Label = l
		if _, err := c.Exec(ctx, "ctl", r); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.StopCommands(ctx, "ctl")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("stop all = %d commands, want 2", len(all))
	}
	for _, ci := range all {
		if ci.State != messages.CommandStopped {
			t.Errorf("%s after stop all: %s", ci.Label, ci.State)
		}
	}
}

func TestPipelineControlRoutes(t *testing.T) {
	d := startDaemon(t)
	c, ctx := d.c, testCtx(t)
	if _, err := c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "pw"}); err != nil {
		t.Fatal(err)
	}
	run, err := c.RunPipeline(ctx, "pw", pipelineSpec("ticker"), false)
	if err != nil {
		t.Fatal(err)
	}
	pids := func(p messages.PipelineInfo) map[string]int {
		out := map[string]int{}
		for _, n := range p.Nodes {
			out[n.Label] = n.Pid
		}
		return out
	}
	var before map[string]int
	eventually(t, 10*time.Second, "both nodes to run", func() bool {
		p, err := c.Pipeline(ctx, run.ID)
		before = pids(p)
		return err == nil && before["src"] > 0 && before["sink"] > 0
	})
	again, err := c.RestartPipeline(ctx, "ticker")
	if err != nil {
		t.Fatal(err)
	}
	after := pids(again)
	if again.ID != run.ID || again.Restarts != 1 || after["src"] <= 0 || after["src"] == before["src"] || after["sink"] == before["sink"] {
		t.Errorf("restarted = id %s restarts %d pids %v (before %v)", again.ID, again.Restarts, after, before)
	}

	if _, err := c.SignalPipeline(ctx, run.ID, "nope", "TERM"); !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("signal to an unknown node: %v, want not found", err)
	}
	var ae *api.Error
	if _, err := c.SignalPipeline(ctx, run.ID, "", "BOGUS"); !errors.As(err, &ae) || ae.Field != "signal" {
		t.Errorf("bad signal: %v, want a signal field error", err)
	}
	// KILL of the sink makes the run fail (it is not supervised).
	if _, err := c.SignalPipeline(ctx, run.ID, "sink", "KILL"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the run to end", func() bool {
		p, err := c.Pipeline(ctx, run.ID)
		return err == nil && p.State.Ended()
	})
	p, err := c.Pipeline(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range p.Nodes {
		if n.Label == "sink" && n.Signal != "SIGKILL" {
			t.Errorf("sink ended with %q, want SIGKILL", n.Signal)
		}
	}
	if _, err := c.RestartPipeline(ctx, run.ID); !errors.Is(err, messages.ErrConflict) {
		t.Errorf("restart of an ended run: %v, want conflict", err)
	}
	if _, err := c.SignalPipeline(ctx, run.ID, "", "TERM"); !errors.Is(err, messages.ErrConflict) {
		t.Errorf("signal to an ended run: %v, want conflict", err)
	}
	if _, err := c.RestartPipeline(ctx, "nothing"); !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("restart of an unknown run: %v, want not found", err)
	}
}
