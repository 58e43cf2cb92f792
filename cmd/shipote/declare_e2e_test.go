package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/shipote/shipote/messages"
)

// TestE2EDeclaredFieldsSurviveKill9: a scheduled command and a command
// waiting for its dependency, declared through the CLI, are back after
// kill -9 with their IDs and fields; ps shows their READY and NEXT.
func TestE2EDeclaredFieldsSurviveKill9(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "s.sock")
	state := filepath.Join(t.TempDir(), "state.json")
	parent := newParent(t)
	d := startDaemon(t, sock, state, parent)
	d.id(t, "ws", "create", "--label", "decl")
	cronID := d.id(t, "exec", "decl", "--label", "nightly", "--schedule", "0 3 * * *", "--concurrency", "forbid", "--", "true")
	appID := d.id(t, "exec", "decl", "--label", "app", "--restart", "always", "--depends-on", "db", "--", "sleep", "1000")
	out := d.ok(t, "ps", "decl")
	for _, want := range []string{"READY", "NEXT", "waiting:db", "scheduled", "03:00"} {
		if !strings.Contains(out, want) {
			t.Errorf("ps: no %q in\n%s", want, out)
		}
	}
	if r := d.run(t, "exec", "decl", "--label", "db", "--restart", "always", "--depends-on", "app", "--", "sleep", "1000"); r.code != 1 ||
		!strings.Contains(r.stderr, "depends_on: dependency cycle") {
		t.Errorf("a cycle: exit %d, %q", r.code, r.stderr)
	}
	if code := d.stop(syscall.SIGKILL); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("kill -9: exit %d", code)
	}

	d2 := startDaemon(t, sock, state, parent)
	found := 0
	for _, c := range getJSON[[]messages.CommandInfo](t, d2, "ps", "decl") {
		switch c.ID {
		case cronID:
			found++
			if c.State != messages.CommandScheduled || c.Spec.Schedule != "0 3 * * *" || c.Spec.Concurrency != messages.ConcurrencyForbid ||
				c.NextRunAt.IsZero() || c.NextRunAt.Hour() != 3 {
				t.Errorf("nightly after kill -9: %+v", c)
			}
		case appID:
			found++
			if c.Readiness != messages.ReadyWaiting || len(c.WaitingOn) != 1 || c.WaitingOn[0] != "db" {
				t.Errorf("app after kill -9: %+v", c)
			}
		}
	}
	if found != 2 {
		t.Fatalf("found %d of the 2 declared commands after kill -9", found)
	}
	// db arrives: app starts.
	d2.id(t, "exec", "decl", "--label", "db", "--restart", "always", "--", "sleep", "1000")
	poll(t, "app to run", func() bool {
		for _, c := range getJSON[[]messages.CommandInfo](t, d2, "ps", "decl") {
			if c.ID == appID {
				return c.State == messages.CommandRunning && c.Readiness == messages.ReadyOK
			}
		}
		return false
	})
	if code := d2.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
}
