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
package memtrim

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Defaults of a Trimmer's fields.
const (
	DefaultTick  = 250 * time.Millisecond
	DefaultQuiet = 1 << 20 // bytes allocated in a tick that still count as quiet
	DefaultBurst = 8 << 20 // bytes allocated since the last trim that make a burst
)

// Trimmer decides when to release memory. The zero value uses the
// defaults.
type Trimmer struct {
	// Tick is how often the allocation counter is read.
	Tick time.Duration
	// Quiet is the most a tick may allocate and still be quiet.
	Quiet uint64
	// Burst is how much must be allocated since the last trim (or the
	// start) before a quiet tick trims.
	Burst uint64
	// Trim releases memory; nil = debug.FreeOSMemory. Tests replace it.
	Trim func()
	// Allocated returns the bytes allocated so far; nil = the runtime's
	// cumulative /gc/heap/allocs:bytes. Tests replace it.
	Allocated func() uint64

	last      uint64 // the counter at the last tick
	sinceTrim uint64 // the counter at the last trim
	started   bool
}

// Step reads the counter once and trims when a burst has ended; it
// reports whether it trimmed. Run calls it every Tick.
func (t *Trimmer) Step() bool {
	now := t.allocated()
	if !t.started {
		t.started = true
		t.last, t.sinceTrim = now, now
		return false
	}
	tick := now - t.last
	t.last = now
	if tick > t.quiet() || now-t.sinceTrim < t.burst() {
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
	return true
}

// Run calls Step every Tick until ctx ends.
func (t *Trimmer) Run(ctx context.Context) {
	tick := t.Tick
	if tick <= 0 {
		tick = DefaultTick
	}
	tk := time.NewTicker(tick)
	defer tk.Stop()
	t.Step()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			t.Step()
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
