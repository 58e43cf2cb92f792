// main_test.go owns the test binary's entry point (goleak, and the helper
// modes run when a test re-executes the binary) and the helpers shared by
// the tests: a backend on a throw-away parent, and starting a child where a
// Placement says.

package limits

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/internal/testproc"
)

// helperEnv selects a helper mode when the test binary is re-executed.
const helperEnv = "SHIPOTE_LIMITS_TEST_HELPER"

func TestMain(m *testing.M) {
	testproc.Run(helperEnv, nil)
	goleak.VerifyTestMain(m)
}

// helperCmd returns a command re-executing the test binary in mode ("alloc"
// or "spin").
func helperCmd(mode string, env ...string) *exec.Cmd {
	return testproc.Command(helperEnv, mode, env...)
}

// testBackend detects force on a parent of its own, skips when the host
// lacks it (fails when SHIPOTE_REQUIRE_CGROUPS requires it), and sweeps
// and removes the parent at the end, failing if a directory is left
// behind.
func testBackend(t *testing.T, force string) Backend {
	t.Helper()
	return testBackendParent(t, force, testParent(t))
}

func testParent(t *testing.T) string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return fmt.Sprintf("shipote-test-%d-%s", os.Getpid(), name)
}

func testBackendParent(t *testing.T, force, parent string) Backend {
	t.Helper()
	b, why, err := Detect(Options{Force: force, Parent: parent})
	if errors.Is(err, ErrUnavailable) {
		switch force {
		case NameCgroup2:
			testproc.SkipCgroup(t, testproc.Cgroup2, "host lacks a cgroup2 hierarchy with the cpu, memory and pids controllers: "+why)
		default:
			testproc.SkipCgroup(t, testproc.Cgroup1, "host lacks writable cgroup v1 hierarchies for memory, pids, cpu and cpuacct: "+why)
		}
	}
	if err != nil {
		t.Fatalf("Detect(%s): %v", force, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := b.Sweep(ctx); err != nil {
			t.Errorf("cleanup sweep: %v", err)
		}
		for _, d := range parentDirs(b) {
			if left, _ := listGroupIDs(d); len(left) > 0 {
				t.Errorf("groups left under %s: %v", d, left)
			}
		}
		if err := RemoveParent(b); err != nil {
			t.Error(err)
		}
		for _, d := range parentDirs(b) {
			if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("parent %s left behind (%v)", d, err)
			}
		}
	})
	return b
}

// groupDirs lists the directories of group id under every parent.
func groupDirs(b Backend, id string) []string {
	var out []string
	for _, d := range parentDirs(b) {
		out = append(out, filepath.Join(d, id))
	}
	return out
}

// startPlaced starts cmd where pl says. For cgroup v1 it does what
// internal/proc does: a goroutine locked to its thread writes the thread's
// TID into every JoinTasks file, forks, and writes it back into LeaveTasks;
// it checks the thread really is back where it was.
func startPlaced(pl proc.Placement, cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if pl.CgroupFD > 0 {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = pl.CgroupFD
	}
	if len(pl.JoinTasks) == 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		before, err := os.ReadFile("/proc/thread-self/cgroup")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		tid := unix.Gettid()
		write := func(files []string) error {
			for _, f := range files {
				if err := os.WriteFile(f, []byte(strconv.Itoa(tid)), 0); err != nil {
					return err
				}
			}
			return nil
		}
		joinErr := write(pl.JoinTasks)
		var startErr error
		if joinErr == nil {
			startErr = cmd.Start()
		}
		if err := write(pl.LeaveTasks); err != nil {
			// Stay locked: the thread is discarded when the goroutine ends.
			errc <- fmt.Errorf("leave: %w", err)
			return
		}
		after, err := os.ReadFile("/proc/thread-self/cgroup")
		if err == nil && string(after) != string(before) {
			errc <- fmt.Errorf("spawning thread did not get back: before %q after %q", before, after)
			return
		}
		runtime.UnlockOSThread()
		errc <- errors.Join(joinErr, startErr)
	}()
	return <-errc
}

// readyLine waits for the helper's "ready" line.
func readyLine(t *testing.T, r io.Reader) {
	t.Helper()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper did not get ready: %q, %v", line, err)
	}
}

// eventually polls cond every 20 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
