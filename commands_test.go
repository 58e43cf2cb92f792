package shipote

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/faultfs"
	"github.com/shipote/shipote/messages"
)

// groupPids starts `sh` running two sleeps in its group and returns the
// command and the sleeps' pids (printed by the shell).
func groupPids(t *testing.T, eng *Engine, ws string, ref messages.CommandRef) (messages.CommandInfo, []int) {
	t.Helper()
	ctx := testCtx(t)
	c, err := eng.Exec(ctx, ws, ref)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	eventually(t, 20*time.Second, "the sleeps' pids in the log", func() bool {
		lines, err := eng.Logs(ctx, ws, c.ID, LogQuery{})
		if err != nil {
			return false
		}
		pids = pids[:0]
		for _, l := range lines {
			if p, ok := strings.CutPrefix(l.Line, "pid "); ok {
				n, _ := strconv.Atoi(p)
				pids = append(pids, n)
			}
		}
		return len(pids) == 2
	})
	t.Cleanup(func() {
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	})
	return c, pids
}

// twoSleeps starts two sleeps in the command's group and prints their host
// pids (read from /proc/self/stat: $! is a pid of the command's PID
// namespace).
const twoSleeps = `for i in 1 2; do ( read -r p rest </proc/self/stat; echo pid $p; exec sleep 1000 ) & done; wait`

func TestStopCommandSignalsItsGroup(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "w"}); err != nil {
		t.Fatal(err)
	}
	ref := native("sh", "-c", twoSleeps)
	ref.Label = "pair"
	ref.Supervision.Restart = &messages.RestartPolicy{On: messages.RestartAlways, BackoffMs: 10}
	c, pids := groupPids(t, eng, "w", ref)

	info, err := eng.StopCommand(ctx, "w", "pair")
	if err != nil {
		t.Fatal(err)
	}
	if info.State != messages.CommandStopped || info.StopReason != messages.StopUser || !strings.HasPrefix(info.StopResult, "stopped by SIGTERM after ") {
		t.Fatalf("after stop: state %s reason %q result %q", info.State, info.StopReason, info.StopResult)
	}
	for _, p := range pids {
		eventually(t, 10*time.Second, "the group's processes gone", func() bool { return !alive(p) })
	}
	// A stopped command with restart always is not restarted.
	time.Sleep(100 * time.Millisecond)
	if now, _ := eng.Command(ctx, "w", c.ID); now.State != messages.CommandStopped {
		t.Fatalf("a stopped command came back: %s", now.State)
	}
	// Wrong states and refs.
	if _, err := eng.StopCommand(ctx, "w", "pair"); !errors.Is(err, messages.ErrConflict) {
		t.Fatalf("stopping a stopped command: %v, want conflict", err)
	}
	if _, err := eng.SignalCommand(ctx, "w", "pair", syscall.SIGHUP); !errors.Is(err, messages.ErrConflict) {
		t.Fatalf("signalling a stopped command: %v, want conflict", err)
	}
	if _, err := eng.StopCommand(ctx, "w", "nope"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("stopping an unknown command: %v, want not found", err)
	}
	if _, err := eng.StopCommand(ctx, "nows", "pair"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("stopping in an unknown workspace: %v, want not found", err)
	}

	// Start again: the same ID, a new pid.
	again, err := eng.StartCommand(ctx, "w", "pair")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != c.ID || again.Pid == 0 || again.Pid == c.Pid || again.State != messages.CommandRunning {
		t.Fatalf("start again: %+v (was %s pid %d)", again, c.ID, c.Pid)
	}
	if _, err := eng.StartCommand(ctx, "w", "pair"); !errors.Is(err, messages.ErrConflict) {
		t.Fatalf("starting a running command: %v, want conflict", err)
	}
	if _, err := eng.RemoveCommand(ctx, "w", "pair"); !errors.Is(err, messages.ErrConflict) {
		t.Fatalf("removing a running command: %v, want conflict", err)
	}
	// Restart: the same ID again, another pid.
	re, err := eng.RestartCommand(ctx, "w", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if re.ID != c.ID || re.Pid == again.Pid || re.State != messages.CommandRunning {
		t.Fatalf("restart: %+v (was pid %d)", re, again.Pid)
	}
	if alive(again.Pid) {
		t.Fatalf("the old process %d outlived the restart", again.Pid)
	}
	// Stop all, then forget it.
	all, err := eng.StopCommands(ctx, "w")
	if err != nil || len(all) != 1 || all[0].State != messages.CommandStopped {
		t.Fatalf("stop all: %+v %v", all, err)
	}
	if _, err := eng.RemoveCommand(ctx, "w", "pair"); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Command(ctx, "w", c.ID); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("a removed command is still listed: %v", err)
	}
}

func TestStopTimeoutKillsACommandThatIgnoresTheSignal(t *testing.T) {
	eng := startEngine(t, Config{Grace: 30 * time.Second})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "w"}); err != nil {
		t.Fatal(err)
	}
	ref := native("sh", "-c", `trap "" TERM; `+twoSleeps)
	ref.Label = "stubborn"
	ref.StopTimeoutMs = 300
	_, pids := groupPids(t, eng, "w", ref)
	info, err := eng.StopCommand(ctx, "w", "stubborn")
	if err != nil {
		t.Fatal(err)
	}
	if info.State != messages.CommandStopped || info.StopResult != "killed after the 300ms timeout" || info.Signal != "SIGKILL" {
		t.Fatalf("after stop: state %s result %q signal %q", info.State, info.StopResult, info.Signal)
	}
	for _, p := range pids {
		eventually(t, 10*time.Second, "the group's processes gone", func() bool { return !alive(p) })
	}
}

func TestStopSignalAndSignalReachTheGroup(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "w"}); err != nil {
		t.Fatal(err)
	}
	// The shell reports HUP and ends on INT (its stop signal).
	ref := native("sh", "-c", `trap "echo got-hup" HUP; trap "echo got-int; exit 0" INT; echo ready; while :; do sleep 0.05; done`)
	ref.Label = "trapper"
	ref.StopSignal = "INT"
	c, err := eng.Exec(ctx, "w", ref)
	if err != nil {
		t.Fatal(err)
	}
	logHas := func(s string) func() bool {
		return func() bool {
			lines, _ := eng.Logs(ctx, "w", c.ID, LogQuery{})
			for _, l := range lines {
				if l.Line == s {
					return true
				}
			}
			return false
		}
	}
	eventually(t, 20*time.Second, "the trap set", logHas("ready"))
	if _, err := eng.SignalCommand(ctx, "w", "trapper", syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the HUP handled", logHas("got-hup"))
	signalled := false
	for _, ev := range eng.RecentEvents() {
		if ev.Kind == messages.EventSignalled && ev.Command == "trapper" && strings.HasPrefix(ev.Message, "SIGHUP") {
			signalled = true
		}
	}
	if !signalled {
		t.Error("no signalled event for the HUP")
	}
	info, err := eng.StopCommand(ctx, "w", "trapper")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(info.StopResult, "stopped by SIGINT after ") || info.ExitCode == nil || *info.ExitCode != 0 {
		t.Fatalf("stop with SIGINT: %q exit %v signal %q", info.StopResult, info.ExitCode, info.Signal)
	}
}

func TestSuccessExitCodes(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "w"}); err != nil {
		t.Fatal(err)
	}
	ok := native("sh", "-c", "exit 3")
	ok.Label = "three"
	ok.SuccessExitCodes = []int{0, 3}
	ok.Supervision.Restart = &messages.RestartPolicy{On: messages.RestartOnFailure, BackoffMs: 10}
	c, err := eng.Exec(ctx, "w", ok)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "exit 3 counted as success", func() bool {
		info, _ := eng.Command(ctx, "w", c.ID)
		return info.State == messages.CommandExited
	})
	if info, _ := eng.Command(ctx, "w", c.ID); info.Restarts != 0 {
		t.Fatalf("a success exit was restarted %d times", info.Restarts)
	}
	for _, tc := range []struct {
		codes     []int
		code, sig int
		want      bool
	}{
		{nil, 0, 0, true},
		{nil, 1, 0, false},
		{nil, -1, 15, false},
		{[]int{0, 143}, -1, 15, true},
		{[]int{0, 143}, 143, 0, true},
		{[]int{0, 143}, -1, 9, false},
		{[]int{3}, 0, 0, false},
	} {
		if got := messages.IsSuccess(tc.codes, tc.code, tc.sig); got != tc.want {
			t.Errorf("IsSuccess(%v, %d, %d) = %v, want %v", tc.codes, tc.code, tc.sig, got, tc.want)
		}
	}
	bad := native("sh", "-c", "true")
	bad.SuccessExitCodes = []int{256}
	if _, err := eng.Exec(ctx, "w", bad); !errors.Is(err, messages.ErrInvalid) || !strings.Contains(err.Error(), "success_exit_codes[0]") {
		t.Fatalf("a bad success code: %v", err)
	}
	bad = native("sh", "-c", "true")
	bad.StopSignal = "SIGNOPE"
	if _, err := eng.Exec(ctx, "w", bad); !errors.Is(err, messages.ErrInvalid) || !strings.Contains(err.Error(), "stop_signal") {
		t.Fatalf("a bad stop signal: %v", err)
	}
}

func supervised(label string, argv ...string) messages.CommandRef {
	ref := native("sleep", argv...)
	ref.Label = label
	ref.Supervision.Restart = &messages.RestartPolicy{On: messages.RestartAlways, BackoffMs: 20}
	return ref
}

func liveCommandIDs(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, lc := range readState(t, path).LiveCommands {
		out[lc.Spec.Label] = lc.ID
	}
	return out
}

func TestSupervisedCommandsAreDeclaredState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	ctx := testCtx(t)
	eng := startEngine(t, Config{StatePath: path})
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "w"}); err != nil {
		t.Fatal(err)
	}
	web, err := eng.Exec(ctx, "w", supervised("web", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	// Durable before acknowledged.
	if got := liveCommandIDs(t, path); got["web"] != web.ID {
		t.Fatalf("acknowledged supervised command not on disk: %v", got)
	}
	stopped, err := eng.Exec(ctx, "w", supervised("stopped", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	oneShot, err := eng.Exec(ctx, "w", native("sleep", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	gaveUp := native("sh", "-c", "exit 1")
	gaveUp.Label = "quitter"
	gaveUp.Supervision.Restart = &messages.RestartPolicy{BackoffMs: 10, Max: 1}
	if _, err := eng.Exec(ctx, "w", gaveUp); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.StopCommand(ctx, "w", "stopped"); err != nil {
		t.Fatal(err)
	}
	if got := liveCommandIDs(t, path); got["stopped"] != "" {
		t.Fatalf("a stopped command is still declared: %v", got)
	}
	eventually(t, 20*time.Second, "the quitter gave up", func() bool {
		c, _ := eng.Command(ctx, "w", "quitter")
		return c.GaveUp
	})
	if _, err := eng.SaveSnapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if got := liveCommandIDs(t, path); len(got) != 1 || got["web"] != web.ID {
		t.Fatalf("declared commands %v, want web only", got)
	}
	if err := eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if alive(web.Pid) || alive(oneShot.Pid) {
		t.Fatal("processes outlived the engine")
	}

	eng2 := startEngine(t, Config{StatePath: path})
	if r := eng2.RestoreReport(); r.LiveCommands != 1 {
		t.Fatalf("restored %d live commands, want 1", r.LiveCommands)
	}
	back, err := eng2.Command(ctx, "w", "web")
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != web.ID || back.Pid == 0 || back.Pid == web.Pid || back.State != messages.CommandRunning {
		t.Fatalf("web after a restart: %+v (was %s pid %d)", back, web.ID, web.Pid)
	}
	for _, gone := range []string{stopped.ID, oneShot.ID, "quitter"} {
		if _, err := eng2.Command(ctx, "w", gone); !errors.Is(err, messages.ErrNotFound) {
			t.Errorf("command %s came back after a restart: %v", gone, err)
		}
	}
}

func TestSupervisedCommandOnARefusingDisk(t *testing.T) {
	dir := faultfs.Tmpfs(t, 4<<20)
	path := filepath.Join(dir, "state.json")
	ctx := testCtx(t)
	eng := startEngine(t, Config{StatePath: path})
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "w"}); err != nil {
		t.Fatal(err)
	}
	web, err := eng.Exec(ctx, "w", supervised("web", "1000"))
	if err != nil {
		t.Fatal(err)
	}
	defer faultfs.Immutable(t, dir)()
	_, err = eng.Exec(ctx, "w", supervised("refused", "1000"))
	if !errors.Is(err, messages.ErrNotSaved) {
		t.Fatalf("a supervised exec on a refusing disk: %v", err)
	}
	eventually(t, 20*time.Second, "the refused command forgotten", func() bool {
		_, err := eng.Command(ctx, "w", "refused")
		return errors.Is(err, messages.ErrNotFound)
	})
	if _, err := eng.StopCommand(ctx, "w", "web"); !errors.Is(err, messages.ErrNotSaved) {
		t.Fatalf("a stop on a refusing disk: %v", err)
	}
	if c, _ := eng.Command(ctx, "w", "web"); c.State != messages.CommandRunning || c.Pid != web.Pid || !alive(web.Pid) {
		t.Fatalf("a refused stop stopped the command: %+v", c)
	}
}
