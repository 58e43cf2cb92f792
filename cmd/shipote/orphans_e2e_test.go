// This file owns the end-to-end test of the promise that no process
// outlives the daemon: after `kill -9` of the daemon, on every limits
// backend, no process of its commands is left: not the command, not a
// grandchild, not one in a session of its own, not a double-forked one.

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/internal/testproc"
)

func TestE2EOrphansKill9(t *testing.T) {
	for _, c := range []struct{ backend, orphans string }{
		{"cgroup2", "auto"}, {"cgroup1", "auto"}, {"rlimit", "auto"}, {"none", "auto"},
		// The watchdog, as root: a guard process and a subreaper daemon.
		{"cgroup1", "watchdog"}, {"none", "watchdog"},
	} {
		backend := c.backend
		t.Run(backend+"/"+c.orphans, func(t *testing.T) {
			dir := shortDir(t)
			sock, state := filepath.Join(dir, "s.sock"), filepath.Join(dir, "state.json")
			d := launchDaemon(t, nil, sock, state, newParent(t), "--limits", backend, "--orphans", c.orphans)
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
			want := proc.OrphansWatchdog
			if c.orphans == "auto" {
				want = proc.HostOrphans()
			}
			if v.Orphans != want || v.Daemon.Orphans != v.Orphans {
				t.Errorf("version says orphans %q (daemon %q), want %q", v.Orphans, v.Daemon.Orphans, want)
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

// TestE2EOrphansWithoutRoot runs the daemon as a user without root, as most
// users of a per-user daemon do, in each way it keeps its promise there: in
// a user namespace of its own (where the host allows one) and under its
// watchdog. Either of its two processes, the guard that was started and the
// daemon proper, is killed with SIGKILL; every kind of process of its
// commands must die with it. Run as root, the test runs the daemon as
// nobody; run as another user, as that user.
func TestE2EOrphansWithoutRoot(t *testing.T) {
	exe, cred := nonRootDaemon(t)
	for _, c := range []struct {
		orphans, want string
	}{
		{"auto", proc.OrphansUserPIDNamespace},
		{"watchdog", proc.OrphansWatchdog},
	} {
		for _, backend := range []string{"rlimit", "none"} {
			for _, victim := range []string{"guard", "daemon"} {
				t.Run(c.orphans+"/"+backend+"/kill-"+victim, func(t *testing.T) {
					if c.orphans == "auto" {
						if err := proc.UserNamespaceSupport(); err != nil {
							t.Skipf("this host has no user namespaces for users (%v): the watchdog case covers it", err)
						}
					}
					testOrphansWithoutRoot(t, exe, cred, c.orphans, c.want, backend, victim)
				})
			}
		}
	}
}

// TestSoakOrphansWithoutRoot (make soak) kills a daemon without root 100
// times, alternating the way it is guarded, which of its two processes
// dies, and the limits backend; each time every kind of process of its
// commands must be gone.
func TestSoakOrphansWithoutRoot(t *testing.T) {
	if os.Getenv("SHIPOTE_SOAK") == "" {
		t.Skip("soak only (make soak); TestE2EOrphansWithoutRoot covers each case once")
	}
	exe, cred := nonRootDaemon(t)
	modes := []struct{ orphans, want string }{{"watchdog", proc.OrphansWatchdog}}
	if proc.UserNamespaceSupport() == nil {
		modes = append(modes, struct{ orphans, want string }{"auto", proc.OrphansUserPIDNamespace})
	}
	const kills = 100
	for i := range kills {
		m := modes[i%len(modes)]
		backend := []string{"rlimit", "none"}[(i/2)%2]
		victim := []string{"guard", "daemon"}[(i/4)%2]
		if !t.Run(fmt.Sprintf("%d/%s/%s/kill-%s", i, m.orphans, backend, victim), func(t *testing.T) {
			testOrphansWithoutRoot(t, exe, cred, m.orphans, m.want, backend, victim)
		}) {
			t.Fatalf("kill %d of %d left processes behind (see above)", i+1, kills)
		}
	}
	t.Logf("%d kills -9 of a daemon without root: 0 survivors of every kind (%s)", kills, strings.Join(testproc.OrphanKinds, ", "))
}

// nonRootDaemon returns a copy of the binary that a daemon without root
// can run, and the credential to run it with: nobody when the test runs
// as root, nil (the test's own user) otherwise.
func nonRootDaemon(t *testing.T) (string, *syscall.Credential) {
	t.Helper()
	cred := (*syscall.Credential)(nil)
	if os.Getuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	// The binary, where the daemon's user can run it.
	binDir, err := os.MkdirTemp("/tmp", "shp-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(binDir) })
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(binDir, "shipote")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe, cred
}

func testOrphansWithoutRoot(t *testing.T, exe string, cred *syscall.Credential, orphans, want, backend, victim string) {
	dir := shortDir(t)
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	sock, state := filepath.Join(dir, "s.sock"), filepath.Join(dir, "state.json")
	run := func(args ...string) (string, error) {
		cmd := exec.Command(exe, append([]string{"--socket", sock}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = "/"
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	guard := exec.Command(exe, "daemon", "--socket", sock, "--state", state, "--log-format", "json",
		"--sample-interval", "200ms", "--grace", "1s", "--limits", backend, "--orphans", orphans)
	// Should the test binary die (a timeout panic skips cleanups), the
	// guard goes with it, and its daemon and commands with the guard.
	guard.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	guard.Dir = "/"
	stderr := &syncBuffer{}
	guard.Stderr = stderr
	if err := guard.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = guard.Wait()
	}()
	t.Cleanup(func() {
		_ = guard.Process.Kill()
		<-done
	})
	if err := waitHealthy(sock, done); err != nil {
		t.Fatalf("daemon not healthy: %v\nstderr:\n%s", err, stderr.String())
	}
	out, err := run("version", "-o", "json")
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	var v struct {
		Daemon struct {
			Orphans string `json:"orphans"`
		} `json:"daemon"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	if v.Daemon.Orphans != want {
		t.Fatalf("daemon says orphans %q, want %q\nstderr:\n%s", v.Daemon.Orphans, want, stderr.String())
	}
	// The daemon proper: the guard's child running the same binary.
	daemonPid := 0
	poll(t, "the daemon under its guard", func() bool {
		kids, err := proc.Children(guard.Process.Pid)
		if err != nil || len(kids) != 1 {
			return false
		}
		daemonPid = kids[0]
		return true
	})

	base := testproc.OrphanBase()
	t.Cleanup(func() {
		for _, pids := range testproc.Sleepers(base) {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	if out, err := run("ws", "create", "--label", "g"); err != nil {
		t.Fatalf("ws create: %v\n%s", err, out)
	}
	if out, err := run("exec", "g", "--", "/bin/sh", "-c", testproc.OrphanScript(base)); err != nil {
		t.Fatalf("exec: %v\n%s", err, out)
	}
	for end := time.Now().Add(deadline); len(testproc.Sleepers(base)) != len(testproc.OrphanKinds); {
		if time.Now().After(end) {
			ps, _ := run("ps", "g")
			logs, _ := run("logs", "g/sh")
			t.Fatalf("not every kind of process runs: %v\nps:\n%s\nlogs:\n%s\nstderr:\n%s",
				testproc.Sleepers(base), ps, logs, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, pids := range testproc.Sleepers(base) {
		for _, pid := range pids {
			if st, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
				t.Fatal(err)
			} else if cred != nil && st.Sys().(*syscall.Stat_t).Uid != cred.Uid {
				t.Fatalf("pid %d runs as uid %d, want %d", pid, st.Sys().(*syscall.Stat_t).Uid, cred.Uid)
			}
		}
	}

	target := guard.Process.Pid
	if victim == "daemon" {
		target = daemonPid
	}
	killed := time.Now()
	if err := syscall.Kill(target, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	end := killed.Add(10 * time.Second) // generous for a loaded machine; the time is logged
	for {
		left := testproc.Sleepers(base)
		if len(left) == 0 {
			t.Logf("every process gone %v after kill -9 of the %s", time.Since(killed).Round(time.Millisecond), victim)
			break
		}
		if time.Now().After(end) {
			t.Fatalf("alive 10s after kill -9 of the %s: %v\nstderr:\n%s", victim, left, stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-done:
	case <-time.After(deadline):
		t.Fatalf("the guard did not exit after kill -9 of the %s", victim)
	}
	poll(t, "the daemon proper gone too", func() bool { return zombieOrGone(daemonPid) })
}

// zombieOrGone reports whether pid has exited.
func zombieOrGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z'
}
