package shipote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shipote/shipote/messages"
)

func TestMain(m *testing.M) {
	switch os.Getenv("SHIPOTE_TEST_HELPER") {
	case "embed":
		embedHelper()
		return
	case "serve":
		serveHelper()
		return
	}
	// protoactor's dead-letter throttle parks a goroutine for one period
	// (1 s) after a dead letter; it ends by itself.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// embedHelper runs an engine with one long-running command, prints the
// command's pid and waits to be killed.
func embedHelper() {
	eng, err := Start(context.Background(), NewActorSystem(nil), Config{Limits: "none"})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ctx := context.Background()
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "victim"})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	c, err := eng.Exec(ctx, ws.ID, native("sleep", "1000"))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("pid", c.Pid)
	select {}
}

func native(exec string, argv ...string) messages.CommandRef {
	return messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: exec, Argv: argv}}}
}

func startEngine(t *testing.T, cfg Config) *Engine {
	t.Helper()
	if cfg.Limits == "" {
		cfg.Limits = "none"
	}
	if cfg.Grace == 0 {
		cfg.Grace = 2 * time.Second
	}
	eng, err := Start(context.Background(), NewActorSystem(nil), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := eng.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return eng
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 20 ms until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	// A zombie is dead for our purpose.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func TestStdoutReachesLog(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "logs",
		Permissions: messages.Permissions{Env: map[string]string{"WHO": "world"}}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := eng.Exec(ctx, ws.ID, native("sh", "-c", `echo "hello $WHO"; echo oops >&2; printf partial`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Label != "sh" {
		t.Errorf("derived label = %q, want sh", c.Label)
	}
	var lines []messages.LogLine
	eventually(t, 10*time.Second, "three log lines", func() bool {
		lines, err = eng.Logs(ctx, "logs", c.ID, LogQuery{})
		return err == nil && len(lines) == 3
	})
	got := map[string]messages.Stream{}
	for _, l := range lines {
		got[l.Line] = l.Stream
	}
	want := map[string]messages.Stream{"hello world": messages.Stdout, "oops": messages.Stderr, "partial": messages.Stdout}
	for line, s := range want {
		if got[line] != s {
			t.Errorf("line %q: stream %q, want %q (all: %v)", line, got[line], s, lines)
		}
	}
	errOnly, _ := eng.Logs(ctx, "logs", "sh", LogQuery{Stream: messages.Stderr})
	if len(errOnly) != 1 || errOnly[0].Line != "oops" {
		t.Errorf("stderr only = %v", errOnly)
	}
	eventually(t, 10*time.Second, "exited state", func() bool {
		ci, err := eng.Command(ctx, "logs", "sh")
		return err == nil && ci.State == messages.CommandExited && ci.ExitCode != nil && *ci.ExitCode == 0
	})
}

func TestEnvironmentIsOnlyDeclared(t *testing.T) {
	t.Setenv("SHIPOTE_SECRET_OF_DAEMON", "leak")
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "env",
		Permissions: messages.Permissions{Env: map[string]string{"A": "1"}, Workdir: "/tmp"}}); err != nil {
		t.Fatal(err)
	}
	ref := native("sh", "-c", "env | sort; pwd")
	ref.Payload.Native.Envp = []string{"B=2"}
	if _, err := eng.Exec(ctx, "env", ref); err != nil {
		t.Fatal(err)
	}
	var text string
	eventually(t, 10*time.Second, "env output", func() bool {
		lines, _ := eng.Logs(ctx, "env", "sh", LogQuery{})
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(l.Line + "\n")
		}
		text = b.String()
		return strings.Contains(text, "/tmp\n")
	})
	for _, want := range []string{"A=1\n", "B=2\n", "PATH=" + messages.DefaultPath + "\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
	if strings.Contains(text, "SHIPOTE_SECRET_OF_DAEMON") {
		t.Errorf("daemon environment leaked:\n%s", text)
	}
}

func TestRestartBackoffDoublesAndGivesUp(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	sub := eng.Events(256)
	defer sub.Cancel()
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "crash"}); err != nil {
		t.Fatal(err)
	}
	ref := native("sh", "-c", "exit 7")
	ref.Label = "crasher"
	ref.Supervision.Restart = &messages.RestartPolicy{BackoffMs: 100, MaxBackoffMs: 1000, Max: 3}
	if _, err := eng.Exec(ctx, "crash", ref); err != nil {
		t.Fatal(err)
	}
	var exits, starts []time.Time
	timeout := time.After(30 * time.Second)
loop:
	for {
		select {
		case ev := <-sub.C:
			if ev.Command != "crasher" {
				continue
			}
			switch ev.Kind {
			case messages.EventExited:
				exits = append(exits, ev.Time)
			case messages.EventRestarted:
				starts = append(starts, ev.Time)
			case messages.EventGaveUp:
				break loop
			}
		case <-timeout:
			t.Fatalf("no gave_up event; exits %d restarts %d", len(exits), len(starts))
		}
	}
	if len(starts) != 3 || len(exits) != 4 {
		t.Fatalf("restarts %d exits %d, want 3 and 4", len(starts), len(exits))
	}
	for i, want := range []time.Duration{100, 200, 400} {
		gap := starts[i].Sub(exits[i])
		if gap < want*time.Millisecond {
			t.Errorf("restart %d came %v after the exit, want >= %v", i+1, gap, want*time.Millisecond)
		}
	}
	c, err := eng.Command(ctx, "crash", "crasher")
	if err != nil {
		t.Fatal(err)
	}
	if c.State != messages.CommandFailed || !c.GaveUp || c.Restarts != 3 || c.ExitCode == nil || *c.ExitCode != 7 {
		t.Errorf("final command = %+v", c)
	}
}

func TestRestartAlwaysAndBackoffReset(t *testing.T) {
	// nextBackoff is the policy: first<<streak capped, reset after a long run.
	streak := 0
	b := func() (int64, int64) { return 100, 400 }
	var got []time.Duration
	for range 5 {
		got = append(got, nextBackoffForTest(b, &streak, 10*time.Millisecond))
	}
	want := []time.Duration{100, 200, 400, 400, 400}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("backoffs %v, want %v ms", got, want)
		}
	}
	if d := nextBackoffForTest(b, &streak, time.Second); d != 100*time.Millisecond {
		t.Errorf("after a long run the backoff is %v, want 100ms", d)
	}
}

func TestGrandchildDoesNotSurviveRemoval(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "tree"}); err != nil {
		t.Fatal(err)
	}
	// The parent starts a grandchild that ignores SIGTERM and prints its
	// pid (the host's, read from /proc/self: $! would be the one in the
	// engine's PID namespace), and exits at once.
	if _, err := eng.Exec(ctx, "tree", native("sh", "-c", `sh -c 'trap "" TERM; read -r pid rest </proc/self/stat; echo $pid; sleep 1000' &`)); err != nil {
		t.Fatal(err)
	}
	gpid := waitPidLine(t, eng, "tree", "sh")
	eventually(t, 10*time.Second, "parent exited", func() bool {
		c, err := eng.Command(ctx, "tree", "sh")
		return err == nil && c.State.Ended()
	})
	if !alive(gpid) {
		t.Fatalf("grandchild %d is not running before the removal", gpid)
	}
	if _, err := eng.RemoveWorkspace(ctx, "tree", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "grandchild gone", func() bool { return !alive(gpid) })
	if _, err := eng.Workspace(ctx, "tree"); !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("workspace still there: %v", err)
	}
}

func waitPidLine(t *testing.T, eng *Engine, ws, cmd string) int {
	t.Helper()
	var pid int
	eventually(t, 10*time.Second, "a pid in the log", func() bool {
		lines, _ := eng.Logs(context.Background(), ws, cmd, LogQuery{})
		for _, l := range lines {
			if n, err := strconv.Atoi(strings.TrimSpace(l.Line)); err == nil {
				pid = n
				return true
			}
		}
		return false
	})
	return pid
}

func TestBadInputNamesTheField(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "guarded",
		Permissions: messages.Permissions{AllowExec: []string{"/usr/bin/true", "/usr/bin/sleep"}}}); err != nil {
		t.Fatal(err)
	}
	wsCases := []struct {
		name  string
		spec  messages.WorkspaceSpec
		field string
	}{
		{"empty label", messages.WorkspaceSpec{}, "label"},
		{"dot label", messages.WorkspaceSpec{Label: ".."}, "label"},
		{"negative memory", messages.WorkspaceSpec{Label: "x", Soma: messages.Soma{MemoryMaxBytes: -1}}, "soma.memory_max_bytes"},
		{"relative workdir", messages.WorkspaceSpec{Label: "x", Permissions: messages.Permissions{Workdir: "tmp"}}, "permissions.workdir"},
		{"bad on_exit", messages.WorkspaceSpec{Label: "x", OnExit: "never"}, "on_exit"},
		{"negative ttl", messages.WorkspaceSpec{Label: "x", TTLMs: -5}, "ttl_ms"},
	}
	for _, tc := range wsCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := eng.CreateWorkspace(ctx, tc.spec)
			var fe *messages.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("err = %v, want a FieldError on %s", err, tc.field)
			}
		})
	}
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "guarded"}); !errors.Is(err, messages.ErrConflict) {
		t.Errorf("duplicate label: %v", err)
	}
	cmdCases := []struct {
		name  string
		ref   messages.CommandRef
		field string
		is    error
	}{
		{"refused exec", native("/usr/bin/env"), "payload.native.exec", messages.ErrRefused},
		{"refused bare name", native("env"), "payload.native.exec", messages.ErrRefused},
		{"relative exec", native("./run.sh"), "payload.native.exec", messages.ErrInvalid},
		{"missing exec", native("no-such-binary-xyz"), "payload.native.exec", nil},
		{"no payload", messages.CommandRef{Label: "x"}, "payload.native", messages.ErrInvalid},
		{"bad envp", messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: "true", Envp: []string{"NOEQUALS"}}}}, "payload.native.envp[0]", messages.ErrInvalid},
	}
	for _, tc := range cmdCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := eng.Exec(ctx, "guarded", tc.ref)
			var fe *messages.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("err = %v, want a FieldError on %s", err, tc.field)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want it to wrap %v", err, tc.is)
			}
		})
	}
	if cmds, _ := eng.Commands(ctx, "guarded"); len(cmds) != 0 {
		t.Errorf("refused commands were recorded: %+v", cmds)
	}
	if _, err := eng.Exec(ctx, "nope", native("true")); !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("unknown workspace: %v", err)
	}
}

// TestAllowExecChecksTheResolvedPath: a link inside an allowed directory
// that points outside it is refused (for a command and a pipeline node);
// an allowed file reached through a link elsewhere runs.
func TestAllowExecChecksTheResolvedPath(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	dir, elsewhere := t.TempDir(), t.TempDir()
	if err := os.Symlink("/bin/echo", filepath.Join(dir, "e")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/bin/sha256sum", filepath.Join(elsewhere, "sum")); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "ae2",
		Permissions: messages.Permissions{AllowExec: []string{"/usr/bin/sha256sum", dir + "/"}}}); err != nil {
		t.Fatal(err)
	}
	_, err := eng.Exec(ctx, "ae2", native(filepath.Join(dir, "e"), "escaped"))
	if !errors.Is(err, messages.ErrRefused) || !strings.Contains(err.Error(), "echo") {
		t.Fatalf("exec through a link out of the allowed directory: %v, want a refusal", err)
	}
	_, err = eng.RunPipeline(ctx, "ae2", messages.PipelineSpec{Label: "p", Nodes: []messages.Node{
		{Label: "a", Payload: native(filepath.Join(dir, "e"), "x").Payload}}}, false)
	if !errors.Is(err, messages.ErrRefused) {
		t.Fatalf("pipeline node through the link: %v, want a refusal", err)
	}
	c, err := eng.Exec(ctx, "ae2", native(filepath.Join(elsewhere, "sum"), "/dev/null"))
	if err != nil {
		t.Fatalf("allowed file through a link elsewhere: %v", err)
	}
	eventually(t, 15*time.Second, "sha256sum exited 0", func() bool {
		info, err := eng.Command(ctx, "ae2", c.ID)
		return err == nil && info.State == messages.CommandExited && info.ExitCode != nil && *info.ExitCode == 0
	})
}

func TestTTLRemovesWorkspaceAndProcesses(t *testing.T) {
	eng := startEngine(t, Config{Grace: 200 * time.Millisecond})
	ctx := testCtx(t)
	sub := eng.Events(64)
	defer sub.Cancel()
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "brief", TTLMs: 1000}); err != nil {
		t.Fatal(err)
	}
	c, err := eng.Exec(ctx, "brief", native("sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "workspace expired", func() bool {
		_, err := eng.Workspace(ctx, "brief")
		return errors.Is(err, messages.ErrNotFound)
	})
	eventually(t, 5*time.Second, "process gone", func() bool { return !alive(c.Pid) })
	if !sawEvent(sub, messages.EventExpired, "brief") {
		t.Error("no expired event")
	}
}

func sawEvent(s *subscription, kind messages.EventKind, label string) bool {
	for {
		select {
		case ev, ok := <-s.C:
			if !ok {
				return false
			}
			if ev.Kind == kind && ev.Label == label {
				return true
			}
		case <-time.After(2 * time.Second):
			return false
		}
	}
}

func TestReapRemovesWorkspaceAfterLastCommand(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "reaped", OnExit: messages.ExitReap}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Exec(ctx, "reaped", native("sleep", "0.3")); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Exec(ctx, "reaped", native("true")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "workspace reaped", func() bool {
		_, err := eng.Workspace(ctx, "reaped")
		return errors.Is(err, messages.ErrNotFound)
	})
	// keep stays.
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "kept"}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Exec(ctx, "kept", native("true")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "command ended", func() bool {
		c, err := eng.Command(ctx, "kept", "true")
		return err == nil && c.State.Ended()
	})
	if _, err := eng.Workspace(ctx, "kept"); err != nil {
		t.Errorf("keep workspace is gone: %v", err)
	}
}

func TestChildrenDieWithKilledEmbedder(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), "SHIPOTE_TEST_HELPER=embed")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var child int
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "pid" {
			child, _ = strconv.Atoi(f[1])
			break
		}
		if len(f) > 0 && f[0] == "error" {
			t.Fatal(sc.Text())
		}
	}
	if !alive(child) {
		t.Fatalf("child %d not running", child)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed := time.Now()
	eventually(t, 5*time.Second, "child of the killed embedder gone", func() bool { return !alive(child) })
	t.Logf("child gone %v after the embedder was killed", time.Since(killed).Round(time.Millisecond))
}

func TestAllCommandsAcrossWorkspaces(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	want := map[string]string{} // command ID -> workspace ID
	for i := range 3 {
		ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("all%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		for range i + 1 {
			c, err := eng.Exec(ctx, ws.ID, native("true"))
			if err != nil {
				t.Fatal(err)
			}
			want[c.ID] = ws.ID
		}
	}
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "empty"}); err != nil {
		t.Fatal(err)
	}
	all, err := eng.AllCommands(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(want) {
		t.Fatalf("AllCommands returned %d commands, want %d: %v", len(all), len(want), all)
	}
	for _, c := range all {
		if want[c.ID] != c.Workspace {
			t.Errorf("command %s in workspace %q, want %q", c.ID, c.Workspace, want[c.ID])
		}
	}
}
