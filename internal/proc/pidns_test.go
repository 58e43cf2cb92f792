package proc

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/testproc"
)

// needPIDNamespace skips a test on a host where the Spawner cannot use PID
// namespaces (not root).
func needPIDNamespace(t *testing.T) {
	t.Helper()
	if err := PIDNamespaceSupport(); err != nil {
		t.Skip("no pid namespaces here:", err)
	}
}

// killSleepers SIGKILLs every process of testproc.OrphanScript(base) at
// the end of the test, so that a failing test leaves nothing behind.
func killSleepers(t *testing.T, base int) {
	t.Cleanup(func() {
		for _, pids := range testproc.Sleepers(base) {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
}

// waitAllKinds waits until every kind of testproc.OrphanScript(base) runs.
func waitAllKinds(t *testing.T, base int) {
	t.Helper()
	eventually(t, 10*time.Second, "every kind of process started", func() bool {
		return len(testproc.Sleepers(base)) == len(testproc.OrphanKinds)
	})
}

// waitNoSurvivor fails the test unless every process of
// testproc.OrphanScript(base) is gone within a generous bound.
func waitNoSurvivor(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := testproc.Sleepers(base)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("survivors after 10s: %v", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDaemonKilledTakesEveryDescendant SIGKILLs a process whose Spawner
// started a child, a grandchild, a setsid'd grandchild and a double-forked
// process: the kernel kills them all.
func TestDaemonKilledTakesEveryDescendant(t *testing.T) {
	needPIDNamespace(t)
	base := testproc.OrphanBase()
	killSleepers(t, base)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=orphans", orphanBaseEnv+"="+strconv.Itoa(base))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if want := "started " + OrphansPIDNamespace + "\n"; err != nil || line != want {
		t.Fatalf("helper said %q, %v; want %q", line, err, want)
	}
	waitAllKinds(t, base)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitNoSurvivor(t, base)
}

// TestCloseTakesEveryDescendant: Close ends grandchildren too, setsid'd
// and double-forked ones included.
func TestCloseTakesEveryDescendant(t *testing.T) {
	needPIDNamespace(t)
	base := testproc.OrphanBase()
	killSleepers(t, base)
	s := NewSpawner()
	t.Cleanup(s.Close)
	p, err := s.Start(Spec{Path: "/bin/sh", Args: []string{"-c", testproc.OrphanScript(base)},
		Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	waitAllKinds(t, base)
	s.Close()
	if st := waitFor(t, p, 10*time.Second); st.Signal != syscall.SIGKILL {
		t.Errorf("command ended with %v, want SIGKILL", st)
	}
	waitNoSurvivor(t, base)
}

// nsPids returns the NSpid line of /proc/<pid>/status: the pid in each
// namespace from the host's down.
func nsPids(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
			return strings.Fields(v)
		}
	}
	t.Fatalf("no NSpid in /proc/%d/status", pid)
	return nil
}

// TestPIDNamespaceOrNot: Process.Pid is the host's pid either way; with a
// namespace the command sees another, without it the same.
func TestPIDNamespaceOrNot(t *testing.T) {
	needPIDNamespace(t)
	for _, tc := range []struct {
		name    string
		opts    Options
		orphans string
		levels  int
	}{
		{"namespace", Options{}, OrphansPIDNamespace, 2},
		{"none", Options{NoPIDNamespace: true}, OrphansPdeathsig + ": pid namespaces not asked for", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSpawnerOptions(tc.opts)
			t.Cleanup(s.Close)
			r, w := pipe(t)
			in, _ := pipe(t) // the shell waits on it until the end of the test
			p, err := s.Start(Spec{Path: "/bin/sh", Args: []string{"-c", "echo $$; read x"}, Stdout: w, Stdin: in})
			if err != nil {
				t.Fatal(err)
			}
			w.Close()
			t.Cleanup(func() { _ = p.Signal(syscall.SIGKILL); p.Wait() })
			if got := s.Orphans(); got != tc.orphans {
				t.Errorf("Orphans() = %q, want %q", got, tc.orphans)
			}
			ns := nsPids(t, p.Pid)
			if len(ns) != tc.levels || ns[0] != strconv.Itoa(p.Pid) {
				t.Fatalf("NSpid of %d: %v, want %d levels from the host's pid", p.Pid, ns, tc.levels)
			}
			if got := readLine(t, r); got != ns[len(ns)-1] {
				t.Errorf("the command says its pid is %s; NSpid %v", got, ns)
			}
		})
	}
}

// TestInitHoldsNoPipe: the namespace's init holds /dev/null on 0-2 and the
// daemon's pidfd on 3, nothing else, so no command's pipe stays open in it.
func TestInitHoldsNoPipe(t *testing.T) {
	needPIDNamespace(t)
	s := newSpawner(t)
	if st, out := run(t, s, Spec{Path: "/bin/echo", Args: []string{"hi"}}); !st.Success() || out != "hi\n" {
		t.Fatalf("echo: %v %q", st, out)
	}
	init := s.ns.cur.init.Pid // written before Start answered
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", init))
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for _, e := range ents {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", init, e.Name()))
		fds = append(fds, e.Name()+" -> "+target)
	}
	// The Go runtime of the init may add its own (epoll, a pipe for
	// wake-ups) above 3; none is a command's.
	for _, f := range fds {
		name, target, _ := strings.Cut(f, " -> ")
		n, _ := strconv.Atoi(name)
		switch {
		case n <= 2 && target != os.DevNull:
			t.Errorf("init fd %s, want /dev/null", f)
		case n == 3 && target != "anon_inode:[pidfd]":
			t.Errorf("init fd %s, want the daemon's pidfd", f)
		}
	}
	if !slices.ContainsFunc(fds, func(f string) bool { return strings.HasPrefix(f, "3 -> ") }) {
		t.Errorf("init fds %v: no pidfd of the daemon", fds)
	}
}

// TestInitKilledNamespaceReplaced: when someone kills the init, the
// namespace's processes die with it and the next Start makes a new one.
func TestInitKilledNamespaceReplaced(t *testing.T) {
	needPIDNamespace(t)
	s := newSpawner(t)
	p, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	first := s.ns.cur.init
	if err := first.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if st := waitFor(t, p, 10*time.Second); st.Signal != syscall.SIGKILL {
		t.Fatalf("sleep ended with %v, want SIGKILL", st)
	}
	st, out := run(t, s, Spec{Path: "/bin/echo", Args: []string{"again"}})
	if !st.Success() || out != "again\n" {
		t.Fatalf("after the init died: %v %q", st, out)
	}
	if second := s.ns.cur.init; second == first {
		t.Error("the namespace was not replaced")
	}
}

// TestSweepStrayInits: an init whose parent is not the binary it runs (its
// daemon is gone) is killed; a live Spawner's init is left alone.
func TestSweepStrayInits(t *testing.T) {
	needPIDNamespace(t)
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare(1):", err)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash:", err)
	}
	s := newSpawner(t)
	if st, _ := run(t, s, Spec{Path: "/bin/true"}); !st.Success() {
		t.Fatal(st)
	}
	live := s.ns.cur.init.Pid
	// A stray: pid 1 of a namespace of its own, argv the init's, child of
	// unshare(1).
	cmd := exec.Command(unshare, "--pid", "--fork", bash, "-c", `exec -a "$0" "$1"`, initArg0, os.Args[0])
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	var stray int
	eventually(t, 10*time.Second, "the stray init running", func() bool {
		kids, _ := Descendants(cmd.Process.Pid)
		for _, k := range kids {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", k)); strings.HasPrefix(string(b), initArg0+"\x00") {
				stray = k
				return true
			}
		}
		return false
	})
	killed, err := SweepStrayInits()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(killed, stray) || slices.Contains(killed, live) {
		t.Fatalf("swept %v; want the stray %d and not the live init %d", killed, stray, live)
	}
	select {
	case <-done: // unshare exits once its child is killed
	case <-time.After(10 * time.Second):
		t.Fatal("unshare still waits for the stray init")
	}
	if gone(live) {
		t.Error("the live Spawner's init was killed")
	}
}
