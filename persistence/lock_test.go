// This file tests the state file's lock, within one process and across
// processes (the test binary re-run as a child).

package persistence_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/persistence"
)

func TestSecondOpenInSameProcessIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := openStore(t, path)
	s2, err := persistence.Open(path)
	if err == nil {
		s2.Close()
		t.Fatal("second Open succeeded")
	}
	if !errors.Is(err, persistence.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	for _, c := range []string{path, fmt.Sprintf("pid %d", os.Getpid()), path + ".lock"} {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not name %q", err, c)
		}
	}
	// A relative path to the same file is the same lock.
	wd, _ := os.Getwd()
	t.Chdir(filepath.Dir(path))
	if s3, err := persistence.Open("state.json"); !errors.Is(err, persistence.ErrLocked) {
		if err == nil {
			s3.Close()
		}
		t.Fatalf("Open of a relative path: %v, want ErrLocked", err)
	}
	t.Chdir(wd)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s4, err := persistence.Open(path)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s4.Close()
}

func childCmd(mode, path string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "SHIPOTE_PERSISTENCE_PATH="+path)
	return cmd
}

func TestOpenFromChildWhileHeldIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := openStore(t, path)
	out, err := childCmd("open", path).Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != childLocked {
		t.Fatalf("child: %v, output %q; want exit %d (ErrLocked)", err, out, childLocked)
	}
	if !strings.Contains(string(out), fmt.Sprintf("is in use by pid %d", os.Getpid())) {
		t.Fatalf("child's error %q does not name this process", out)
	}
	s.Close()
	if out, err := childCmd("open", path).CombinedOutput(); err != nil {
		t.Fatalf("child Open after Close: %v %q", err, out)
	}
}

func TestLockHeldByChildIsReleasedWhenItDies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	cmd := childCmd("hold", path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q %v", line, err)
	}

	_, err = persistence.Open(path)
	if !errors.Is(err, persistence.ErrLocked) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("Open while a child holds the lock: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("pid %d", cmd.Process.Pid)) {
		t.Errorf("error %q does not name the child's pid %d", err, cmd.Process.Pid)
	}

	// SIGKILL: the kernel releases the flock with the process.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := persistence.Open(path)
		if err == nil {
			s.Close()
			break
		}
		if !errors.Is(err, persistence.ErrLocked) || time.Now().After(deadline) {
			t.Fatalf("Open after the holder died: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
