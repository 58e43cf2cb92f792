package shipote

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/shipote/shipote/internal/logfile"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/persistence"
)

func init() {
	if os.Getenv("SHIPOTE_TEST_HELPER") == "logkill" {
		logKillHelper()
		os.Exit(0)
	}
}

// logKillHelper prints 100 lines through a command of a persistent engine,
// says "ready" once they are in its log, and waits to be killed.
func logKillHelper() {
	eng, err := Start(context.Background(), NewActorSystem(nil), Config{Limits: "none", StatePath: os.Getenv("SHIPOTE_TEST_STATE")})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ctx := context.Background()
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "logs"}); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ref := native("sh", "-c", "for i in $(seq 1 100); do echo line $i; done; echo oops >&2; sleep 1000")
	ref.Label = "printer"
	if _, err := eng.Exec(ctx, "logs", ref); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for {
		lines, _ := eng.Logs(ctx, "logs", "printer", LogQuery{})
		if len(lines) == 101 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("ready")
	select {}
}

func TestLogsSurviveKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), "SHIPOTE_TEST_HELPER=logkill", "SHIPOTE_TEST_STATE="+path)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if sc.Text() == "ready" {
			break
		}
		if strings.HasPrefix(sc.Text(), "error") {
			t.Fatal(sc.Text())
		}
	}
	// The Writer hands lines to the file continuously; give it a moment.
	time.Sleep(300 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	eng := startEngine(t, Config{StatePath: path})
	ctx := testCtx(t)
	lines, err := eng.Logs(ctx, "logs", "printer", LogQuery{Stream: messages.Stdout})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 100 || lines[99].Line != "line 100" {
		t.Fatalf("after kill -9, %d stdout lines: %+v", len(lines), lines)
	}
	errs, _ := eng.Logs(ctx, "logs", "printer", LogQuery{Stream: messages.Stderr})
	if len(errs) != 1 || errs[0].Line != "oops" {
		t.Errorf("stderr after the restart: %+v", errs)
	}
}

func TestLogRotation(t *testing.T) {
	dir := t.TempDir()
	eng := startEngine(t, Config{LogDir: dir})
	ctx := testCtx(t)
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "rot", LogMaxBytes: 1 << 20, LogMaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	// ~50 MiB of numbered lines at full speed.
	const n = 700000
	ref := native("seq", "-f", "line %.0f padded out to make it about seventy bytes long xxxxx", "1", fmt.Sprint(n))
	ref.Label = "loud"
	if _, err := eng.Exec(ctx, "rot", ref); err != nil {
		t.Fatal(err)
	}
	var c messages.CommandInfo
	eventually(t, 2*time.Minute, "the command to end", func() bool {
		c, err = eng.Command(ctx, "rot", "loud")
		return err == nil && c.State.Ended()
	})
	var tail []messages.LogLine
	eventually(t, 30*time.Second, "the last line in the file", func() bool {
		tail, err = eng.Logs(ctx, "rot", "loud", LogQuery{Tail: 1})
		return err == nil && len(tail) == 1 && strings.HasPrefix(tail[0].Line, fmt.Sprintf("line %d ", n))
	})
	files, _ := filepath.Glob(filepath.Join(dir, ws.ID, "loud.log*"))
	if len(files) != 4 {
		t.Errorf("log files %v, want the current one and 3 rotated", files)
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.Size() > 1<<20 {
			t.Errorf("%s is %d bytes, over log_max_bytes", f, fi.Size())
		}
	}
	t.Logf("%d bytes dropped while the disk was slower than the command (counted, never blocking it)", c.LogDroppedBytes)
}

// TestLogFollowAcrossRotations follows a log while it rotates about eight
// times and checks that every line arrives once, in order. The command
// writes less than the log Writer's queue holds (logfile.DefaultQueueBytes)
// so the Writer cannot drop however far the disk lags, and the rotated
// files kept hold all of it so none is deleted before the follower reads
// it: the check needs every line, and a drop fails the test.
func TestLogFollowAcrossRotations(t *testing.T) {
	logDir := t.TempDir()
	eng := startEngine(t, Config{LogDir: logDir})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "fol", LogMaxBytes: 128 << 10, LogMaxFiles: 10}); err != nil {
		t.Fatal(err)
	}
	// 12,000 numbered lines in bursts: 58 bytes each, 0.7 MB of output and
	// about 1 MB in the files with their timestamps.
	const n = 12000
	if raw := n * len("line 12000 of a followed log, long enough to rotate often\n"); raw >= logfile.DefaultQueueBytes {
		t.Fatalf("the command writes %d bytes, as much as the Writer's queue: it could drop", raw)
	}
	ref := native("sh", "-c", "sleep 0.3; i=0; while [ $i -lt 12 ]; do seq -f 'line %.0f of a followed log, long enough to rotate often' $((i*1000+1)) $((i*1000+1000)); i=$((i+1)); sleep 0.02; done")
	ref.Label = "numbers"
	if _, err := eng.Exec(ctx, "fol", ref); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 50*time.Second)
	defer cancel()
	var got []string
	err := eng.FollowLogs(fctx, "fol", "numbers", LogQuery{}, func(ls []messages.LogLine) error {
		for _, l := range ls {
			got = append(got, l.Line)
		}
		if len(got) >= n {
			return errDone
		}
		return nil
	})
	c, _ := eng.Command(ctx, "fol", "numbers")
	if c.LogDroppedBytes > 0 {
		t.Fatalf("the Writer dropped %d bytes of %d queued at most", c.LogDroppedBytes, n*58)
	}
	if err != errDone {
		all, _ := eng.Logs(ctx, "fol", "numbers", LogQuery{})
		t.Fatalf("follow ended with %v after %d lines (the files hold %d)", err, len(got), len(all))
	}
	for i, l := range got {
		if want := fmt.Sprintf("line %d ", i+1); !strings.HasPrefix(l, want) {
			t.Fatalf("followed line %d is %q, want prefix %q (lost or repeated)", i, l, want)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(logDir, "*", "numbers.log*")); len(files) < 6 {
		t.Errorf("log files %v, want at least 5 rotations followed", files)
	}
}

var errDone = fmt.Errorf("done")

// Environment values never reach the engine's log or the event stream,
// and the state file holds what specs declare, not the daemon's own
// environment.
func TestSecretsStayOutOfLogsAndEvents(t *testing.T) {
	t.Setenv("SHIPOTE_DAEMON_ONLY_SECRET", "daemon-secret-7c1f")
	core, observed := observer.New(zapcore.DebugLevel)
	path := filepath.Join(t.TempDir(), "state.json")
	eng := startEngine(t, Config{Logger: zap.New(core), StatePath: path, SampleInterval: 50 * time.Millisecond})
	ctx := testCtx(t)
	sub := eng.Events(256)
	defer sub.Cancel()
	const secret = "ws-secret-52d9"
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "sec",
		Permissions: messages.Permissions{Env: map[string]string{"TOKEN": secret}},
		Soma:        messages.Soma{MemoryMaxBytes: 1 << 20}}); err != nil {
		t.Fatal(err)
	}
	ref := native("sh", "-c", "exit 3")
	ref.Payload.Native.Envp = []string{"PASSWORD=" + secret + "-cmd"}
	ref.Supervision.Restart = &messages.RestartPolicy{BackoffMs: 10, Max: 2}
	if _, err := eng.Exec(ctx, "sec", ref); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the command to give up", func() bool {
		c, err := eng.Command(ctx, "sec", "sh")
		return err == nil && c.GaveUp
	})
	if _, err := eng.Exec(ctx, "sec", native("no-such-binary-"+secret)); err == nil {
		t.Fatal("a missing binary started")
	}
	if _, err := eng.RemoveWorkspace(ctx, "sec", time.Second); err != nil {
		t.Fatal(err)
	}
	for _, e := range observed.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += fmt.Sprintf(" %s=%v", k, v)
		}
		if strings.Contains(line, secret+"-cmd") || strings.Contains(line, "TOKEN="+secret) || strings.Contains(line, "daemon-secret-7c1f") {
			t.Errorf("an environment value reached the log: %s", line)
		}
	}
	for {
		select {
		case ev := <-sub.C:
			if strings.Contains(fmt.Sprintf("%+v", ev), "PASSWORD=") || strings.Contains(ev.Message, secret+"-cmd") {
				t.Errorf("an environment value reached the events: %+v", ev)
			}
			continue
		default:
		}
		break
	}
	for _, p := range []string{path, persistence.JournalPath(path)} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "daemon-secret-7c1f") {
			t.Errorf("the daemon's own environment reached %s", p)
		}
	}
}
