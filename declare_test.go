// This file tests the declarative command fields end to end, with real
// processes: depends_on ordering (start times prove it) and the reverse
// order of a stop, a cycle refused, readiness from a ready probe, a
// failing health probe restarting its command, and a per-second schedule
// firing, persisted and restored.

package shipote

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

// fileProbe is an exec probe that passes once path exists.
func fileProbe(path string) *messages.Probe {
	return &messages.Probe{Exec: []string{"test", "-f", path}, IntervalMs: 50, TimeoutMs: 2000, FailureThreshold: 2}
}

func labelled(ref messages.CommandRef, label string, deps ...string) messages.CommandRef {
	ref.Label, ref.DependsOn = label, deps
	return ref
}

func TestDependsOnOrder(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	sub := eng.Events(1024)
	defer sub.Cancel()
	dir := t.TempDir()
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "deps"}); err != nil {
		t.Fatal(err)
	}
	// web needs db ready and migrate done (a one_shot dependency must have
	// exited with success); migrate needs db ready; db is ready once its
	// file exists. They are declared dependents first.
	web := labelled(native("sleep", "600"), "web", "db", "migrate")
	web.Supervision.Restart = &messages.RestartPolicy{}
	info, err := eng.Exec(ctx, "deps", web)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != messages.CommandStarting || info.Readiness != messages.ReadyWaiting ||
		!slices.Equal(info.WaitingOn, []string{"db", "migrate"}) {
		t.Fatalf("web before its dependencies exist: %s %s %v", info.State, info.Readiness, info.WaitingOn)
	}
	migrate := labelled(native("sh", "-c", "sleep 0.2"), "migrate", "db")
	if _, err := eng.Exec(ctx, "deps", migrate); err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(dir, "db.ready")
	db := labelled(native("sh", "-c", "sleep 0.3; touch "+ready+"; exec sleep 600"), "db")
	db.Ready = fileProbe(ready)
	db.Supervision.Restart = &messages.RestartPolicy{} // a service: ready, not exited, lets dependents start
	if _, err := eng.Exec(ctx, "deps", db); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "web to run", func() bool {
		c, err := eng.Command(ctx, "deps", "web")
		return err == nil && c.State == messages.CommandRunning
	})
	get := func(label string) messages.CommandInfo {
		c, err := eng.Command(ctx, "deps", label)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cdb, cmig, cweb := get("db"), get("migrate"), get("web")
	if cmig.State != messages.CommandExited || cdb.State != messages.CommandReady || cdb.Readiness != messages.ReadyOK ||
		cweb.State != messages.CommandRunning || cweb.Readiness != messages.ReadyOK {
		t.Fatalf("db %s/%s, migrate %s, web %s/%s", cdb.State, cdb.Readiness, cmig.State, cweb.State, cweb.Readiness)
	}
	// The processes' own start times prove the order.
	if !cdb.StartedAt.Before(cmig.StartedAt) {
		t.Errorf("migrate started at %v, before db (%v)", cmig.StartedAt, cdb.StartedAt)
	}
	if cweb.StartedAt.Before(cmig.ExitedAt) {
		t.Errorf("web started at %v, before migrate exited (%v)", cweb.StartedAt, cmig.ExitedAt)
	}
	// And the events: db ready before migrate started.
	var order []string
	deadline := time.After(10 * time.Second)
	for len(order) < 3 {
		select {
		case ev := <-sub.C:
			switch {
			case ev.Kind == messages.EventReady && ev.Command == "db":
				order = append(order, "db ready")
			case ev.Kind == messages.EventStarted && ev.Command == "migrate":
				order = append(order, "migrate started")
			case ev.Kind == messages.EventStarted && ev.Command == "web":
				order = append(order, "web started")
			}
		case <-deadline:
			t.Fatalf("events so far: %v", order)
		}
	}
	if want := []string{"db ready", "migrate started", "web started"}; !slices.Equal(order, want) {
		t.Errorf("events in order %v, want %v", order, want)
	}
	// A stop goes in reverse order: web (which needs db) ends before db is
	// signalled.
	stopped, err := eng.StopCommands(ctx, "deps")
	if err != nil {
		t.Fatal(err)
	}
	if len(stopped) != 2 {
		t.Fatalf("stopped %d commands, want web and db", len(stopped))
	}
	var ends []string
	for len(ends) < 2 {
		select {
		case ev := <-sub.C:
			if ev.Kind == messages.EventStopped {
				ends = append(ends, ev.Command)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("stopped events so far: %v", ends)
		}
	}
	if !slices.Equal(ends, []string{"web", "db"}) {
		t.Errorf("stopped in order %v, want web then db", ends)
	}
	if cdb, cweb = get("db"), get("web"); !cweb.ExitedAt.Before(cdb.ExitedAt) {
		t.Errorf("web exited at %v, not before db (%v)", cweb.ExitedAt, cdb.ExitedAt)
	}
}

func TestDependsOnCycleRefused(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "cyc"}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []messages.CommandRef{
		labelled(native("sleep", "600"), "a", "b"),
		labelled(native("sleep", "600"), "b", "c"),
	} {
		if _, err := eng.Exec(ctx, "cyc", ref); err != nil {
			t.Fatal(err)
		}
	}
	_, err := eng.Exec(ctx, "cyc", labelled(native("sleep", "600"), "c", "a"))
	var fe *messages.FieldError
	if !errors.As(err, &fe) || fe.Field != "depends_on" || !strings.Contains(fe.Message, "dependency cycle a → b → c → a") {
		t.Fatalf("a cycle: %v", err)
	}
	if _, err := eng.Command(ctx, "cyc", "c"); !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("the refused command exists: %v", err)
	}
	if _, err := eng.StopCommands(ctx, "cyc"); err != nil {
		t.Fatal(err)
	}
}

func TestReadyProbe(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "rdy"}); err != nil {
		t.Fatal(err)
	}
	gate := filepath.Join(t.TempDir(), "open")
	ref := labelled(native("sleep", "600"), "svc")
	ref.Ready = fileProbe(gate)
	c, err := eng.Exec(ctx, "rdy", ref)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != messages.CommandStarting || c.Readiness != messages.ReadyStarting || c.Pid <= 0 || !c.Alive() {
		t.Fatalf("before its probe passes: %s %s pid %d", c.State, c.Readiness, c.Pid)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "svc to be ready", func() bool {
		c, err := eng.Command(ctx, "rdy", "svc")
		return err == nil && c.State == messages.CommandReady && c.Readiness == messages.ReadyOK
	})
	// Without a ready probe, a command is ready once it runs, and its
	// state says running.
	plain, err := eng.Exec(ctx, "rdy", labelled(native("sleep", "600"), "plain"))
	if err != nil {
		t.Fatal(err)
	}
	if plain.State != messages.CommandRunning || plain.Readiness != messages.ReadyOK {
		t.Errorf("a command without a ready probe: %s %q", plain.State, plain.Readiness)
	}
	if _, err := eng.StopCommands(ctx, "rdy"); err != nil {
		t.Fatal(err)
	}
	if c, _ := eng.Command(ctx, "rdy", "svc"); c.State != messages.CommandStopped || c.Readiness != "" {
		t.Errorf("a stopped command: %s, readiness %q", c.State, c.Readiness)
	}
}

func TestHealthProbeFailureRestarts(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	sub := eng.Events(1024)
	defer sub.Cancel()
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "hp"}); err != nil {
		t.Fatal(err)
	}
	healthy := filepath.Join(t.TempDir(), "healthy")
	ref := labelled(native("sleep", "600"), "svc")
	ref.Health = fileProbe(healthy)
	ref.Supervision.Restart = &messages.RestartPolicy{BackoffMs: 50, MaxBackoffMs: 100}
	first, err := eng.Exec(ctx, "hp", ref)
	if err != nil {
		t.Fatal(err)
	}
	var unhealthy, restarted messages.Event
	deadline := time.After(30 * time.Second)
	for restarted.Kind == "" {
		select {
		case ev := <-sub.C:
			switch {
			case ev.Command != "svc":
			case ev.Kind == messages.EventUnhealthy && unhealthy.Kind == "":
				unhealthy = ev
			case ev.Kind == messages.EventRestarted && unhealthy.Kind != "":
				restarted = ev
			}
		case <-deadline:
			t.Fatalf("no unhealthy then restarted events (unhealthy: %+v)", unhealthy)
		}
	}
	if !strings.Contains(unhealthy.Message, "2 failed health probes") || !strings.Contains(restarted.Message, "unhealthy") {
		t.Errorf("events: %q / %q", unhealthy.Message, restarted.Message)
	}
	if alive(first.Pid) {
		t.Errorf("the unhealthy run %d still runs", first.Pid)
	}
	// Healthy now: it stays up.
	if err := os.WriteFile(healthy, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "svc to run healthy", func() bool {
		c, err := eng.Command(ctx, "hp", "svc")
		return err == nil && c.State == messages.CommandRunning && c.Readiness == messages.ReadyOK && c.Restarts >= 1
	})
	if _, err := eng.StopCommands(ctx, "hp"); err != nil {
		t.Fatal(err)
	}
}

// TestScheduleFiresEverySecond runs a per-second schedule in real time,
// checks that its declaration is durable as soon as it is acknowledged,
// and that a new engine on the same state restores it scheduled.
func TestScheduleFiresEverySecond(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	eng := startEngine(t, Config{StatePath: state})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "cron", Permissions: messages.Permissions{Workdir: dir}}); err != nil {
		t.Fatal(err)
	}
	ref := labelled(native("sh", "-c", "echo run >> runs"), "tick")
	ref.Schedule, ref.Concurrency = "@every 1s", messages.ConcurrencyForbid
	c, err := eng.Exec(ctx, "cron", ref)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != messages.CommandScheduled || c.NextRunAt.IsZero() || c.Pid != 0 {
		t.Fatalf("a scheduled command before its time: %s next %v pid %d", c.State, c.NextRunAt, c.Pid)
	}
	st := readState(t, state)
	if len(st.LiveCommands) != 1 || st.LiveCommands[0].ID != c.ID || st.LiveCommands[0].Spec.Schedule != "@every 1s" ||
		st.LiveCommands[0].Spec.Concurrency != messages.ConcurrencyForbid {
		t.Fatalf("the schedule is not durable: %+v", st.LiveCommands)
	}
	runs := filepath.Join(dir, "runs")
	eventually(t, 30*time.Second, "two scheduled runs", func() bool {
		b, _ := os.ReadFile(runs)
		return strings.Count(string(b), "run\n") >= 2
	})
	eventually(t, 30*time.Second, "tick to wait again", func() bool {
		c, err = eng.Command(ctx, "cron", "tick")
		return err == nil && c.State == messages.CommandScheduled && c.ExitCode != nil
	})
	if *c.ExitCode != 0 || c.NextRunAt.IsZero() {
		t.Errorf("between runs: exit %d next %v", *c.ExitCode, c.NextRunAt)
	}
	if err := eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eng2 := startEngine(t, Config{StatePath: state})
	c2, err := eng2.Command(ctx, "cron", "tick")
	if err != nil {
		t.Fatal(err)
	}
	if c2.ID != c.ID || c2.Spec.Schedule != "@every 1s" || c2.NextRunAt.IsZero() {
		t.Fatalf("restored: %+v", c2)
	}
	// Stopping it ends the schedule; it leaves the state file.
	stopped, err := eng2.StopCommand(ctx, "cron", "tick")
	if err != nil {
		t.Fatal(err)
	}
	if stopped.State != messages.CommandStopped || !stopped.NextRunAt.IsZero() {
		t.Errorf("stopped: %s next %v", stopped.State, stopped.NextRunAt)
	}
	if st := readState(t, state); len(st.LiveCommands) != 0 {
		t.Errorf("a stopped schedule stays declared: %+v", st.LiveCommands)
	}
}

// TestScheduleConcurrency runs a per-second schedule whose runs last
// longer than a second under each concurrency policy.
func TestScheduleConcurrency(t *testing.T) {
	tests := []struct {
		c    messages.Concurrency
		kind messages.EventKind // what shows the policy at work
		want string             // in its message, or its command's label
	}{
		{messages.ConcurrencyForbid, messages.EventSkipped, "concurrency: forbid"},
		{messages.ConcurrencyReplace, messages.EventStarted, "replacing the last run"},
		{messages.ConcurrencyAllow, messages.EventStarted, "slow-run"},
	}
	for _, tt := range tests {
		t.Run(string(tt.c), func(t *testing.T) {
			eng := startEngine(t, Config{})
			ctx := testCtx(t)
			sub := eng.Events(1024)
			defer sub.Cancel()
			if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "cc"}); err != nil {
				t.Fatal(err)
			}
			ref := labelled(native("sleep", "30"), "slow")
			ref.Schedule, ref.Concurrency, ref.StopTimeoutMs = "@every 1s", tt.c, 1000
			if _, err := eng.Exec(ctx, "cc", ref); err != nil {
				t.Fatal(err)
			}
			deadline := time.After(30 * time.Second)
			for {
				select {
				case ev := <-sub.C:
					if ev.Kind == tt.kind && (strings.Contains(ev.Message, tt.want) || ev.Command == tt.want) {
						if _, err := eng.StopCommands(ctx, "cc"); err != nil {
							t.Fatal(err)
						}
						return
					}
				case <-deadline:
					t.Fatalf("no %s event with %q", tt.kind, tt.want)
				}
			}
		})
	}
}

// TestHealthKillOfCleanExitRestarts checks that a run killed for failing
// its health probe counts as failed even when it exits 0 on its stop
// signal, as most servers do: an on-failure policy restarts it.
func TestHealthKillOfCleanExitRestarts(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	sub := eng.Events(1024)
	defer sub.Cancel()
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "hc"}); err != nil {
		t.Fatal(err)
	}
	ref := labelled(native("/bin/sh", "-c", `trap "exit 0" TERM; sleep 600 & wait`), "svc")
	ref.Health = fileProbe(filepath.Join(t.TempDir(), "never"))
	ref.Supervision.Restart = &messages.RestartPolicy{On: messages.RestartOnFailure, BackoffMs: 50, MaxBackoffMs: 100}
	if _, err := eng.Exec(ctx, "hc", ref); err != nil {
		t.Fatal(err)
	}
	unhealthy := false
	deadline := time.After(60 * time.Second)
	for {
		select {
		case ev := <-sub.C:
			switch {
			case ev.Command != "svc":
			case ev.Kind == messages.EventUnhealthy:
				unhealthy = true
			case ev.Kind == messages.EventGaveUp:
				if unhealthy {
					t.Fatalf("the unhealthy run ended the command: %+v", ev)
				}
			case ev.Kind == messages.EventRestarted && unhealthy:
				if _, err := eng.StopCommands(ctx, "hc"); err != nil {
					t.Fatal(err)
				}
				return
			}
		case <-deadline:
			t.Fatalf("no restart after the health kill (unhealthy event seen: %v)", unhealthy)
		}
	}
}

// TestDependsOnInstances checks that depends_on naming a declaration with
// instances waits for every copy, and that a cycle through the copies is
// refused.
func TestDependsOnInstances(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "inst"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gates := []string{filepath.Join(dir, "0"), filepath.Join(dir, "1")}
	for i, gate := range gates {
		ref := labelled(native("sleep", "600"), messages.InstanceLabel("worker", i))
		ref.InstanceOf = "worker"
		ref.Ready = fileProbe(gate)
		// Supervised: a one_shot dependency is met only once it exited.
		ref.Supervision.Restart = &messages.RestartPolicy{BackoffMs: 50}
		if _, err := eng.Exec(ctx, "inst", ref); err != nil {
			t.Fatal(err)
		}
	}
	c, err := eng.Exec(ctx, "inst", labelled(native("sleep", "600"), "client", "worker"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Alive() || len(c.WaitingOn) != 1 || c.WaitingOn[0] != "worker" {
		t.Fatalf("client before any worker is ready: %s waiting on %v", c.State, c.WaitingOn)
	}
	cyc := labelled(native("sleep", "600"), "worker-2", "client")
	cyc.InstanceOf = "worker"
	var fe *messages.FieldError
	if _, err := eng.Exec(ctx, "inst", cyc); !errors.As(err, &fe) || !strings.Contains(fe.Message, "dependency cycle") {
		t.Fatalf("a cycle through the copies: %v", err)
	}
	if err := os.WriteFile(gates[0], nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "worker-0 to be ready", func() bool {
		w, err := eng.Command(ctx, "inst", "worker-0")
		return err == nil && w.State == messages.CommandReady && w.Readiness == messages.ReadyOK
	})
	if c, err := eng.Command(ctx, "inst", "client"); err != nil || c.Alive() {
		t.Fatalf("client with one of two workers ready: %+v, %v", c, err)
	}
	if err := os.WriteFile(gates[1], nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "client to run", func() bool {
		c, err := eng.Command(ctx, "inst", "client")
		return err == nil && c.State == messages.CommandRunning
	})
	if _, err := eng.StopCommands(ctx, "inst"); err != nil {
		t.Fatal(err)
	}
}
