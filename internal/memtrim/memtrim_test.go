package memtrim

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestStep(t *testing.T) {
	const MiB = 1 << 20
	type tick struct {
		alloc uint64 // bytes allocated during the tick
		trims bool
	}
	for _, tc := range []struct {
		name  string
		ticks []tick
	}{
		{"idle never trims", []tick{{0, false}, {0, false}, {100, false}}},
		{"a small burst does not trim", []tick{{4 * MiB, false}, {0, false}, {0, false}}},
		{"a burst trims at the first quiet tick", []tick{{6 * MiB, false}, {6 * MiB, false}, {0, true}, {0, false}}},
		{"busy ticks wait", []tick{{20 * MiB, false}, {2 * MiB, false}, {3 * MiB, false}, {512 << 10, true}}},
		{"bursts add up across quiet ticks", []tick{{5 * MiB, false}, {0, false}, {5 * MiB, false}, {0, true}}},
		{"once per burst", []tick{{9 * MiB, false}, {0, true}, {0, false}, {0, false}, {9 * MiB, false}, {0, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var counter uint64
			trims := 0
			tr := &Trimmer{Allocated: func() uint64 { return counter }, Trim: func() { trims++ }}
			tr.Step() // the first reading
			for i, tk := range tc.ticks {
				counter += tk.alloc
				before := trims
				if got := tr.Step(); got != tk.trims || (trims > before) != tk.trims {
					t.Fatalf("tick %d (+%d bytes): trimmed %v, want %v", i, tk.alloc, got, tk.trims)
				}
			}
		})
	}
}

func TestIdleWaits(t *testing.T) {
	const MiB = 1 << 20
	type step struct {
		alloc    uint64 // bytes allocated before the step
		idle     bool   // the step is the end of an idle wait of 20 ticks
		kicked   bool   // ... ended by a Kick
		wantIdle bool   // Run waits idle after the step
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"a quiet second settles", []step{{0, false, false, false}, {0, false, false, false}, {0, false, false, false}, {0, false, false, true}}},
		{"a busy tick starts the count again", []step{{0, false, false, false}, {0, false, false, false}, {2 * MiB, false, false, false},
			{0, false, false, false}, {0, false, false, false}, {0, false, false, false}, {0, false, false, true}}},
		{"a pending burst keeps ticking until its trim", []step{{6 * MiB, false, false, false}, {3 * MiB, false, false, false},
			{0, false, false, true}}},
		{"an idle wait with little allocated stays idle", []step{{0, true, false, true}, {5 * MiB, true, false, true}}},
		{"a kick wakes", []step{{0, true, true, false}}},
		{"an idle wait that allocated fast wakes", []step{{30 * MiB, true, false, false}}},
		{"a burst pending after an idle wait wakes", []step{{5 * MiB, true, false, true}, {5 * MiB, true, false, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var counter uint64
			tr := &Trimmer{Allocated: func() uint64 { return counter }, Trim: func() {}}
			tr.Step()
			for i, st := range tc.steps {
				counter += st.alloc
				var idle bool
				if st.idle {
					idle = !tr.wake(20, st.kicked)
				} else {
					idle = tr.settled(tr.Step())
				}
				if idle != st.wantIdle {
					t.Fatalf("step %d (+%d bytes, idle wait %v, kicked %v): idle %v, want %v", i, st.alloc, st.idle, st.kicked, idle, st.wantIdle)
				}
			}
		})
	}
}

func TestKickEndsTheIdleWait(t *testing.T) {
	defer goleak.VerifyNone(t)
	var counter atomic.Uint64
	trimmed := make(chan struct{}, 1)
	// The idle wait is an hour: only a Kick can make this trim happen.
	tr := &Trimmer{Tick: time.Millisecond, IdleTick: time.Hour, Allocated: counter.Load,
		Trim: func() { trimmed <- struct{}{} }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(30 * time.Second)
	for !tr.idle.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the Trimmer never went idle")
		}
		time.Sleep(time.Millisecond)
	}
	counter.Add(16 << 20) // a burst, then nothing
	tr.Kick()
	select {
	case <-trimmed:
	case <-time.After(30 * time.Second):
		t.Fatal("no trim after a burst and a Kick")
	}
}

func TestRunStopsWithItsContext(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	steps := 0
	tr := &Trimmer{Tick: time.Millisecond, Allocated: func() uint64 { steps++; return 0 }}
	go func() { tr.Run(ctx); close(done) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	<-done
	if steps == 0 {
		t.Fatal("Run never read the counter")
	}
}

// garbage keeps the allocations of TestRealTrimReleasesMemory from being
// optimized away.
var garbage []byte

func TestRealTrimReleasesMemory(t *testing.T) {
	// The runtime's own counter and debug.FreeOSMemory: a burst of
	// garbage is followed by a trim.
	tr := &Trimmer{}
	tr.Step()
	for range 64 {
		garbage = make([]byte, 256<<10)
	}
	garbage = nil
	if tr.Step() {
		t.Fatal("trimmed during the burst")
	}
	if !tr.Step() {
		t.Fatal("no trim at the quiet tick after a 16 MiB burst")
	}
}
