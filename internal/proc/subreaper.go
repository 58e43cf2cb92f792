// subreaper.go keeps every descendant of the daemon in its process tree
// where PID namespaces cannot be had: the daemon becomes a child subreaper
// (an orphaned descendant is re-parented to it, not to init), reaps the
// orphans it adopts, and can kill its whole tree at once.

package proc

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/pidstat"
)

// BecomeSubreaper makes this process a child subreaper
// (PR_SET_CHILD_SUBREAPER): from then on an orphaned descendant is
// re-parented to it rather than to init, so every descendant stays in its
// tree, setsid'd and double-forked ones included.
func BecomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("proc: become a child subreaper: %w", err)
	}
	return nil
}

// listChildren returns every child of pid, zombies included, from
// /proc/<pid>/task/*/children (a thread that has exited meanwhile is
// skipped).
func listChildren(pid int) ([]int, error) {
	tasks, err := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	if err != nil {
		return nil, fmt.Errorf("proc: children of %d: %w", pid, err)
	}
	if len(tasks) == 0 {
		return nil, fmt.Errorf("proc: children of %d: %w", pid, os.ErrNotExist)
	}
	var out []int
	for _, name := range tasks {
		b, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		for f := range strings.FieldsSeq(string(b)) {
			if child, err := strconv.Atoi(f); err == nil {
				out = append(out, child)
			}
		}
	}
	return out, nil
}

// Children returns the pids of pid's children that have not exited yet
// (zombies left out), from /proc/<pid>/task/*/children.
func Children(pid int) ([]int, error) {
	all, err := listChildren(pid)
	if err != nil {
		return nil, err
	}
	var out []int
	buf := make([]byte, pidstat.HeadBytes)
	for _, child := range all {
		if st, ok := readStat(child, buf); ok && st.State != 'Z' && st.PPID == pid {
			out = append(out, child)
		}
	}
	return out, nil
}

// childrenByStat returns pid's live children from every /proc/*/stat.
func childrenByStat(pid int) ([]int, error) {
	pids, err := procPids()
	if err != nil {
		return nil, fmt.Errorf("proc: children of %d: %w", pid, err)
	}
	var out []int
	buf := make([]byte, pidstat.HeadBytes)
	for _, p := range pids {
		if st, ok := readStat(p, buf); ok && st.PPID == pid && st.State != 'Z' {
			out = append(out, p)
		}
	}
	return out, nil
}

// KillTree SIGKILLs every descendant of this process, which must be a
// child subreaper: each child and its process group is killed, the children
// of the dead are re-parented here, and the loop goes on until no child is
// left alive or timeout passes. With reap, it also reaps every child (for a
// process that waits for nothing else). It returns how many processes it
// signalled, and an error naming what is still alive after timeout.
func KillTree(timeout time.Duration, reap bool) (int, error) {
	self := os.Getpid()
	end := time.Now().Add(timeout)
	killed := make(map[int]bool)
	for {
		if reap {
			reapAny()
		}
		kids, err := Children(self)
		if err != nil {
			return len(killed), err
		}
		if len(kids) == 0 {
			// A children file read while children come and go can miss
			// one: only a scan of every process says the tree is empty.
			if kids, err = childrenByStat(self); err != nil {
				return len(killed), err
			}
			if len(kids) == 0 {
				return len(killed), nil
			}
		}
		if time.Now().After(end) {
			return len(killed), fmt.Errorf("proc: %d processes still alive after %v: %v", len(kids), timeout, kids)
		}
		for _, pid := range kids {
			_ = unix.Kill(-pid, unix.SIGKILL) // its group, when it leads one
			_ = unix.Kill(pid, unix.SIGKILL)
			killed[pid] = true
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// reapAny reaps every child that has exited, without blocking.
func reapAny() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// orphanReaper reaps the children a subreaper Spawner adopts: orphans of
// its commands' trees. It must never reap a process the Spawner forked, whose
// Process.Wait owns its exit status: own holds those, and mu is held across
// each fork until the new child is in own.
type orphanReaper struct {
	mu   sync.Mutex
	own  map[int]struct{}
	quit chan struct{}
	done chan struct{}
}

// startOrphanReaper starts the goroutine that reaps adopted orphans on each
// SIGCHLD, and every few seconds in case a signal was coalesced.
func startOrphanReaper() *orphanReaper {
	r := &orphanReaper{own: make(map[int]struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	go func() {
		defer close(r.done)
		defer signal.Stop(chld)
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-r.quit:
				return
			case <-chld:
			case <-tick.C:
			}
			r.reap()
		}
	}()
	return r
}

// fork runs start (one fork) with mu held, and records the pid it returns
// as the Spawner's own.
func (r *orphanReaper) fork(start func() (int, error)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := start()
	if err == nil {
		r.own[pid] = struct{}{}
	}
	return err
}

// reaped forgets pid once its Process.Wait has reaped it.
func (r *orphanReaper) reaped(pid int) {
	r.mu.Lock()
	delete(r.own, pid)
	r.mu.Unlock()
}

// reap reaps every exited child of this process that the Spawner did not
// fork.
func (r *orphanReaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	kids, _ := listChildren(os.Getpid())
	buf := make([]byte, pidstat.HeadBytes)
	for _, pid := range kids {
		if _, ok := r.own[pid]; ok {
			continue
		}
		if st, ok := readStat(pid, buf); !ok || st.State != 'Z' {
			continue
		}
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
}

// stop ends the reaping goroutine and waits for it.
func (r *orphanReaper) stop() {
	close(r.quit)
	<-r.done
}
