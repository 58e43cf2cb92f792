// cgroup2.go owns the cgroup v2 backend: one group per workspace under the
// parent in the unified hierarchy, created, limited and deleted through
// github.com/containerd/cgroups/v3/cgroup2. Processes are born inside it
// with clone3(CLONE_INTO_CGROUP) through an fd the Group keeps open; the
// group is emptied with cgroup.kill.

package limits

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup2"
	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/proc"
)

// v2Controllers are the controllers a workspace group needs.
var v2Controllers = []string{"cpu", "memory", "pids"}

// cgroup2Backend places workspaces in the unified hierarchy.
type cgroup2Backend struct {
	mount     string // where the unified hierarchy is mounted, e.g. /sys/fs/cgroup
	parent    string // the parent's group path, e.g. "/shipote" (containerd's form)
	parentDir string // mount + parent
	swap      bool   // memory.swap.max exists: forbid swap so memory.max bites
}

var _ Backend = (*cgroup2Backend)(nil)

// newCgroup2 checks that a unified hierarchy is mounted with the cpu, memory
// and pids controllers available where the parent goes, creates the parent
// and enables those controllers for its children.
func newCgroup2(parent string, abs bool) (*cgroup2Backend, error) {
	mounts, err := readMountinfo()
	if err != nil {
		return nil, err
	}
	var m mount
	for _, mm := range mounts {
		if mm.FSType == "cgroup2" {
			m = mm
			break
		}
	}
	if m.Point == "" {
		return nil, errors.New("no cgroup2 hierarchy is mounted")
	}
	_, unified, err := cgroups.ParseCgroupFileUnified("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	top := "/"
	if !abs && unified != "" {
		top = inMount(unified, m.Root)
	}
	group := path.Join(top, parent)
	topDir := filepath.Join(m.Point, top)
	data, err := os.ReadFile(filepath.Join(topDir, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("read controllers of %s: %w", topDir, err)
	}
	avail := strings.Fields(string(data))
	var missing []string
	for _, c := range v2Controllers {
		if !slices.Contains(avail, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s offers controllers [%s]; %s missing (a hierarchy without them cannot enforce limits)",
			topDir, strings.Join(avail, " "), strings.Join(missing, ", "))
	}
	dir := filepath.Join(m.Point, group)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create %s: %w", dir, err)
	}
	// Enable the controllers from top down to the parent, so that the
	// parent's children (the workspace groups) get their interface files.
	enable := "+" + strings.Join(v2Controllers, " +")
	for d := topDir; ; {
		if err := os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte(enable), 0); err != nil {
			if errors.Is(err, unix.EBUSY) {
				return nil, fmt.Errorf("cannot enable %s in %s: %w (it has processes of its own; run the daemon in a leaf of a delegated cgroup or use an absolute parent)", enable, d, err)
			}
			return nil, fmt.Errorf("cannot enable %s in %s: %w", enable, d, err)
		}
		if d == dir {
			break
		}
		rel, err := filepath.Rel(d, dir)
		if err != nil {
			return nil, fmt.Errorf("limits: %w", err)
		}
		d = filepath.Join(d, strings.Split(rel, string(filepath.Separator))[0])
	}
	_, err = os.Stat(filepath.Join(dir, "memory.swap.max"))
	return &cgroup2Backend{mount: m.Point, parent: group, parentDir: dir, swap: err == nil}, nil
}

// Name implements Backend.
func (b *cgroup2Backend) Name() string { return NameCgroup2 }

// resources maps l onto containerd's cgroup2 values. memory.swap.max is 0
// where swap is accounted, so memory.max cannot be stretched by swapping;
// the kernel OOM-kills inside the group on excess (v2 has no pause mode).
func (b *cgroup2Backend) resources(l Limits) *cgroup2.Resources {
	// All three are always set, so containerd enables exactly the
	// controllers Detect checked, even for an unlimited group.
	r := &cgroup2.Resources{CPU: &cgroup2.CPU{}, Memory: &cgroup2.Memory{}, Pids: &cgroup2.Pids{}}
	if l.MemoryMaxBytes > 0 {
		limit := l.MemoryMaxBytes
		r.Memory.Max = &limit
		if b.swap {
			zero := int64(0)
			r.Memory.Swap = &zero
		}
	}
	if q := l.cpuQuotaUsec(); q > 0 {
		period := uint64(cpuPeriodUsec)
		r.CPU.Max = cgroup2.NewCPUMax(&q, &period)
	}
	r.Pids.Max = l.PidsMax
	return r
}

// Create implements Backend.
func (b *cgroup2Backend) Create(id string, l Limits) (Group, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	dir := filepath.Join(b.parentDir, id)
	if _, err := os.Lstat(dir); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrExists, dir)
	}
	m, err := cgroup2.NewManager(b.mount, path.Join(b.parent, id), b.resources(l))
	if err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("limits: create cgroup2 group %s: %w", id, err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = m.Delete()
		return nil, fmt.Errorf("limits: open cgroup2 group %s: %w", id, err)
	}
	g := &cgroup2Group{id: id, dir: dir, m: m, fd: fd, rlimits: nofileRlimits(l), swap: b.swap}
	// The fd outlives Remove on purpose (see Placement) and is closed once
	// the Group is unreachable.
	runtime.AddCleanup(g, func(fd int) { _ = unix.Close(fd) }, fd)
	return g, nil
}

// Sweep implements Backend.
func (b *cgroup2Backend) Sweep(ctx context.Context) ([]string, error) {
	ids, err := listGroupIDs(b.parentDir)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, id := range ids {
		m, err := cgroup2.Load(path.Join(b.parent, id), cgroup2.WithMountpoint(b.mount))
		if err != nil {
			errs = append(errs, fmt.Errorf("limits: load cgroup2 group %s: %w", id, err))
			continue
		}
		g := &cgroup2Group{id: id, dir: filepath.Join(b.parentDir, id), m: m, fd: -1}
		if err := g.Remove(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return ids, errors.Join(errs...)
}

// cgroup2Group is one workspace's group in the unified hierarchy.
type cgroup2Group struct {
	id      string
	dir     string
	m       *cgroup2.Manager
	rlimits []proc.Rlimit
	fd      int  // the group's directory, for CLONE_INTO_CGROUP; -1 for a swept group
	swap    bool // memory.swap.max exists (Update keeps swap out of memory.max)

	mu sync.Mutex // serialises Remove
}

var _ Group = (*cgroup2Group)(nil)

// Placement implements Group: clone3 with CLONE_INTO_CGROUP and this fd
// (os/exec: SysProcAttr.UseCgroupFD and CgroupFD). The fd is owned by the
// Group and stays open while the Group is reachable, even after Remove: a
// spawn racing with Remove then fails (the kernel refuses to clone into a
// removed cgroup) instead of starting the process outside any group.
func (g *cgroup2Group) Placement() proc.Placement {
	return proc.Placement{CgroupFD: g.fd}
}

// Rlimits implements Group.
func (g *cgroup2Group) Rlimits() []proc.Rlimit { return slices.Clone(g.rlimits) }

// Procs implements Group.
func (g *cgroup2Group) Procs() ([]int, error) {
	pids, err := g.m.Procs(true)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("limits: procs of cgroup2 group %s: %w", g.id, err)
	}
	out := make([]int, len(pids))
	for i, p := range pids {
		out[i] = int(p)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Usage implements Group.
func (g *cgroup2Group) Usage() (Usage, bool, error) {
	var (
		u    Usage
		errs []error
		err  error
	)
	if u.MemoryBytes, err = readUintFile(filepath.Join(g.dir, "memory.current")); err != nil {
		errs = append(errs, err)
	}
	// memory.peak exists since Linux 5.19; without it the peak is unknown.
	if u.MemoryPeakBytes, err = readUintFile(filepath.Join(g.dir, "memory.peak")); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if u.CPUUsec, _, err = readKeyFile(filepath.Join(g.dir, "cpu.stat"), "usage_usec"); err != nil {
		errs = append(errs, err)
	}
	if u.Pids, err = readUintFile(filepath.Join(g.dir, "pids.current")); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Usage{}, true, fmt.Errorf("limits: usage of cgroup2 group %s: %w", g.id, err)
	}
	return u, true, nil
}

// Kill implements Group.
func (g *cgroup2Group) Kill(sig syscall.Signal) error {
	if sig == syscall.SIGKILL {
		ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
		defer cancel()
		return g.killAll(ctx)
	}
	pids, err := g.Procs()
	if err != nil {
		return err
	}
	if err := signalAll(pids, sig); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	return nil
}

// killAll writes cgroup.kill (Linux 5.14+, atomic against forks) and then
// runs the kill loop, which also covers kernels without cgroup.kill.
func (g *cgroup2Group) killAll(ctx context.Context) error {
	err := os.WriteFile(filepath.Join(g.dir, "cgroup.kill"), []byte("1"), 0)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("limits: kill cgroup2 group %s: %w", g.id, err)
	}
	return killUntilEmpty(ctx, g.Procs)
}

// Remove implements Group: cgroup.kill, then the kill loop and one rmdir
// (see removeGroup).
func (g *cgroup2Group) Remove(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	err := os.WriteFile(filepath.Join(g.dir, "cgroup.kill"), []byte("1"), 0)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("limits: remove cgroup2 group %s: %w", g.id, err)
	}
	if err := removeGroup(ctx, g.Procs, []string{g.dir}); err != nil {
		return fmt.Errorf("limits: remove cgroup2 group %s: %w", g.id, err)
	}
	return nil
}

// Source implements Group.
func (g *cgroup2Group) Source() string { return NameCgroup2 }
