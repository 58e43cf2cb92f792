// This file tests the command states that probes drive, end to end with a
// real process listening on a real TCP port: starting while its ready
// probe fails, ready once it passes, unhealthy when its health probe
// fails, then the restart its policy makes, starting again.

package shipote

import (
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

// serveHelper is the service of TestProbeStates (SHIPOTE_TEST_HELPER=serve):
// it listens on $SHIPOTE_TEST_ADDR while the file $SHIPOTE_TEST_OPEN exists
// and $SHIPOTE_TEST_SICK does not, and ignores SIGTERM, so that a run
// killed for its health stays unhealthy until its SIGKILL.
func serveHelper() {
	signal.Ignore(syscall.SIGTERM)
	addr, open, sick := os.Getenv("SHIPOTE_TEST_ADDR"), os.Getenv("SHIPOTE_TEST_OPEN"), os.Getenv("SHIPOTE_TEST_SICK")
	var ln net.Listener
	for {
		_, errOpen := os.Stat(open)
		_, errSick := os.Stat(sick)
		want := errOpen == nil && errSick != nil
		switch {
		case want && ln == nil:
			if l, err := net.Listen("tcp", addr); err == nil {
				ln = l
				go func() {
					for {
						c, err := l.Accept()
						if err != nil {
							return
						}
						_ = c.Close()
					}
				}()
			}
		case !want && ln != nil:
			_ = ln.Close()
			ln = nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestProbeStates(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	sub := eng.Events(1024)
	defer sub.Cancel()
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "st"}); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	open, sick, addr := filepath.Join(dir, "open"), filepath.Join(dir, "sick"), freeAddr(t)
	ref := labelled(native(self), "svc")
	ref.Payload.Native.Envp = []string{"SHIPOTE_TEST_HELPER=serve", "SHIPOTE_TEST_ADDR=" + addr,
		"SHIPOTE_TEST_OPEN=" + open, "SHIPOTE_TEST_SICK=" + sick}
	ref.Ready = &messages.Probe{TCP: addr, IntervalMs: 50, TimeoutMs: 2000, FailureThreshold: 2}
	ref.Health = &messages.Probe{TCP: addr, IntervalMs: 50, TimeoutMs: 2000, FailureThreshold: 2}
	ref.StopTimeoutMs = 3000 // SIGTERM is ignored: unhealthy until the SIGKILL
	ref.Supervision.Restart = &messages.RestartPolicy{BackoffMs: 50, MaxBackoffMs: 100}
	first, err := eng.Exec(ctx, "st", ref)
	if err != nil {
		t.Fatal(err)
	}
	// It runs, and its port is closed: starting, with a pid.
	if first.State != messages.CommandStarting || first.Pid <= 0 || !first.Alive() || first.Readiness != messages.ReadyStarting {
		t.Fatalf("before its ready probe passes: %s %s pid %d", first.State, first.Readiness, first.Pid)
	}
	svc := func() messages.CommandInfo {
		c, err := eng.Command(ctx, "st", "svc")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	touch := func(path string) {
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	touch(open)
	eventually(t, 30*time.Second, "svc to be ready", func() bool {
		c := svc()
		return c.State == messages.CommandReady && c.Readiness == messages.ReadyOK
	})
	if c := svc(); c.Pid != first.Pid || c.Restarts != 0 || !c.Alive() {
		t.Fatalf("ready: pid %d restarts %d, want the first run %d", c.Pid, c.Restarts, first.Pid)
	}
	// Its port closes: the health probe fails twice, the run is unhealthy
	// while its SIGTERM is ignored, then killed and restarted.
	touch(sick)
	var unhealthy messages.CommandInfo
	eventually(t, 30*time.Second, "svc to be unhealthy", func() bool {
		unhealthy = svc()
		return unhealthy.State == messages.CommandUnhealthy
	})
	if c := unhealthy; c.Pid != first.Pid || !c.Alive() || c.Readiness != messages.ReadyUnhealthy || !strings.Contains(c.Error, "unhealthy") {
		t.Errorf("unhealthy: pid %d (first %d), alive %v, readiness %q, error %q", c.Pid, first.Pid, c.Alive(), c.Readiness, c.Error)
	}
	eventually(t, 30*time.Second, "svc to be restarted", func() bool {
		c := svc()
		return c.Restarts == 1 && c.Pid > 0 && c.Pid != first.Pid
	})
	// The new run starts over: starting while its port stays closed.
	if c := svc(); c.State != messages.CommandStarting || !c.Alive() || c.Readiness != messages.ReadyStarting {
		t.Errorf("the restarted run with its port closed: %s %s pid %d", c.State, c.Readiness, c.Pid)
	}
	if alive(first.Pid) {
		t.Errorf("the unhealthy run %d still runs", first.Pid)
	}
	if err := os.Remove(sick); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the new run to be ready", func() bool {
		c := svc()
		return c.State == messages.CommandReady && c.Restarts == 1
	})
	// The events say the same, in order.
	var kinds []string
	deadline := time.After(10 * time.Second)
	want := []string{"started", "ready", "unhealthy", "restarted", "ready"}
	for len(kinds) < len(want) {
		select {
		case ev := <-sub.C:
			if ev.Command != "svc" {
				continue
			}
			switch ev.Kind {
			case messages.EventStarted, messages.EventReady, messages.EventUnhealthy, messages.EventRestarted:
				kinds = append(kinds, string(ev.Kind))
				if ev.Kind == messages.EventRestarted && !strings.Contains(ev.Message, "unhealthy after 2 failed health probes") {
					t.Errorf("restarted event: %q", ev.Message)
				}
			}
		case <-deadline:
			t.Fatalf("events so far: %v, want %v", kinds, want)
		}
	}
	if !slices.Equal(kinds, want) {
		t.Errorf("events %v, want %v", kinds, want)
	}
	if _, err := eng.StopCommands(ctx, "st"); err != nil {
		t.Fatal(err)
	}
	if c := svc(); c.State != messages.CommandStopped || c.Alive() || c.Readiness != "" {
		t.Errorf("stopped: %s alive %v readiness %q", c.State, c.Alive(), c.Readiness)
	}
}
