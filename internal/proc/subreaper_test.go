package proc

import (
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/pidstat"

	"github.com/shipote/shipote/internal/testproc"
)

// watchdogSpawner returns a Spawner of a process under a watchdog: the test
// process becomes a child subreaper until the end of the test.
func watchdogSpawner(t *testing.T) *Spawner {
	t.Helper()
	s := NewSpawnerOptions(Options{NoPIDNamespace: true, Watchdog: true})
	t.Cleanup(func() {
		s.Close()
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	})
	if s.reaper == nil {
		t.Fatalf("no subreaper: %v", s.reaperErr)
	}
	return s
}

// zombieChildren returns this process's children that are zombies.
func zombieChildren(t *testing.T) []int {
	t.Helper()
	var out []int
	buf := make([]byte, pidstat.HeadBytes)
	kids, err := listChildren(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range kids {
		if st, ok := readStat(pid, buf); ok && st.State == 'Z' {
			out = append(out, pid)
		}
	}
	return out
}

// TestWatchdogKeepsTheTree: under a watchdog, a command's setsid'd and
// double-forked descendants stay in the daemon's tree (re-parented to it,
// not to init), KillTree kills every kind, and the adopted ones are reaped.
func TestWatchdogKeepsTheTree(t *testing.T) {
	s := watchdogSpawner(t)
	if got := s.Orphans(); got != OrphansWatchdog {
		t.Fatalf("Orphans() = %q, want %q", got, OrphansWatchdog)
	}
	base := testproc.OrphanBase()
	killSleepers(t, base)
	p, err := s.Start(Spec{Path: "/bin/sh", Args: []string{"-c", testproc.OrphanScript(base)}, Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	waitAllKinds(t, base)
	self := os.Getpid()
	buf := make([]byte, pidstat.HeadBytes)
	eventually(t, 10*time.Second, "the double-forked sleep re-parented to this process", func() bool {
		pids := testproc.Sleepers(base)["double-forked"]
		if len(pids) != 1 {
			return false
		}
		st, ok := readStat(pids[0], buf)
		return ok && st.PPID == self
	})
	n, err := KillTree(10*time.Second, false)
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Fatalf("KillTree signalled %d processes, want the command and the adopted sleep at least", n)
	}
	waitNoSurvivor(t, base)
	if st := p.Wait(); st.Signal != syscall.SIGKILL {
		t.Fatalf("command ended with %v, want SIGKILL", st)
	}
	eventually(t, 10*time.Second, "adopted orphans reaped", func() bool {
		return len(zombieChildren(t)) == 0
	})
}

// TestWatchdogReaperLeavesOwnChildren: while adopted orphans come and go,
// the reaper never takes a process the Spawner started: every Wait gets
// the real exit status.
func TestWatchdogReaperLeavesOwnChildren(t *testing.T) {
	s := watchdogSpawner(t)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Odd ones leave an orphan that exits at once; every one exits 3.
			script := "exit 3"
			if i%2 == 1 {
				script = "(/bin/true &) ; exit 3"
			}
			p, err := s.Start(Spec{Path: "/bin/sh", Args: []string{"-c", script}})
			if err != nil {
				errs <- err.Error()
				return
			}
			if st := p.Wait(); st.Code != 3 || st.Err != nil {
				errs <- st.String()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error("a command's status:", e)
	}
	eventually(t, 10*time.Second, "adopted orphans reaped", func() bool {
		return len(zombieChildren(t)) == 0
	})
}
