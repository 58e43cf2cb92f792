// cgroup_test.go checks Placement against this machine's real cgroup
// hierarchies: v1 "tasks" joining by the spawning thread, and v2 clone3 into
// a cgroup fd. Each test skips with a message where the hierarchy is not
// writable, or fails there when SHIPOTE_REQUIRE_CGROUPS requires it.

package proc

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/testproc"
)

const pidsV1Root = "/sys/fs/cgroup/pids"

// tempCgroup creates <parent>/shipote-test-<rand> and removes it at cleanup,
// retrying while it is busy. It skips the test when parent is not writable,
// or fails it when testproc.RequireCgroupsEnv requires backend.
func tempCgroup(t *testing.T, parent, backend, what string) string {
	t.Helper()
	dir := filepath.Join(parent, fmt.Sprintf("shipote-test-%08x", rand.Uint32()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		testproc.SkipCgroup(t, backend, fmt.Sprintf("%s: cannot create a cgroup under %s: %v", what, parent, err))
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := os.Remove(dir)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("rmdir %s: %v", dir, err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	return dir
}

// cgroupOf returns the path of the hierarchy holding controller (v1; "" for
// the v2 line) in a /proc/.../cgroup file.
func cgroupOf(t *testing.T, file, controller string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if controller == "" && parts[0] == "0" && parts[1] == "" {
			return parts[2]
		}
		if controller != "" && slices.Contains(strings.Split(parts[1], ","), controller) {
			return parts[2]
		}
	}
	t.Fatalf("%s: no %q hierarchy", file, controller)
	return ""
}

func threadCgroup(t *testing.T, tid int, controller string) string {
	t.Helper()
	return cgroupOf(t, fmt.Sprintf("/proc/self/task/%d/cgroup", tid), controller)
}

func procCgroup(t *testing.T, pid int, controller string) string {
	t.Helper()
	return cgroupOf(t, fmt.Sprintf("/proc/%d/cgroup", pid), controller)
}

func killAndWait(t *testing.T, p *Process) {
	t.Helper()
	_ = p.Signal(syscall.SIGKILL)
	waitFor(t, p, 10*time.Second)
}

func TestCgroupV1JoinTasks(t *testing.T) {
	dir := tempCgroup(t, pidsV1Root, testproc.Cgroup1, "cgroup v1 pids")
	name := "/" + filepath.Base(dir)
	s := newSpawner(t)
	orig := threadCgroup(t, s.tid, "pids")
	place := Placement{
		JoinTasks:  []string{filepath.Join(dir, "tasks")},
		LeaveTasks: []string{filepath.Join(pidsV1Root, orig, "tasks")},
	}

	p, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}, Placement: place})
	if err != nil {
		t.Fatal(err)
	}
	defer killAndWait(t, p)
	if got := procCgroup(t, p.Pid, "pids"); got != name {
		t.Fatalf("child in pids cgroup %q, want %q", got, name)
	}
	if got := threadCgroup(t, s.tid, "pids"); got != orig {
		t.Fatalf("spawning thread in pids cgroup %q after the fork, want its original %q", got, orig)
	}
	// Other threads never moved, and the next unplaced child is born outside.
	if got := cgroupOf(t, "/proc/self/cgroup", "pids"); got != orig {
		t.Fatalf("daemon's main thread in %q", got)
	}
	q, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	defer killAndWait(t, q)
	if got := procCgroup(t, q.Pid, "pids"); got != orig {
		t.Fatalf("unplaced child in %q, want %q", got, orig)
	}

	// A fork refused by the cgroup (pids.max reached) still moves the thread back.
	if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	_, err = s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}, Placement: place})
	if !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("Start into a full pids cgroup: %v, want EAGAIN", err)
	}
	if got := threadCgroup(t, s.tid, "pids"); got != orig {
		t.Fatalf("spawning thread in %q after a failed fork, want %q", got, orig)
	}
}

func TestCgroupV1JoinFailure(t *testing.T) {
	if _, err := os.Stat(filepath.Join(pidsV1Root, "tasks")); err != nil {
		testproc.SkipCgroup(t, testproc.Cgroup1, fmt.Sprintf("no cgroup v1 pids hierarchy at %s: %v", pidsV1Root, err))
	}
	s := newSpawner(t)
	orig := threadCgroup(t, s.tid, "pids")
	_, err := s.Start(Spec{Path: "/usr/bin/true", Placement: Placement{
		JoinTasks:  []string{filepath.Join(pidsV1Root, "shipote-test-missing", "tasks")},
		LeaveTasks: []string{filepath.Join(pidsV1Root, orig, "tasks")},
	}})
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "join cgroup") {
		t.Fatalf("err %v, want a join cgroup error", err)
	}
	if got := threadCgroup(t, s.tid, "pids"); got != orig {
		t.Fatalf("spawning thread in %q, want %q", got, orig)
	}
}

func TestCgroupV1LeaveFailureBlocksForks(t *testing.T) {
	dir := tempCgroup(t, pidsV1Root, testproc.Cgroup1, "cgroup v1 pids")
	s := newSpawner(t)
	orig := threadCgroup(t, s.tid, "pids")
	// LeaveTasks through a link that does not exist yet.
	link := filepath.Join(t.TempDir(), "leave-tasks")
	p, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}, Placement: Placement{
		JoinTasks:  []string{filepath.Join(dir, "tasks")},
		LeaveTasks: []string{link},
	}})
	if err != nil {
		t.Fatalf("the child was placed; Start should succeed: %v", err)
	}
	defer killAndWait(t, p)
	if got := procCgroup(t, p.Pid, "pids"); got != "/"+filepath.Base(dir) {
		t.Fatalf("child in %q", got)
	}
	// The thread is stuck in the workspace's cgroup: no fork until it is out.
	_, err = s.Start(Spec{Path: "/usr/bin/true"})
	if err == nil || !strings.Contains(err.Error(), "refusing to fork") {
		t.Fatalf("err %v, want a refusal", err)
	}
	if err := os.Symlink(filepath.Join(pidsV1Root, orig, "tasks"), link); err != nil {
		t.Fatal(err)
	}
	q, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}})
	if err != nil {
		t.Fatalf("Start once leaving works again: %v", err)
	}
	defer killAndWait(t, q)
	if got := threadCgroup(t, s.tid, "pids"); got != orig {
		t.Fatalf("spawning thread in %q, want %q", got, orig)
	}
	if got := procCgroup(t, q.Pid, "pids"); got != orig {
		t.Fatalf("child in %q, want %q", got, orig)
	}
}

// cgroup2Mount returns the mount point of a cgroup2 file system, or "".
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint options ... - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		if fs := strings.Fields(post); len(fs) > 0 && fs[0] == "cgroup2" {
			if f := strings.Fields(pre); len(f) >= 5 {
				return f[4]
			}
		}
	}
	return ""
}

func TestCgroupV2CgroupFD(t *testing.T) {
	mount := cgroup2Mount(t)
	if mount == "" {
		testproc.SkipCgroup(t, testproc.Cgroup2FS, "no cgroup2 file system mounted")
	}
	own := cgroupOf(t, "/proc/self/cgroup", "")
	dir := tempCgroup(t, filepath.Join(mount, own), testproc.Cgroup2FS, "cgroup v2")
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	s := newSpawner(t)
	p, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}, Placement: Placement{CgroupFD: fd}})
	if errors.Is(err, unix.ENOSYS) {
		testproc.SkipCgroup(t, testproc.Cgroup2FS, fmt.Sprintf("kernel without clone3 CLONE_INTO_CGROUP: %v", err))
	}
	if err != nil {
		t.Fatal(err)
	}
	defer killAndWait(t, p)
	want := filepath.Join(own, filepath.Base(dir))
	if got := procCgroup(t, p.Pid, ""); got != want {
		t.Fatalf("child in cgroup2 %q, want %q", got, want)
	}
	if got := threadCgroup(t, s.tid, ""); got != own {
		t.Fatalf("spawning thread moved to %q", got)
	}
}
