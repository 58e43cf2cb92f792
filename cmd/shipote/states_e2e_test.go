// This file tests the probe-driven command states through the daemon and
// the CLI: ps shows starting, ready and unhealthy in STATE and READY, and
// an unhealthy command is restarted by its policy.

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/shipote/shipote/messages"
)

// psLine returns the line of `ps WS` that shows label, split in fields.
func psLine(t *testing.T, d *daemonProc, ws, label string) []string {
	t.Helper()
	for _, l := range strings.Split(d.ok(t, "ps", ws), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[2] == label {
			return f
		}
	}
	t.Fatalf("ps %s: no line for %s", ws, label)
	return nil
}

func TestE2EProbeStatesInPs(t *testing.T) {
	dir := shortDir(t)
	d := startDaemon(t, filepath.Join(dir, "s.sock"), filepath.Join(dir, "state.json"), newParent(t))
	work := t.TempDir()
	gate, sick := filepath.Join(work, "gate"), filepath.Join(work, "sick")
	// SIGTERM is ignored (by the shell and its sleeps): a run killed for
	// its health stays unhealthy until the SIGKILL of its stop timeout.
	f := writeFile(t, work, "probes.yaml", `name: probes
workspaces:
  - label: pr
    commands:
      - label: svc
        payload: {native: {exec: /bin/sh, argv: ["-c", "trap '' TERM; while :; do sleep 0.05; done"]}}
        supervision: {restart: {on: failure, backoff_ms: 50, max_backoff_ms: 100}}
        stop_timeout_ms: 2000
        ready: {exec: [test, -f, `+gate+`], interval_ms: 50, failure_threshold: 2}
        health: {exec: [test, '!', -f, `+sick+`], interval_ms: 50, failure_threshold: 2}
      - label: plain
        payload: {native: {exec: sleep, argv: ["1000"]}}
`)
	d.ok(t, "apply", "-f", f)
	first := waitRunning(t, d, "pr", "svc")
	waitRunning(t, d, "pr", "plain")
	// Columns: ID WORKSPACE LABEL PID STATE RESTARTS UPTIME READY NEXT.
	if l := psLine(t, d, "pr", "svc"); l[4] != "starting" || l[7] != "starting" || l[3] == "-" {
		t.Errorf("svc before its ready probe passes: %v", l)
	}
	if l := psLine(t, d, "pr", "plain"); l[4] != "running" || l[7] != "ready" {
		t.Errorf("a command without probes: %v", l)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	poll(t, "svc to be ready", func() bool {
		l := psLine(t, d, "pr", "svc")
		return l[4] == "ready" && l[7] == "ready"
	})
	if err := os.WriteFile(sick, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	poll(t, "svc to be unhealthy", func() bool {
		l := psLine(t, d, "pr", "svc")
		return l[4] == "unhealthy" && l[7] == "unhealthy"
	})
	if err := os.Remove(sick); err != nil {
		t.Fatal(err)
	}
	poll(t, "svc restarted and ready", func() bool {
		c := commandInfo(t, d, "pr", "svc")
		return c.State == messages.CommandReady && c.Restarts == 1 && c.Pid != first.Pid
	})
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("daemon exit %d\n%s", code, tail(d.stderr.String(), 3000))
	}
}
