// rlimit.go owns the fallback backend for hosts where no cgroup hierarchy is
// writable: no kernel group at all, only per-process rlimits for what they
// can honestly express, and sampling (internal/procstats, quota_enforce) for
// the rest.
//
// What maps and what does not:
//   - nofile_max -> RLIMIT_NOFILE: per process in every backend; exact.
//   - pids_max: RLIMIT_NPROC counts every process of the real uid on the
//     whole host, not the workspace's; with the daemon's uid it would limit
//     the daemon and every other workspace too. Not mapped.
//   - memory_max_bytes: RLIMIT_AS and RLIMIT_DATA bound one process's
//     virtual address space, not the workspace's resident memory; runtimes
//     that reserve large address ranges (Go, the JVM, V8) would fail at
//     start while a workspace of many small processes would pass
//     unchecked. Not mapped; enforced by sampling (quota_enforce: kill).
//   - cpu_max: RLIMIT_CPU is a total of CPU seconds after which the process
//     is killed, not a rate. Not mapped; reported by sampling.

package limits

import (
	"context"
	"slices"
	"syscall"

	"github.com/shipote/shipote/internal/proc"
)

// rlimitBackend is the backend without kernel groups.
type rlimitBackend struct{}

var _ Backend = rlimitBackend{}

// Name implements Backend.
func (rlimitBackend) Name() string { return NameRlimit }

// Create implements Backend.
func (rlimitBackend) Create(id string, l Limits) (Group, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return rlimitGroup{rlimits: nofileRlimits(l)}, nil
}

// Sweep implements Backend: without a kernel group nothing can be found;
// processes of a previous run died with it through PDEATHSIG.
func (rlimitBackend) Sweep(context.Context) ([]string, error) { return nil, nil }

// rlimitGroup carries rlimits only. Its members are killed by their
// process groups and process tree (the caller's job), not by the Group.
type rlimitGroup struct {
	rlimits []proc.Rlimit
}

var _ Group = rlimitGroup{}

// Placement implements Group: anywhere.
func (rlimitGroup) Placement() proc.Placement { return proc.Placement{} }

// Rlimits implements Group.
func (g rlimitGroup) Rlimits() []proc.Rlimit { return slices.Clone(g.rlimits) }

// Procs implements Group: the backend does not know the members.
func (rlimitGroup) Procs() ([]int, error) { return nil, nil }

// Usage implements Group: no kernel accounting (ok is false).
func (rlimitGroup) Usage() (Usage, bool, error) { return Usage{}, false, nil }

// Kill implements Group: there is no member list to signal.
func (rlimitGroup) Kill(syscall.Signal) error { return nil }

// Remove implements Group.
func (rlimitGroup) Remove(context.Context) error { return nil }

// Source implements Group.
func (rlimitGroup) Source() string { return SourceProcfs }
