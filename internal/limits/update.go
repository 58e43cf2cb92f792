// update.go owns changing a live group's limits in place: memory, CPU and
// pids, written to the group's control files (the kernel applies them to
// the processes already inside). The nofile rlimit is set at spawn and
// cannot change for running processes, so it is not updatable.

package limits

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/containerd/cgroups/v3/cgroup1"

	"github.com/shipote/shipote/internal/proc"
)

// ErrNotUpdatable is returned by Update for a change the kernel cannot
// apply to a live group (nofile_max: an rlimit fixed at spawn).
var ErrNotUpdatable = errors.New("limits: not updatable in place")

// Updater is a Group whose limits can change while it has processes.
type Updater interface {
	// Update sets memory, CPU and pids limits to l's (0 = unlimited).
	// l.NofileMax must equal the group's, else ErrNotUpdatable.
	Update(l Limits) error
}

var (
	_ Updater = (*cgroup2Group)(nil)
	_ Updater = (*cgroup1Group)(nil)
	_ Updater = rlimitGroup{}
)

func writeCtl(dir, file, value string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("limits: write %s: %w", file, err)
	}
	return nil
}

func checkNofile(have []proc.Rlimit, l Limits) error {
	if !slicesEqual(have, nofileRlimits(l)) {
		return fmt.Errorf("%w: nofile_max is an rlimit fixed when each process starts", ErrNotUpdatable)
	}
	return nil
}

func slicesEqual(a, b []proc.Rlimit) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func orMax(n int64) string {
	if n <= 0 {
		return "max"
	}
	return strconv.FormatInt(n, 10)
}

// Update implements Updater.
func (g *cgroup2Group) Update(l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if err := checkNofile(g.rlimits, l); err != nil {
		return err
	}
	if err := writeCtl(g.dir, "memory.max", orMax(l.MemoryMaxBytes)); err != nil {
		return err
	}
	if g.swap {
		swap := "max"
		if l.MemoryMaxBytes > 0 {
			swap = "0"
		}
		if err := writeCtl(g.dir, "memory.swap.max", swap); err != nil {
			return err
		}
	}
	quota := "max"
	if q := l.cpuQuotaUsec(); q > 0 {
		quota = strconv.FormatInt(q, 10)
	}
	if err := writeCtl(g.dir, "cpu.max", quota+" "+strconv.Itoa(cpuPeriodUsec)); err != nil {
		return err
	}
	return writeCtl(g.dir, "pids.max", orMax(l.PidsMax))
}

// Update implements Updater. memory.memsw.limit_in_bytes must never be
// below memory.limit_in_bytes, so the larger of the two moves first.
func (g *cgroup1Group) Update(l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if err := checkNofile(g.rlimits, l); err != nil {
		return err
	}
	dir := func(c cgroup1.Name) string { return filepath.Join(g.b.parentDir[c], g.id) }
	mem := dir(cgroup1.Memory)
	limit := "-1"
	if l.MemoryMaxBytes > 0 {
		limit = strconv.FormatInt(l.MemoryMaxBytes, 10)
	}
	files := []string{"memory.limit_in_bytes"}
	if g.b.swap {
		cur, err := os.ReadFile(filepath.Join(mem, "memory.limit_in_bytes"))
		if err != nil {
			return fmt.Errorf("limits: read memory.limit_in_bytes: %w", err)
		}
		curN, _ := strconv.ParseInt(string(trimNL(cur)), 10, 64)
		raising := l.MemoryMaxBytes <= 0 || l.MemoryMaxBytes > curN
		if raising {
			files = []string{"memory.memsw.limit_in_bytes", "memory.limit_in_bytes"}
		} else {
			files = []string{"memory.limit_in_bytes", "memory.memsw.limit_in_bytes"}
		}
	}
	for _, f := range files {
		if err := writeCtl(mem, f, limit); err != nil {
			return err
		}
	}
	quota := int64(-1)
	if q := l.cpuQuotaUsec(); q > 0 {
		quota = q
		if err := writeCtl(dir(cgroup1.Cpu), "cpu.cfs_period_us", strconv.Itoa(cpuPeriodUsec)); err != nil {
			return err
		}
	}
	if err := writeCtl(dir(cgroup1.Cpu), "cpu.cfs_quota_us", strconv.FormatInt(quota, 10)); err != nil {
		return err
	}
	return writeCtl(dir(cgroup1.Pids), "pids.max", orMax(l.PidsMax))
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// Update implements Updater: without a kernel group there is nothing to
// write (the workspace's sampling reads the new limits).
func (g rlimitGroup) Update(l Limits) error {
	if err := l.Validate(); err != nil {
		return err
	}
	return checkNofile(g.rlimits, l)
}
