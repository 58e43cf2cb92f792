// This file owns the end-to-end test of the promise that no process
// outlives the daemon: after `kill -9` of the daemon, on every limits
// backend, no process of its commands is left: not the command, not a
// grandchild, not one in a session of its own, not a double-forked one.

package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/internal/testproc"
)

func TestE2EOrphansKill9(t *testing.T) {
	for _, backend := range []string{"cgroup2", "cgroup1", "rlimit", "none"} {
		t.Run(backend, func(t *testing.T) {
			dir := shortDir(t)
			sock, state := filepath.Join(dir, "s.sock"), filepath.Join(dir, "state.json")
			d := launchDaemon(t, nil, sock, state, newParent(t), "--limits", backend)
			if err := waitHealthy(sock, d.done); err != nil {
				d.kill()
				if strings.HasPrefix(backend, "cgroup") {
					t.Skipf("this host has no usable %s (the daemon refused it: %v):\n%s", backend, err, tail(d.stderr.String(), 600))
				}
				t.Fatalf("daemon not healthy: %v\nstderr:\n%s", err, d.stderr.String())
			}
			var v struct {
				Orphans string `json:"orphans"`
				Daemon  struct {
					LimitsBackend string `json:"limits_backend"`
					Orphans       string `json:"orphans"`
				} `json:"daemon"`
			}
			if err := json.Unmarshal([]byte(d.ok(t, "version", "-o", "json")), &v); err != nil {
				t.Fatal(err)
			}
			if v.Daemon.LimitsBackend != backend {
				t.Fatalf("daemon runs limits backend %q, want %q", v.Daemon.LimitsBackend, backend)
			}
			if proc.PIDNamespaceSupport() == nil && (v.Orphans != proc.OrphansPIDNamespace || v.Daemon.Orphans != v.Orphans) {
				t.Errorf("version says orphans %q (daemon %q), want %q", v.Orphans, v.Daemon.Orphans, proc.OrphansPIDNamespace)
			}
			t.Logf("orphans: %s", v.Daemon.Orphans)

			base := testproc.OrphanBase()
			t.Cleanup(func() { // whatever happens, leave nothing behind
				for _, pids := range testproc.Sleepers(base) {
					for _, pid := range pids {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			})
			d.ok(t, "ws", "create", "--label", "g")
			d.ok(t, "exec", "g", "--", "/bin/sh", "-c", testproc.OrphanScript(base))
			poll(t, "every kind of process running", func() bool {
				return len(testproc.Sleepers(base)) == len(testproc.OrphanKinds)
			})

			killed := time.Now()
			if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			// A generous bound for a loaded machine; the time it took is
			// logged (the soak run reports it over many kills).
			end := killed.Add(10 * time.Second)
			for {
				left := testproc.Sleepers(base)
				if len(left) == 0 {
					t.Logf("every process gone %v after kill -9", time.Since(killed).Round(time.Millisecond))
					break
				}
				if time.Now().After(end) {
					t.Fatalf("alive 10s after kill -9 of the daemon: %v", left)
				}
				time.Sleep(5 * time.Millisecond)
			}
			d.wait()
		})
	}
}
