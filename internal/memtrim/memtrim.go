// Package memtrim gives the heap a burst freed back to the kernel once the
// burst is over.
//
// A daemon takes requests in bursts (a thousand creates, an apply, a flood
// of log lines) whose garbage grows the heap. Go's scavenger returns free
// pages slowly and keeps the heap's goal resident, so an idle daemon's RSS
// stays near its peak, which is what top, systemd's MemoryCurrent and a
// container's memory limit see. The Trimmer watches the allocation rate
// and, when a burst that allocated at least Burst bytes has been followed
// by a quiet tick, runs one forced collection that also releases every
// free page (debug.FreeOSMemory). The cost is one GC cycle per burst, paid
// while the daemon has nothing else to do.
//
// An idle daemon should cost nothing, so the Trimmer ticks fast only while
// something may be going on: after a trim, or after a second of quiet
// ticks with no burst pending, it waits IdleTick instead, until that wait
// ends or a Kick (a request came in) wakes it.
package memtrim

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// Defaults of a Trimmer's fields.
const (
	DefaultTick     = 250 * time.Millisecond
	DefaultIdleTick = 5 * time.Second
	DefaultQuiet    = 1 << 20 // bytes allocated in a tick that still count as quiet
	DefaultBurst    = 8 << 20 // bytes allocated since the last trim that make a burst
)

// quietTicksToIdle is how many quiet ticks in a row, with no burst
// pending, send the Trimmer back to its idle wait.
const quietTicksToIdle = 4

// Trimmer decides when to release memory. The zero value uses the
// defaults.
type Trimmer struct {
	// Tick is how often the allocation counter is read while something
	// may be going on.
	Tick time.Duration
	// IdleTick is how long Run waits between readings while idle; a Kick
	// ends the wait early.
	IdleTick time.Duration
	// Quiet is the most a tick may allocate and still be quiet (an idle
	// wait may allocate as much per Tick).
	Quiet uint64
	// Burst is how much must be allocated since the last trim (or the
	// start) before a quiet tick trims.
	Burst uint64
	// Trim releases memory; nil = debug.FreeOSMemory. Tests replace it.
	Trim func()
	// Allocated returns the bytes allocated so far; nil = the runtime's
	// cumulative /gc/heap/allocs:bytes. Tests replace it.
	Allocated func() uint64

	last       uint64 // the counter at the last tick
	sinceTrim  uint64 // the counter at the last trim
	started    bool
	quietTicks int // quiet ticks in a row with no burst pending

	// idle is set while Run is in its idle wait; Run makes kicks before
	// it first sets idle, so a Kick that sees idle sees kicks.
	idle  atomic.Bool
	kicks chan struct{}
}

// Kick tells the Trimmer that work has come in: an idle wait ends, so
// the burst it may start is trimmed as soon as it is over. It costs one
// atomic load unless the Trimmer is idle, and never blocks.
func (t *Trimmer) Kick() {
	if !t.idle.Load() {
		return
	}
	select {
	case t.kicks <- struct{}{}:
	default:
	}
}

// Step reads the counter once and trims when a burst has ended; it
// reports whether it trimmed. Run calls it every Tick while not idle.
func (t *Trimmer) Step() bool {
	now := t.allocated()
	if !t.started {
		t.started = true
		t.last, t.sinceTrim = now, now
		return false
	}
	tick := now - t.last
	t.last = now
	if tick > t.quiet() {
		t.quietTicks = 0
		return false
	}
	if now-t.sinceTrim < t.burst() {
		t.quietTicks++
		return false
	}
	if t.Trim != nil {
		t.Trim()
	} else {
		debug.FreeOSMemory()
	}
	// The collection allocates a little; count from after it.
	t.last = t.allocated()
	t.sinceTrim = t.last
	t.quietTicks = 0
	return true
}

// settled reports whether the Trimmer may wait idle: it has just
// trimmed, or its last quietTicksToIdle ticks were quiet with no burst
// pending.
func (t *Trimmer) settled(trimmed bool) bool {
	return trimmed || t.quietTicks >= quietTicksToIdle
}

// wake reads the counter at the end of an idle wait of ticks Ticks (a
// kick's wait counts as busy) and reports whether to tick fast again:
// the wait allocated more than a quiet rate, or a burst is pending.
func (t *Trimmer) wake(ticks uint64, kicked bool) bool {
	now := t.allocated()
	d := now - t.last
	t.last = now
	t.quietTicks = 0
	return kicked || d > t.quiet()*max(ticks, 1) || now-t.sinceTrim >= t.burst()
}

// Run calls Step every Tick, or waits IdleTick (or for a Kick) while
// idle, until ctx ends. One Run at a time per Trimmer.
func (t *Trimmer) Run(ctx context.Context) {
	tick, idleTick := t.Tick, t.IdleTick
	if tick <= 0 {
		tick = DefaultTick
	}
	if idleTick <= 0 {
		idleTick = DefaultIdleTick
	}
	idleTicks := uint64(max(idleTick/tick, 1))
	kicks := make(chan struct{}, 1)
	t.kicks = kicks
	timer := time.NewTimer(tick)
	defer timer.Stop()
	defer t.idle.Store(false)
	t.Step()
	idle := false
	for {
		kicked := false
		select {
		case <-ctx.Done():
			return
		case <-kicks:
			if !idle {
				continue // a stale kick: already ticking fast
			}
			kicked = true
			timer.Stop()
		case <-timer.C:
		}
		if idle {
			idle = !t.wake(idleTicks, kicked)
		} else {
			idle = t.settled(t.Step())
		}
		// A Kick sends only while idle is set; one that crossed a
		// timer's end is left in the channel and only costs a fast
		// second.
		t.idle.Store(idle)
		if idle {
			timer.Reset(idleTick)
		} else {
			timer.Reset(tick)
		}
	}
}

func (t *Trimmer) quiet() uint64 {
	if t.Quiet > 0 {
		return t.Quiet
	}
	return DefaultQuiet
}

func (t *Trimmer) burst() uint64 {
	if t.Burst > 0 {
		return t.Burst
	}
	return DefaultBurst
}

var allocsSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

func (t *Trimmer) allocated() uint64 {
	if t.Allocated != nil {
		return t.Allocated()
	}
	s := []metrics.Sample{allocsSample[0]}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
