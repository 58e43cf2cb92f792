package memtrim

import (
	"context"
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
