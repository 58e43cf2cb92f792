// This file owns the end-to-end tests of the interactive `shipote top`:
// the binary runs in a detached tmux pane against a real daemon, keys are
// sent with tmux send-keys and the screen is read with capture-pane.

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// flowYAML keeps flowing until stopped: gen fans out to two consumers.
const flowYAML = `label: flow
nodes:
  - {label: gen,   payload: {native: {exec: /bin/sh, argv: ["-c", "while :; do seq 1 100000; sleep 0.1; done"]}}}
  - {label: count, payload: {native: {exec: wc, argv: ["-l"]}}}
  - {label: hash,  payload: {native: {exec: sha256sum}}}
edges:
  - {from: gen, to: count}
  - {from: gen, to: hash}
`

// topPane is `shipote top` running in a tmux pane of a private tmux
// server.
type topPane struct {
	t        *testing.T
	server   string // the tmux server's socket (tmux -S)
	exitFile string
}

// startTop runs `shipote top --socket sock` in a w×h tmux pane; the exit
// status is written to a file when top ends. It skips the test when tmux
// is missing.
func startTop(t *testing.T, sock string, w, h int) *topPane {
	t.Helper()
	return startTopWith(t, sock, w, h, "")
}

// startTopWith is startTop with a command prefix (such as "timeout 3").
func startTopWith(t *testing.T, sock string, w, h int, prefix string) *topPane {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed (Debian package tmux; make deps installs it)")
	}
	dir := shortDir(t)
	p := &topPane{t: t, server: filepath.Join(dir, "tmux"), exitFile: filepath.Join(dir, "exit")}
	shell := fmt.Sprintf("%s %s top --socket %s; echo EXIT=$? > %s", prefix, bin, sock, p.exitFile)
	cmd := exec.Command("tmux", "-S", p.server, "-f", "/dev/null", "new-session", "-d", "-s", "top",
		"-x", fmt.Sprint(w), "-y", fmt.Sprint(h), "sh", "-c", shell)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", p.server, "kill-server").Run() })
	return p
}

// screen returns the pane's text ("" once the pane is gone).
func (p *topPane) screen() string {
	out, err := exec.Command("tmux", "-S", p.server, "capture-pane", "-p", "-t", "top").Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// send types keys (tmux key names such as Enter, Escape, or text).
func (p *topPane) send(keys ...string) {
	p.t.Helper()
	args := append([]string{"-S", p.server, "send-keys", "-t", "top"}, keys...)
	if out, err := exec.Command("tmux", args...).CombinedOutput(); err != nil {
		p.t.Fatalf("tmux send-keys %v: %v\n%s", keys, err, out)
	}
}

// wait polls the screen until ok accepts it and returns it with the time
// it took; it fails after deadline.
func (p *topPane) wait(what string, ok func(string) bool) (string, time.Duration) {
	p.t.Helper()
	start := time.Now()
	var s string
	for {
		s = p.screen()
		if ok(s) {
			return s, time.Since(start)
		}
		if time.Since(start) > deadline {
			p.t.Fatalf("timed out waiting for %s; screen:\n%s", what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *topPane) waitText(texts ...string) string {
	p.t.Helper()
	s, _ := p.wait(strings.Join(texts, ", "), func(s string) bool {
		for _, x := range texts {
			if !strings.Contains(s, x) {
				return false
			}
		}
		return true
	})
	return s
}

// quit presses q and returns top's exit status.
func (p *topPane) quit() string {
	p.t.Helper()
	p.send("q")
	return p.status()
}

// status waits for top to end and returns its exit status ("EXIT=n").
func (p *topPane) status() string {
	p.t.Helper()
	var status string
	poll(p.t, "top to exit", func() bool {
		data, err := os.ReadFile(p.exitFile)
		status = strings.TrimSpace(string(data))
		return err == nil && status != ""
	})
	return status
}

// pid returns the pid of top, the child of the pane's shell.
func (p *topPane) pid() int {
	p.t.Helper()
	out, err := exec.Command("tmux", "-S", p.server, "display-message", "-p", "-t", "top", "#{pane_pid}").Output()
	if err != nil {
		p.t.Fatalf("tmux display-message: %v", err)
	}
	sh := strings.TrimSpace(string(out))
	var pid int
	poll(p.t, "top's pid", func() bool {
		data, err := os.ReadFile("/proc/" + sh + "/task/" + sh + "/children")
		fields := strings.Fields(string(data))
		if err != nil || len(fields) != 1 {
			return false
		}
		_, err = fmt.Sscan(fields[0], &pid)
		return err == nil
	})
	return pid
}

// flowRate matches a flow channel's row: CHANNEL, BYTES, BYTES/S.
var flowRate = regexp.MustCompile(`gen → (count|hash)\s+(\S+)\s+(\S+)/s`)

// TestE2ETop runs top on a fan-out pipeline that keeps flowing, opens its
// pipeline card and waits for both flow channels to show bytes/s, then
// quits with q.
func TestE2ETop(t *testing.T) {
	dir := shortDir(t)
	d := startDaemon(t, filepath.Join(dir, "s.sock"), filepath.Join(t.TempDir(), "state.json"), newParent(t))
	d.id(t, "ws", "create", "--label", "topws", "--mem", "256M", "--ttl", "10m")
	d.id(t, "exec", "topws", "--label", "sleeper", "--", "sleep", "600")
	run := d.id(t, "pipe", "run", "topws", "-f", writeFile(t, t.TempDir(), "flow.yaml", flowYAML))

	p := startTop(t, d.sock, 120, 40)
	list := p.waitText("topws", "● live", "QUOTA")
	t.Logf("workspace list:\n%s", list)
	p.send("Enter")
	card := p.waitText("workspace topws", "COMMANDS (1)", "PIPELINES (1)", "sleeper", "flow")
	t.Logf("workspace card:\n%s", card)
	p.send("j", "Enter") // the pipeline row, under the command
	flowing := func(s string) bool {
		rates := make(map[string]string)
		for _, m := range flowRate.FindAllStringSubmatch(s, -1) {
			rates[m[1]] = m[3]
		}
		return len(rates) == 2 && rates["count"] != "0B" && rates["hash"] != "0B" && strings.Contains(s, "pipeline topws/flow")
	}
	s, took := p.wait("both flow channels to show bytes/s", flowing)
	t.Logf("flow channels showed bytes/s after %s:\n%s", took, s)
	for _, want := range []string{run, "DAG", "├─▶ count", "└─▶ hash", "FLOW CHANNELS", "THROUGHPUT", "supervisor"} {
		if !strings.Contains(s, want) {
			t.Errorf("pipeline card: no %q", want)
		}
	}
	// The log pane of a node, then back.
	p.send("Escape")
	p.waitText("workspace topws")
	p.send("k", "l")
	p.waitText("logs topws/sleeper")
	p.send("Escape")
	p.waitText("workspace topws")

	if status := p.quit(); status != "EXIT=0" {
		t.Errorf("top ended with %s", status)
	}
	d.ok(t, "pipe", "stop", run)
	d.ok(t, "ws", "rm", "topws", "--grace", "1s")
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("daemon exit %d\n%s", code, tail(d.stderr.String(), 3000))
	}
}

// TestE2ETopDaemonGone kills the daemon under a running top: the screen
// says so, then top reconnects by itself to a daemon restarted on the same
// socket and state.
func TestE2ETopDaemonGone(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "s.sock")
	state := filepath.Join(t.TempDir(), "state.json")
	parent := newParent(t)
	d := startDaemon(t, sock, state, parent)
	wsID := d.id(t, "ws", "create", "--label", "survivor", "--ttl", "1h")
	d.ok(t, "snapshot", "save")

	p := startTop(t, sock, 80, 24)
	p.waitText("survivor", "● live")

	killed := time.Now()
	if code := d.stop(syscall.SIGKILL); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("kill -9: exit %d", code)
	}
	banner := "daemon not reachable at " + sock + " — retrying"
	s, _ := p.wait("the daemon-gone banner", func(s string) bool { return strings.Contains(s, banner) })
	t.Logf("top said the daemon is gone %s after kill -9 (target 2s):\n%s", time.Since(killed).Round(time.Millisecond), s)
	if !strings.Contains(s, "○ down") {
		t.Errorf("no down mark in the header:\n%s", s)
	}

	restarted := time.Now()
	d2 := startDaemon(t, sock, state, parent)
	s, _ = p.wait("top to reconnect", func(s string) bool {
		return !strings.Contains(s, "not reachable") && strings.Contains(s, "● live") && strings.Contains(s, "survivor")
	})
	t.Logf("top reconnected %s after the daemon's restart began:\n%s", time.Since(restarted).Round(time.Millisecond), s)
	if !strings.Contains(s, wsID[:8]) {
		t.Errorf("the restored workspace's ID is not shown:\n%s", s)
	}
	if status := p.quit(); status != "EXIT=0" {
		t.Errorf("top ended with %s", status)
	}
	if code := d2.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("daemon exit %d\n%s", code, tail(d2.stderr.String(), 3000))
	}
}

// TestE2ETopSignals: the interactive top ends on the first SIGINT (130) or
// SIGTERM (143), and on the Ctrl-C key (0); under timeout(1), which runs it
// in a background process group of the terminal, it is not stopped by the
// kernel for touching the terminal and ends on timeout's signal.
func TestE2ETopSignals(t *testing.T) {
	dir := shortDir(t)
	d := startDaemon(t, filepath.Join(dir, "s.sock"), filepath.Join(t.TempDir(), "state.json"), newParent(t))
	d.id(t, "ws", "create", "--label", "sigws", "--ttl", "10m")
	for _, tc := range []struct {
		name string
		stop func(p *topPane)
		want string
	}{
		{"SIGINT", func(p *topPane) { _ = syscall.Kill(p.pid(), syscall.SIGINT) }, "EXIT=130"},
		{"SIGTERM", func(p *topPane) { _ = syscall.Kill(p.pid(), syscall.SIGTERM) }, "EXIT=143"},
		{"Ctrl-C key", func(p *topPane) { p.send("C-c") }, "EXIT=0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startTop(t, d.sock, 100, 30)
			p.waitText("sigws", "● live")
			tc.stop(p)
			if status := p.status(); status != tc.want {
				t.Errorf("top ended with %s, want %s", status, tc.want)
			}
		})
	}
	for _, tc := range []struct{ sig, want string }{{"TERM", "EXIT=143"}, {"INT", "EXIT=130"}} {
		t.Run("timeout -s "+tc.sig, func(t *testing.T) {
			p := startTopWith(t, d.sock, 100, 30, "timeout --preserve-status -s "+tc.sig+" 3")
			p.waitText("sigws")
			if status := p.status(); status != tc.want {
				t.Errorf("top under timeout ended with %s, want %s", status, tc.want)
			}
		})
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("daemon exit %d\n%s", code, tail(d.stderr.String(), 3000))
	}
}
