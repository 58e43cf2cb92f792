package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/bench"
	"github.com/shipote/shipote/bench/internal/modules"
	"github.com/shipote/shipote/bench/peers"
)

// TestSIGTERMStopsEveryDaemon runs the peer suite of the harness, sends it
// SIGTERM once every daemon runs its sleepers, and checks that it exits 143
// leaving no process behind: not the shipote daemon, pm2's God daemon or
// supervisord (when installed by make bench-setup), nor any sleeper. The
// test process is a child subreaper, so a daemon that detaches from the
// harness still counts as its descendant.
func TestSIGTERMStopsEveryDaemon(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("become a subreaper: %v", err)
	}
	t.Cleanup(killDescendants)
	dir := t.TempDir()
	benchBin := filepath.Join(dir, "shipote-bench")
	shipoteBin := filepath.Join(dir, "shipote")
	root, benchDir, err := modules.Dirs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for bin, dirPkg := range map[string][2]string{benchBin: {benchDir, "./cmd/shipote-bench"}, shipoteBin: {root, "./cmd/shipote"}} {
		if err := modules.Build(context.Background(), dirPkg[0], dirPkg[1], bin); err != nil {
			t.Fatal(err)
		}
	}
	// The sleepers expected: procs for each daemon and the embedded engine.
	const procs = 50
	want := 2 * procs
	if _, _, err := peers.FindPM2(); err == nil {
		want += procs
	}
	if _, _, _, err := peers.FindSupervisord(context.Background()); err == nil {
		want += procs
	}

	logPath := filepath.Join(dir, "bench.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(benchBin, "-quick", "-only", "peers", "-peer-procs", strconv.Itoa(procs))
	cmd.Env = append(os.Environ(), "SHIPOTE_BIN="+shipoteBin)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	log := func() string { b, _ := os.ReadFile(logPath); return string(b) }

	// Wait until every daemon runs its sleepers.
	deadline := time.Now().Add(5 * time.Minute)
	for n := countSleepers(); n < want; n = countSleepers() {
		select {
		case err := <-exited:
			t.Fatalf("the harness ended (%v) before %d sleepers ran (%d):\n%s", err, want, n, log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sleepers after 5 min:\n%s", n, want, log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	daemons := descendants()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	select {
	case waitErr = <-exited:
	case <-time.After(5 * time.Minute):
		t.Fatalf("the harness still runs 5 min after SIGTERM:\n%s", log())
	}
	var ee *exec.ExitError
	if !errors.As(waitErr, &ee) || ee.ExitCode() != 143 {
		t.Errorf("harness ended with %v, want exit status 143", waitErr)
	}
	if !strings.Contains(log(), "stopped by terminated") {
		t.Errorf("the harness did not say it was stopped:\n%s", log())
	}
	reapOrphans()
	if left := descendants(); len(left) > 0 {
		var b strings.Builder
		for _, pid := range left {
			b.WriteString(strconv.Itoa(pid) + " " + strings.Join(peers.Cmdline(pid), " ") + "\n")
		}
		t.Errorf("%d processes outlived the harness (of %d before SIGTERM):\n%s\nharness log:\n%s", len(left), len(daemons), b.String(), log())
	}
}

// countSleepers counts the live descendants running peers.SleeperArgv.
func countSleepers() int {
	n := 0
	for _, pid := range descendants() {
		if slicesEqual(peers.Cmdline(pid), peers.SleeperArgv) {
			n++
		}
	}
	return n
}

func slicesEqual(a, b []string) bool {
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

// descendants lists the live (not zombie) descendants of this process.
func descendants() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		ppid, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		parent[pid] = ppid
	}
	self := os.Getpid()
	var out []int
	for pid := range parent {
		for p, hops := parent[pid], 0; p > 1 && hops < 64; p, hops = parent[p], hops+1 {
			if p == self {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// reapOrphans waits for the exited orphans handed to this subreaper.
func reapOrphans() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// killDescendants SIGKILLs every descendant left and reaps them, so that a
// failing run leaves nothing behind either.
func killDescendants() {
	for range 10 {
		left := descendants()
		if len(left) == 0 {
			break
		}
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
		reapOrphans()
	}
	reapOrphans()
}

// The report shows a zero baseline as a difference and says how the
// baselines are kept fair.
func TestMarkdownZeroBaseline(t *testing.T) {
	md := markdown([]bench.Row{
		{Group: "splitter", Name: "throttle 1 MB/s error", Value: 0.005, Unit: "%", Baseline: "pv -L", Base: 0, Target: "<= 0.5%", Met: bench.Bool(true)},
		{Group: "peers", Name: "restart latency p50", Value: 3.846, Unit: "ms", Baseline: "supervisord", Base: 1016.333},
	}, true, time.Minute)
	for _, want := range []string{"| pv -L | 0.000 % | +0.005 % |", "| 0.00378x |", "## How the baselines are kept fair", "grown to 1 MiB with F_SETPIPE_SZ"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "0.00x") {
		t.Errorf("report prints 0.00x:\n%s", md)
	}
}
