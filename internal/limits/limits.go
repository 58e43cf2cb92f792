// limits.go owns the package's contract: the Limits and Usage values, the
// Backend and Group interfaces, id and limit validation, and Detect, which
// picks the backend the host allows (cgroup2, then cgroup1, then rlimit).

// Package limits puts a workspace's processes under its resource envelope
// (the spec's "soma"). Where the host lets the daemon write a cgroup
// hierarchy, every workspace gets its own cgroup (v2, or v1 where that is
// what the host has) and the kernel enforces memory, CPU and pids limits;
// where it does not, the rlimit backend carries what per-process rlimits can
// honestly express and leaves the rest to sampling.
//
// A Group does not spawn anything: it says where a process must be born
// (Placement) and which rlimits it must carry (Rlimits); internal/proc does
// the spawning.
package limits

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/proc"
)

// Backend names, as returned by Backend.Name and accepted by Options.Force.
const (
	NameCgroup2 = "cgroup2"
	NameCgroup1 = "cgroup1"
	NameRlimit  = "rlimit"
)

// SourceProcfs is the Group.Source of the rlimit backend: its figures come
// from sampling /proc, not from kernel accounting.
const SourceProcfs = "procfs"

// DefaultParent is the subtree that holds shipote's groups when
// Options.Parent is empty.
const DefaultParent = "shipote"

// MinCPUMax is the smallest non-zero Limits.CPUMax: the kernel refuses a
// CFS quota below 1 ms per 100 ms period.
const MinCPUMax = 0.01

// cpuPeriodUsec is the CFS period used for CPU limits (the kernel default).
const cpuPeriodUsec = 100000

var (
	// ErrInvalidID is returned for a workspace id that is not a valid name.
	ErrInvalidID = errors.New("limits: invalid workspace id")
	// ErrInvalidLimits is returned for limits the kernel cannot express.
	ErrInvalidLimits = errors.New("limits: invalid limits")
	// ErrUnavailable is returned by Detect when a forced backend cannot be
	// used on this host.
	ErrUnavailable = errors.New("limits: backend unavailable")
	// ErrExists is returned by Create when a group for the id is already
	// there (left by a previous run that was not swept, or a duplicate id).
	ErrExists = errors.New("limits: group already exists")
	// ErrNotEmpty is returned when processes are still in a group after the
	// kill loop gave up.
	ErrNotEmpty = errors.New("limits: group still has processes")
)

// Limits is a workspace's resource envelope. A zero field means unlimited.
type Limits struct {
	MemoryMaxBytes int64   // memory (and memory+swap where accounted) of the whole group
	CPUMax         float64 // cores, e.g. 1.5; at least MinCPUMax when set
	PidsMax        int64   // tasks (processes and threads) in the group
	NofileMax      int64   // open files per process (always an rlimit)
}

// Validate reports the first field the kernel cannot express, naming it.
func (l Limits) Validate() error {
	switch {
	case l.MemoryMaxBytes < 0:
		return fmt.Errorf("%w: memory_max_bytes %d is negative", ErrInvalidLimits, l.MemoryMaxBytes)
	case math.IsNaN(l.CPUMax) || math.IsInf(l.CPUMax, 0):
		return fmt.Errorf("%w: cpu_max %v is not a finite number", ErrInvalidLimits, l.CPUMax)
	case l.CPUMax < 0:
		return fmt.Errorf("%w: cpu_max %v is negative", ErrInvalidLimits, l.CPUMax)
	case l.CPUMax > 0 && l.CPUMax < MinCPUMax:
		return fmt.Errorf("%w: cpu_max %v is below the kernel's minimum of %v cores", ErrInvalidLimits, l.CPUMax, MinCPUMax)
	case l.CPUMax > 1<<20:
		return fmt.Errorf("%w: cpu_max %v is absurdly large", ErrInvalidLimits, l.CPUMax)
	case l.PidsMax < 0:
		return fmt.Errorf("%w: pids_max %d is negative", ErrInvalidLimits, l.PidsMax)
	case l.NofileMax < 0:
		return fmt.Errorf("%w: nofile_max %d is negative", ErrInvalidLimits, l.NofileMax)
	}
	return nil
}

// cpuQuotaUsec is the CFS quota per cpuPeriodUsec for l.CPUMax, or 0 when
// unlimited.
func (l Limits) cpuQuotaUsec() int64 {
	if l.CPUMax == 0 {
		return 0
	}
	return int64(math.Round(l.CPUMax * cpuPeriodUsec))
}

// Usage is what the kernel accounted for a group.
type Usage struct {
	MemoryBytes     uint64 // current charge (v1 usage_in_bytes, v2 memory.current)
	MemoryPeakBytes uint64 // high-water mark; 0 when the kernel does not keep one
	CPUUsec         uint64 // cumulative CPU time of every task ever in the group
	Pids            uint64 // tasks currently in the group
}

// Backend creates and sweeps workspace groups. Its methods are safe for
// concurrent use.
type Backend interface {
	// Name is "cgroup2", "cgroup1" or "rlimit".
	Name() string
	// Create makes the group for a workspace id (validated with ValidateID)
	// and applies l. It fails with ErrExists if the group is already there.
	Create(id string, l Limits) (Group, error)
	// Sweep kills every process in the groups left under the backend's
	// parent by a previous run, removes those groups, and returns their
	// ids, sorted. Call it at start, before anything is relaunched.
	Sweep(ctx context.Context) ([]string, error)
}

// Group is one workspace's envelope. Its methods are safe for concurrent use.
type Group interface {
	// Placement says where a process of this workspace must be born. For
	// cgroup2 the CgroupFD is owned by the Group and stays open while the
	// Group is reachable. After Remove, a spawn with it fails rather than
	// starting a process outside the group.
	Placement() proc.Placement
	// Rlimits are per-process rlimits every process of the workspace must
	// carry: RLIMIT_NOFILE when NofileMax is set (cgroups have no fd limit).
	// Nothing else maps honestly: see the rlimit backend.
	Rlimits() []proc.Rlimit
	// Procs lists every pid in the group, sorted (empty for rlimit).
	Procs() ([]int, error)
	// Usage reads the kernel's accounting; ok is false when the backend has
	// none (rlimit) and the caller must sample /proc instead.
	Usage() (u Usage, ok bool, err error)
	// Kill signals every member. For SIGKILL it repeats until the group is
	// empty (so a process forking meanwhile cannot escape), giving up with
	// ErrNotEmpty after a few seconds.
	Kill(sig syscall.Signal) error
	// Remove kills what is left, waits for the group to empty and removes
	// its directories. It is idempotent.
	Remove(ctx context.Context) error
	// Source is where Usage comes from: "cgroup2", "cgroup1" or "procfs".
	Source() string
}

// Options configures Detect. The zero value is valid.
type Options struct {
	// Parent is the subtree holding shipote's groups; "" means
	// DefaultParent. A relative path is nested under the daemon's own
	// cgroup (in each hierarchy), so workspaces stay inside whatever
	// envelope the daemon itself runs in and a delegated subtree works; an
	// absolute path ("/shipote") starts at the hierarchy's root. Each daemon
	// instance needs its own parent: Sweep kills everything under it.
	Parent string
	// Force picks one backend ("cgroup2", "cgroup1" or "rlimit") and fails
	// with ErrUnavailable if the host does not allow it; "" picks the best.
	Force string
}

// parentPath validates o.Parent and returns it cleaned, with whether it is
// absolute.
func (o Options) parentPath() (string, bool, error) {
	p := o.Parent
	if p == "" {
		p = DefaultParent
	}
	abs := strings.HasPrefix(p, "/")
	parts := strings.Split(strings.Trim(p, "/"), "/")
	for _, part := range parts {
		if err := validName(part); err != nil {
			return "", false, fmt.Errorf("limits: parent %q: %w", o.Parent, err)
		}
	}
	return strings.Join(parts, "/"), abs, nil
}

// ValidateID checks that id can name a group directory: [A-Za-z0-9._-]{1,64},
// neither "." nor "..".
func ValidateID(id string) error {
	if err := validName(id); err != nil {
		return fmt.Errorf("%w %q: %w", ErrInvalidID, id, err)
	}
	return nil
}

func validName(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len(s) > 64:
		return fmt.Errorf("name is %d characters long, the maximum is 64", len(s))
	case s == "." || s == "..":
		return fmt.Errorf("name %q is not allowed", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("character %q at offset %d is not in [A-Za-z0-9._-]", s[i:i+1], i)
		}
	}
	return nil
}

// Detect picks the backend: cgroup2 if the unified hierarchy is mounted with
// the cpu, memory and pids controllers available and writable under the
// parent; else cgroup1 if memory, pids, cpu and cpuacct are mounted and
// writable; else rlimit. The string says why each better backend was
// rejected ("" when cgroup2 was chosen). With Options.Force only that backend
// is tried.
func Detect(opts Options) (Backend, string, error) {
	parent, abs, err := opts.parentPath()
	if err != nil {
		return nil, "", err
	}
	var reasons []string
	try := func(name string) Backend {
		var b Backend
		var err error
		switch name {
		case NameCgroup2:
			b, err = newCgroup2(parent, abs)
		case NameCgroup1:
			b, err = newCgroup1(parent, abs)
		default:
			return rlimitBackend{}
		}
		if err != nil {
			reasons = append(reasons, name+": "+err.Error())
			return nil
		}
		return b
	}
	switch opts.Force {
	case "":
		for _, name := range []string{NameCgroup2, NameCgroup1} {
			if b := try(name); b != nil {
				return b, strings.Join(reasons, "; "), nil
			}
		}
		return try(NameRlimit), strings.Join(reasons, "; "), nil
	case NameCgroup2, NameCgroup1, NameRlimit:
		if b := try(opts.Force); b != nil {
			return b, "", nil
		}
		why := strings.Join(reasons, "; ")
		return nil, why, fmt.Errorf("%w: %s", ErrUnavailable, why)
	default:
		return nil, "", fmt.Errorf("limits: unknown backend %q (want cgroup2, cgroup1 or rlimit)", opts.Force)
	}
}

// nofileRlimits is the rlimit list every backend returns for l.
func nofileRlimits(l Limits) []proc.Rlimit {
	if l.NofileMax == 0 {
		return nil
	}
	n := uint64(l.NofileMax)
	return []proc.Rlimit{{Resource: syscall.RLIMIT_NOFILE, Cur: n, Max: n}}
}

// RemoveParent removes the backend's parent directories, which Detect
// creates and nothing else removes: for a daemon stopping cleanly, or a test
// that used a parent of its own. It fails if a group is still there; the
// rlimit backend has nothing to remove.
func RemoveParent(b Backend) error {
	var errs []error
	for _, d := range parentDirs(b) {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("limits: remove parent %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
