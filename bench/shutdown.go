// shutdown.go measures how long a `shipote daemon` holding N idle
// workspaces, each with its cgroup (this host's cgroup v1 or v2 backend),
// takes from SIGTERM to its exit, and checks that no cgroup directory of
// that daemon is left. The baseline, in the same run, is the time this
// process takes to rmdir as many empty cgroup directories, made in the same
// hierarchies, one after the other.

package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/bench/peers"
	"github.com/shipote/shipote/messages"
)

// ShutdownParams size the shutdown suite.
type ShutdownParams struct {
	N       int // idle workspaces
	Runs    int // fresh daemon per run
	Clients int // concurrent API clients creating the workspaces
}

// ShutdownParamsFor returns the sizes of a full or quick run.
func ShutdownParamsFor(quick bool) ShutdownParams {
	switch {
	case quick && smoke:
		return ShutdownParams{N: 200, Runs: 1, Clients: 16}
	case quick:
		return ShutdownParams{N: 1000, Runs: 1, Clients: 32}
	}
	return ShutdownParams{N: 10000, Runs: 3, Clients: 32}
}

// RunShutdown runs the shutdown suite with ShutdownParamsFor(quick).
func RunShutdown(ctx context.Context, r *Report, quick bool) error {
	return MeasureShutdown(ctx, r, ShutdownParamsFor(quick))
}

// shutdownRun is one run's figures.
type shutdownRun struct {
	stop, rmdir time.Duration
	dirs        int // cgroup directories the daemon had made, over its hierarchies
	left        int // directories of the daemon's cgroup parent left after it exited
	backend     string
}

// MeasureShutdown builds the daemon and adds the row. It fails when the
// daemon has no cgroup backend (nothing to measure) or leaves a cgroup
// directory behind.
func MeasureShutdown(ctx context.Context, r *Report, par ShutdownParams) error {
	root, err := os.MkdirTemp("", "shipote-bench-shutdown-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	bin, err := peers.BuildShipote(ctx, root)
	if err != nil {
		return err
	}
	var runs []shutdownRun
	for i := range par.Runs {
		run, err := shutdownOnce(ctx, bin, filepath.Join(root, fmt.Sprintf("run%d", i)), par)
		if err != nil {
			return fmt.Errorf("shutdown run %d: %w", i+1, err)
		}
		if run.left > 0 {
			return fmt.Errorf("shutdown run %d: %d cgroup directories of the daemon left after it exited", i+1, run.left)
		}
		runs = append(runs, run)
	}
	var stops, rmdirs []float64
	for _, run := range runs {
		stops = append(stops, run.stop.Seconds()*1000)
		rmdirs = append(rmdirs, run.rmdir.Seconds()*1000)
	}
	med, lo, hi := Median(stops)
	base, _, _ := Median(rmdirs)
	row := Row{Group: "shutdown", Name: fmt.Sprintf("SIGTERM to exit, %d idle workspaces", par.N),
		Value: med, Unit: "ms", Baseline: "rmdir as many empty cgroups", Base: base,
		Target: "<= 2 s, no cgroup left", Met: Bool(med <= 2000),
		Note: fmt.Sprintf("%s backend, %d cgroup directories (%d hierarchies); 0 left after exit in every run; state file on; baseline one rmdir after another from this process; median of %d",
			runs[0].backend, runs[0].dirs, runs[0].dirs/par.N, len(runs))}
	if len(runs) > 1 {
		row.Min, row.Max = lo, hi
	}
	r.Add(row)
	return nil
}

func shutdownOnce(ctx context.Context, bin, dir string, par ShutdownParams) (run shutdownRun, err error) {
	d, err := peers.NewShipoteDaemon(bin, dir)
	if err != nil {
		return run, err
	}
	if err := d.Launch(ctx); err != nil {
		return run, err
	}
	defer func() {
		if cerr := d.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	c := d.Client()
	backends := make([]string, par.N)
	err = parallel(ctx, par.Clients, par.N, func(i int) error {
		info, err := c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("w%05d", i)})
		backends[i] = info.LimitsBackend
		return err
	})
	if err != nil {
		return run, fmt.Errorf("create %d workspaces: %w", par.N, err)
	}
	run.backend = backends[0]
	if run.backend != "cgroup1" && run.backend != "cgroup2" {
		return run, fmt.Errorf("the daemon's limits backend is %q: no cgroups to remove", run.backend)
	}
	parents, err := cgroupParents(d.PID(), d.CgroupParent())
	if err != nil {
		return run, err
	}
	for _, p := range parents {
		n, err := countDirs(p)
		if err != nil {
			return run, err
		}
		if n != par.N {
			return run, fmt.Errorf("%s holds %d groups, want %d", p, n, par.N)
		}
		run.dirs += n
	}

	t0 := time.Now()
	if err := d.Close(); err != nil {
		return run, err
	}
	run.stop = time.Since(t0)
	for _, p := range parents {
		if _, err := os.Lstat(p); err == nil {
			n, _ := countDirs(p)
			run.left += 1 + n
		}
	}

	// The baseline: as many empty directories beside the daemon's parent,
	// removed one after the other, a workspace's directories together.
	run.rmdir, err = rmdirFloor(parents, par.N)
	return run, err
}

// cgroupParents returns the directories of the daemon's cgroup parent name
// in each cgroup hierarchy the daemon pid is in (v1: one per controller
// mount; v2: the unified one), read from /proc/PID/cgroup, taking the
// mounts to be at /sys/fs/cgroup/<controllers> (v1) or /sys/fs/cgroup
// (v2). Only those that exist are returned.
func cgroupParents(pid int, name string) ([]string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		mount := filepath.Join("/sys/fs/cgroup", parts[1])
		if parts[0] == "0" && parts[1] == "" {
			mount = "/sys/fs/cgroup"
		}
		p := filepath.Join(mount, parts[2], name)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			out = append(out, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no cgroup directory %q for pid %d", name, pid)
	}
	return out, nil
}

// countDirs counts the subdirectories of dir.
func countDirs(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if e.IsDir() {
			n++
		}
	}
	return n, nil
}

// rmdirFloor makes n empty groups in a fresh parent beside each of
// parents (which may be gone by now: only their parent directory is used),
// then times removing them, each group's directories together, one rmdir
// after another.
func rmdirFloor(parents []string, n int) (took time.Duration, err error) {
	name := fmt.Sprintf("shipote-bench-rmdir-%d", os.Getpid())
	var bases []string
	defer func() {
		for _, b := range bases {
			ents, _ := os.ReadDir(b)
			for _, e := range ents {
				_ = os.Remove(filepath.Join(b, e.Name()))
			}
			if rerr := os.Remove(b); rerr != nil && err == nil {
				err = rerr
			}
		}
	}()
	for _, p := range parents {
		b := filepath.Join(filepath.Dir(p), name)
		if err := os.Mkdir(b, 0o755); err != nil {
			return 0, err
		}
		bases = append(bases, b)
	}
	paths := make([]string, 0, n*len(bases))
	for i := range n {
		for _, b := range bases {
			d := filepath.Join(b, fmt.Sprintf("g%05d", i))
			if err := os.Mkdir(d, 0o755); err != nil {
				return 0, err
			}
			paths = append(paths, d)
		}
	}
	t0 := time.Now()
	for _, d := range paths {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
			return 0, err
		}
	}
	return time.Since(t0), nil
}
