package supervise

import (
	"slices"
	"time"

	"github.com/shipote/shipote/messages"
)

// Deadline is a workspace's TTL deadline: its creation time plus ttl_ms;
// zero without a TTL. A restart neither resets nor extends it.
func Deadline(created time.Time, ttlMs int64) time.Time {
	if ttlMs <= 0 {
		return time.Time{}
	}
	return created.Add(time.Duration(ttlMs) * time.Millisecond)
}

// Reaper decides the end of a workspace: reaped under on_exit: reap once
// something ran and everything ended, removed when its TTL expires, and
// never removed twice.
type Reaper struct {
	policy   messages.ExitPolicy
	deadline time.Time
	ran      bool
	removing bool
}

// NewReaper returns the Reaper of a workspace with that on_exit policy and
// TTL deadline (zero = none).
func NewReaper(policy messages.ExitPolicy, deadline time.Time) *Reaper {
	return &Reaper{policy: policy, deadline: deadline}
}

// Deadline returns the TTL deadline; zero without a TTL.
func (r *Reaper) Deadline() time.Time { return r.deadline }

// TTLTimer returns how long from now until the TTL expires (0 if it has
// already), and false without a TTL.
func (r *Reaper) TTLTimer(now time.Time) (time.Duration, bool) {
	if r.deadline.IsZero() {
		return 0, false
	}
	return max(r.deadline.Sub(now), 0), true
}

// Ran records that a command or a pipeline run started.
func (r *Reaper) Ran() { r.ran = true }

// Removing reports whether a removal is under way.
func (r *Reaper) Removing() bool { return r.removing }

// Remove records a removal (asked, by TTL or by reaping). It reports
// whether this is the first: a later one joins the removal under way.
func (r *Reaper) Remove() bool {
	if r.removing {
		return false
	}
	r.removing = true
	return true
}

// TTLExpired is the TTL timer firing: it reports whether to remove the
// workspace now. A TTL expiring while the workspace is already being
// removed changes nothing.
func (r *Reaper) TTLExpired() bool { return !r.removing }

// ShouldReap reports whether the workspace is to be reaped: on_exit: reap,
// not being removed, something ran, and nothing left running or waiting to
// restart. anyAlive is asked only when the rest holds.
func (r *Reaper) ShouldReap(anyAlive func() bool) bool {
	return r.policy == messages.ExitReap && !r.removing && r.ran && !anyAlive()
}

// Resource is a quota figure.
type Resource int

// Resources a quota limits.
const (
	Memory Resource = iota // bytes
	Pids                   // processes
	CPU                    // cores
)

func (r Resource) String() string {
	switch r {
	case Memory:
		return "memory"
	case Pids:
		return "processes"
	case CPU:
		return "cpu"
	}
	return "unknown"
}

// Excess is one figure over its limit.
type Excess struct {
	Resource    Resource
	Used, Limit float64
}

// Usage is a sampled reading of a workspace.
type Usage struct {
	RSSBytes uint64
	Pids     int
	CPUCores float64
}

// QuotaAction is what a sample asks of the caller.
type QuotaAction int

// Quota actions.
const (
	QuotaNone QuotaAction = iota // within limits, or already warned
	QuotaWarn                    // publish a warning (once per excursion)
	QuotaKill                    // kill the workspace's processes (Over[0] is the memory)
)

// QuotaDecision is the outcome of one sample.
type QuotaDecision struct {
	Action QuotaAction
	Over   []Excess
}

// cpuSlack is how far over cpu_max a sample may be before it counts: the
// kernel's CPU quota is enforced per period, a sample is an average.
const cpuSlack = 1.05

// Quota applies quota_enforce to samples: off does nothing; warn warns
// once per excursion over any limit; kill kills when the memory is over
// memory_max_bytes (and warns like warn for the other limits).
type Quota struct {
	mode messages.QuotaEnforce
	soma messages.Soma
	over bool // a warning was given for the current excursion
}

// NewQuota returns the quota of a workspace with that mode and soma.
func NewQuota(mode messages.QuotaEnforce, soma messages.Soma) *Quota {
	return &Quota{mode: mode, soma: soma}
}

// Observe decides on one sample; removing: the workspace is being removed
// (nothing is enforced any more).
func (q *Quota) Observe(u Usage, removing bool) QuotaDecision {
	if q.mode == messages.QuotaOff || removing {
		return QuotaDecision{}
	}
	var over []Excess
	memOver := false
	if lim := q.soma.MemoryMaxBytes; lim > 0 && u.RSSBytes > uint64(lim) {
		memOver = true
		over = append(over, Excess{Resource: Memory, Used: float64(u.RSSBytes), Limit: float64(lim)})
	}
	if lim := q.soma.PidsMax; lim > 0 && u.Pids > int(lim) {
		over = append(over, Excess{Resource: Pids, Used: float64(u.Pids), Limit: float64(lim)})
	}
	if lim := q.soma.CPUMax; lim > 0 && u.CPUCores > lim*cpuSlack {
		over = append(over, Excess{Resource: CPU, Used: u.CPUCores, Limit: lim})
	}
	switch {
	case len(over) == 0:
		q.over = false
		return QuotaDecision{}
	case q.mode == messages.QuotaKill && memOver:
		return QuotaDecision{Action: QuotaKill, Over: over}
	case q.over:
		return QuotaDecision{Over: over}
	}
	q.over = true
	return QuotaDecision{Action: QuotaWarn, Over: over}
}

// Gone is a command or pipeline run that has ended, as retention sees it.
type Gone struct {
	ID string
	At time.Time // when it ended
}

// Retention bounds what a workspace remembers of ended commands and
// pipeline runs: at most Keep of them, none older than For.
type Retention struct {
	Keep int           // <= 0: none kept
	For  time.Duration // <= 0: no age limit
}

// Drop returns the IDs of the ended units to forget at now (the oldest
// beyond Keep, and every one ended more than For ago), and when the next
// of those kept ages out (zero when none will).
func (r Retention) Drop(ended []Gone, now time.Time) (drop []string, next time.Time) {
	if len(ended) == 0 {
		return nil, time.Time{}
	}
	byAge := slices.Clone(ended)
	slices.SortStableFunc(byAge, func(a, b Gone) int { return a.At.Compare(b.At) })
	extra := len(byAge) - max(r.Keep, 0)
	for i, e := range byAge {
		if i < extra || (r.For > 0 && now.Sub(e.At) >= r.For) {
			drop = append(drop, e.ID)
			continue
		}
		if r.For > 0 && next.IsZero() {
			next = e.At.Add(r.For)
		}
	}
	return drop, next
}
