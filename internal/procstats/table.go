// table.go owns the result of one scan: lookups by pid and the per-workspace
// tree sums, which follow descendants by parent pid and keep counting the
// ones that left the tree (setsid, reparenting to init) through the set of
// processes already known to belong to the workspace.

package procstats

import (
	"slices"
	"sort"
	"sync"
	"time"
)

// Table is every process seen by one Scan, sorted by pid. It is immutable
// and safe for concurrent use.
type Table struct {
	// At is when the scan started.
	At time.Time

	procs []ProcStat

	once     sync.Once
	byParent []int32 // indices into procs, sorted by (PPID, PID)
}

// Len is the number of processes in the table.
func (t *Table) Len() int { return len(t.procs) }

// Proc returns the process pid.
func (t *Table) Proc(pid int) (ProcStat, bool) {
	i, ok := t.index(pid)
	if !ok {
		return ProcStat{}, false
	}
	return t.procs[i], true
}

func (t *Table) index(pid int) (int, bool) {
	return slices.BinarySearchFunc(t.procs, pid, func(p ProcStat, pid int) int { return p.PID - pid })
}

// children returns the indices of pid's children.
func (t *Table) children(pid int) []int32 {
	t.once.Do(func() {
		t.byParent = make([]int32, len(t.procs))
		for i := range t.byParent {
			t.byParent[i] = int32(i)
		}
		// procs is sorted by PID, so a stable sort by PPID keeps children in
		// pid order.
		sort.SliceStable(t.byParent, func(a, b int) bool {
			return t.procs[t.byParent[a]].PPID < t.procs[t.byParent[b]].PPID
		})
	})
	lo := sort.Search(len(t.byParent), func(i int) bool { return t.procs[t.byParent[i]].PPID >= pid })
	hi := lo
	for hi < len(t.byParent) && t.procs[t.byParent[hi]].PPID == pid {
		hi++
	}
	return t.byParent[lo:hi]
}

// Known is the set of processes already seen in one workspace's tree: pid
// to start time (ProcStat.StartTicks), so that a pid reused by an unrelated
// process after the original exited is not counted.
type Known map[int]uint64

// TreeStats is the sum over a process tree.
type TreeStats struct {
	Pids     []int  // sorted; may include zombies not yet reaped
	RSSBytes uint64 // sum of resident sets (shared pages count once per process)
	// CPUUsec is the sum of CPUUsec + ChildCPUUsec over the tree: the CPU of
	// every live member plus that of the children they have reaped, so it
	// does not drop when a member reaps a child.
	CPUUsec uint64
}

// Tree sums roots and all their descendants, plus every process of known
// that is still alive with the same start time, and their descendants: a
// grandchild that called setsid, or was reparented to init when its parent
// exited, is still counted while it lives. Roots not in the table are
// ignored. It returns the stats and the updated known set (a new map; known
// is not modified), which the caller keeps for the next tick.
func (t *Table) Tree(roots []int, known Known) (TreeStats, Known) {
	next := make(Known, len(known)+len(roots))
	var (
		queue []int32
		st    TreeStats
	)
	add := func(i int) {
		p := &t.procs[i]
		if _, seen := next[p.PID]; seen {
			return
		}
		next[p.PID] = p.StartTicks
		queue = append(queue, int32(i))
	}
	for _, pid := range roots {
		if i, ok := t.index(pid); ok {
			add(i)
		}
	}
	for pid, start := range known {
		if i, ok := t.index(pid); ok && t.procs[i].StartTicks == start {
			add(i)
		}
	}
	for len(queue) > 0 {
		p := &t.procs[queue[0]]
		queue = queue[1:]
		st.Pids = append(st.Pids, p.PID)
		st.RSSBytes += p.RSSBytes
		st.CPUUsec += p.CPUUsec + p.ChildCPUUsec
		for _, c := range t.children(p.PID) {
			add(int(c))
		}
	}
	slices.Sort(st.Pids)
	return st, next
}
