package actors

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/shipote/shipote/internal/limits"
	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/internal/procstats"
)

// usageGroup is a limits group whose usage is always 1 MiB and one
// process, without a kernel.
type usageGroup struct{}

func (usageGroup) Placement() proc.Placement { return proc.Placement{} }
func (usageGroup) Rlimits() []proc.Rlimit    { return nil }
func (usageGroup) Procs() ([]int, error)     { return nil, nil }
func (usageGroup) Usage() (limits.Usage, bool, error) {
	return limits.Usage{MemoryBytes: 1 << 20, Pids: 1}, true, nil
}
func (usageGroup) Kill(syscall.Signal) error    { return nil }
func (usageGroup) Remove(context.Context) error { return nil }
func (usageGroup) Source() string               { return "test" }

// flowProbe stands for a workspace: it counts its readings and, unless
// mute, acknowledges each (at once when open, else on release).
type flowProbe struct {
	f       *flowCounts
	sampler *actor.PID
	mute    bool
	got     atomic.Int64
	pid     *actor.PID
	stop    func()
}

type flowCounts struct {
	outstanding, maxOutstanding atomic.Int64
	mu                          sync.Mutex
	open                        bool // acknowledge at once
	held                        []func()
}

func (p *flowProbe) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*Reading); !ok {
		return
	}
	p.got.Add(1)
	if p.mute {
		return
	}
	n := p.f.outstanding.Add(1)
	for {
		m := p.f.maxOutstanding.Load()
		if n <= m || p.f.maxOutstanding.CompareAndSwap(m, n) {
			break
		}
	}
	sys := ctx.ActorSystem()
	ack := func() {
		p.f.outstanding.Add(-1)
		sys.Root.Send(p.sampler, &readingDone{})
	}
	p.f.mu.Lock()
	if !p.f.open {
		p.f.held = append(p.f.held, ack)
		ack = nil
	}
	p.f.mu.Unlock()
	if ack != nil {
		ack()
	}
}

// release opens the gate and acknowledges every reading held so far.
func (f *flowCounts) release() {
	f.mu.Lock()
	f.open = true
	held := f.held
	f.held = nil
	f.mu.Unlock()
	for _, ack := range held {
		ack()
	}
}

// flowHarness runs a sampler over n probes (the first mute of them never
// acknowledging) on groups that need no kernel.
type flowHarness struct {
	sys    *actor.ActorSystem
	f      *flowCounts
	probes []*flowProbe
	passes atomic.Int64
	spid   *actor.PID
}

func startFlowHarness(t *testing.T, n, mute int, open bool, stall time.Duration) *flowHarness {
	t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	h := &flowHarness{sys: sys, f: &flowCounts{open: open}}
	rt := &Runtime{System: sys, Log: zap.NewNop(), StatsChanged: func() { h.passes.Add(1) }}
	reader, err := procstats.NewReader("")
	if err != nil {
		t.Fatal(err)
	}
	spid := sys.Root.Spawn(NewSamplerProps(SamplerConfig{Runtime: rt, Interval: 10 * time.Millisecond, Reader: reader, stall: stall}))
	h.spid = spid
	t.Cleanup(func() {
		sys.Root.Send(spid, &samplerHalt{})
		if err := sys.Root.StopFuture(spid).Wait(); err != nil {
			t.Errorf("stop sampler: %v", err)
		}
		h.f.release()
		for _, p := range h.probes {
			p.stop()
		}
		rt.wg.Wait()
	})
	for i := range n {
		p := &flowProbe{f: h.f, sampler: spid, mute: i < mute}
		p.pid = sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return p }))
		p.stop = func() { _ = sys.Root.StopFuture(p.pid).Wait() }
		h.probes = append(h.probes, p)
		sys.Root.Send(spid, &samplerRoots{id: fmt.Sprint("ws-", i), pid: p.pid, group: usageGroup{}, roots: []int{1}})
	}
	return h
}

// received counts the readings every probe has had.
func (h *flowHarness) received() int64 {
	var n int64
	for _, p := range h.probes {
		n += p.got.Load()
	}
	return n
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A pass over many workspaces keeps at most readingWindow readings
// unacknowledged, and every workspace gets its reading once they come.
func TestSamplerKeepsReadingsWithinTheWindow(t *testing.T) {
	h := startFlowHarness(t, 4*readingWindow+7, 0, false, time.Hour)
	eventually(t, "a full window of readings", func() bool { return h.received() >= readingWindow })
	// Nothing is acknowledged: however long it waits, no more go out.
	time.Sleep(100 * time.Millisecond)
	if got := h.received(); got != readingWindow {
		t.Fatalf("%d readings went out with none acknowledged, want %d", got, readingWindow)
	}
	if h.passes.Load() != 0 {
		t.Fatal("the pass ended with readings not sent")
	}
	h.f.release()
	eventually(t, "a reading for every workspace and the pass's end", func() bool {
		for _, p := range h.probes {
			if p.got.Load() == 0 {
				return false
			}
		}
		return h.passes.Load() > 0
	})
	if m := h.f.maxOutstanding.Load(); m > readingWindow {
		t.Errorf("%d readings were unacknowledged at once, want at most %d", m, readingWindow)
	}
}

// Readings that are never acknowledged (their workspace stopped) hold the
// window only until the stall check: the others still get theirs, pass
// after pass.
func TestSamplerGoesOnPastLostReadings(t *testing.T) {
	h := startFlowHarness(t, 3*readingWindow, 2*readingWindow, true, 20*time.Millisecond)
	eventually(t, "two readings for every workspace", func() bool {
		for _, p := range h.probes {
			if p.got.Load() < 2 {
				return false
			}
		}
		return h.passes.Load() >= 2
	})
}

// A workspace that took its own reading (nothing has run in it, no
// cgroup) is not read by the passes, and the engine still hears once that
// samples were taken. One that did not count itself is read as before,
// and so is a counted one once its roots change.
func TestSamplerSkipsWorkspacesThatCountedThemselves(t *testing.T) {
	h := startFlowHarness(t, 0, 0, true, time.Hour)
	spid := h.spid
	probe := func(id string, counted bool) *flowProbe {
		p := &flowProbe{f: h.f, sampler: spid}
		p.pid = h.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return p }))
		p.stop = func() { _ = h.sys.Root.StopFuture(p.pid).Wait() }
		h.probes = append(h.probes, p)
		h.sys.Root.Send(spid, &samplerRoots{id: id, pid: p.pid, counted: counted})
		return p
	}
	var counted []*flowProbe
	for i := range 3 * readingWindow {
		counted = append(counted, probe(fmt.Sprint("counted-", i), true))
	}
	// Their samples are news to the engine: one tick says so.
	eventually(t, "StatsChanged for the workspaces that counted themselves", func() bool { return h.passes.Load() > 0 })
	read := probe("read", false)
	eventually(t, "a reading of the workspace that did not count itself", func() bool { return read.got.Load() > 0 })
	for i, p := range counted {
		if n := p.got.Load(); n != 0 {
			t.Fatalf("counted-%d got %d readings", i, n)
		}
	}
	// A process starts in one: it is read again.
	h.sys.Root.Send(spid, &samplerRoots{id: "counted-0", pid: counted[0].pid, group: usageGroup{}, roots: []int{1}})
	eventually(t, "a reading once its roots changed", func() bool { return counted[0].got.Load() > 0 })
	if n := counted[1].got.Load(); n != 0 {
		t.Fatalf("counted-1 got %d readings", n)
	}
}
