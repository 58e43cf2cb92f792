// cgroupfs.go owns what both cgroup backends share: parsing
// /proc/self/mountinfo, reading and writing cgroup control files, the kill
// loop that empties a group, and listing the groups under a parent.

package limits

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// killTimeout bounds Group.Kill(SIGKILL)'s wait for the group to empty.
const killTimeout = 5 * time.Second

// mount is one line of /proc/self/mountinfo.
type mount struct {
	Root      string   // the path inside the filesystem that is mounted (field 4)
	Point     string   // where it is mounted (field 5)
	FSType    string   // "cgroup", "cgroup2", ...
	SuperOpts []string // super options: for cgroup v1 the controllers ("memory", "cpu", "name=systemd", ...)
}

// readMountinfo parses /proc/self/mountinfo.
func readMountinfo() ([]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("limits: %w", err)
	}
	defer f.Close()
	return parseMountinfo(f)
}

// parseMountinfo parses the mountinfo format (proc(5)):
// "36 35 98:0 /root /mnt rw,noatime master:1 - ext3 /dev/root rw,errors=continue".
func parseMountinfo(r io.Reader) ([]mount, error) {
	var out []mount
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for s.Scan() {
		line := s.Text()
		if line == "" {
			continue
		}
		fields := strings.Fields(line)
		sep := slices.Index(fields, "-")
		if sep < 6 || len(fields) < sep+4 {
			return nil, fmt.Errorf("limits: mountinfo: malformed line %q", line)
		}
		out = append(out, mount{
			Root:      unescapeMountPath(fields[3]),
			Point:     unescapeMountPath(fields[4]),
			FSType:    fields[sep+1],
			SuperOpts: strings.Split(fields[sep+3], ","),
		})
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("limits: mountinfo: %w", err)
	}
	return out, nil
}

// unescapeMountPath undoes the kernel's octal escaping of space, tab,
// newline and backslash in mountinfo paths.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// inMount turns a cgroup path as /proc/self/cgroup shows it into a path
// relative to a mount whose root is mountRoot (not "/" inside a cgroup
// namespace or a bind mount of a subtree).
func inMount(cgPath, mountRoot string) string {
	if mountRoot == "/" || mountRoot == "" {
		return cgPath
	}
	if rel, err := filepath.Rel(mountRoot, cgPath); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return filepath.Join("/", rel)
	}
	return cgPath
}

// readPidFile reads a cgroup.procs (or tasks) file.
func readPidFile(path string) ([]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		pid, err := strconv.Atoi(string(line))
		if err != nil {
			return nil, fmt.Errorf("limits: %s: bad pid %q", path, line)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// readUintFile reads a control file holding one unsigned number ("max"
// reads as 0). The sampler reads a few such files per workspace every
// second, so the file is read into a small buffer on the stack: os.ReadFile
// would allocate a *File, a FileInfo and a buffer the size the kernel
// reports (a page for cgroup v1 files) for a dozen bytes.
func readUintFile(path string) (uint64, error) {
	var buf [64]byte
	n, err := readSmallFile(path, buf[:])
	if err != nil {
		return 0, err
	}
	s := bytes.TrimSpace(buf[:n])
	if string(s) == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("limits: %s: %w", path, err)
	}
	return v, nil
}

// readSmallFile reads the whole file at path into buf and returns its
// length; a file that does not fit is an error. Errors are *os.PathError,
// as os.ReadFile's.
func readSmallFile(path string, buf []byte) (int, error) {
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	n := 0
	for n < len(buf) {
		var m int
		err := ignoringEINTR(func() (err error) {
			m, err = unix.Read(fd, buf[n:])
			return err
		})
		if err != nil {
			return 0, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			return n, nil
		}
		n += m
	}
	return 0, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("longer than %d bytes", len(buf))}
}

// ignoringEINTR calls f until it returns an error other than EINTR.
func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

// readKeyFile returns the value of key in a flat-keyed file such as
// cpu.stat ("usage_usec 1234"); ok is false when the key is absent.
func readKeyFile(path, key string) (v uint64, ok bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false, err
	}
	for line := range strings.Lines(string(data)) {
		k, val, found := strings.Cut(strings.TrimSpace(line), " ")
		if found && k == key {
			v, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				return 0, false, fmt.Errorf("limits: %s: %s: %w", path, key, err)
			}
			return v, true, nil
		}
	}
	return 0, false, nil
}

// unionPids reads every procs file and returns the sorted union; a file
// that no longer exists counts as empty.
func unionPids(files []string) ([]int, error) {
	var all []int
	for _, f := range files {
		pids, err := readPidFile(f)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("limits: %w", err)
		}
		all = append(all, pids...)
	}
	slices.Sort(all)
	return slices.Compact(all), nil
}

// signalAll sends sig to every pid; a pid that is already gone is not an
// error.
func signalAll(pids []int, sig syscall.Signal) error {
	var errs []error
	for _, pid := range withoutSelf(pids) {
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("kill %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// withoutSelf drops the engine's own process from a member list. On cgroup
// v1 the spawning thread joins a workspace's group for the instant of a
// fork (see proc.Placement), and cgroup.procs then lists the whole engine:
// signalling it would kill the engine itself.
func withoutSelf(pids []int) []int {
	self := os.Getpid()
	out := pids[:0:0]
	for _, pid := range pids {
		if pid != self {
			out = append(out, pid)
		}
	}
	return out
}

// killUntilEmpty sends SIGKILL to every member listed by list, again and
// again, until list returns nothing or ctx ends. A member forking between
// two reads is caught by the next round; tasks leave a cgroup when they
// exit, even before they are reaped.
func killUntilEmpty(ctx context.Context, list func() ([]int, error)) error {
	delay := 500 * time.Microsecond
	for {
		pids, err := list()
		if err != nil {
			return err
		}
		pids = withoutSelf(pids)
		if len(pids) == 0 {
			return nil
		}
		if err := signalAll(pids, unix.SIGKILL); err != nil {
			return fmt.Errorf("limits: %w", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %d left (pids %v): %w", ErrNotEmpty, len(pids), pids, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, 50*time.Millisecond)
	}
}

// removeSlots bounds how many group removals touch cgroupfs at once, over
// every backend of the process: the kernel serialises cgroup removal, so
// thousands of concurrent rmdirs (a daemon stopping with 10,000 idle
// workspaces) would only park as many OS threads in the kernel. A removal
// holds a slot for one pass (read the members, signal or rmdir) and never
// while it waits.
var removeSlots = make(chan struct{}, max(4, 2*runtime.GOMAXPROCS(0)))

// removeGroup removes dirs, the directories of one group (a missing one is
// fine), killing whatever is still in it. An empty group goes at once:
// one rmdir per directory, nothing read and no wait, which is what a
// daemon stopping with thousands of idle workspaces needs. A directory
// that is busy (members left) has every member listed by list SIGKILLed,
// and the removal waits a little and tries again, until ctx ends.
func removeGroup(ctx context.Context, list func() ([]int, error), dirs []string) error {
	delay := 500 * time.Microsecond
	for {
		select {
		case removeSlots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		var pids []int
		err := rmdirAll(dirs)
		if errors.Is(err, unix.EBUSY) {
			var lerr error
			pids, lerr = list()
			pids = withoutSelf(pids)
			switch {
			case lerr != nil:
				err = lerr
			case len(pids) > 0:
				if serr := signalAll(pids, unix.SIGKILL); serr != nil {
					err = fmt.Errorf("limits: %w", serr)
				}
			}
		}
		<-removeSlots
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return err
		}
		// Busy: members are dying, or the kernel lags behind the last
		// exit.
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			if len(pids) > 0 {
				return fmt.Errorf("%w: %d left (pids %v): %w", ErrNotEmpty, len(pids), pids, ctx.Err())
			}
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, 50*time.Millisecond)
	}
}

// rmdirAll removes each of dirs once; a missing one is not an error. It
// stops at the first failure (EBUSY while the group has members).
func rmdirAll(dirs []string) error {
	for _, d := range dirs {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("limits: rmdir %s: %w", d, err)
		}
	}
	return nil
}

// removeAll calls remove(0..n-1) from a few goroutines (the slots bound
// the cgroupfs work anyway) and joins the errors.
func removeAll(ctx context.Context, n int, remove func(int) error) error {
	var (
		mu   sync.Mutex
		errs []error
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(n, cap(removeSlots)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := remove(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil && len(errs) == 0 {
		return err
	}
	return errors.Join(errs...)
}

// rmdirRetry removes an empty cgroup directory, retrying briefly on EBUSY
// (the kernel can lag behind the last task's exit). A missing directory is
// not an error.
func rmdirRetry(ctx context.Context, dir string) error {
	delay := time.Millisecond
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("limits: rmdir %s: %w", dir, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("limits: rmdir %s: %w (%w)", dir, err, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// listGroupIDs returns the names of the subdirectories of dir that are valid
// workspace ids. A missing dir has none.
func listGroupIDs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("limits: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && validName(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}
