package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/messages"
)

// TestE2EShutdownRemovesEveryCgroup: a daemon on the cgroup v1 backend
// holding 500 workspaces (a few running a process) exits 0 on SIGTERM and
// leaves no cgroup directory of its own in any hierarchy.
func TestE2EShutdownRemovesEveryCgroup(t *testing.T) {
	const n, busy = 500, 5
	dir := shortDir(t)
	sock, state := filepath.Join(dir, "s.sock"), filepath.Join(dir, "state.json")
	parent := newParent(t)
	d := launchDaemon(t, nil, sock, state, parent, "--limits", "cgroup1")
	if err := waitHealthy(sock, d.done); err != nil {
		d.kill()
		t.Skipf("this host has no usable cgroup1 (the daemon refused it: %v):\n%s", err, tail(d.stderr.String(), 600))
	}
	dirs := daemonCgroupDirs(t, d.cmd.Process.Pid, parent)
	// Whatever happens, no group of the test stays behind: members killed,
	// directories removed (newParent's cleanup then removes the parents).
	t.Cleanup(func() {
		d.kill()
		for _, p := range dirs {
			ents, _ := os.ReadDir(p)
			for _, e := range ents {
				if e.IsDir() {
					killCgroup(filepath.Join(p, e.Name()))
				}
			}
		}
	})

	c := api.NewClient(sock)
	defer c.CloseIdleConnections()
	ctx := context.Background()
	ids := make([]string, n)
	sem := make(chan struct{}, 16)
	errs := make(chan error, n)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			info, err := c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("w%03d", i)})
			if err == nil && info.LimitsBackend != "cgroup1" {
				err = fmt.Errorf("workspace %s has limits backend %q", info.Spec.Label, info.LimitsBackend)
			}
			ids[i] = info.ID
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var pids []int
	for i := range busy {
		info, err := c.Exec(ctx, ids[i], messages.CommandRef{Label: "sleep",
			Payload: messages.Payload{Native: &messages.NativePayload{Exec: "/bin/sleep", Argv: []string{"1000"}}}})
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, info.Pid)
	}
	for _, p := range dirs {
		ents, err := os.ReadDir(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) == 0 {
			t.Fatalf("%s is empty before the stop", p)
		}
		groups := 0
		for _, e := range ents {
			if e.IsDir() {
				groups++
			}
		}
		if groups != n {
			t.Fatalf("%s holds %d groups, want %d", p, groups, n)
		}
	}

	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("daemon exited %d after SIGTERM\nstderr:\n%s", code, tail(d.stderr.String(), 2000))
	}
	for _, p := range dirs {
		if _, err := os.Lstat(p); err == nil {
			ents, _ := os.ReadDir(p)
			t.Errorf("%s is still there after the daemon exited, with %d entries", p, len(ents))
		}
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z ") {
				t.Errorf("process %d outlived the daemon", pid)
			}
		}
	}
}

// daemonCgroupDirs returns the directory of parent in each cgroup v1
// hierarchy pid is in (those that exist).
func daemonCgroupDirs(t *testing.T, pid int, parent string) []string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || parts[1] == "" || strings.HasPrefix(parts[1], "name=") {
			continue
		}
		p := filepath.Join("/sys/fs/cgroup", parts[1], parts[2], parent)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no cgroup directory %q for the daemon (pid %d)", parent, pid)
	}
	return out
}

// killCgroup SIGKILLs the members of a cgroup directory and removes it.
func killCgroup(dir string) {
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for range 100 {
		if err := syscall.Rmdir(dir); err == nil || os.IsNotExist(err) {
			return
		}
		_ = syscall.Nanosleep(&syscall.Timespec{Nsec: 10_000_000}, nil)
	}
}
