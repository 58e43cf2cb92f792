// oom.go owns reading how many processes of a group the kernel's OOM killer
// has killed: "oom_kill" in memory.events (cgroup v2) or memory.oom_control
// (cgroup v1, Linux 4.13 and later).

package limits

import (
	"fmt"
	"path/filepath"

	"github.com/containerd/cgroups/v3/cgroup1"
)

// OOMCounter is implemented by groups whose kernel counts OOM kills.
type OOMCounter interface {
	// OOMKills returns how many processes of the group the OOM killer has
	// killed since the group was made; ok is false when the kernel does not
	// say (rlimit backend, an old kernel).
	OOMKills() (n uint64, ok bool, err error)
}

var (
	_ OOMCounter = (*cgroup2Group)(nil)
	_ OOMCounter = (*cgroup1Group)(nil)
	_ OOMCounter = (*rlimitGroup)(nil)
)

// OOMKills implements OOMCounter.
func (g *cgroup2Group) OOMKills() (uint64, bool, error) {
	n, ok, err := readKeyFile(filepath.Join(g.dir, "memory.events"), "oom_kill")
	if err != nil {
		return 0, false, fmt.Errorf("limits: oom kills of cgroup2 group %s: %w", g.id, err)
	}
	return n, ok, nil
}

// OOMKills implements OOMCounter.
func (g *cgroup1Group) OOMKills() (uint64, bool, error) {
	n, ok, err := readKeyFile(filepath.Join(g.b.parentDir[cgroup1.Memory], g.id, "memory.oom_control"), "oom_kill")
	if err != nil {
		return 0, false, fmt.Errorf("limits: oom kills of cgroup1 group %s: %w", g.id, err)
	}
	return n, ok, nil
}

// OOMKills implements OOMCounter: rlimits have no OOM accounting.
func (g *rlimitGroup) OOMKills() (uint64, bool, error) { return 0, false, nil }
