// peers.go owns the Manager interface that the peer benchmark drives, the
// workloads it runs (the long-running sleeper and the crashing probe), the
// install lookup, and the /proc readings (children, VmRSS, CPU ticks).

// Package peers drives process managers for the peer benchmark in package
// bench: the shipote daemon over its API, the shipote engine embedded in the
// benchmark's own process, pm2, and supervisord. Each Manager starts a fresh
// daemon with a private home, config and socket, and Close removes every
// process it started. bench/peers/setup.sh installs pm2 and supervisord.
package peers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shipote/shipote/internal/pidstat"
)

// ErrNotInstalled is wrapped by a constructor when the peer's programs are
// missing; the error says what was looked for.
var ErrNotInstalled = errors.New("peers: not installed")

// SleeperArgv is the long-running process every manager starts N times.
var SleeperArgv = []string{"/bin/sleep", "100000"}

// ClockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat; it
// is 100 on every Linux architecture Go supports.
const ClockTicks = 100

// Manager drives one process manager through the benchmark's steps. The
// steps run in this order: Launch, PrepareSleepers, StartSleepers,
// StopSleepers, PrepareCrasher, StartCrasher, StopCrasher, Close. Only the
// Start and Stop steps are timed; Prepare writes config files and the like.
// Close may be called at any point, also after a failed Launch.
type Manager interface {
	// Name is the peer's name: "shipote daemon", "pm2", ...
	Name() string
	// Version is the peer's version, known once Launch succeeded.
	Version() string
	// Launch starts a fresh daemon managing no process.
	Launch(ctx context.Context) error
	// PID is the daemon's pid: the process that forks the managed
	// processes (they are its children).
	PID() int
	// PrepareSleepers readies n processes running SleeperArgv.
	PrepareSleepers(ctx context.Context, n int) error
	// StartSleepers asks the daemon to start them and returns when the
	// command returns.
	StartSleepers(ctx context.Context) error
	// StopSleepers asks the daemon to stop and forget them.
	StopSleepers(ctx context.Context) error
	// PrepareCrasher readies one process running CrashScript(file),
	// restarted on exit with the smallest delay the peer allows, at least
	// restarts times.
	PrepareCrasher(ctx context.Context, file string, restarts int) error
	// StartCrasher starts it.
	StartCrasher(ctx context.Context) error
	// StopCrasher stops it.
	StopCrasher(ctx context.Context) error
	// Backoff says how the minimum restart delay was configured.
	Backoff() string
	// Close stops the daemon and every process it started, and waits.
	Close() error
}

// CrashScript is the shell script of the crashing probe: it appends
// "s<unix ns>" when it starts and "e<unix ns>" just before it exits 1.
func CrashScript(file string) string {
	return fmt.Sprintf("date +s%%s%%N >> %s; date +e%%s%%N >> %s; exit 1", file, file)
}

// ReadCrashLog parses a crash probe's file: the start times, and for each
// restart the time from one run's last mark to the next run's first.
func ReadCrashLog(file string) (starts int, gaps []time.Duration, err error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, nil, err
	}
	var lastEnd int64
	for _, line := range strings.Split(string(b), "\n") {
		if len(line) < 2 {
			continue
		}
		ns, err := strconv.ParseInt(line[1:], 10, 64)
		if err != nil {
			// A line being written; the next read sees it whole.
			continue
		}
		switch line[0] {
		case 's':
			starts++
			if lastEnd != 0 {
				gaps = append(gaps, time.Duration(ns-lastEnd))
			}
			lastEnd = 0
		case 'e':
			lastEnd = ns
		}
	}
	return starts, gaps, nil
}

// PeersDir is where setup.sh installs the peers: $SHIPOTE_PEERS_DIR, else
// /var/tmp/shipote-peers.
func PeersDir() string {
	if d := os.Getenv("SHIPOTE_PEERS_DIR"); d != "" {
		return d
	}
	return "/var/tmp/shipote-peers"
}

// Children returns the pids of pid's children, read from
// /proc/PID/task/*/children (a child is listed under the thread that forked
// it).
func Children(pid int) ([]int, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		return nil, err
	}
	if len(tasks) == 0 {
		return nil, fmt.Errorf("peers: no /proc/%d/task/*/children (process gone?)", pid)
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// Cmdline returns the argv of pid; empty for a zombie.
func Cmdline(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

func argvEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// CountChildren counts pid's live (non-zombie) children running argv.
func CountChildren(pid int, argv []string) (int, error) {
	kids, err := Children(pid)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range kids {
		if argvEqual(Cmdline(k), argv) {
			n++
		}
	}
	return n, nil
}

// RSS returns VmRSS of pid in bytes.
func RSS(pid int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fs := strings.Fields(v)
			if len(fs) != 2 || fs[1] != "kB" {
				return 0, fmt.Errorf("peers: VmRSS of %d: unexpected %q", pid, v)
			}
			kb, err := strconv.ParseUint(fs[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("peers: VmRSS of %d: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("peers: no VmRSS for %d (zombie?)", pid)
}

// CPUTicks returns utime+stime of pid in clock ticks (see ClockTicks).
func CPUTicks(pid int) (uint64, error) {
	st, err := pidstat.Read(pid)
	if err != nil {
		return 0, fmt.Errorf("peers: %w", err)
	}
	return st.UTime + st.STime, nil
}

// CPUTime returns the time pid's threads have run on a CPU, summed from
// /proc/PID/task/*/schedstat (nanoseconds, where utime and stime count
// 10 ms ticks). A thread that ended is not counted: measure daemons whose
// threads live as long as they do.
func CPUTime(pid int) (time.Duration, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("peers: %w", err)
	}
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
				continue // the thread ended meanwhile
			}
			return 0, fmt.Errorf("peers: %w", err)
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("peers: %s/%s/schedstat is empty", dir, t.Name())
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("peers: %s/%s/schedstat: %w", dir, t.Name(), err)
		}
		total += time.Duration(ns)
	}
	return total, nil
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	st, err := pidstat.Read(pid)
	return err == nil && st.State != 'Z' && st.State != 'X'
}

// waitGone polls until pid is gone or a zombie, or d passes.
func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for Alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// tracked remembers the processes a daemon started, so that Close can kill
// any left behind once the daemon is gone.
type tracked map[int][]string

// note records pid's current children.
func (t tracked) note(pid int) {
	kids, err := Children(pid)
	if err != nil {
		return
	}
	for _, k := range kids {
		if _, ok := t[k]; !ok {
			if argv := Cmdline(k); argv != nil {
				t[k] = argv
			}
		}
	}
}

// kill SIGKILLs the recorded processes still running the same argv, and
// returns how many it found.
func (t tracked) kill() int {
	n := 0
	for pid, argv := range t {
		if Alive(pid) && argvEqual(Cmdline(pid), argv) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			n++
		}
	}
	return n
}

// run runs a peer's CLI with its output appended to logPath (never a pipe: a
// daemon the CLI forks must not hold our pipe open) and returns an error
// with the end of the log when it fails.
func run(ctx context.Context, env []string, logPath string, name string, args ...string) error {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	off, _ := f.Seek(0, 2)
	fmt.Fprintf(f, "$ %s %s\n", name, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, logTail(logPath, off))
	}
	return nil
}

// logTail returns the last few lines written to path after offset off.
func logTail(path string, off int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < off {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b[off:])), "\n")
	if len(lines) > 6 {
		lines = lines[len(lines)-6:]
	}
	return strings.Join(lines, " | ")
}

// output runs a short command and returns its trimmed stdout.
func output(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(b)), nil
}
