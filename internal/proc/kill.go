// kill.go owns ending processes: signalling process groups, the
// SIGTERM-grace-SIGKILL sequence, and finding a process's descendants (for
// those that left their group with setsid).

package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/pidstat"
)

// ErrInvalidPid is wrapped by KillGroup, Terminate and Descendants for a pid
// or process group they refuse: <= 1 (kill(-1) signals every process) or the
// daemon's own process group.
var ErrInvalidPid = errors.New("proc: invalid pid")

// checkPgid refuses process groups whose signalling would hit the daemon or
// the whole system.
func checkPgid(pgid int) error {
	if pgid <= 1 {
		return fmt.Errorf("%w: refusing to signal process group %d", ErrInvalidPid, pgid)
	}
	if pgid == syscall.Getpgrp() {
		return fmt.Errorf("%w: refusing to signal process group %d: it is the daemon's own", ErrInvalidPid, pgid)
	}
	return nil
}

// KillGroup sends sig to every process of process group pgid (kill(-pgid)).
// A group that no longer exists (ESRCH) is not an error.
func KillGroup(pgid int, sig syscall.Signal) error {
	if err := checkPgid(pgid); err != nil {
		return err
	}
	if err := unix.Kill(-pgid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("proc: kill process group %d with %s: %w", pgid, SignalName(sig), err)
	}
	return nil
}

// groupAlive reports whether kill(-pgid, 0) finds a member of process group
// pgid. A zombie counts as a member until it is reaped, so this can stay true
// for a group whose only members are unreaped zombies (see liveGroups).
func groupAlive(pgid int) bool {
	return !errors.Is(unix.Kill(-pgid, 0), unix.ESRCH)
}

// liveGroups scans /proc once and returns which of pgids have a member that
// is not a zombie. On a read error of /proc itself it reports every group live.
func liveGroups(pgids []int) map[int]bool {
	live := make(map[int]bool, len(pgids))
	want := make(map[int]bool, len(pgids))
	for _, pg := range pgids {
		want[pg] = true
	}
	names, err := procPids()
	if err != nil {
		for _, pg := range pgids {
			live[pg] = true
		}
		return live
	}
	buf := make([]byte, pidstat.HeadBytes)
	for _, p := range names {
		st, ok := readStat(p, buf)
		if ok && want[st.PGRP] && st.State != 'Z' && st.State != 'X' {
			live[st.PGRP] = true
		}
	}
	return live
}

// Terminate ends the process groups pgids: SIGTERM to each group, then up to
// grace for every group to be empty, polling kill(-pgid, 0) at a gently
// growing interval (1 ms up to 50 ms), then SIGKILL to the groups still
// there, then polling until they are gone. It returns nil once every group is
// gone, or an error wrapping ctx.Err() naming the groups still alive when ctx
// ends first; the SIGKILL is sent even then (ctx bounds the waiting, not the
// killing). grace <= 0 sends SIGKILL at once, after the SIGTERM.
//
// A group whose members are all zombies counts as gone (found by a /proc scan
// made after 25 ms of waiting, then every 250 ms), so a leader not reaped yet
// or an orphan left unreaped by init does not hold Terminate up; reaping
// remains the job of Process.Wait.
//
// Members that left the group (setsid) are not reached: kill the cgroup, or
// the pids from Descendants, for those.
func Terminate(ctx context.Context, pgids []int, grace time.Duration) error {
	return TerminateWith(ctx, pgids, syscall.SIGTERM, grace)
}

// TerminateWith is Terminate with sig in place of SIGTERM.
func TerminateWith(ctx context.Context, pgids []int, sig syscall.Signal, grace time.Duration) error {
	for _, pg := range pgids {
		if err := checkPgid(pg); err != nil {
			return err
		}
	}
	var errs []error
	signal := func(alive []int, sig syscall.Signal) {
		for _, pg := range alive {
			if err := KillGroup(pg, sig); err != nil {
				errs = append(errs, err)
			}
		}
	}
	alive := append([]int(nil), pgids...)
	signal(alive, sig)
	if grace > 0 {
		graceCtx, cancel := context.WithTimeout(ctx, grace)
		alive = waitGroupsGone(graceCtx, alive)
		cancel()
	}
	if len(alive) > 0 {
		signal(alive, syscall.SIGKILL) // even when ctx has ended: it bounds the waiting, not the killing
		alive = waitGroupsGone(ctx, alive)
	}
	if len(alive) > 0 {
		errs = append(errs, fmt.Errorf("proc: terminate: process groups %v still alive: %w", alive, ctx.Err()))
	}
	return errors.Join(errs...)
}

// Polling of waitGroupsGone: kill(-pgid, 0) at an interval doubling from
// pollMin to pollMax; a /proc scan for groups left with zombies only after
// scanFirst of waiting and then every scanEvery.
const (
	pollMin   = time.Millisecond
	pollMax   = 50 * time.Millisecond
	scanFirst = 25 * time.Millisecond
	scanEvery = 250 * time.Millisecond
)

// waitGroupsGone polls until every group in alive is gone or ctx ends, and
// returns the groups still alive. A group whose members are all zombies
// counts as gone: an orphaned grandchild re-parented to an init that does not
// reap would otherwise keep its group "alive" for ever.
func waitGroupsGone(ctx context.Context, alive []int) []int {
	interval := pollMin
	nextScan := time.Now().Add(scanFirst)
	for {
		kept := alive[:0]
		for _, pg := range alive {
			if groupAlive(pg) {
				kept = append(kept, pg)
			}
		}
		alive = kept
		if len(alive) > 0 && !time.Now().Before(nextScan) {
			live := liveGroups(alive)
			kept := alive[:0]
			for _, pg := range alive {
				if live[pg] {
					kept = append(kept, pg)
				}
			}
			alive = kept
			nextScan = time.Now().Add(scanEvery)
		}
		if len(alive) == 0 {
			return nil
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return alive
		case <-t.C:
		}
		interval = min(interval*2, pollMax)
	}
}

// Descendants returns every live descendant of pid: children, grandchildren
// and so on, parents before their children. It reads
// /proc/<pid>/task/*/children where the kernel has it (CONFIG_PROC_CHILDREN),
// else scans the ppid of every /proc/*/stat. A pid that does not exist has no
// descendants. Orphans re-parented away from the tree (to init or a
// subreaper) are not found.
func Descendants(pid int) ([]int, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("%w: descendants of pid %d", ErrInvalidPid, pid)
	}
	if childrenFileWorks() {
		return descendantsByChildren(pid), nil
	}
	return descendantsByStat(pid)
}

// childrenFileWorks reports whether /proc/<pid>/task/<tid>/children exists.
var childrenFileWorks = sync.OnceValue(func() bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d/task/%d/children", os.Getpid(), os.Getpid()))
	return err == nil
})

// descendantsByChildren walks the tree through the children files.
func descendantsByChildren(pid int) []int {
	var out []int
	seen := map[int]bool{pid: true}
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue // the task ended meanwhile
			}
			for _, field := range bytes.Fields(b) {
				c, err := strconv.Atoi(string(field))
				if err != nil || seen[c] {
					continue
				}
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

// procPids lists the numeric entries of /proc (thread-group leaders).
func procPids() ([]int, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	pids := make([]int, 0, len(names))
	for _, name := range names {
		if p, err := strconv.Atoi(name); err == nil && p > 0 {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// descendantsByStat builds the ppid map from every /proc/*/stat and walks it.
func descendantsByStat(pid int) ([]int, error) {
	pids, err := procPids()
	if err != nil {
		return nil, fmt.Errorf("proc: descendants of %d: %w", pid, err)
	}
	children := make(map[int][]int)
	buf := make([]byte, pidstat.HeadBytes)
	for _, p := range pids {
		st, ok := readStat(p, buf)
		if !ok || st.State == 'Z' || st.State == 'X' {
			continue // ended meanwhile, or dead
		}
		children[st.PPID] = append(children[st.PPID], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out, nil
}

// readStat reads /proc/<pid>/stat into buf (pidstat.HeadBytes long); ok is
// false when the process is gone or its line cannot be parsed.
func readStat(pid int, buf []byte) (pidstat.Stat, bool) {
	if cap(buf) < pidstat.HeadBytes {
		buf = make([]byte, pidstat.HeadBytes)
	}
	st, err := pidstat.ReadInto(pid, buf[:cap(buf)])
	return st, err == nil
}
