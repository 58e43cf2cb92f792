// cgroup_test.go covers the two cgroup backends against the real kernel:
// placement, pids, memory and CPU limits, usage, kill, remove and sweep.
// Each test runs once per backend and skips where the host lacks it.

package limits

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
)

var cgroupBackends = []string{NameCgroup2, NameCgroup1}

// forEachCgroup runs fn as a subtest per cgroup backend.
func forEachCgroup(t *testing.T, fn func(t *testing.T, b Backend)) {
	for _, name := range cgroupBackends {
		t.Run(name, func(t *testing.T) {
			fn(t, testBackend(t, name))
		})
	}
}

// mustCreate creates group id and removes it at the end of the test.
func mustCreate(t *testing.T, b Backend, id string, l Limits) Group {
	t.Helper()
	g, err := b.Create(id, l)
	if err != nil {
		t.Fatalf("Create(%s, %+v): %v", id, l, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := g.Remove(ctx); err != nil {
			t.Errorf("Remove: %v", err)
		}
	})
	return g
}

// reap waits for cmd in the background; the returned channel yields its
// Wait error once, then is closed.
func reap(t *testing.T, cmd *exec.Cmd) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return done
}

// killedBy reports whether err is an exit by sig.
func killedBy(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// controlFile is the path of a control file of group id.
func controlFile(b Backend, id, file string) string {
	switch b := b.(type) {
	case *cgroup1Backend:
		ctrl := cgroup1.Name(strings.SplitN(file, ".", 2)[0])
		return filepath.Join(b.parentDir[ctrl], id, file)
	case *cgroup2Backend:
		return filepath.Join(b.parentDir, id, file)
	}
	return ""
}

func readControl(t *testing.T, b Backend, id, file string) string {
	t.Helper()
	data, err := os.ReadFile(controlFile(b, id, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func TestPlacementProcsRemove(t *testing.T) {
	forEachCgroup(t, func(t *testing.T, b Backend) {
		const id = "01J9ZB3V4Q8C6R3X1W7M5N2K0P"
		g := mustCreate(t, b, id, Limits{NofileMax: 100})
		if g.Source() != b.Name() {
			t.Errorf("Source = %q, want %q", g.Source(), b.Name())
		}
		if _, err := b.Create(id, Limits{}); !errors.Is(err, ErrExists) {
			t.Errorf("second Create = %v, want ErrExists", err)
		}
		if rl := g.Rlimits(); len(rl) != 1 || rl[0].Resource != syscall.RLIMIT_NOFILE || rl[0].Cur != 100 {
			t.Errorf("Rlimits = %+v", rl)
		}
		cmd := exec.Command("sleep", "60")
		if err := startPlaced(g.Placement(), cmd); err != nil {
			t.Fatal(err)
		}
		done := reap(t, cmd)
		pids, err := g.Procs()
		if err != nil || !slices.Equal(pids, []int{cmd.Process.Pid}) {
			t.Fatalf("Procs = %v, %v; want [%d]", pids, err, cmd.Process.Pid)
		}
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid))
		if err != nil || !strings.Contains(string(cg), "/"+id+"\n") {
			t.Errorf("/proc/%d/cgroup = %q, want the group %s", cmd.Process.Pid, cg, id)
		}
		self, _ := os.ReadFile("/proc/self/cgroup")
		if strings.Contains(string(self), id) {
			t.Errorf("the test process itself ended up in the group: %q", self)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := g.Remove(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !killedBy(err, syscall.SIGKILL) {
			t.Errorf("member exit = %v, want killed by SIGKILL", err)
		}
		for _, d := range groupDirs(b, id) {
			if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s still exists after Remove (%v)", d, err)
			}
		}
		if err := g.Remove(ctx); err != nil {
			t.Errorf("second Remove = %v, want nil", err)
		}
		if pids, err := g.Procs(); len(pids) != 0 || err != nil {
			t.Errorf("Procs after Remove = %v, %v", pids, err)
		}
		// A spawn racing with Remove fails instead of escaping the group.
		late := exec.Command("sleep", "60")
		if err := startPlaced(g.Placement(), late); err == nil {
			reap(t, late)
			t.Errorf("spawn with the Placement of a removed group started pid %d", late.Process.Pid)
		} else {
			t.Logf("spawn after Remove: %v", err)
		}
	})
}

func TestKillDoesNotWaitForReaping(t *testing.T) {
	forEachCgroup(t, func(t *testing.T, b Backend) {
		g := mustCreate(t, b, "zombie", Limits{})
		cmd := exec.Command("sleep", "60")
		if err := startPlaced(g.Placement(), cmd); err != nil {
			t.Fatal(err)
		}
		// Not reaped until Kill returns: a killed member leaves the group
		// when it exits, not when its parent waits for it.
		if err := g.Kill(syscall.SIGKILL); err != nil {
			t.Fatalf("Kill with an unreaped member: %v", err)
		}
		if !isZombie(cmd.Process.Pid) {
			t.Errorf("pid %d is not a zombie after Kill", cmd.Process.Pid)
		}
		if err := cmd.Wait(); !killedBy(err, syscall.SIGKILL) {
			t.Errorf("exit = %v, want SIGKILL", err)
		}
	})
}

func TestKillSignal(t *testing.T) {
	forEachCgroup(t, func(t *testing.T, b Backend) {
		g := mustCreate(t, b, "kill", Limits{})
		var dones []<-chan error
		for range 3 {
			cmd := exec.Command("sleep", "60")
			if err := startPlaced(g.Placement(), cmd); err != nil {
				t.Fatal(err)
			}
			dones = append(dones, reap(t, cmd))
		}
		if err := g.Kill(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		for i, done := range dones {
			if err := <-done; !killedBy(err, syscall.SIGTERM) {
				t.Errorf("member %d exit = %v, want SIGTERM", i, err)
			}
		}
		eventually(t, 10*time.Second, "the group to be empty", func() bool {
			pids, err := g.Procs()
			return err == nil && len(pids) == 0
		})
	})
}

func TestKillEscapesNothing(t *testing.T) {
	forEachCgroup(t, func(t *testing.T, b Backend) {
		g := mustCreate(t, b, "setsid", Limits{})
		// A member that starts a grandchild in a new session and exits: the
		// grandchild is out of the process group but still in the cgroup.
		cmd := exec.Command("sh", "-c", "setsid sleep 60 </dev/null >/dev/null 2>&1 & echo $!")
		out := &strings.Builder{}
		cmd.Stdout = out
		if err := startPlaced(g.Placement(), cmd); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		var grandchild int
		if _, err := fmt.Sscan(out.String(), &grandchild); err != nil {
			t.Fatalf("grandchild pid %q: %v", out.String(), err)
		}
		eventually(t, 5*time.Second, "the grandchild in Procs", func() bool {
			pids, _ := g.Procs()
			return slices.Contains(pids, grandchild)
		})
		if err := g.Kill(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "the grandchild to die", func() bool {
			return syscall.Kill(grandchild, 0) != nil || isZombie(grandchild)
		})
	})
}

func isZombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(data), ')')
	return i > 0 && i+2 < len(data) && data[i+2] == 'Z'
}

func TestPidsMax(t *testing.T) {
	forEachCgroup(t, func(t *testing.T, b Backend) {
		g := mustCreate(t, b, "pids", Limits{PidsMax: 20})
		if got := readControl(t, b, "pids", "pids.max"); got != "20" {
			t.Errorf("pids.max = %q, want 20", got)
		}
		cmd := exec.Command("sh", "-c", "for i in $(seq 100); do sleep 30 & done; wait")
		if err := startPlaced(g.Placement(), cmd); err != nil {
			t.Fatal(err)
		}
		done := reap(t, cmd)
		// Wait until the loop is over: the shell exits when a fork fails,
		// or the count stops changing.
		var alive []int
		last, stable := -1, 0
		eventually(t, 20*time.Second, "the fork loop to settle", func() bool {
			select {
			case <-done:
				alive, _ = g.Procs()
				return true
			default:
			}
			var err error
			alive, err = g.Procs()
			if err != nil {
				t.Fatal(err)
			}
			if len(alive) == last {
				stable++
			} else {
				last, stable = len(alive), 0
			}
			return stable >= 25 // 0.5 s without change
		})
		t.Logf("%d processes alive in the group", len(alive))
		if len(alive) > 20 {
			t.Errorf("%d processes alive, pids_max is 20", len(alive))
		}
		if len(alive) < 5 {
			t.Errorf("only %d processes alive: the loop did not fork as expected", len(alive))
		}
	})
}

func TestMemoryMaxOOMKills(t *testing.T) {
	forEachCgroup(t, func(t *testing.T, b Backend) {
		const limit = 64 << 20
		g := mustCreate(t, b, "oom", Limits{MemoryMaxBytes: limit})
		switch b.(type) {
		case *cgroup1Backend:
			if got := readControl(t, b, "oom", "memory.limit_in_bytes"); got != fmt.Sprint(limit) {
				t.Errorf("memory.limit_in_bytes = %s", got)
			}
			if got := readControl(t, b, "oom", "memory.oom_control"); !strings.Contains(got, "oom_kill_disable 0") {
				t.Errorf("memory.oom_control = %q, want the OOM killer enabled", got)
			}
			if _, err := os.Stat(controlFile(b, "oom", "memory.memsw.limit_in_bytes")); err == nil {
				if got := readControl(t, b, "oom", "memory.memsw.limit_in_bytes"); got != fmt.Sprint(limit) {
					t.Errorf("memory.memsw.limit_in_bytes = %s, want %d", got, limit)
				}
			}
		case *cgroup2Backend:
			if got := readControl(t, b, "oom", "memory.max"); got != fmt.Sprint(limit) {
				t.Errorf("memory.max = %s", got)
			}
		}
		cmd := helperCmd("alloc", "SHIPOTE_TEST_MIB=200")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		defer stdin.Close()
		if err := startPlaced(g.Placement(), cmd); err != nil {
			t.Fatal(err)
		}
		done := reap(t, cmd)
		select {
		case err := <-done:
			if !killedBy(err, syscall.SIGKILL) {
				t.Fatalf("allocator exit = %v, want killed by SIGKILL", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("the allocator of 200 MiB was not killed under a 64 MiB limit")
		}
		// It was the kernel's OOM killer, in this group.
		var events string
		switch b.(type) {
		case *cgroup1Backend:
			events = readControl(t, b, "oom", "memory.oom_control")
		case *cgroup2Backend:
			events = readControl(t, b, "oom", "memory.events")
		}
		if !strings.Contains(events, "oom_kill ") || strings.Contains(events, "oom_kill 0") {
			t.Errorf("no OOM kill recorded: %q", events)
		}
	})
}

func TestCPUMax(t *testing.T) {
	forEachCgroup(t, func(t *testing.T, b Backend) {
		g := mustCreate(t, b, "cpu", Limits{CPUMax: 0.5})
		switch b.(type) {
		case *cgroup1Backend:
			if q, p := readControl(t, b, "cpu", "cpu.cfs_quota_us"), readControl(t, b, "cpu", "cpu.cfs_period_us"); q != "50000" || p != "100000" {
				t.Errorf("cfs quota/period = %s/%s, want 50000/100000", q, p)
			}
		case *cgroup2Backend:
			if got := readControl(t, b, "cpu", "cpu.max"); got != "50000 100000" {
				t.Errorf("cpu.max = %q", got)
			}
		}
		// Two spinners could use two cores; the quota holds them to half of
		// one. Only the upper bound is checked: a busy host only lowers it.
		for range 2 {
			cmd := helperCmd("spin")
			if err := startPlaced(g.Placement(), cmd); err != nil {
				t.Fatal(err)
			}
			reap(t, cmd)
		}
		u0, _, err := g.Usage()
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		time.Sleep(1500 * time.Millisecond)
		u1, _, err := g.Usage()
		if err != nil {
			t.Fatal(err)
		}
		cores := float64(u1.CPUUsec-u0.CPUUsec) / float64(time.Since(t0).Microseconds())
		t.Logf("two spinners used %.2f cores under cpu_max 0.5", cores)
		if cores > 0.75 {
			t.Errorf("group used %.2f cores, cpu_max is 0.5", cores)
		}
	})
}

func TestUsage(t *testing.T) {
	forEachCgroup(t, func(t *testing.T, b Backend) {
		g := mustCreate(t, b, "usage", Limits{})
		alloc := helperCmd("alloc", "SHIPOTE_TEST_MIB=48")
		stdin, err := alloc.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		defer stdin.Close()
		stdout, err := alloc.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := startPlaced(g.Placement(), alloc); err != nil {
			t.Fatal(err)
		}
		reap(t, alloc)
		readyLine(t, stdout)
		spin := helperCmd("spin")
		if err := startPlaced(g.Placement(), spin); err != nil {
			t.Fatal(err)
		}
		reap(t, spin)
		var u Usage
		eventually(t, 20*time.Second, "usage to show 48 MiB and 200 ms of CPU", func() bool {
			var ok bool
			u, ok, err = g.Usage()
			if err != nil || !ok {
				t.Fatalf("Usage = %+v, %v, %v", u, ok, err)
			}
			return u.MemoryBytes >= 48<<20 && u.CPUUsec >= 200000
		})
		t.Logf("usage %+v", u)
		if u.MemoryPeakBytes != 0 && u.MemoryPeakBytes < u.MemoryBytes {
			t.Errorf("peak %d below current %d", u.MemoryPeakBytes, u.MemoryBytes)
		}
		if u.Pids < 2 {
			t.Errorf("pids = %d, want at least the two members", u.Pids)
		}
	})
}

func TestSweep(t *testing.T) {
	for _, name := range cgroupBackends {
		t.Run(name, func(t *testing.T) {
			parent := testParent(t)
			// The "previous run": groups with sleeping members, never removed.
			prev := testBackendParent(t, name, parent)
			var dones []<-chan error
			ids := []string{"01J9ZB3V4Q8C6R3X1W7M5N2K0A", "01J9ZB3V4Q8C6R3X1W7M5N2K0B", "01J9ZB3V4Q8C6R3X1W7M5N2K0C"}
			for i, id := range ids {
				g, err := prev.Create(id, Limits{PidsMax: 10})
				if err != nil {
					t.Fatal(err)
				}
				if i == len(ids)-1 {
					continue // an empty group is swept too
				}
				for range 2 {
					cmd := exec.Command("sleep", "60")
					if err := startPlaced(g.Placement(), cmd); err != nil {
						t.Fatal(err)
					}
					dones = append(dones, reap(t, cmd))
				}
			}
			// A directory that is not a workspace id is left alone.
			stray := filepath.Join(parentDirs(prev)[0], "not an id")
			if err := os.Mkdir(stray, 0o755); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(stray)

			next, _, err := Detect(Options{Force: name, Parent: parent})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			found, err := next.Sweep(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(found, ids) {
				t.Errorf("Sweep found %v, want %v", found, ids)
			}
			for i, done := range dones {
				if err := <-done; !killedBy(err, syscall.SIGKILL) {
					t.Errorf("leftover %d exit = %v, want SIGKILL", i, err)
				}
			}
			for _, d := range parentDirs(next) {
				left, _ := listGroupIDs(d)
				if len(left) != 0 {
					t.Errorf("groups left under %s: %v", d, left)
				}
			}
			if again, err := next.Sweep(ctx); len(again) != 0 || err != nil {
				t.Errorf("second Sweep = %v, %v; want nothing", again, err)
			}
		})
	}
}

func TestCgroup1Placement(t *testing.T) {
	b := testBackend(t, NameCgroup1)
	g := mustCreate(t, b, "place", Limits{})
	pl := g.Placement()
	if pl.CgroupFD != 0 {
		t.Errorf("CgroupFD = %d, want 0 on cgroup v1", pl.CgroupFD)
	}
	if len(pl.JoinTasks) == 0 || len(pl.JoinTasks) != len(pl.LeaveTasks) {
		t.Fatalf("JoinTasks %v / LeaveTasks %v", pl.JoinTasks, pl.LeaveTasks)
	}
	for _, f := range pl.JoinTasks {
		if filepath.Base(f) != "tasks" || !strings.Contains(f, "/place/") {
			t.Errorf("join file %s", f)
		}
	}
	// LeaveTasks are where this process is now.
	for _, f := range pl.LeaveTasks {
		pids, err := readPidFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(pids, os.Getpid()) {
			t.Errorf("leave file %s does not list this process", f)
		}
	}
}

func TestCreateBadInput(t *testing.T) {
	forEachCgroup(t, func(t *testing.T, b Backend) {
		if _, err := b.Create("../x", Limits{}); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Create(../x) = %v, want ErrInvalidID", err)
		}
		if _, err := b.Create("ok", Limits{CPUMax: 0.001}); !errors.Is(err, ErrInvalidLimits) {
			t.Errorf("Create(cpu 0.001) = %v, want ErrInvalidLimits", err)
		}
		for _, d := range groupDirs(b, "ok") {
			if _, err := os.Lstat(d); err == nil {
				t.Errorf("refused Create left %s", d)
			}
		}
	})
}
