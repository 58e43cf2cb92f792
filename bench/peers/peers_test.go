package peers

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// protoactor's dead-letter throttle parks a goroutine for one period
	// (1 s) after a dead letter; it ends by itself.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

func TestReadCrashLog(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		starts int
		gaps   []time.Duration
	}{
		{"empty", "", 0, nil},
		{"one run", "s100\ne150\n", 1, nil},
		{"three runs", "s100\ne150\ns1150\ne1200\ns3200\ne3300\n", 3, []time.Duration{1000, 2000}},
		{"torn last line", "s100\ne150\ns1150\ne12", 2, []time.Duration{1000}},
		{"start without end", "s100\ns300\ne400\ns450\n", 3, []time.Duration{50}},
		{"garbage", "hello\nsxyz\n\ns10\n", 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "log")
			if err := os.WriteFile(f, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			starts, gaps, err := ReadCrashLog(f)
			if err != nil {
				t.Fatal(err)
			}
			if starts != tt.starts || len(gaps) != len(tt.gaps) {
				t.Fatalf("starts %d gaps %v, want %d %v", starts, gaps, tt.starts, tt.gaps)
			}
			for i := range gaps {
				if gaps[i] != tt.gaps[i] {
					t.Fatalf("gaps %v, want %v", gaps, tt.gaps)
				}
			}
		})
	}
	if _, _, err := ReadCrashLog(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestCrashScriptRuns(t *testing.T) {
	f := filepath.Join(t.TempDir(), "log")
	for range 2 {
		err := exec.Command("/bin/sh", "-c", CrashScript(f)).Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("crash script: %v, want exit 1", err)
		}
	}
	starts, gaps, err := ReadCrashLog(f)
	if err != nil || starts != 2 || len(gaps) != 1 || gaps[0] <= 0 || gaps[0] > time.Minute {
		t.Fatalf("starts %d gaps %v err %v", starts, gaps, err)
	}
}

func TestProcReaders(t *testing.T) {
	var cmds []*exec.Cmd
	for range 3 {
		c := exec.Command(SleeperArgv[0], SleeperArgv[1:]...)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	other := exec.Command("/bin/sleep", "100001")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	cmds = append(cmds, other)
	t.Cleanup(func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	})
	n, err := CountChildren(os.Getpid(), SleeperArgv)
	if err != nil || n != 3 {
		t.Fatalf("CountChildren %d %v, want 3", n, err)
	}
	if got := Cmdline(other.Process.Pid); strings.Join(got, " ") != "/bin/sleep 100001" {
		t.Fatalf("Cmdline %q", got)
	}
	rss, err := RSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("RSS %d %v", rss, err)
	}
	if _, err := CPUTicks(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if !Alive(os.Getpid()) || !Alive(other.Process.Pid) {
		t.Fatal("Alive false for live processes")
	}
	_ = other.Process.Kill()
	_ = other.Wait()
	if Alive(other.Process.Pid) {
		t.Fatal("Alive true for a reaped child")
	}
	if _, err := Children(1 << 30); err == nil {
		t.Fatal("Children of a missing pid: no error")
	}
	if _, err := RSS(1 << 30); err == nil {
		t.Fatal("RSS of a missing pid: no error")
	}
	if _, err := CPUTicks(1 << 30); err == nil {
		t.Fatal("CPUTicks of a missing pid: no error")
	}
	if Alive(0) || Alive(-1) {
		t.Fatal("Alive for pid <= 0")
	}
}

func TestFindErrorsSayWhy(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("SHIPOTE_PEERS_DIR", t.TempDir())
	if _, _, err := FindPM2(); !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "node") {
		t.Fatalf("FindPM2 without node: %v", err)
	}
	if _, _, _, err := FindSupervisord(context.Background()); !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "supervisord") {
		t.Fatalf("FindSupervisord without it: %v", err)
	}
	t.Setenv("SHIPOTE_BIN", "/nonexistent/shipote")
	if _, err := BuildShipote(context.Background(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "SHIPOTE_BIN") {
		t.Fatalf("BuildShipote with a missing SHIPOTE_BIN: %v", err)
	}
	t.Setenv("SHIPOTE_BIN_NOCLUSTER", "/nonexistent/shipote-nocluster")
	if _, err := BuildShipoteNocluster(context.Background(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "SHIPOTE_BIN_NOCLUSTER") {
		t.Fatalf("BuildShipoteNocluster with a missing SHIPOTE_BIN_NOCLUSTER: %v", err)
	}
}

// poll waits until count() == want.
func poll(t *testing.T, what string, want int, count func() (int, error)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		n, err := count()
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d (%v), want %d", what, n, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exercise runs every step of m with a few processes.
func exercise(t *testing.T, m Manager) {
	ctx := context.Background()
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = m.Close()
		}
	})
	if err := m.Launch(ctx); err != nil {
		t.Fatal(err)
	}
	pid := m.PID()
	if !Alive(pid) || m.Version() == "" {
		t.Fatalf("pid %d alive %v version %q", pid, Alive(pid), m.Version())
	}
	count := func() (int, error) { return CountChildren(pid, SleeperArgv) }
	const n = 5
	if err := m.PrepareSleepers(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := m.StartSleepers(ctx); err != nil {
		t.Fatal(err)
	}
	poll(t, "sleepers running", n, count)
	if err := m.StopSleepers(ctx); err != nil {
		t.Fatal(err)
	}
	poll(t, "sleepers after stop", 0, count)

	f := filepath.Join(t.TempDir(), "crash")
	if err := m.PrepareCrasher(ctx, f, 3); err != nil {
		t.Fatal(err)
	}
	if err := m.StartCrasher(ctx); err != nil {
		t.Fatal(err)
	}
	poll(t, "crash probe starts", 3, func() (int, error) {
		s, _, err := ReadCrashLog(f)
		return min(s, 3), err
	})
	if err := m.StopCrasher(ctx); err != nil {
		t.Fatal(err)
	}
	_, gaps, _ := ReadCrashLog(f)
	t.Logf("%s %s: restart gaps %v (%s)", m.Name(), m.Version(), gaps, m.Backoff())
	closed = true
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if pid != os.Getpid() && !waitGone(pid, 10*time.Second) {
		t.Fatalf("daemon %d still alive after Close", pid)
	}
}

func TestShipoteEngine(t *testing.T) { exercise(t, NewShipoteEngine()) }

func TestShipoteDaemon(t *testing.T) {
	dir := t.TempDir()
	bin, err := BuildShipote(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewShipoteDaemon(bin, filepath.Join(dir, "d"))
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, d)
}

func TestPM2(t *testing.T) {
	p, err := NewPM2(t.TempDir())
	if errors.Is(err, ErrNotInstalled) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, p)
}

func TestSupervisord(t *testing.T) {
	s, err := NewSupervisord(context.Background(), t.TempDir())
	if errors.Is(err, ErrNotInstalled) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	exercise(t, s)
}

// TestCPUTime checks that CPUTime counts this process's CPU time in ns:
// it grows by about what a busy loop spends, and a missing pid is an
// error.
func TestCPUTime(t *testing.T) {
	before, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	spin := time.Now()
	for time.Since(spin) < 50*time.Millisecond {
	}
	after, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("CPU time went from %v to %v over a busy loop", before, after)
	}
	if _, err := CPUTime(1 << 30); err == nil {
		t.Fatal("CPUTime of a missing pid: no error")
	}
}
