// Command leakcheck runs a command (a test suite) as a child subreaper and
// fails when any process it started outlives it: every orphan of the
// command's tree is handed to leakcheck instead of init, so a test that
// leaves a daemon or a setsid grandchild behind is caught, named and
// killed. It exits with the command's status, or 1 when the command passed
// but left processes behind. SIGINT and SIGTERM are passed on to the
// command.
//
//	leakcheck make test
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/pidstat"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: leakcheck COMMAND [ARG...]")
		os.Exit(2)
	}
	os.Exit(run(os.Args[1:]))
}

func run(argv []string) int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "leakcheck: become a subreaper:", err)
		return 2
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "leakcheck:", err)
		return 2
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	// Orphans handed to this subreaper are reaped as they exit, as init
	// would: a test checking that a process died (kill(pid, 0) failing)
	// must not see a zombie kept by leakcheck.
	stopReaping := make(chan struct{})
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		reapOrphans(cmd.Process.Pid, stopReaping)
	}()
	status := 0
	waitErr := cmd.Wait()
	close(stopReaping)
	<-reaped
	if err := waitErr; err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			fmt.Fprintln(os.Stderr, "leakcheck:", err)
			return 2
		}
		status = ee.ExitCode()
		if status < 0 {
			status = 128 + int(ee.Sys().(syscall.WaitStatus).Signal())
		}
	}
	signal.Stop(sigs)
	close(sigs)
	left := leftovers()
	if len(left) == 0 {
		return status
	}
	fmt.Fprintf(os.Stderr, "leakcheck: %d processes outlived %q:\n", len(left), strings.Join(argv, " "))
	for _, pid := range left {
		fmt.Fprintf(os.Stderr, "  %s\n", describe(pid))
	}
	killAll()
	if status == 0 {
		status = 1
	}
	return status
}

// leftovers reaps exited orphans, then lists the live descendants.
func leftovers() []int {
	reap()
	return descendants(os.Getpid())
}

// killAll SIGKILLs every descendant until none is left, reaping them.
func killAll() {
	for range 50 {
		left := leftovers()
		if len(left) == 0 {
			return
		}
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reapOrphans waits for the exited processes adopted by this subreaper,
// never for child (the command, which its exec.Cmd waits for), on every
// SIGCHLD and every 500 ms, until stop is closed.
func reapOrphans(child int, stop <-chan struct{}) {
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	defer signal.Stop(chld)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	self := os.Getpid()
	for {
		select {
		case <-stop:
			return
		case <-chld:
		case <-tick.C:
		}
		entries, err := os.ReadDir("/proc")
		if err != nil {
			continue
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == child {
				continue
			}
			if state, ppid, ok := stat(pid); ok && state == "Z" && ppid == self {
				var ws unix.WaitStatus
				_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			}
		}
	}
}

func reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// descendants lists the live (not zombie) processes whose parent chain
// reaches self, in pid order.
func descendants(self int) []int {
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
		state, ppid, ok := stat(pid)
		if !ok || state == "Z" {
			continue
		}
		parent[pid] = ppid
	}
	var out []int
	for pid := range parent {
		for p, hops := parent[pid], 0; p > 1 && hops < 256; p, hops = parent[p], hops+1 {
			if p == self {
				out = append(out, pid)
				break
			}
		}
	}
	sort.Ints(out)
	return out
}

// stat reads the state and parent of pid from /proc/PID/stat.
func stat(pid int) (state string, ppid int, ok bool) {
	st, err := pidstat.Read(pid)
	if err != nil {
		return "", 0, false
	}
	return string(st.State), st.PPID, true
}

// describe names a process: pid, working directory and command line.
func describe(pid int) string {
	cwd, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "cwd"))
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	argv := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
	return fmt.Sprintf("pid %d, cwd %s: %s", pid, cwd, argv)
}
