// This file tests command and pipeline control through the built binary:
// stop, start, restart, signal, rm and stop --all; pipe restart and pipe
// signal; the exec flags of a graceful stop; exit codes; completion.

package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/shipote/shipote/messages"
)

// commandInfo returns the command label of workspace ws as ps sees it.
func commandInfo(t *testing.T, d *daemonProc, ws, label string) messages.CommandInfo {
	t.Helper()
	for _, c := range getJSON[[]messages.CommandInfo](t, d, "ps", ws) {
		if c.Label == label {
			return c
		}
	}
	t.Fatalf("no command %s in ps %s", label, ws)
	return messages.CommandInfo{}
}

func waitRunning(t *testing.T, d *daemonProc, ws, label string) messages.CommandInfo {
	t.Helper()
	var c messages.CommandInfo
	poll(t, label+" to run", func() bool {
		c = commandInfo(t, d, ws, label)
		return c.Alive() && c.Pid > 0
	})
	return c
}

// waitReady waits for a command's "ready" line: its traps are set.
func waitReady(t *testing.T, d *daemonProc, ref string) {
	t.Helper()
	poll(t, ref+" to be ready", func() bool { return d.run(t, "logs", ref).stdout == "ready\n" })
}

// startedPid reads "ID pid N" as start and restart print it.
func startedPid(t *testing.T, out, wantID string) int {
	t.Helper()
	f := strings.Fields(out)
	if len(f) != 3 || f[0] != wantID || f[1] != "pid" {
		t.Fatalf("want %q pid N, got %q", wantID, out)
	}
	pid, err := strconv.Atoi(f[2])
	if err != nil || pid <= 0 {
		t.Fatalf("bad pid in %q", out)
	}
	return pid
}

func TestE2ECommandControl(t *testing.T) {
	dir := shortDir(t)
	d := startDaemon(t, filepath.Join(dir, "s.sock"), filepath.Join(t.TempDir(), "state.json"), newParent(t))
	d.id(t, "ws", "create", "--label", "ctl")
	marks := filepath.Join(t.TempDir(), "marks")

	t.Run("a signal reaches every process of the group", func(t *testing.T) {
		d.id(t, "exec", "ctl", "--label", "family", "--", "/bin/sh", "-c",
			`trap 'echo parent >> `+marks+`' USR1
(trap 'echo child >> `+marks+`' USR1; echo child-ready >> `+marks+`; while :; do sleep 0.05; done) &
echo parent-ready >> `+marks+`
while :; do sleep 0.05; done`)
		waitRunning(t, d, "ctl", "family")
		poll(t, "the family to be ready", func() bool {
			b, _ := os.ReadFile(marks)
			return strings.Contains(string(b), "parent-ready\n") && strings.Contains(string(b), "child-ready\n")
		})
		out := d.ok(t, "signal", "ctl/family", "usr1")
		if !strings.HasPrefix(out, "sent SIGUSR1 to family (process group ") {
			t.Errorf("signal printed %q", out)
		}
		poll(t, "both processes to note the signal", func() bool {
			b, _ := os.ReadFile(marks)
			return strings.Contains(string(b), "parent\n") && strings.Contains(string(b), "child\n")
		})
		// By number, and the stop ends both.
		d.ok(t, "signal", "ctl/family", "10")
		out = d.ok(t, "stop", "ctl/family")
		if !regexp.MustCompile(`^family: stopped by SIGTERM after \d+(\.\d+)?(ms|s|µs)\n$`).MatchString(out) {
			t.Errorf("stop printed %q", out)
		}
	})

	t.Run("a command that ignores SIGTERM is killed after its timeout", func(t *testing.T) {
		d.id(t, "exec", "ctl", "--label", "stubborn", "--stop-timeout", "300ms", "--", "/bin/sh", "-c",
			`trap '' TERM; echo ready; while :; do sleep 0.05; done`)
		waitReady(t, d, "ctl/stubborn")
		if out := d.ok(t, "stop", "ctl/stubborn"); out != "stubborn: killed after the 300ms timeout\n" {
			t.Errorf("stop printed %q", out)
		}
		c := commandInfo(t, d, "ctl", "stubborn")
		if c.State != messages.CommandStopped || c.StopReason != "user" || c.StopResult != "killed after the 300ms timeout" {
			t.Errorf("after the stop: %s reason %q result %q", c.State, c.StopReason, c.StopResult)
		}
		if out := d.ok(t, "ps", "ctl"); !strings.Contains(out, "stopped (user)") {
			t.Errorf("ps shows no \"stopped (user)\":\n%s", out)
		}
	})

	t.Run("a custom stop signal", func(t *testing.T) {
		d.id(t, "exec", "ctl", "--label", "inty", "--stop-signal", "INT", "--stop-timeout", "20s", "--", "/bin/sh", "-c",
			`trap 'exit 0' INT; trap '' TERM; echo ready; while :; do sleep 0.05; done`)
		waitReady(t, d, "ctl/inty")
		if out := d.ok(t, "stop", "ctl/inty"); !strings.HasPrefix(out, "inty: stopped by SIGINT after ") {
			t.Errorf("stop printed %q", out)
		}
	})

	t.Run("start and restart keep the ID and give a new pid", func(t *testing.T) {
		id := d.id(t, "exec", "ctl", "--label", "nap", "--", "sleep", "600")
		first := waitRunning(t, d, "ctl", "nap")
		d.ok(t, "stop", "ctl/nap")
		pid := startedPid(t, d.ok(t, "start", "ctl/nap"), id)
		if pid == first.Pid {
			t.Errorf("start gave the old pid %d", pid)
		}
		if c := commandInfo(t, d, "ctl", "nap"); c.ID != id || c.Pid != pid || c.State != messages.CommandRunning {
			t.Errorf("after start: %+v", c)
		}
		pid2 := startedPid(t, d.ok(t, "restart", "ctl/"+id), id)
		if pid2 == pid {
			t.Errorf("restart kept the pid %d", pid)
		}
		if c := commandInfo(t, d, "ctl", "nap"); c.ID != id || c.Pid != pid2 {
			t.Errorf("after restart: %+v", c)
		}
	})

	t.Run("success exit codes", func(t *testing.T) {
		d.id(t, "exec", "ctl", "--label", "three", "--restart", "on-failure", "--success-codes", "0,3", "--", "/bin/sh", "-c", "exit 3")
		var c messages.CommandInfo
		poll(t, "three to end", func() bool {
			c = commandInfo(t, d, "ctl", "three")
			return c.State.Ended()
		})
		if c.State != messages.CommandExited || c.Restarts != 0 {
			t.Errorf("exit 3 with --success-codes 0,3: %s after %d restarts", c.State, c.Restarts)
		}
	})

	t.Run("wrong refs and states exit 1", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"stop", "ctl/nope"}, `shipote: stop ctl/nope: command "nope" in workspace ctl: not found`},
			{[]string{"start", "nows/nap"}, "not found"},
			{[]string{"signal", "ctl/nope", "TERM"}, "not found"},
			{[]string{"stop", "nows", "--all"}, "not found"},
			{[]string{"start", "ctl/nap"}, "is already running"},
			{[]string{"rm", "ctl/nap"}, "stop it first"},
			{[]string{"stop", "ctl/stubborn"}, "is not running (stopped)"},
			{[]string{"signal", "ctl/stubborn", "HUP"}, "is not running (stopped)"},
			{[]string{"pipe", "restart", "nope"}, "not found"},
		} {
			r := d.run(t, tc.args...)
			if r.code != 1 || !strings.HasPrefix(r.stderr, "shipote: ") || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("want exit 1 with %q\n%s", tc.want, r)
			}
		}
	})

	t.Run("usage errors exit 2", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"stop"}, "stop: missing WS/CMD"},
			{[]string{"stop", "ctl"}, "or WS --all"},
			{[]string{"restart", "ctl/nap", "extra"}, `unexpected argument "extra"`},
			{[]string{"signal", "ctl/nap"}, "missing SIG"},
			{[]string{"signal", "ctl/nap", "BOGUS"}, `"BOGUS" is not a signal name or number`},
			{[]string{"rm", "/nap"}, "names no workspace"},
			{[]string{"exec", "ctl", "--stop-signal", "NOPE", "--", "true"}, "--stop-signal"},
			{[]string{"exec", "ctl", "--stop-timeout", "0s", "--", "true"}, "--stop-timeout must be at least 1ms"},
			{[]string{"exec", "ctl", "--success-codes", "0,256", "--", "true"}, "256 is not an exit code"},
			{[]string{"pipe", "signal", "run"}, "missing SIG"},
		} {
			r := d.run(t, tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("want exit 2 with %q\n%s", tc.want, r)
			}
		}
	})

	t.Run("rm forgets an ended command", func(t *testing.T) {
		c := commandInfo(t, d, "ctl", "stubborn")
		if out := d.ok(t, "rm", "ctl/stubborn"); out != c.ID+"\n" {
			t.Errorf("rm printed %q, want the ID", out)
		}
		for _, c := range getJSON[[]messages.CommandInfo](t, d, "ps", "ctl") {
			if c.Label == "stubborn" {
				t.Errorf("stubborn is still listed: %+v", c)
			}
		}
	})

	t.Run("stop --all", func(t *testing.T) {
		d.id(t, "exec", "ctl", "--label", "other", "--", "sleep", "600")
		waitRunning(t, d, "ctl", "other")
		out := d.ok(t, "stop", "ctl", "--all")
		if !strings.Contains(out, "nap: stopped by SIGTERM") || !strings.Contains(out, "other: stopped by SIGTERM") {
			t.Errorf("stop --all printed %q", out)
		}
		for _, c := range getJSON[[]messages.CommandInfo](t, d, "ps", "ctl") {
			if !c.State.Ended() {
				t.Errorf("%s is %s after stop --all", c.Label, c.State)
			}
		}
		if r := d.run(t, "stop", "ctl", "--all"); r.code != 0 || r.stdout != "" || r.stderr != "no command of ctl was running\n" {
			t.Errorf("second stop --all: %s", r)
		}
	})

	t.Run("pipe restart and pipe signal", func(t *testing.T) {
		file := writeFile(t, t.TempDir(), "tick.yaml", `label: tick
nodes:
  - {label: src, payload: {native: {exec: /bin/sh, argv: ["-c", "while :; do echo tick; sleep 0.05; done"]}}}
  - {label: sink, payload: {native: {exec: cat}}}
edges:
  - {from: src, to: sink}
`)
		run := d.id(t, "pipe", "run", "ctl", "-f", file)
		var before messages.PipelineInfo
		poll(t, "both nodes to run", func() bool {
			before = getJSON[messages.PipelineInfo](t, d, "pipe", "show", run)
			return len(before.Nodes) == 2 && before.Nodes[0].Pid > 0 && before.Nodes[1].Pid > 0
		})
		out := d.ok(t, "pipe", "restart", run)
		if !strings.HasPrefix(out, run+" run 2 src=") {
			t.Errorf("pipe restart printed %q", out)
		}
		after := getJSON[messages.PipelineInfo](t, d, "pipe", "show", run)
		if after.ID != run || after.Restarts != 1 || after.Nodes[0].Pid == before.Nodes[0].Pid {
			t.Errorf("after restart: restarts %d, src pid %d (was %d)", after.Restarts, after.Nodes[0].Pid, before.Nodes[0].Pid)
		}
		if r := d.run(t, "pipe", "signal", run, "--node", "nope", "TERM"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
			t.Errorf("signal to an unknown node: %s", r)
		}
		if out := d.ok(t, "pipe", "signal", run, "--node", "sink", "KILL"); out != "sent SIGKILL to sink of "+run+"\n" {
			t.Errorf("pipe signal printed %q", out)
		}
		p := pipelineEnded(t, d, run)
		if p.State != messages.PipelineFailed || p.Nodes[1].Signal != "SIGKILL" {
			t.Errorf("after KILL of the sink: %s, sink %q", p.State, p.Nodes[1].Signal)
		}
		if r := d.run(t, "pipe", "restart", run); r.code != 1 || !strings.Contains(r.stderr, "has ended") {
			t.Errorf("restart of an ended run: %s", r)
		}
	})

	t.Run("completion", func(t *testing.T) {
		out := d.ok(t, "__complete", "restart", "ctl/")
		for _, want := range []string{"ctl/nap\n", "ctl/other\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("completion of ctl/ lacks %q:\n%s", want, out)
			}
		}
		if out := d.ok(t, "__complete", "stop", "c"); !strings.Contains(out, "ctl/\n") {
			t.Errorf("completion of c: %q", out)
		}
		// Without a daemon: nothing offered, no error, exit 0.
		r := runCLI(t, "--socket", filepath.Join(dir, "none.sock"), "__complete", "stop", "")
		if r.code != 0 || strings.Contains(r.stderr, "shipote:") || strings.Contains(r.stderr, "reachable") ||
			strings.TrimSpace(r.stdout) != ":6" {
			t.Errorf("completion without a daemon:\n%s", r)
		}
	})
}
