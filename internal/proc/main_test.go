// main_test.go owns the test binary's entry point: the helper modes run when
// the binary is re-executed by a test, and shared test utilities.

package proc

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/pidstat"
	"github.com/shipote/shipote/internal/testproc"
)

// bgSleep is a shell command that, followed by &, starts `sleep 1000` in
// the background and prints its pid as the host sees it. `echo $!` would print the pid in
// the Spawner's PID namespace: the subshell reads its own host pid from
// /proc/self (the host's procfs) and then becomes the sleep.
const bgSleep = `( read -r pid rest </proc/self/stat; echo $pid; exec sleep 1000 )`

// helperEnv selects a helper mode when the test binary is re-executed.
const helperEnv = "SHIPOTE_PROC_TEST_HELPER"

func init() {
	if os.Getenv(helperEnv) == "mainthread" {
		runtime.LockOSThread() // keeps the main goroutine, and TestMain, on the main thread
	}
}

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		goleak.VerifyTestMain(m)
	case "pdeathsig":
		helperPdeathsig()
	case "mainthread":
		helperMainThread()
	case "orphans":
		helperOrphans()
	default:
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// helperPdeathsig starts `sleep 1000` through a Spawner, prints its pid and
// blocks until killed.
func helperPdeathsig() {
	s := NewSpawner()
	p, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(p.Pid)
	for {
		time.Sleep(time.Hour)
	}
}

// helperOrphans starts testproc.OrphanScript through a Spawner, prints
// "started" and blocks until killed.
func helperOrphans() {
	base, _ := strconv.Atoi(os.Getenv(orphanBaseEnv))
	s := NewSpawner()
	if _, err := s.Start(Spec{Path: "/bin/sh", Args: []string{"-c", testproc.OrphanScript(base)},
		Env: []string{"PATH=/usr/bin:/bin"}}); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("started", s.Orphans())
	for {
		time.Sleep(time.Hour)
	}
}

// orphanBaseEnv gives helperOrphans its testproc.OrphanScript base.
const orphanBaseEnv = "SHIPOTE_PROC_ORPHAN_BASE"

// helperMainThread runs the spawning goroutine's body on the main thread,
// where it must hand over to another thread, then checks that Close still
// kills the children. It prints "<tid> <pid> <status of the child>".
func helperMainThread() {
	if unix.Gettid() != unix.Getpid() {
		fmt.Println("TestMain is not on the main thread")
		os.Exit(1)
	}
	s := newSpawnerState()
	ready := make(chan int, 1)
	s.run(ready) // returns at once: it hands over to a goroutine on another thread
	s.tid = <-ready
	p, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	s.Close()
	fmt.Println(s.tid, os.Getpid(), p.Wait())
	os.Exit(0)
}

func mustResolve(name string) string {
	p, err := Resolve(name, nil)
	if err != nil {
		panic(err)
	}
	return p
}

// newSpawner returns a Spawner closed at the end of the test.
func newSpawner(t *testing.T) *Spawner {
	t.Helper()
	s := NewSpawner()
	t.Cleanup(s.Close)
	return s
}

// pipe returns an os.Pipe closed at the end of the test.
func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// run starts spec with stdout on a pipe, waits for it and returns its
// status and everything it printed.
func run(t *testing.T, s *Spawner, spec Spec) (ExitStatus, string) {
	t.Helper()
	r, w := pipe(t)
	spec.Stdout = w
	p, err := s.Start(spec)
	if err != nil {
		t.Fatalf("Start(%s %q): %v", spec.Path, spec.Args, err)
	}
	w.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return waitFor(t, p, 10*time.Second), string(out)
}

// waitFor waits for p, failing the test (after killing p) past the deadline.
func waitFor(t *testing.T, p *Process, d time.Duration) ExitStatus {
	t.Helper()
	ch := make(chan ExitStatus, 1)
	go func() { ch <- p.Wait() }()
	select {
	case st := <-ch:
		return st
	case <-time.After(d):
		_ = p.Signal(unix.SIGKILL)
		<-ch
		t.Fatalf("pid %d still running after %v", p.Pid, d)
		return ExitStatus{}
	}
}

// eventually polls cond every 10 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gone reports whether pid no longer exists or is a zombie (an orphan is
// re-parented to init, which may never reap it).
func gone(pid int) bool {
	st, ok := readStat(pid, make([]byte, pidstat.HeadBytes))
	return !ok || st.State == 'Z' || st.State == 'X'
}

// readLine reads one line from r a byte at a time, so nothing after the
// newline is consumed.
func readLine(t *testing.T, r io.Reader) string {
	t.Helper()
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err := r.Read(b); err != nil {
			t.Fatalf("read line: %v (got %q)", err, line)
		}
		if b[0] == '\n' {
			return string(line)
		}
		line = append(line, b[0])
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
