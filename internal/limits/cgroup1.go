// cgroup1.go owns the cgroup v1 backend: one directory per workspace in each
// of the memory, pids, cpu and cpuacct hierarchies, created, limited and
// deleted through github.com/containerd/cgroups/v3/cgroup1. Reads that run
// every sampling tick (Procs, Usage) go to the few control files directly:
// containerd's Stat parses every memory statistic and would cost several
// times more per tick than the four numbers Usage needs.

package limits

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/proc"
)

// v1Controllers are the hierarchies a workspace group lives in.
var v1Controllers = []cgroup1.Name{cgroup1.Memory, cgroup1.Pids, cgroup1.Cpu, cgroup1.Cpuacct}

// cgroup1Backend places workspaces in cgroup v1 hierarchies.
type cgroup1Backend struct {
	// parentRel is the parent's path inside each controller's hierarchy,
	// e.g. "/shipote" or "/system.slice/shipote.service/shipote".
	parentRel map[cgroup1.Name]string
	// parentDir is the parent's directory for each controller.
	parentDir map[cgroup1.Name]string
	// hier lists each distinct hierarchy once (cpu and cpuacct may share
	// one), by the controller that names it.
	hier []cgroup1.Name
	// leave are the daemon's own tasks files, one per distinct hierarchy,
	// in hier's order.
	leave     []string
	swap      bool // memory.memsw.* exists: limit memory+swap too
	hierarchy cgroup1.Hierarchy
}

var _ Backend = (*cgroup1Backend)(nil)

// newCgroup1 checks that memory, pids, cpu and cpuacct are mounted as cgroup
// v1 hierarchies in containerd's <root>/<controller> layout, creates the
// parent in each and checks it is writable.
func newCgroup1(parent string, abs bool) (*cgroup1Backend, error) {
	mounts, err := readMountinfo()
	if err != nil {
		return nil, err
	}
	own, _, err := cgroups.ParseCgroupFileUnified("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	b := &cgroup1Backend{
		parentRel: map[cgroup1.Name]string{},
		parentDir: map[cgroup1.Name]string{},
	}
	var (
		missing    []string
		subsystems []cgroup1.Subsystem
		points     = map[string]bool{}
	)
	for _, c := range v1Controllers {
		m, ok := findV1Mount(mounts, string(c))
		if !ok {
			missing = append(missing, string(c))
			continue
		}
		root := filepath.Dir(m.Point)
		if !sameFile(filepath.Join(root, string(c)), m.Point) {
			return nil, fmt.Errorf("controller %s is mounted at %s, not reachable as %s", c, m.Point, filepath.Join(root, string(c)))
		}
		ownPath, ok := own[string(c)]
		if !ok {
			return nil, fmt.Errorf("/proc/self/cgroup has no %s entry", c)
		}
		ownRel := inMount(ownPath, m.Root)
		rel := "/" + parent
		if !abs {
			rel = path.Join(ownRel, parent)
		}
		dir := filepath.Join(m.Point, rel)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cannot create %s: %w", dir, err)
		}
		if err := unix.Access(dir, unix.W_OK); err != nil {
			return nil, fmt.Errorf("%s is not writable: %w", dir, err)
		}
		b.parentRel[c] = rel
		b.parentDir[c] = dir
		if !points[m.Point] {
			points[m.Point] = true
			b.hier = append(b.hier, c)
			b.leave = append(b.leave, filepath.Join(m.Point, ownRel, "tasks"))
		}
		switch c {
		case cgroup1.Memory:
			subsystems = append(subsystems, cgroup1.NewMemory(root, cgroup1.OptionalSwap()))
		case cgroup1.Pids:
			subsystems = append(subsystems, cgroup1.NewPids(root))
		case cgroup1.Cpu:
			subsystems = append(subsystems, cgroup1.NewCpu(root))
		case cgroup1.Cpuacct:
			subsystems = append(subsystems, cgroup1.NewCpuacct(root))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("controllers %s are not mounted as cgroup v1 hierarchies", strings.Join(missing, ", "))
	}
	_, err = os.Stat(filepath.Join(b.parentDir[cgroup1.Memory], "memory.memsw.limit_in_bytes"))
	b.swap = err == nil
	b.hierarchy = func() ([]cgroup1.Subsystem, error) { return subsystems, nil }
	return b, nil
}

// findV1Mount finds the cgroup v1 mount carrying controller.
func findV1Mount(mounts []mount, controller string) (mount, bool) {
	for _, m := range mounts {
		if m.FSType == "cgroup" && slices.Contains(m.SuperOpts, controller) {
			return m, true
		}
	}
	return mount{}, false
}

func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// Name implements Backend.
func (b *cgroup1Backend) Name() string { return NameCgroup1 }

// path is the containerd Path of workspace id: its path in each hierarchy.
func (b *cgroup1Backend) path(id string) cgroup1.Path {
	return func(n cgroup1.Name) (string, error) {
		rel, ok := b.parentRel[n]
		if !ok {
			return "", cgroup1.ErrControllerNotActive
		}
		return path.Join(rel, id), nil
	}
}

// resources maps l onto the runtime-spec values containerd writes. The OOM
// killer is always left enabled (oom_control 0) so excess memory kills a
// process instead of pausing the group, and memory+swap gets the same limit
// as memory so that swap cannot stretch it.
func (b *cgroup1Backend) resources(l Limits) *specs.LinuxResources {
	disableOOM := false
	r := &specs.LinuxResources{Memory: &specs.LinuxMemory{DisableOOMKiller: &disableOOM}}
	if l.MemoryMaxBytes > 0 {
		limit := l.MemoryMaxBytes
		r.Memory.Limit = &limit
		if b.swap {
			memsw := limit
			r.Memory.Swap = &memsw
		}
	}
	if q := l.cpuQuotaUsec(); q > 0 {
		period := uint64(cpuPeriodUsec)
		r.CPU = &specs.LinuxCPU{Quota: &q, Period: &period}
	}
	if l.PidsMax > 0 {
		n := l.PidsMax
		r.Pids = &specs.LinuxPids{Limit: &n}
	}
	return r
}

// Create implements Backend.
func (b *cgroup1Backend) Create(id string, l Limits) (Group, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	g := b.group(id, l)
	for _, d := range g.dirs() {
		if _, err := os.Lstat(d); err == nil {
			return nil, fmt.Errorf("%w: %s", ErrExists, d)
		}
	}
	if _, err := cgroup1.New(b.path(id), b.resources(l), cgroup1.WithHierarchy(b.hierarchy)); err != nil {
		for _, c := range v1Controllers {
			_ = os.Remove(filepath.Join(b.parentDir[c], id))
		}
		return nil, fmt.Errorf("limits: create cgroup1 group %s: %w", id, err)
	}
	return g, nil
}

// group builds the Group value for id. It keeps only the backend and the
// id: the paths are derived when used, so that an idle workspace holds no
// strings for them.
func (b *cgroup1Backend) group(id string, l Limits) *cgroup1Group {
	return &cgroup1Group{b: b, id: id, rlimits: nofileRlimits(l)}
}

// Sweep implements Backend.
func (b *cgroup1Backend) Sweep(ctx context.Context) ([]string, error) {
	var ids []string
	for _, c := range b.hier {
		found, err := listGroupIDs(b.parentDir[c])
		if err != nil {
			return nil, err
		}
		ids = append(ids, found...)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	errs := removeAll(ctx, len(ids), func(i int) error {
		return b.group(ids[i], Limits{}).Remove(ctx)
	})
	return ids, errs
}

// cgroup1Group is one workspace's directories in the v1 hierarchies.
type cgroup1Group struct {
	b       *cgroup1Backend
	id      string
	rlimits []proc.Rlimit

	mu sync.Mutex // serialises Remove
}

var _ Group = (*cgroup1Group)(nil)

// files returns, for each distinct hierarchy in the backend's order, the
// group's directory joined with name ("" for the directory itself).
func (g *cgroup1Group) files(name string) []string {
	out := make([]string, len(g.b.hier))
	for i, c := range g.b.hier {
		out[i] = filepath.Join(g.b.parentDir[c], g.id, name)
	}
	return out
}

// dirs are the group's directories, one per distinct hierarchy.
func (g *cgroup1Group) dirs() []string { return g.files("") }

// Placement implements Group: the spawning thread writes its TID into every
// JoinTasks file before it forks (the child is born in the workspace's
// cgroups, with no window in which it could fork outside them) and into
// LeaveTasks after. While the thread is inside, it counts against pids_max.
func (g *cgroup1Group) Placement() proc.Placement {
	return proc.Placement{
		JoinTasks:  g.files("tasks"),
		LeaveTasks: slices.Clone(g.b.leave),
	}
}

// Rlimits implements Group.
func (g *cgroup1Group) Rlimits() []proc.Rlimit { return slices.Clone(g.rlimits) }

// Procs implements Group: the union over the hierarchies, since only root
// can move a process out of one of them but not the others.
func (g *cgroup1Group) Procs() ([]int, error) {
	pids, err := unionPids(g.files("cgroup.procs"))
	return withoutSelf(pids), err
}

// Usage implements Group.
func (g *cgroup1Group) Usage() (Usage, bool, error) {
	mem := filepath.Join(g.b.parentDir[cgroup1.Memory], g.id)
	var (
		u    Usage
		errs []error
		err  error
	)
	if u.MemoryBytes, err = readUintFile(filepath.Join(mem, "memory.usage_in_bytes")); err != nil {
		errs = append(errs, err)
	}
	if u.MemoryPeakBytes, err = readUintFile(filepath.Join(mem, "memory.max_usage_in_bytes")); err != nil {
		errs = append(errs, err)
	}
	ns, err := readUintFile(filepath.Join(g.b.parentDir[cgroup1.Cpuacct], g.id, "cpuacct.usage"))
	if err != nil {
		errs = append(errs, err)
	}
	u.CPUUsec = ns / 1000
	if u.Pids, err = readUintFile(filepath.Join(g.b.parentDir[cgroup1.Pids], g.id, "pids.current")); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Usage{}, true, fmt.Errorf("limits: usage of cgroup1 group %s: %w", g.id, err)
	}
	return u, true, nil
}

// Kill implements Group.
func (g *cgroup1Group) Kill(sig syscall.Signal) error {
	if sig == syscall.SIGKILL {
		ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
		defer cancel()
		return killUntilEmpty(ctx, g.Procs)
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

// Remove implements Group: every member killed, then each directory
// removed. The kill loop has just read every hierarchy's cgroup.procs
// empty, so the directories go with one rmdir each (containerd's Delete
// would walk each directory's control files first).
func (g *cgroup1Group) Remove(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := removeGroup(ctx, g.Procs, g.dirs()); err != nil {
		return fmt.Errorf("limits: remove cgroup1 group %s: %w", g.id, err)
	}
	return nil
}

// Source implements Group.
func (g *cgroup1Group) Source() string { return NameCgroup1 }
