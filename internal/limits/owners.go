// owners.go lets a daemon clean up after other daemons, not only after its
// own earlier runs: each daemon marks its parent subtree with its owner (an
// extended attribute on the directory), and at start a daemon kills and
// removes every sibling subtree whose owner is gone. A subtree without the
// mark is never touched.

package limits

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/pidstat"
)

// ownerXattr names the extended attribute holding a subtree's Owner.
// user.* attributes work on cgroupfs (kernfs) for the directory's owner,
// root or a user a subtree is delegated to.
const ownerXattr = "user.shipote.owner"

// Owner says who owns a parent subtree, so that another daemon can tell
// whether it is still alive.
type Owner struct {
	// LockPath is the state file's lock of a persistent daemon: the
	// subtree is alive while some process holds an flock on it.
	LockPath string
	// PID and Start name the process of an in-memory engine: the subtree
	// is alive while a process with that pid and start time (field 22 of
	// /proc/<pid>/stat) runs.
	PID   int
	Start uint64
}

// SelfOwner is the Owner of an in-memory engine of this process.
func SelfOwner() (Owner, error) {
	st, err := pidstat.Read(os.Getpid())
	if err != nil {
		return Owner{}, fmt.Errorf("limits: owner: %w", err)
	}
	return Owner{PID: st.PID, Start: st.StartTime}, nil
}

func (o Owner) String() string {
	if o.LockPath != "" {
		return "lock " + o.LockPath
	}
	return fmt.Sprintf("pid %d %d", o.PID, o.Start)
}

// parseOwner reads what Owner.String wrote.
func parseOwner(s string) (Owner, error) {
	if p, ok := strings.CutPrefix(s, "lock "); ok && filepath.IsAbs(p) {
		return Owner{LockPath: p}, nil
	}
	f := strings.Fields(s)
	if len(f) == 3 && f[0] == "pid" {
		pid, err1 := strconv.Atoi(f[1])
		start, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 == nil && err2 == nil && pid > 0 {
			return Owner{PID: pid, Start: start}, nil
		}
	}
	return Owner{}, fmt.Errorf("limits: bad owner mark %q", s)
}

// gone reports whether the owner has ended. For a lock it takes the lock
// and returns a release to call once the subtree is gone, so that no
// daemon starts on that state file meanwhile.
func (o Owner) gone() (bool, func()) {
	if o.LockPath != "" {
		f, err := os.Open(o.LockPath)
		if errors.Is(err, os.ErrNotExist) {
			return true, func() {}
		}
		if err != nil {
			return false, nil // cannot tell: leave it
		}
		for {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		if err != nil {
			f.Close()
			return false, nil
		}
		return true, func() { f.Close() }
	}
	st, err := pidstat.Read(o.PID)
	if err != nil || st.StartTime != o.Start || st.State == 'Z' {
		return true, func() {}
	}
	return false, nil
}

// parentDirs returns the backend's parent directory in each hierarchy.
func parentDirs(b Backend) []string {
	switch b := b.(type) {
	case *cgroup1Backend:
		dirs := make([]string, 0, len(b.hier))
		for _, c := range b.hier {
			dirs = append(dirs, b.parentDir[c])
		}
		return dirs
	case *cgroup2Backend:
		return []string{b.parentDir}
	}
	return nil
}

// MarkOwner writes o on the backend's parent directories. The rlimit
// backend has none.
func MarkOwner(b Backend, o Owner) error {
	var errs []error
	for _, d := range parentDirs(b) {
		if err := unix.Setxattr(d, ownerXattr, []byte(o.String()), 0); err != nil {
			errs = append(errs, fmt.Errorf("limits: mark the owner of %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// readOwner returns the owner mark of dir; ok is false without one.
func readOwner(dir string) (Owner, bool) {
	buf := make([]byte, 4096)
	n, err := unix.Getxattr(dir, ownerXattr, buf)
	if err != nil {
		return Owner{}, false
	}
	o, err := parseOwner(string(buf[:n]))
	return o, err == nil
}

// SweepDead kills every process of, and removes, each subtree beside the
// backend's parent (in each hierarchy) that bears an owner mark whose
// owner is gone: a daemon on another state file that died, or an
// in-memory engine's process that ended. It returns the directories it
// removed. Unmarked directories, and the backend's own parent, are left
// alone.
func SweepDead(ctx context.Context, b Backend) ([]string, error) {
	var removed []string
	var errs []error
	for _, parent := range parentDirs(b) {
		base := filepath.Dir(parent)
		entries, err := os.ReadDir(base)
		if err != nil {
			errs = append(errs, fmt.Errorf("limits: sweep beside %s: %w", parent, err))
			continue
		}
		for _, e := range entries {
			dir := filepath.Join(base, e.Name())
			if !e.IsDir() || dir == parent {
				continue
			}
			o, ok := readOwner(dir)
			if !ok {
				continue
			}
			gone, release := o.gone()
			if !gone {
				continue
			}
			err := removeTree(ctx, dir)
			release()
			if err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, dir)
		}
	}
	return removed, errors.Join(errs...)
}

// removeTree kills every process in the cgroup directory dir and its
// descendants, and removes them, deepest first.
func removeTree(ctx context.Context, dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("limits: sweep %s: %w", dir, err)
	}
	kctx, cancel := context.WithTimeout(ctx, killTimeout)
	defer cancel()
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		procs := filepath.Join(d, "cgroup.procs")
		if err := killUntilEmpty(kctx, func() ([]int, error) {
			pids, err := readPidFile(procs)
			if errors.Is(err, os.ErrNotExist) {
				return nil, nil
			}
			return pids, err
		}); err != nil {
			return fmt.Errorf("limits: sweep %s: %w", d, err)
		}
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		err := rmdirRetry(rctx, d)
		rcancel()
		if err != nil {
			return fmt.Errorf("limits: sweep: %w", err)
		}
	}
	return nil
}
