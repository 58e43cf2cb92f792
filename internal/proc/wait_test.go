// wait_test.go covers Process: waiting through the pidfd on the poller and
// through the os.Process fallback, exit statuses on both paths, Signal
// around Wait, and that waiting goroutines hold no OS thread.

package proc

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// spawnerKinds returns a Spawner per wait path, closed at the end of the test.
func spawnerKinds(t *testing.T) map[string]*Spawner {
	t.Helper()
	if !pidfdWorks() {
		t.Log("this kernel has no pidfd: only the os.Process path is tested")
	}
	fallback := newSpawner(t)
	fallback.pidfd = false // read by the spawning goroutine after the request is sent
	kinds := map[string]*Spawner{"os.Process": fallback}
	if pidfdWorks() {
		kinds["pidfd"] = newSpawner(t)
	}
	return kinds
}

func TestPidfdPathIsUsed(t *testing.T) {
	if !pidfdWorks() {
		t.Skip("no pidfd on this kernel")
	}
	s := newSpawner(t)
	p, err := s.Start(Spec{Path: "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	if p.pidfd == nil || p.proc != nil {
		t.Fatalf("pidfd %v, os.Process %v: want the pidfd path", p.pidfd, p.proc)
	}
	if st := waitFor(t, p, 10*time.Second); !st.Success() {
		t.Fatalf("status %v", st)
	}
}

func TestExitStatusesBothPaths(t *testing.T) {
	pattern, _ := os.ReadFile("/proc/sys/kernel/core_pattern")
	// With a plain file pattern the kernel writes the core into the cwd and
	// reports it; with a pipe ("|handler") that depends on the handler.
	coreExpected := len(pattern) > 0 && pattern[0] != '|'
	tests := []struct {
		name   string
		script string
		want   ExitStatus
		core   bool // a core dump is expected (when coreExpected)
	}{
		{name: "exit 0", script: "exit 0", want: ExitStatus{}},
		{name: "exit 42", script: "exit 42", want: ExitStatus{Code: 42}},
		{name: "exit 255", script: "exit 255", want: ExitStatus{Code: 255}},
		{name: "SIGKILL", script: "kill -KILL $$", want: ExitStatus{Code: -1, Signal: syscall.SIGKILL}},
		{name: "SIGTERM", script: "kill -TERM $$", want: ExitStatus{Code: -1, Signal: syscall.SIGTERM}},
		// read waits for Start to return: RLIMIT_CORE is set by then.
		{name: "SIGSEGV core", script: "read x; kill -SEGV $$", want: ExitStatus{Code: -1, Signal: syscall.SIGSEGV}, core: true},
	}
	for kind, s := range spawnerKinds(t) {
		for _, tc := range tests {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				spec := Spec{Path: "/bin/sh", Args: []string{"-c", tc.script}, Dir: t.TempDir()}
				if tc.core {
					inf := uint64(unix.RLIM_INFINITY)
					spec.Rlimits = []Rlimit{{Resource: unix.RLIMIT_CORE, Cur: inf, Max: inf}}
				}
				r, w := pipe(t)
				spec.Stdin = r
				p, err := s.Start(spec)
				if err != nil {
					t.Fatal(err)
				}
				w.Close() // the script's read returns
				st := waitFor(t, p, 10*time.Second)
				want := tc.want
				want.CoreDumped = tc.core && coreExpected
				if tc.core && !coreExpected {
					want.CoreDumped = st.CoreDumped // up to the core_pattern handler
				}
				if st != want {
					t.Fatalf("status %+v (%v), want %+v (%v)", st, st, want, want)
				}
			})
		}
	}
}

func TestSignalAroundWait(t *testing.T) {
	for kind, s := range spawnerKinds(t) {
		t.Run(kind, func(t *testing.T) {
			p, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Signal(0); err != nil {
				t.Fatalf("Signal(0) to a running child: %v", err)
			}
			if err := p.Signal(syscall.SIGTERM); err != nil {
				t.Fatalf("Signal(SIGTERM): %v", err)
			}
			st := waitFor(t, p, 10*time.Second)
			if st.Signal != syscall.SIGTERM {
				t.Fatalf("status %v, want signal SIGTERM", st)
			}
			if err := p.Signal(syscall.SIGKILL); !errors.Is(err, os.ErrProcessDone) {
				t.Fatalf("Signal after Wait: %v, want os.ErrProcessDone", err)
			}
			if again := p.Wait(); again != st {
				t.Fatalf("second Wait %v, first %v", again, st)
			}
		})
	}
}

// TestSignalRacesWait signals a child in a loop while it exits and is
// reaped: every Signal returns nil or os.ErrProcessDone, and the race
// detector sees no race between Signal and the pidfd being closed.
func TestSignalRacesWait(t *testing.T) {
	for kind, s := range spawnerKinds(t) {
		t.Run(kind, func(t *testing.T) {
			for range 20 {
				p, err := s.Start(Spec{Path: "/bin/true"})
				if err != nil {
					t.Fatal(err)
				}
				stop := make(chan struct{})
				var wg sync.WaitGroup
				var bad error
				wg.Go(func() {
					for {
						if err := p.Signal(0); err != nil && !errors.Is(err, os.ErrProcessDone) {
							bad = err
							return
						}
						select {
						case <-stop:
							return
						default:
						}
					}
				})
				st := waitFor(t, p, 10*time.Second)
				close(stop)
				wg.Wait()
				if bad != nil {
					t.Fatalf("Signal while waiting: %v", bad)
				}
				if !st.Success() {
					t.Fatalf("status %v", st)
				}
			}
		})
	}
}

// countThreads returns the number of threads of this process.
func countThreads() (int, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("no Threads: line in /proc/self/status")
}

// threads is countThreads failing t on error.
func threads(t *testing.T) int {
	t.Helper()
	n, err := countThreads()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// parkedInWait counts goroutines parked on the poller inside Process.Wait.
func parkedInWait() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("[IO wait")) && bytes.Contains(g, []byte("(*Process).waitPidfd")) &&
			!bytes.Contains(g, []byte("startInit")) { // not a namespace init's reaper
			count++
		}
	}
	return count
}

// TestWaitHoldsNoThread waits for many running children at once: through
// the pidfd every waiting goroutine is parked on the poller, so the process
// does not gain a thread per waiter (a blocking waitid would need one each).
func TestWaitHoldsNoThread(t *testing.T) {
	if !pidfdWorks() {
		t.Skip("no pidfd on this kernel")
	}
	s := newSpawner(t)
	const n = 48
	procs := make([]*Process, 0, n)
	t.Cleanup(func() {
		for _, p := range procs {
			_ = p.Signal(syscall.SIGKILL)
			p.Wait()
		}
	})
	for range n {
		p, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}})
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	before := threads(t)
	sts := make([]ExitStatus, n)
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { sts[i] = p.Wait() })
	}
	eventually(t, 10*time.Second, "waiters parked on the poller", func() bool { return parkedInWait() == n })
	if after := threads(t); after-before >= n/2 {
		t.Fatalf("%d threads before %d waiters, %d with them: waiting holds threads", before, n, after)
	}
	for _, p := range procs {
		if err := p.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for i, st := range sts {
		if st.Signal != syscall.SIGKILL {
			t.Fatalf("child %d (pid %d): %v, want signal SIGKILL", i, procs[i].Pid, st)
		}
	}
}

// TestWaitAfterSpawnerClose reaps, through the pidfd, a child killed by
// PDEATHSIG when its Spawner closed.
func TestWaitAfterSpawnerClose(t *testing.T) {
	for kind, s := range spawnerKinds(t) {
		t.Run(kind, func(t *testing.T) {
			p, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			if st := waitFor(t, p, 10*time.Second); st.Signal != syscall.SIGKILL {
				t.Fatalf("status %v, want signal SIGKILL", st)
			}
		})
	}
}

func TestExitStatusOf(t *testing.T) {
	tests := []struct {
		code, status int32
		want         string
	}{
		{cldExited, 0, "exit 0"},
		{cldExited, 3, "exit 3"},
		{cldKilled, int32(syscall.SIGKILL), "signal SIGKILL"},
		{cldDumped, int32(syscall.SIGABRT), "signal SIGABRT (core dumped)"},
		{5, 19, "wait error: proc: unexpected waitid code 5 (status 19)"},
	}
	for _, tc := range tests {
		if got := exitStatusOf(tc.code, tc.status).String(); got != tc.want {
			t.Errorf("exitStatusOf(%d, %d) = %q, want %q", tc.code, tc.status, got, tc.want)
		}
	}
}

func TestReapBadPidfd(t *testing.T) {
	st, done := reap(-1, unix.WNOHANG)
	if !done || st.Err == nil || st.Code != -1 || !strings.Contains(st.Err.Error(), "waitid") {
		t.Fatalf("reap(-1) = %+v, %v; want a waitid error", st, done)
	}
	// A pidfd of a process that is not our child (ourselves).
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		t.Skip("no pidfd_open:", err)
	}
	defer unix.Close(fd)
	st, done = reap(fd, unix.WNOHANG)
	if !done || !errors.Is(st.Err, unix.ECHILD) {
		t.Fatalf("reap(own pidfd) = %+v, %v; want ECHILD", st, done)
	}
}
