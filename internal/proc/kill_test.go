// kill_test.go checks KillGroup, Terminate and Descendants on real process
// trees.

package proc

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/pidstat"
)

// unusedPgid returns a process group id that no process uses.
func unusedPgid(t *testing.T) int {
	t.Helper()
	for pg := 30000; pg > 2; pg-- {
		if errors.Is(unix.Kill(-pg, 0), unix.ESRCH) {
			return pg
		}
	}
	t.Fatal("no unused process group id")
	return 0
}

func TestKillGroupRefuses(t *testing.T) {
	tests := []struct {
		pgid   int
		substr string
	}{
		{0, "refusing to signal process group 0"},
		{1, "refusing to signal process group 1"},
		{-5, "refusing to signal process group -5"},
		{syscall.Getpgrp(), "it is the daemon's own"},
	}
	for _, tc := range tests {
		err := KillGroup(tc.pgid, 0)
		if !errors.Is(err, ErrInvalidPid) || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("KillGroup(%d): %v, want ErrInvalidPid containing %q", tc.pgid, err, tc.substr)
		}
		if err := Terminate(context.Background(), []int{tc.pgid}, 0); !errors.Is(err, ErrInvalidPid) {
			t.Errorf("Terminate(%d): %v, want ErrInvalidPid", tc.pgid, err)
		}
	}
	if err := KillGroup(unusedPgid(t), syscall.SIGKILL); err != nil {
		t.Errorf("KillGroup of a group that does not exist: %v", err)
	}
}

func TestKillGroupReachesGrandchildAfterParentExited(t *testing.T) {
	s := newSpawner(t)
	r, w := pipe(t)
	p, err := s.Start(Spec{Path: "/bin/sh", Args: []string{"-c", bgSleep + " &"}, Stdout: w})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	grandchild := atoi(t, readLine(t, r))
	if st := waitFor(t, p, 10*time.Second); !st.Success() {
		t.Fatalf("sh: %v", st)
	}
	if gone(grandchild) {
		t.Fatal("grandchild not running")
	}
	if pg, err := unix.Getpgid(grandchild); err != nil || pg != p.Pid {
		t.Fatalf("grandchild's group %d, %v; want %d", pg, err, p.Pid)
	}
	if err := KillGroup(p.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "grandchild survived KillGroup", func() bool { return gone(grandchild) })
}

func TestTerminateEscalatesAfterGrace(t *testing.T) {
	s := newSpawner(t)
	r, w := pipe(t)
	p, err := s.Start(Spec{Path: "/bin/sh", Stdout: w, Env: []string{"PATH=/usr/bin:/bin"},
		Args: []string{"-c", "trap '' TERM; echo ready; while :; do sleep 1; done"}})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got := readLine(t, r); got != "ready" {
		t.Fatalf("got %q", got)
	}
	statusCh := make(chan ExitStatus, 1)
	go func() { statusCh <- p.Wait() }()
	const grace = 300 * time.Millisecond
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Terminate(ctx, []int{p.Pid}, grace); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < grace {
		t.Errorf("Terminate returned after %v, before the %v grace", took, grace)
	}
	if st := <-statusCh; st.Signal != syscall.SIGKILL {
		t.Fatalf("status %v, want SIGKILL", st)
	}
	// The killed `sleep 1` is an orphan; where init does not reap it stays a
	// zombie in the group, which counts as gone.
	if liveGroups([]int{p.Pid})[p.Pid] {
		t.Fatal("group still has a live member")
	}
}

func TestTerminateCooperative(t *testing.T) {
	s := newSpawner(t)
	var ps []*Process
	for range 3 {
		p, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}})
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	statusCh := make(chan ExitStatus, len(ps))
	pgids := make([]int, 0, len(ps))
	for _, p := range ps {
		pgids = append(pgids, p.Pid)
		go func() { statusCh <- p.Wait() }()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A grace longer than the test's deadline: Terminate must return once the groups are empty.
	if err := Terminate(ctx, pgids, time.Hour); err != nil {
		t.Fatal(err)
	}
	for range ps {
		if st := <-statusCh; st.Signal != syscall.SIGTERM {
			t.Fatalf("status %v, want SIGTERM", st)
		}
	}
}

func TestTerminateZombieOnlyGroupCountsAsGone(t *testing.T) {
	s := newSpawner(t)
	p, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	// Nobody waits yet: after SIGTERM the leader is a zombie that kill(-pgid, 0) still finds.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Terminate(ctx, []int{p.Pid}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if !groupAlive(p.Pid) {
		t.Error("expected the unreaped zombie to keep kill(-pgid, 0) succeeding")
	}
	if st := p.Wait(); st.Signal != syscall.SIGTERM {
		t.Fatalf("status %v", st)
	}
}

func TestTerminateContextEnds(t *testing.T) {
	// With a context already done, Terminate cannot wait, but it still
	// signals, and names the groups it could not see gone.
	s := newSpawner(t)
	p, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = Terminate(ctx, []int{p.Pid}, time.Hour)
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if err != nil && !strings.Contains(err.Error(), "still alive") {
		t.Fatalf("err %v does not name the live groups", err)
	}
	if st := waitFor(t, p, 10*time.Second); st.Signal != syscall.SIGTERM && st.Signal != syscall.SIGKILL {
		t.Fatalf("status %v", st)
	}
}

func TestTerminateNothing(t *testing.T) {
	if err := Terminate(context.Background(), nil, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := Terminate(context.Background(), []int{unusedPgid(t)}, time.Hour); err != nil {
		t.Fatal(err)
	}
}

func TestDescendants(t *testing.T) {
	s := newSpawner(t)
	r, w := pipe(t)
	// sh -> sh -> sleep
	p, err := s.Start(Spec{Path: "/bin/sh", Stdout: w, Env: []string{"PATH=/usr/bin:/bin"},
		Args: []string{"-c", `sh -c '` + bgSleep + ` & wait' & wait`}})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	sleepPid := atoi(t, readLine(t, r))
	statusCh := make(chan ExitStatus, 1)
	go func() { statusCh <- p.Wait() }()
	defer func() {
		_ = KillGroup(p.Pid, syscall.SIGKILL)
		<-statusCh
	}()

	check := func(name string, got []int, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != 2 || !slices.Contains(got, sleepPid) {
			t.Fatalf("%s(%d) = %v, want the inner sh and sleep %d", name, p.Pid, got, sleepPid)
		}
		if got[1] != sleepPid {
			t.Fatalf("%s(%d) = %v, want parents before children", name, p.Pid, got)
		}
	}
	got, err := Descendants(p.Pid)
	check("Descendants", got, err)
	got, err = descendantsByStat(p.Pid)
	check("descendantsByStat", got, err)
	if childrenFileWorks() {
		check("descendantsByChildren", descendantsByChildren(p.Pid), nil)
	} else {
		t.Log("this kernel has no /proc/<pid>/task/<tid>/children; the /proc/*/stat scan was used")
	}

	if got, err := Descendants(sleepPid); err != nil || len(got) != 0 {
		t.Fatalf("Descendants of a leaf: %v, %v", got, err)
	}
}

func TestDescendantsBadInput(t *testing.T) {
	for _, pid := range []int{0, -1} {
		if _, err := Descendants(pid); !errors.Is(err, ErrInvalidPid) || !strings.Contains(err.Error(), "descendants of pid") {
			t.Errorf("Descendants(%d): %v", pid, err)
		}
	}
	// A pid that does not exist has no descendants.
	if got, err := Descendants(unusedPgid(t)); err != nil || len(got) != 0 {
		t.Errorf("Descendants of a missing pid: %v, %v", got, err)
	}
}

func TestReadStatOddName(t *testing.T) {
	// A command name with spaces and parentheses must not shift the fields.
	dir := t.TempDir()
	odd := dir + "/a) b (c"
	if err := os.Symlink(mustResolve("sleep"), odd); err != nil {
		t.Fatal(err)
	}
	s := newSpawner(t)
	p, err := s.Start(Spec{Path: odd, Args: []string{"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	defer waitFor(t, p, 10*time.Second)
	defer p.Signal(syscall.SIGKILL)
	st, ok := readStat(p.Pid, make([]byte, pidstat.HeadBytes))
	if !ok || st.PPID != os.Getpid() || st.PGRP != p.Pid {
		t.Fatalf("readStat = %+v, %v; want ppid %d pgrp %d", st, ok, os.Getpid(), p.Pid)
	}
}
