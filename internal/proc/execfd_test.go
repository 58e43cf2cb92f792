// execfd_test.go checks that the Spawner executes the file it checked:
// allow_exec on the opened file, the name the process gets, scripts, and no
// descriptor left to the child.

package proc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startKilled starts spec and registers a cleanup that kills and reaps it.
func startKilled(t *testing.T, s *Spawner, spec Spec) (*Process, error) {
	t.Helper()
	p, err := s.Start(spec)
	if err == nil {
		t.Cleanup(func() {
			_ = p.Signal(syscall.SIGKILL)
			waitFor(t, p, 10*time.Second)
		})
	}
	return p, err
}

func TestStartRefusesLinkOutOfAllowedDir(t *testing.T) {
	s := newSpawner(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "e")
	if err := os.Symlink(mustResolve("sleep"), link); err != nil {
		t.Fatal(err)
	}
	p, err := startKilled(t, s, Spec{Path: link, Args: []string{"1000"}, AllowExec: []string{dir + "/"}})
	if !errors.Is(err, ErrExecRefused) || !strings.Contains(err.Error(), link) {
		t.Fatalf("Start = %v, %v; want a refusal naming %s", p, err, link)
	}
}

// TestStartChecksTheFileItRuns swaps an allowed file for a link to a file
// outside allow_exec after the early check: the Spawner refuses it.
func TestStartChecksTheFileItRuns(t *testing.T) {
	s := newSpawner(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "tool")
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	allow := []string{dir + "/"}
	if err := CheckAllowed(path, allow); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mustResolve("sleep"), path); err != nil {
		t.Fatal(err)
	}
	if p, err := startKilled(t, s, Spec{Path: path, Args: []string{"1000"}, AllowExec: allow}); !errors.Is(err, ErrExecRefused) {
		t.Fatalf("Start after the swap = %v, %v; want ErrExecRefused", p, err)
	}
}

// TestStartExecutesTheCheckedFile: the process is the real file, is named
// after the path it was given (ps, top), keeps argv[0], and holds no
// descriptor beyond its stdio.
func TestStartExecutesTheCheckedFile(t *testing.T) {
	s := newSpawner(t)
	sleep := mustResolve("sleep")
	real, err := filepath.EvalSymlinks(sleep)
	if err != nil {
		t.Fatal(err)
	}
	named := filepath.Join(t.TempDir(), "napper")
	if err := os.Symlink(sleep, named); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path  string
		allow []string
		comm  string
	}{
		{sleep, nil, "sleep"},
		{sleep, []string{filepath.Dir(real) + "/"}, "sleep"},
		{named, []string{real}, "napper"},
	} {
		t.Run(tc.comm+fmt.Sprint(len(tc.allow)), func(t *testing.T) {
			p, err := startKilled(t, s, Spec{Path: tc.path, Args: []string{"1000"}, AllowExec: tc.allow})
			if err != nil {
				t.Fatal(err)
			}
			proc := fmt.Sprintf("/proc/%d/", p.Pid)
			if exe, err := os.Readlink(proc + "exe"); err != nil || exe != real {
				t.Errorf("exe = %q, %v; want %q", exe, err, real)
			}
			if comm, err := os.ReadFile(proc + "comm"); err != nil || string(comm) != tc.comm+"\n" {
				t.Errorf("comm = %q, %v; want %q", comm, err, tc.comm)
			}
			// The exec is done when Start returns, but the kernel sets up the
			// new argv a moment later: cmdline reads empty until then.
			var cmdline []byte
			for deadline := time.Now().Add(10 * time.Second); len(cmdline) == 0 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				cmdline, _ = os.ReadFile(proc + "cmdline")
			}
			if string(cmdline) != tc.path+"\x001000\x00" {
				t.Errorf("cmdline = %q, want argv[0] %s", cmdline, tc.path)
			}
			fds, err := os.ReadDir(proc + "fd")
			if err != nil {
				t.Fatal(err)
			}
			for _, fd := range fds {
				if target, _ := os.Readlink(proc + "fd/" + fd.Name()); target == real {
					t.Errorf("child fd %s is its own executable", fd.Name())
				}
			}
		})
	}
	// A fork's link lives in a directory of its own, removed with it.
	ex, err := s.openExec(&Spec{Path: named, AllowExec: []string{"/"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ex.dir == "" || ex.path != filepath.Join(ex.dir, "napper") {
		t.Fatalf("exec path %q in dir %q, want a link named napper", ex.path, ex.dir)
	}
	if target, err := os.Readlink(ex.path); err != nil || target != fmt.Sprintf("/proc/self/fd/%d", ex.fd) {
		t.Errorf("link -> %q, %v", target, err)
	}
	ex.close()
	if _, err := os.Stat(ex.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("exec link directory after close: %v", err)
	}
	// Without allow_exec nothing is checked: the path is executed as given.
	plain, err := s.openExec(&Spec{Path: named}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if plain.path != named || plain.fd != -1 || plain.dir != "" {
		t.Errorf("without allow_exec: %+v, want the path as given", plain)
	}
	plain.close()
}

// TestStartScript: a "#!" script runs through its interpreter with its real
// path as $0, under allow_exec, also as another user.
func TestStartScript(t *testing.T) {
	s := newSpawner(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "hello")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$0 $1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	st, out := run(t, s, Spec{Path: script, Args: []string{"world"}, AllowExec: []string{dir + "/"}})
	if st.Code != 0 || out != script+" world\n" {
		t.Fatalf("script: %+v, %q", st, out)
	}
	if os.Geteuid() == 0 {
		st, out = run(t, s, Spec{Path: mustResolve("id"), Args: []string{"-u"}, Credential: &Credential{UID: 65534, GID: 65534},
			AllowExec: []string{"/usr/"}})
		if st.Code != 0 || out != "65534\n" {
			t.Fatalf("id -u as 65534: %+v, %q", st, out)
		}
	}
}

// TestStartExecFDSurvivesTheFDShuffle: the child's fd shuffle moves a file
// whose fd is below its slot (here os.Stdout, fd 1, as stderr: slot 2) to
// the first fd above the others; the executable's descriptor, opened just
// after them, would be there and be replaced.
func TestStartExecFDSurvivesTheFDShuffle(t *testing.T) {
	s := newSpawner(t)
	first, err := s.Start(Spec{Path: mustResolve("true")}) // opens the spawner's /dev/null first
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, first, 10*time.Second)
	for range 20 {
		out, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0) // the lowest free fd; the exec fd comes next
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.Start(Spec{Path: mustResolve("true"), Stdout: out, Stderr: os.Stdout})
		out.Close()
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		if st := waitFor(t, p, 10*time.Second); st.Code != 0 {
			t.Fatalf("true: %+v", st)
		}
	}
}
