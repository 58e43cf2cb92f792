// This file owns the end-to-end tests: the shipote binary, built once,
// run as a daemon on a real socket and state file and driven through the
// CLI exactly as SPEC §3.3 writes it.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shipote/shipote/actors"
	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/persistence"
)

// bin is the shipote binary under test, built by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shipote-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "shipote")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// deadline bounds every wait of these tests: generous, for a busy 2-core
// machine.
const deadline = 60 * time.Second

var ulidRE = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`)

// shortDir returns a fresh directory under /tmp, short enough for a socket
// path (108 bytes at most), removed at the end of the test.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "shp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// daemonProc is a running `shipote daemon`.
type daemonProc struct {
	t      *testing.T
	sock   string
	state  string
	parent string
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	code   int
}

var parentSeq int

// newParent returns a cgroup subtree name of its own for a test's daemons
// (an engine sweeps its subtree at start), removed at the end of the test.
func newParent(t *testing.T) string {
	parentSeq++
	p := fmt.Sprintf("shipote-e2e-%d-%d", os.Getpid(), parentSeq)
	t.Cleanup(func() { cmdutil.RemoveCgroupParent(p) })
	return p
}

// startDaemon starts a daemon and waits until /healthz answers.
func startDaemon(t *testing.T, sock, state, parent string, extra ...string) *daemonProc {
	t.Helper()
	d := launchDaemon(t, nil, sock, state, parent, extra...)
	if err := waitHealthy(sock, d.done); err != nil {
		d.kill()
		t.Fatalf("daemon not healthy: %v\nstderr:\n%s", err, d.stderr.String())
	}
	return d
}

// launchDaemon starts a daemon without waiting for it.
func launchDaemon(t *testing.T, env []string, sock, state, parent string, extra ...string) *daemonProc {
	t.Helper()
	return launchDaemonOf(t, bin, env, sock, state, parent, extra...)
}

// launchDaemonOf starts the daemon of binary, without waiting for it.
func launchDaemonOf(t *testing.T, binary string, env []string, sock, state, parent string, extra ...string) *daemonProc {
	t.Helper()
	args := []string{"daemon", "--socket", sock, "--state", state, "--cgroup-parent", parent,
		"--log-format", "json", "--sample-interval", "200ms", "--grace", "1s"}
	d := &daemonProc{t: t, sock: sock, state: state, parent: parent, stderr: &syncBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(binary, append(args, extra...)...)
	d.cmd.Stderr = d.stderr
	d.cmd.Env = append(os.Environ(), env...)
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(d.done)
		d.code = exitCodeOf(d.cmd.Wait())
	}()
	t.Cleanup(d.kill)
	return d
}

func exitCodeOf(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	default:
		return -1
	}
}

// kill SIGKILLs the daemon if it still runs, and waits for it.
func (d *daemonProc) kill() {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Kill()
	<-d.done
}

// stop sends sig and returns the exit code.
func (d *daemonProc) stop(sig syscall.Signal) int {
	d.t.Helper()
	_ = d.cmd.Process.Signal(sig)
	return d.wait()
}

// wait returns the exit code once the daemon has exited.
func (d *daemonProc) wait() int {
	d.t.Helper()
	select {
	case <-d.done:
		return d.code
	case <-time.After(deadline):
		d.t.Fatalf("daemon did not exit\nstderr:\n%s", d.stderr.String())
		return -1
	}
}

// waitHealthy polls GET /healthz on the socket.
func waitHealthy(sock string, exited <-chan struct{}) error {
	hc := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", sock)
		}},
	}
	defer hc.CloseIdleConnections()
	end := time.Now().Add(deadline)
	for time.Now().Before(end) {
		select {
		case <-exited:
			return errors.New("the daemon exited")
		default:
		}
		resp, err := hc.Get("http://shipote/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("timed out")
}

// result is one CLI run.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
}

func (r result) String() string {
	return fmt.Sprintf("shipote %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// run runs the CLI against the daemon's socket.
func (d *daemonProc) run(t *testing.T, args ...string) result {
	t.Helper()
	return runCLI(t, append([]string{"--socket", d.sock}, args...)...)
}

// runCLI runs the binary with args.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return result{args: args, stdout: out.String(), stderr: errOut.String(), code: exitCodeOf(err)}
}

// ok runs the CLI and requires exit 0.
func (d *daemonProc) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := d.run(t, args...)
	if r.code != 0 {
		t.Fatalf("%s\ndaemon stderr (tail):\n%s", r, tail(d.stderr.String(), 3000))
	}
	return r.stdout
}

// id runs a CLI command that prints an ID alone and returns it.
func (d *daemonProc) id(t *testing.T, args ...string) string {
	t.Helper()
	out := d.ok(t, args...)
	id := strings.TrimSuffix(out, "\n")
	if !ulidRE.MatchString(id) || strings.Count(out, "\n") != 1 {
		t.Fatalf("shipote %s: want an ID alone on stdout, got %q", strings.Join(args, " "), out)
	}
	return id
}

// getJSON runs a CLI command with -o json and decodes its output.
func getJSON[T any](t *testing.T, d *daemonProc, args ...string) T {
	t.Helper()
	var v T
	out := d.ok(t, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("shipote %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
	return v
}

// poll calls f until it returns true, failing after deadline.
func poll(t *testing.T, what string, f func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !f() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// seqBytes is the size of `seq 1 n`'s output.
func seqBytes(n int) uint64 {
	var total uint64
	for i := 1; i <= n; i++ {
		total += uint64(len(strconv.Itoa(i)) + 1)
	}
	return total
}

const fanoutYAML = `label: fan
nodes:
  - {label: gen,   payload: {native: {exec: seq, argv: ["1", "200000"]}}}
  - {label: count, payload: {native: {exec: wc, argv: ["-l"]}}}
  - {label: hash,  payload: {native: {exec: sha256sum}}}
edges:
  - {from: gen, to: count}
  - {from: gen, to: hash}
`

// slowYAML runs for about 4 s, printing a numbered line every 20 ms.
const slowYAML = `label: slow
nodes:
  - {label: gen, payload: {native: {exec: /bin/sh, argv: ["-c", "i=0; while [ $i -lt 200 ]; do i=$((i+1)); echo line $i; sleep 0.02; done"]}}}
  - {label: cnt, payload: {native: {exec: wc, argv: ["-l"]}}}
edges:
  - {from: gen, to: cnt}
`

func pipelineEnded(t *testing.T, d *daemonProc, run string) messages.PipelineInfo {
	t.Helper()
	var p messages.PipelineInfo
	poll(t, "pipeline "+run+" to end", func() bool {
		p = getJSON[messages.PipelineInfo](t, d, "pipe", "show", run)
		return p.State.Ended()
	})
	return p
}

func channel(p messages.PipelineInfo, from, to string) (messages.ChannelInfo, bool) {
	for _, s := range p.Splitters {
		for _, c := range s.Channels {
			if c.From == from && c.To == to && !c.Tap {
				return c, true
			}
		}
	}
	return messages.ChannelInfo{}, false
}

// TestE2EWorkflow drives one daemon through every client command.
func TestE2EWorkflow(t *testing.T) {
	dir := shortDir(t)
	d := startDaemon(t, filepath.Join(dir, "s.sock"), filepath.Join(t.TempDir(), "state.json"), newParent(t))

	wsID := d.id(t, "ws", "create", "--label", "e2e", "--mem", "256M", "--pids", "64", "--ttl", "10m",
		"--env", "GREETING=hi")
	helloID := d.id(t, "exec", "e2e", "--label", "hello", "--env", "WHO=world", "--",
		"/bin/sh", "-c", `echo "$GREETING $WHO"; echo oops >&2`)
	d.id(t, "exec", "e2e", "--label", "sleeper", "--restart", "on-failure", "--backoff", "100ms", "--", "sleep", "60")

	t.Run("ps", func(t *testing.T) {
		poll(t, "hello to exit and sleeper to run", func() bool {
			cmds := getJSON[[]messages.CommandInfo](t, d, "ps", "e2e")
			var helloDone, sleeping bool
			for _, c := range cmds {
				switch c.Label {
				case "hello":
					helloDone = c.ID == helloID && c.State == messages.CommandExited && c.ExitCode != nil && *c.ExitCode == 0
				case "sleeper":
					sleeping = c.Alive() && c.Pid > 0
				}
			}
			return helloDone && sleeping
		})
		out := d.ok(t, "ps")
		for _, want := range []string{"ID", "WORKSPACE", "LABEL", "PID", "STATE", "RESTARTS", "UPTIME", "hello", "sleeper", "e2e"} {
			if !strings.Contains(out, want) {
				t.Errorf("ps: no %q in\n%s", want, out)
			}
		}
	})

	t.Run("logs", func(t *testing.T) {
		if out := d.ok(t, "logs", "e2e/hello"); !strings.Contains(out, "hi world\n") || !strings.Contains(out, "oops\n") {
			t.Errorf("logs e2e/hello = %q", out)
		}
		if out := d.ok(t, "logs", "e2e/"+helloID, "--stream", "err"); out != "oops\n" {
			t.Errorf("logs --stream err = %q, want only oops", out)
		}
		if out := d.ok(t, "logs", "e2e/hello", "--tail", "1", "--since", "10m"); strings.Count(out, "\n") != 1 {
			t.Errorf("logs --tail 1 = %q", out)
		}
		if out := d.ok(t, "logs", "e2e"); !strings.Contains(out, "hello   | hi world") {
			t.Errorf("logs e2e (every command) = %q", out)
		}
	})

	t.Run("ws ls and show", func(t *testing.T) {
		list := getJSON[[]messages.WorkspaceInfo](t, d, "ws", "ls")
		if len(list) != 1 || list[0].ID != wsID || list[0].Spec.Label != "e2e" || list[0].Spec.Soma.MemoryMaxBytes != 256<<20 {
			t.Fatalf("ws ls -o json = %+v", list)
		}
		out := d.ok(t, "ws", "ls")
		if !strings.Contains(out, "TTL LEFT") || !strings.Contains(out, wsID) {
			t.Errorf("ws ls = %q", out)
		}
		info := getJSON[messages.WorkspaceInfo](t, d, "ws", "show", "e2e")
		if info.ID != wsID || info.Spec.TTLMs != 600000 || info.Spec.Permissions.Env["GREETING"] != "hi" {
			t.Errorf("ws show -o json = %+v", info)
		}
		poll(t, "two stats samples", func() bool {
			return len(getJSON[[]messages.Sample](t, d, "stats", "e2e")) >= 2
		})
		out = d.ok(t, "ws", "show", wsID)
		for _, want := range []string{"Label:        e2e", "memory 256M, pids 64", "RSS history:", "CPU history:"} {
			if !strings.Contains(out, want) {
				t.Errorf("ws show: no %q in\n%s", want, out)
			}
		}
	})

	dir2 := t.TempDir()
	fanFile := writeFile(t, dir2, "fan.yaml", fanoutYAML)
	want := seqBytes(200000)

	t.Run("pipe run and show", func(t *testing.T) {
		run := d.id(t, "pipe", "run", "e2e", "-f", fanFile)
		p := pipelineEnded(t, d, run)
		if p.State != messages.PipelineSucceeded {
			t.Fatalf("pipeline state %s: %+v", p.State, p)
		}
		for _, to := range []string{"count", "hash"} {
			ch, ok := channel(p, "gen", to)
			if !ok || ch.BytesTotal != want || ch.DroppedBytes != 0 {
				t.Errorf("channel gen → %s = %+v (found %v), want %d bytes", to, ch, ok, want)
			}
		}
		if out := d.ok(t, "logs", "e2e/fan/count"); strings.TrimSpace(out) != "200000" {
			t.Errorf("count's output = %q", out)
		}
		out := d.ok(t, "pipe", "show", run)
		for _, w := range []string{"gen → count", "gen → hash", "succeeded", "NODE", "RATE"} {
			if !strings.Contains(out, w) {
				t.Errorf("pipe show: no %q in\n%s", w, out)
			}
		}
		runs := getJSON[[]messages.PipelineInfo](t, d, "pipe", "ls")
		if len(runs) == 0 {
			t.Error("pipe ls -o json: empty")
		}
	})

	t.Run("tap", func(t *testing.T) {
		slowFile := writeFile(t, dir2, "slow.yaml", slowYAML)
		run := d.id(t, "pipe", "run", "e2e", "-f", slowFile)
		r := d.run(t, "tap", run, "--node", "gen")
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) < 10 || lines[len(lines)-1] != "line 200" {
			t.Fatalf("tap got %d lines, last %q; want the stream up to line 200", len(lines), lines[len(lines)-1])
		}
		// What the tap saw is a contiguous run of the node's output.
		first, err := strconv.Atoi(strings.TrimPrefix(lines[0], "line "))
		if err != nil {
			t.Fatalf("first tap line %q", lines[0])
		}
		for i, l := range lines {
			if l != fmt.Sprintf("line %d", first+i) {
				t.Fatalf("tap line %d = %q, want line %d", i, l, first+i)
			}
		}
		p := pipelineEnded(t, d, run)
		if p.State != messages.PipelineSucceeded {
			t.Errorf("slow pipeline: %s", p.State)
		}
	})

	t.Run("pipe save and start", func(t *testing.T) {
		if out := d.ok(t, "pipe", "save", "fan-saved", "-f", fanFile); out != "" {
			t.Errorf("pipe save printed %q", out)
		}
		saved := getJSON[[]actors.SavedPipeline](t, d, "pipe", "ls", "--saved")
		if len(saved) != 1 || saved[0].Name != "fan-saved" || len(saved[0].Spec.Nodes) != 3 {
			t.Fatalf("pipe ls --saved = %+v", saved)
		}
		run := d.id(t, "pipe", "start", "fan-saved", "--ws", "e2e")
		p := pipelineEnded(t, d, run)
		if ch, _ := channel(p, "gen", "hash"); p.State != messages.PipelineSucceeded || ch.BytesTotal != want {
			t.Errorf("started saved pipeline: %s, gen → hash %d bytes", p.State, ch.BytesTotal)
		}
	})

	t.Run("pipe stop", func(t *testing.T) {
		slowFile := writeFile(t, dir2, "slow2.yaml", strings.Replace(slowYAML, "label: slow", "label: slow2", 1))
		run := d.id(t, "pipe", "run", "e2e", "-f", slowFile)
		out := d.ok(t, "pipe", "stop", run)
		if out != run+" stopped\n" {
			t.Errorf("pipe stop = %q", out)
		}
	})

	t.Run("stats events snapshot version top", func(t *testing.T) {
		if out := d.ok(t, "stats", "e2e"); !strings.Contains(out, "RSS") || !strings.Contains(out, "SOURCE") {
			t.Errorf("stats = %q", out)
		}
		evs := getJSON[[]messages.Event](t, d, "events")
		kinds := make(map[messages.EventKind]bool)
		for _, e := range evs {
			kinds[e.Kind] = true
		}
		for _, k := range []messages.EventKind{messages.EventCreated, messages.EventStarted, messages.EventExited} {
			if !kinds[k] {
				t.Errorf("events: no %q event in %v", k, kinds)
			}
		}
		if out := d.ok(t, "snapshot", "save"); !strings.Contains(out, d.state) {
			t.Errorf("snapshot save = %q", out)
		}
		st := getJSON[persistence.State](t, d, "snapshot", "show")
		if len(st.Workspaces) != 1 || st.Workspaces[0].ID != wsID || len(st.SavedPipelines) != 1 {
			t.Errorf("snapshot show -o json = %+v", st)
		}
		if out := d.ok(t, "version"); !strings.Contains(out, "client: shipote") || !strings.Contains(out, "daemon: shipote") {
			t.Errorf("version = %q", out)
		}
		if out := d.ok(t, "top", "-n", "1"); !strings.Contains(out, "e2e") || !strings.Contains(out, "pipeline e2e/fan") {
			t.Errorf("top -n 1 = %q", out)
		}
	})

	t.Run("ws rm", func(t *testing.T) {
		if out := d.id(t, "ws", "rm", "e2e", "--grace", "1s"); out != wsID {
			t.Errorf("ws rm printed %s, want %s", out, wsID)
		}
		if list := getJSON[[]messages.WorkspaceInfo](t, d, "ws", "ls"); len(list) != 0 {
			t.Errorf("after ws rm: %+v", list)
		}
	})

	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("daemon exit %d after SIGTERM\n%s", code, tail(d.stderr.String(), 3000))
	}
}

// TestE2EBadInput checks SPEC §5 end to end: every bad input gets exit 1
// (2 for usage) and a "shipote: " message naming the problem, and changes
// nothing.
func TestE2EBadInput(t *testing.T) {
	dir := shortDir(t)
	d := startDaemon(t, filepath.Join(dir, "s.sock"), filepath.Join(t.TempDir(), "state.json"), newParent(t))
	d.id(t, "ws", "create", "--label", "dup")
	d.id(t, "ws", "create", "--label", "locked", "--allow-exec", "/bin/true")
	d.id(t, "exec", "dup", "--label", "c1", "--", "true")
	files := t.TempDir()
	file := func(name, content string) string { return writeFile(t, files, name, content) }
	long := strings.Repeat("a", 65)

	state := func() string {
		ws := d.ok(t, "ws", "ls", "-o", "json")
		var list []messages.WorkspaceInfo
		if err := json.Unmarshal([]byte(ws), &list); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, w := range list {
			fmt.Fprintf(&b, "%s %s %d; ", w.ID, w.Spec.Label, w.CommandsTotal)
		}
		b.WriteString(d.ok(t, "pipe", "ls", "--saved", "-o", "json"))
		fmt.Fprintf(&b, "runs=%d", len(getJSON[[]messages.PipelineInfo](t, d, "pipe", "ls")))
		return b.String()
	}
	before := state()

	pipeN := 0
	pipe := func(body string) string {
		pipeN++
		return file(fmt.Sprintf("p%d.yaml", pipeN), "label: p\nnodes:\n"+
			"  - {label: a, payload: {native: {exec: seq, argv: ['3']}}}\n"+
			"  - {label: b, payload: {native: {exec: cat}}}\n"+
			"  - {label: c, payload: {native: {exec: cat}}}\n"+body)
	}
	cases := []struct {
		name string
		args []string
		code int
		msg  string // in stderr, after "shipote: "
	}{
		{"malformed JSON", []string{"ws", "create", "-f", file("bad.json", `{"label": "x",`)}, 1, "malformed"},
		{"malformed YAML", []string{"ws", "create", "-f", file("bad.yaml", "label: [x\n")}, 1, "malformed"},
		{"unknown field", []string{"ws", "create", "-f", file("unknown.yaml", "label: x\ncolour: red\n")}, 1, `unknown field "colour"`},
		{"unknown nested field", []string{"pipe", "run", "dup", "-f", pipe("edges: [{from: a, to: b, speed: 3}]\n")}, 1, `unknown field "edges[0].speed"`},
		{"empty label", []string{"ws", "create", "--label", ""}, 1, "label: must not be empty"},
		{"over-long label", []string{"ws", "create", "--label", long}, 1, "at most 64"},
		{"bad label characters", []string{"ws", "create", "--label", "a/b"}, 1, "outside [A-Za-z0-9._-]"},
		{"dot label", []string{"ws", "create", "--label", ".."}, 1, `".." is not allowed`},
		{"duplicate label", []string{"ws", "create", "--label", "dup"}, 1, "dup"},
		{"relative exec", []string{"exec", "dup", "--", "./run.sh"}, 1, "relative path"},
		{"refused exec", []string{"exec", "locked", "--", "/bin/sh", "-c", "true"}, 1, "/bin/sh"},
		{"negative size in a file", []string{"ws", "create", "-f", file("neg.yaml", "label: neg\nsoma: {memory_max_bytes: -1}\n")}, 1, "soma.memory_max_bytes: must be >= 0"},
		{"negative size flag", []string{"ws", "create", "--label", "neg", "--mem", "-1G"}, 2, `negative size "-1G"`},
		{"bad size flag", []string{"ws", "create", "--label", "neg", "--mem", "12X"}, 2, `invalid size "12X"`},
		{"negative cpu", []string{"ws", "create", "--label", "neg", "--cpu", "-1"}, 2, "--cpu"},
		{"cycle", []string{"pipe", "run", "dup", "-f", pipe("edges: [{from: b, to: c}, {from: c, to: b}]\n")}, 1, "cycle b -> c -> b"},
		{"unknown node", []string{"pipe", "run", "dup", "-f", pipe("edges: [{from: a, to: b}, {from: a, to: hsah}]\n")}, 1, `edges[1].to: no node "hsah"`},
		{"fan-in", []string{"pipe", "run", "dup", "-f", pipe("edges: [{from: a, to: c}, {from: b, to: c}]\n")}, 1, "fan-in"},
		{"self edge", []string{"pipe", "run", "dup", "-f", pipe("edges: [{from: a, to: a}]\n")}, 1, "self-edge"},
		{"pipeline into unknown workspace", []string{"pipe", "run", "nosuch", "-f", pipe("edges: [{from: a, to: b}]\n")}, 1, "not found"},
		{"save with a bad name", []string{"pipe", "save", "a/b", "-f", pipe("")}, 1, "outside [A-Za-z0-9._-]"},
		{"unknown workspace ID", []string{"ws", "show", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, 1, "not found"},
		{"unknown workspace label", []string{"ws", "rm", "nosuch"}, 1, "not found"},
		{"unknown command", []string{"logs", "dup/nosuch"}, 1, "not found"},
		{"unknown run", []string{"pipe", "show", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, 1, "not found"},
		{"unknown run stop", []string{"pipe", "stop", "nosuch"}, 1, "not found"},
		{"unknown saved pipeline", []string{"pipe", "start", "nosuch", "--ws", "dup"}, 1, "not found"},
		{"tap unknown run", []string{"tap", "nosuch"}, 1, "not found"},
		{"stats unknown workspace", []string{"stats", "nosuch"}, 1, "not found"},
		{"missing file", []string{"pipe", "run", "dup", "-f", filepath.Join(files, "nope.yaml")}, 1, "no such file"},
		// Usage errors: exit 2.
		{"missing --label", []string{"ws", "create"}, 2, "--label"},
		{"unknown flag", []string{"ws", "ls", "--bogus"}, 2, "unknown flag: --bogus"},
		{"bad output format", []string{"ws", "ls", "-o", "yaml"}, 2, `"yaml" is not one of json`},
		{"missing argument", []string{"ws", "show"}, 2, "missing WS"},
		{"extra argument", []string{"ws", "ls", "x"}, 2, `unexpected argument "x"`},
		{"exec without a command", []string{"exec", "dup"}, 2, "missing the command"},
		{"bad restart policy", []string{"exec", "dup", "--restart", "sometimes", "--", "true"}, 2, `"sometimes" is not one of`},
		{"backoff without restart", []string{"exec", "dup", "--backoff", "1s", "--", "true"}, 2, "--backoff needs --restart"},
		{"bad env", []string{"exec", "dup", "--env", "NOVALUE", "--", "true"}, 2, "not K=V"},
		{"unknown command word", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"unknown subcommand", []string{"ws", "frobnicate"}, 2, `unknown command "frobnicate"`},
		{"pipe run without -f", []string{"pipe", "run", "dup"}, 2, "-f/--file"},
		{"pipe start without --ws", []string{"pipe", "start", "x"}, 2, "--ws"},
		{"bad duration", []string{"logs", "dup", "--since", "soon"}, 2, "is not a duration"},
		{"bad stream", []string{"logs", "dup", "--stream", "both"}, 2, `"both" is not one of`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := d.run(t, tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, tc.code, r)
			}
			if !strings.HasPrefix(r.stderr, "shipote: ") || !strings.Contains(r.stderr, tc.msg) {
				t.Errorf("stderr %q: want a \"shipote: \" message with %q", r.stderr, tc.msg)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
	if after := state(); after != before {
		t.Errorf("bad input changed the state:\nbefore %s\nafter  %s", before, after)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("daemon exit %d after SIGTERM", code)
	}
}

// TestE2EUnreachable checks exit 3 when no daemon answers.
func TestE2EUnreachable(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "s.sock")
	for _, args := range [][]string{{"ws", "ls"}, {"ws", "create", "--label", "x"}, {"ps"}, {"events", "-f"}} {
		r := runCLI(t, append([]string{"--socket", sock}, args...)...)
		if r.code != 3 || !strings.HasPrefix(r.stderr, "shipote: ") || !strings.Contains(r.stderr, "not reachable") {
			t.Errorf("want exit 3 and a \"not reachable\" message\n%s", r)
		}
	}
	// A stale socket file with nothing listening: the same.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if r := runCLI(t, "--socket", sock, "ws", "ls"); r.code != 3 {
		t.Errorf("stale socket: %s", r)
	}
	// version still works and says so.
	if r := runCLI(t, "--socket", sock, "version"); r.code != 0 || !strings.Contains(r.stdout, "daemon: not reachable") {
		t.Errorf("version without a daemon: %s", r)
	}
}

// TestE2ERestart kills the daemon with SIGKILL and restarts it on the same
// state: workspaces, saved pipelines and supervised pipelines come back
// with the same IDs. A second daemon on the same state file is refused.
func TestE2ERestart(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "s.sock")
	state := filepath.Join(t.TempDir(), "state.json")
	parent := newParent(t)
	d := startDaemon(t, sock, state, parent)

	wsID := d.id(t, "ws", "create", "--label", "keep", "--ttl", "1h", "--mem", "128M")
	files := t.TempDir()
	d.ok(t, "pipe", "save", "saved1", "-f", writeFile(t, files, "fan.yaml", fanoutYAML))
	sup := writeFile(t, files, "sup.yaml", `label: forever
restart_on_failure: true
nodes:
  - {label: s, payload: {native: {exec: sleep, argv: ["300"]}}}
`)
	runID := d.id(t, "pipe", "run", "keep", "-f", sup)
	sleepPid := 0
	poll(t, "the supervised pipeline to run", func() bool {
		p := getJSON[messages.PipelineInfo](t, d, "pipe", "show", runID)
		if len(p.Nodes) == 1 && p.Nodes[0].Pid > 0 {
			sleepPid = p.Nodes[0].Pid
			return true
		}
		return false
	})

	if code := d.stop(syscall.SIGKILL); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("kill -9: exit %d", code)
	}
	// The daemon's children die with it.
	poll(t, "the pipeline's process to die with the daemon", func() bool {
		return syscall.Kill(sleepPid, 0) != nil
	})
	if r := runCLI(t, "--socket", sock, "ws", "ls"); r.code != 3 {
		t.Errorf("after kill -9: %s", r)
	}

	d2 := startDaemon(t, sock, state, parent)
	list := getJSON[[]messages.WorkspaceInfo](t, d2, "ws", "ls")
	if len(list) != 1 || list[0].ID != wsID || list[0].Spec.Label != "keep" || list[0].Spec.Soma.MemoryMaxBytes != 128<<20 {
		t.Fatalf("after restart, ws ls = %+v", list)
	}
	saved := getJSON[[]actors.SavedPipeline](t, d2, "pipe", "ls", "--saved")
	if len(saved) != 1 || saved[0].Name != "saved1" {
		t.Fatalf("after restart, saved pipelines = %+v", saved)
	}
	poll(t, "the supervised pipeline to be relaunched with its run ID", func() bool {
		p := getJSON[messages.PipelineInfo](t, d2, "pipe", "show", runID)
		return p.ID == runID && p.State == messages.PipelineRunning && len(p.Nodes) == 1 && p.Nodes[0].Pid > 0
	})

	// A second daemon on the same state file exits 1 with a clear message.
	other := launchDaemon(t, nil, filepath.Join(dir, "o.sock"), state, parent+"-other")
	if code := other.wait(); code != 1 {
		t.Errorf("second daemon on the same state: exit %d\n%s", code, other.stderr.String())
	}
	if s := other.stderr.String(); !strings.Contains(s, "shipote: ") || !strings.Contains(s, "another shipote daemon") {
		t.Errorf("second daemon's message: %s", s)
	}
	// A second daemon on the same socket too.
	other2 := launchDaemon(t, nil, sock, filepath.Join(t.TempDir(), "state.json"), parent+"-other2")
	if code := other2.wait(); code != 1 {
		t.Errorf("second daemon on the same socket: exit %d\n%s", code, other2.stderr.String())
	}
	if s := other2.stderr.String(); !strings.Contains(s, "in use") {
		t.Errorf("second daemon on the same socket: %s", s)
	}
	cmdutil.RemoveCgroupParent(parent + "-other")
	cmdutil.RemoveCgroupParent(parent + "-other2")
	// The first daemon still serves.
	d2.ok(t, "ws", "show", "keep")

	if code := d2.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("SIGTERM: exit %d\n%s", code, tail(d2.stderr.String(), 3000))
	}
	// Shutdown saved the supervised pipeline as live.
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	var st persistence.State
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.LivePipelines) != 1 || st.LivePipelines[0].ID != runID {
		t.Errorf("state after SIGTERM: live pipelines %+v", st.LivePipelines)
	}
}

// TestE2EStateTooNew checks that a state file from a newer shipote makes
// the daemon exit 2, leaving the file untouched.
func TestE2EStateTooNew(t *testing.T) {
	dir := shortDir(t)
	state := filepath.Join(t.TempDir(), "state.json")
	content := []byte(`{"version": 99, "workspaces": []}`)
	if err := os.WriteFile(state, content, 0o600); err != nil {
		t.Fatal(err)
	}
	d := launchDaemon(t, nil, filepath.Join(dir, "s.sock"), state, newParent(t))
	if code := d.wait(); code != 2 {
		t.Errorf("exit %d, want 2\n%s", code, d.stderr.String())
	}
	// One sentence, with the advice once and no usage hint (the log line
	// before it is the daemon's own).
	want := "shipote: state file " + state + " was written by a newer shipote (version 99; this one reads 1 to 4)" +
		" and was left untouched: upgrade shipote or start with another --state\n"
	if s := d.stderr.String(); !strings.HasSuffix(s, want) || strings.Contains(s, "--help") {
		t.Errorf("stderr:\n%s\nwant it to end with:\n%s", s, want)
	}
	if got, _ := os.ReadFile(state); !bytes.Equal(got, content) {
		t.Errorf("state file changed: %s", got)
	}
}

// TestE2ENotify checks sd_notify READY=1 on a path and an abstract socket.
func TestE2ENotify(t *testing.T) {
	dir := shortDir(t)
	for _, name := range []string{filepath.Join(dir, "notify"), "@shipote-e2e-notify-" + strconv.Itoa(os.Getpid())} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			sock := filepath.Join(dir, "s.sock")
			d := launchDaemon(t, []string{"NOTIFY_SOCKET=" + name}, sock, filepath.Join(t.TempDir(), "state.json"), newParent(t))
			conn.SetReadDeadline(time.Now().Add(deadline))
			buf := make([]byte, 512)
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("no notification: %v\n%s", err, d.stderr.String())
			}
			if !strings.HasPrefix(string(buf[:n]), "READY=1") {
				t.Errorf("notification %q", buf[:n])
			}
			// Ready means serving.
			if r := runCLI(t, "--socket", sock, "ws", "ls"); r.code != 0 {
				t.Errorf("after READY=1: %s", r)
			}
			if code := d.stop(syscall.SIGINT); code != 0 {
				t.Errorf("SIGINT: exit %d", code)
			}
		})
	}
}

// TestE2EUp runs the demo file, a bad file and an interrupted run.
func TestE2EUp(t *testing.T) {
	t.Run("demo", func(t *testing.T) {
		r := runCLI(t, "up", filepath.Join("..", "..", "examples", "demo.yaml"))
		if r.code != 0 {
			t.Fatalf("%s", r)
		}
		for _, want := range []string{"pipeline demo/fanout: succeeded", "gen → count: 14888896 bytes",
			"count: 2000000", "command demo/clock: exited (0)"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("no %q in\n%s", want, r.stdout)
			}
		}
	})
	t.Run("bad file", func(t *testing.T) {
		f := writeFile(t, t.TempDir(), "bad.yaml", `workspaces:
  - label: w
    pipelines:
      - label: p
        nodes: [{label: a, payload: {native: {exec: seq, argv: ["3"]}}}]
        edges: [{from: a, to: x}]
`)
		r := runCLI(t, "up", f)
		if r.code != 1 || !strings.Contains(r.stderr, `shipote: `) ||
			!strings.Contains(r.stderr, `workspaces[0].pipelines[0].edges[0].to: no node "x"`) {
			t.Errorf("%s", r)
		}
	})
	t.Run("failing pipeline", func(t *testing.T) {
		f := writeFile(t, t.TempDir(), "fail.yaml", `workspaces:
  - label: w
    pipelines:
      - label: p
        nodes: [{label: a, payload: {native: {exec: "false"}}}]
`)
		r := runCLI(t, "up", f)
		if r.code != 1 || !strings.Contains(r.stderr, "pipeline w/p (failed)") {
			t.Errorf("%s", r)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		f := writeFile(t, t.TempDir(), "long.yaml", `workspaces:
  - label: w
    commands:
      - {label: long, payload: {native: {exec: sleep, argv: ["300"]}}}
`)
		cmd := exec.Command(bin, "up", f, "--grace", "1s")
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		poll(t, "the command to start", func() bool { return strings.Contains(out.String(), "started") })
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan int, 1)
		go func() { done <- exitCodeOf(cmd.Wait()) }()
		select {
		case code := <-done:
			if code != 130 {
				t.Errorf("exit %d, want 130\n%s", code, out.String())
			}
		case <-time.After(deadline):
			cmd.Process.Kill()
			<-done
			t.Fatalf("up did not end after SIGINT\n%s", out.String())
		}
		if !strings.Contains(out.String(), "command w/long:") {
			t.Errorf("no summary:\n%s", out.String())
		}
	})
}

// TestE2ECorruptState checks that a state file that does not parse is
// moved aside, reported loudly, and the daemon starts empty.
func TestE2ECorruptState(t *testing.T) {
	dir := shortDir(t)
	stateDir := t.TempDir()
	state := filepath.Join(stateDir, "state.json")
	if err := os.WriteFile(state, []byte(`{"version": 4, "workspaces": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, filepath.Join(dir, "s.sock"), state, newParent(t))
	if list := getJSON[[]messages.WorkspaceInfo](t, d, "ws", "ls"); len(list) != 0 {
		t.Errorf("ws ls = %+v, want empty", list)
	}
	moved, _ := filepath.Glob(state + ".corrupt-*")
	if len(moved) != 1 {
		t.Errorf("moved aside: %v", moved)
	}
	if s := d.stderr.String(); !strings.Contains(s, "CORRUPT") || (len(moved) == 1 && !strings.Contains(s, moved[0])) {
		t.Errorf("no loud report in\n%s", s)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
}
