// This file owns the splitter actor: one per producer node of a running
// pipeline. It owns the node's flow.Splitter (the data plane), the token
// bucket that throttles it, the flow counters and their one-second rate
// window, and the node's tap socket.
//
// Receives: *GetFlowStats (answers *FlowStats), *OpenTap (answers
// *TapOpened), and its own internal messages (pump events, credit timers,
// sample ticks). Sends its parent *ConsumerDropped when a consumer goes and
// *SplitterFinished once the source has ended and every write is over.
package actors

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/shipote/shipote/internal/flow"
)

// SplitterConfig configures one splitter actor.
type SplitterConfig struct {
	// Pipeline and Node label the splitter (the node is the producer).
	Pipeline, Node string
	// Source is the producer's stdout read end. The splitter owns it from
	// the moment the actor starts, even when it fails to start.
	Source *os.File
	// Consumers are the consumers' stdin write ends, owned likewise.
	Consumers []flow.Consumer
	// MaxBytesPerSec throttles the output with a token bucket; 0 = none.
	MaxBytesPerSec int64
	// BurstBytes is the bucket's size; 0 = the default described on
	// throttle (exact long-run rate, ≤ ~1.085 × the rate in any 100 ms).
	BurstBytes int64
	// SlowConsumer is "block" (or "", lossless) or "drop".
	SlowConsumer string
	// BufferBytes is the per-consumer buffer; 0 = flow.DefaultBufferBytes.
	BufferBytes int
	// TapSocket, when not empty, is a Unix socket path
	// (<flow_dir>/<pipeline>/<node>.sock) on which every connection gets a
	// tap. Its directory is created 0700, the socket is 0600 and removed
	// when the actor stops.
	TapSocket string
	// Logger receives warnings (tap socket failures); nil = zap.NewNop().
	Logger *zap.Logger
	// Go runs the splitter's blocking work (setting up the tap socket;
	// at stop, waiting for the pump and the tap connections, removing the
	// socket) in a goroutine its owner waits for; nil = a plain goroutine.
	Go func(func())
}

// ErrBadSplitterConfig is wrapped by every error of SplitterConfig.Validate.
var ErrBadSplitterConfig = errors.New("actors: bad splitter config")

// Validate checks the config without touching any file.
func (c SplitterConfig) Validate() error {
	switch {
	case c.Node == "":
		return fmt.Errorf("%w: node label is empty", ErrBadSplitterConfig)
	case c.Source == nil:
		return fmt.Errorf("%w: node %s: source is nil", ErrBadSplitterConfig, c.Node)
	case c.MaxBytesPerSec < 0:
		return fmt.Errorf("%w: node %s: max_bytes_per_sec %d is negative", ErrBadSplitterConfig, c.Node, c.MaxBytesPerSec)
	case c.BurstBytes < 0:
		return fmt.Errorf("%w: node %s: burst_bytes %d is negative", ErrBadSplitterConfig, c.Node, c.BurstBytes)
	case c.BufferBytes < 0:
		return fmt.Errorf("%w: node %s: buffer_bytes %d is negative", ErrBadSplitterConfig, c.Node, c.BufferBytes)
	case c.BurstBytes > 0 && c.MaxBytesPerSec == 0:
		return fmt.Errorf("%w: node %s: burst_bytes set without max_bytes_per_sec", ErrBadSplitterConfig, c.Node)
	}
	if _, err := flow.ParsePolicy(c.SlowConsumer); err != nil {
		return fmt.Errorf("%w: node %s: %w", ErrBadSplitterConfig, c.Node, err)
	}
	return nil
}

// SplitterFinished tells the parent that the splitter's source ended (EOF,
// all consumers gone, or a failure in Err) and every write is over. It is
// not sent when the splitter is stopped first.
type SplitterFinished struct {
	Node string
	Err  error
}

// ConsumerDropped tells the parent that a consumer went away (EPIPE or
// another write error in Err); the others continue.
type ConsumerDropped struct {
	Node, Consumer string
	Err            error
}

// TapSocketFailed tells the parent that the tap socket could not be
// served; the splitter itself keeps running.
type TapSocketFailed struct {
	Node, Path string
	Err        error
}

// GetFlowStats asks a splitter for its counters; the answer is *FlowStats.
type GetFlowStats struct{}

// FlowStats are a splitter's counters.
type FlowStats struct {
	Node        string         `json:"node"`
	BytesIn     uint64         `json:"bytes_in"`
	ThrottledMs uint64         `json:"throttled_ms"`
	Channels    []ChannelStats `json:"channels"`
}

// ChannelStats are the counters of one edge (From → To) or tap (Tap set,
// To = "tap-<n>").
type ChannelStats struct {
	From         string `json:"from"`
	To           string `json:"to"`
	Tap          bool   `json:"tap,omitempty"`
	BytesTotal   uint64 `json:"bytes_total"`
	BytesPerSec  uint64 `json:"bytes_per_sec"`
	DroppedBytes uint64 `json:"dropped_bytes"`
}

// OpenTap asks a splitter for a live copy of its output; the answer is
// *TapOpened. BufBytes 0 means the splitter's buffer size.
type OpenTap struct {
	BufBytes int
}

// TapOpened answers OpenTap. The receiver reads Tap and must Close it.
type TapOpened struct {
	Tap *flow.Tap
	Err error
}

// Internal messages.
type (
	flowEvent  struct{ ev flow.Event }
	creditDue  struct{ n int64 }
	sampleTick struct{}
	// flowCounters carries a running splitter's counters to its parent
	// once a second, so that listings and metrics show live figures.
	flowCounters struct {
		from  *actor.PID
		stats *FlowStats
	}
)

const (
	sampleEvery  = 100 * time.Millisecond
	rateWindow   = time.Second
	maxStepBytes = 64 << 10 // largest step of a throttled pump
)

// NewSplitterProps returns the props of a splitter actor. The config is
// checked when the actor starts: an invalid one closes the files and
// reports *SplitterFinished with the error.
func NewSplitterProps(cfg SplitterConfig) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &splitterActor{cfg: cfg} })
}

type splitterActor struct {
	cfg    SplitterConfig
	log    *zap.Logger
	sys    *actor.ActorSystem
	self   *actor.PID
	parent *actor.PID

	fs       *flow.Splitter
	bucket   *throttle // nil when unthrottled
	rates    rates
	closing  atomic.Bool // set before the data plane is closed: drop late events
	finished bool
	ticks    int // sample ticks so far; every second's counters go to the parent

	creditTimer *time.Timer
	sampleTimer *time.Timer
	taps        *tapSlot // nil without a tap socket
}

// tapSlot hands the tap server, set up in a goroutine, to the actor: the
// server goes in once listening, and is closed at once when the actor
// stopped first.
type tapSlot struct {
	mu     sync.Mutex
	ts     *tapServer
	closed bool
}

// put stores ts, or reports false (and the caller closes ts) once the
// slot is closed.
func (s *tapSlot) put(ts *tapServer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.ts = ts
	return true
}

// take closes the slot and returns the server it holds, if any.
func (s *tapSlot) take() *tapServer {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	ts := s.ts
	s.ts = nil
	return ts
}

// goroutine runs f as the config says.
func (a *splitterActor) goroutine(f func()) {
	if a.cfg.Go != nil {
		a.cfg.Go(f)
		return
	}
	go f()
}

func (a *splitterActor) Receive(ctx actor.Context) {
	testPanic(KindSplitter, ctx.Message())
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.started(ctx)
	case *flowEvent:
		a.onFlowEvent(ctx, m.ev)
	case *creditDue:
		if a.fs != nil {
			a.fs.Grant(m.n)
		}
	case *sampleTick:
		if a.fs != nil {
			now := time.Now()
			a.rates.add(now, a.fs.Counters())
			if a.ticks++; a.ticks%int(time.Second/sampleEvery) == 0 && !a.finished {
				a.tell(ctx, &flowCounters{from: a.self, stats: a.stats(now)})
			}
		}
		a.armSample()
	case *GetFlowStats:
		ctx.Respond(a.stats(time.Now()))
	case *OpenTap:
		ctx.Respond(a.openTap(m.BufBytes))
	case *actor.Stopping:
		a.stop()
	}
}

func (a *splitterActor) started(ctx actor.Context) {
	a.sys, a.self, a.parent = ctx.ActorSystem(), ctx.Self(), ctx.Parent()
	a.log = a.cfg.Logger
	if a.log == nil {
		a.log = zap.NewNop()
	}
	a.log = a.log.With(zap.String("pipeline", a.cfg.Pipeline), zap.String("node", a.cfg.Node))
	if err := a.startFlow(); err != nil {
		a.closeFiles()
		a.finished = true
		a.tell(ctx, &SplitterFinished{Node: a.cfg.Node, Err: err})
		return
	}
	a.rates.add(time.Now(), a.fs.Counters())
	a.armSample()
	if a.cfg.TapSocket != "" {
		// mkdir, listen and chmod run in a goroutine; a failure is told
		// to the parent from there.
		slot := &tapSlot{}
		a.taps = slot
		path, fs, buf, node, log, sys, parent := a.cfg.TapSocket, a.fs, a.cfg.BufferBytes, a.cfg.Node, a.log, a.sys, a.parent
		a.goroutine(func() {
			ts, err := listenTaps(path, fs, buf)
			if err != nil {
				log.Warn("tap socket", zap.String("path", path), zap.Error(err))
				if parent != nil {
					sys.Root.Send(parent, &TapSocketFailed{Node: node, Path: path, Err: err})
				}
				return
			}
			if !slot.put(ts) {
				ts.close()
			}
		})
	}
}

func (a *splitterActor) startFlow() error {
	if err := a.cfg.Validate(); err != nil {
		return err
	}
	policy, _ := flow.ParsePolicy(a.cfg.SlowConsumer)
	fc := flow.Config{Policy: policy, BufferBytes: a.cfg.BufferBytes}
	if a.cfg.MaxBytesPerSec > 0 {
		a.bucket = newThrottle(a.cfg.MaxBytesPerSec, a.cfg.BurstBytes, time.Now())
		fc.Throttled = true
		fc.ChunkBytes = a.bucket.step
	}
	sys, self := a.sys, a.self
	notify := func(ev flow.Event) {
		if !a.closing.Load() {
			sys.Root.Send(self, &flowEvent{ev: ev})
		}
	}
	fs, err := flow.Start(a.cfg.Source, a.cfg.Consumers, fc, notify)
	if err != nil {
		return fmt.Errorf("node %s: %w", a.cfg.Node, err)
	}
	a.fs = fs
	return nil
}

// closeFiles closes the files of a splitter that could not start, from a
// goroutine (a Receive closes no file).
func (a *splitterActor) closeFiles() {
	src, consumers := a.cfg.Source, a.cfg.Consumers
	a.goroutine(func() {
		if src != nil {
			_ = src.Close()
		}
		for _, c := range consumers {
			if c.W != nil {
				_ = c.W.Close()
			}
		}
	})
}

func (a *splitterActor) onFlowEvent(ctx actor.Context, ev flow.Event) {
	switch ev.Kind {
	case flow.EventNeedCredit:
		if a.bucket == nil {
			a.fs.Grant(ev.Want)
			return
		}
		n, delay := a.bucket.reserve(time.Now(), ev.Want)
		if delay <= 0 {
			a.fs.Grant(n)
			return
		}
		sys, self := a.sys, a.self
		a.creditTimer = time.AfterFunc(delay, func() {
			if !a.closing.Load() {
				sys.Root.Send(self, &creditDue{n: n})
			}
		})
	case flow.EventConsumerGone:
		a.tell(ctx, &ConsumerDropped{Node: a.cfg.Node, Consumer: ev.Consumer, Err: ev.Err})
	case flow.EventDone:
		if !a.finished {
			a.finished = true
			a.rates.add(time.Now(), a.fs.Counters())
			a.tell(ctx, &SplitterFinished{Node: a.cfg.Node, Err: ev.Err})
		}
	}
}

// tell sends msg to the parent; a splitter spawned from the root has none.
func (a *splitterActor) tell(ctx actor.Context, msg any) {
	if a.parent != nil {
		ctx.Send(a.parent, msg)
	}
}

func (a *splitterActor) armSample() {
	sys, self := a.sys, a.self
	a.sampleTimer = time.AfterFunc(sampleEvery, func() {
		if !a.closing.Load() {
			sys.Root.Send(self, &sampleTick{})
		}
	})
}

func (a *splitterActor) stats(now time.Time) *FlowStats {
	st := &FlowStats{Node: a.cfg.Node, Channels: []ChannelStats{}}
	if a.fs == nil {
		return st
	}
	c := a.fs.Counters()
	st.BytesIn = c.BytesIn
	st.ThrottledMs = uint64(c.Throttled.Milliseconds())
	for _, list := range [][]flow.ChannelCounters{c.Consumers, c.Taps} {
		for _, ch := range list {
			st.Channels = append(st.Channels, ChannelStats{
				From:         a.cfg.Node,
				To:           ch.Name,
				Tap:          ch.Tap,
				BytesTotal:   ch.BytesTotal,
				BytesPerSec:  a.rates.perSec(now, ch.Name, ch.BytesTotal),
				DroppedBytes: ch.DroppedBytes,
			})
		}
	}
	return st
}

func (a *splitterActor) openTap(bufBytes int) *TapOpened {
	if a.fs == nil {
		return &TapOpened{Err: fmt.Errorf("node %s: %w", a.cfg.Node, flow.ErrClosed)}
	}
	t, err := a.fs.AddTap(bufBytes)
	if err != nil {
		return &TapOpened{Err: fmt.Errorf("node %s: %w", a.cfg.Node, err)}
	}
	return &TapOpened{Tap: t}
}

// stop releases everything: timers, the data plane (which closes every
// file and waits for its pump), and the tap socket with its connections.
func (a *splitterActor) stop() {
	a.closing.Store(true)
	if a.creditTimer != nil {
		a.creditTimer.Stop()
	}
	if a.sampleTimer != nil {
		a.sampleTimer.Stop()
	}
	fs, slot := a.fs, a.taps
	if fs == nil {
		// The data plane never took the files (a failed or interrupted
		// start): they are still ours.
		a.closeFiles()
	}
	if fs == nil && slot == nil {
		return
	}
	// Closing waits for the pump and the tap connections: a goroutine
	// does it.
	a.goroutine(func() {
		if fs != nil {
			fs.Close()
		}
		if slot != nil {
			if ts := slot.take(); ts != nil {
				ts.close()
			}
		}
	})
}

// throttle is the splitter's token bucket: it turns a request for credit
// into a grant now or a grant after a delay. It never sleeps.
//
// With the default burst it is two buckets, both from golang.org/x/time/rate
// and both starting empty: one at the rate with a burst of 250 ms, which
// keeps the long-run rate exact by letting the pump make up for stalls of
// the machine (timer wake-ups here come up to ~20 ms late), and one at
// 1.04 × the rate with a 1.5 ms burst, which bounds every 100 ms window to
// about 1.085 × the rate while it does (counting two late steps landing
// with the next). A burst_bytes set by the user makes
// it one classic bucket of that size.
type throttle struct {
	long, short *rate.Limiter // short is nil with a user burst
	max         int64         // the most one grant may carry
	step        int           // largest bytes asked for at once
}

const (
	throttleStep       = 1500 * time.Microsecond // of the rate, per step (at most maxStepBytes)
	throttleShortBurst = 1500 * time.Microsecond
	throttleLongBurst  = 250 * time.Millisecond
	throttleHeadroom   = 1.04
)

// newThrottle returns the bucket for bytesPerSec with the user's burst (0 =
// the default pair of buckets described on throttle).
func newThrottle(bytesPerSec, burst int64, now time.Time) *throttle {
	of := func(d time.Duration) int64 { return max(1, bytesPerSec*int64(d)/int64(time.Second)) }
	t := &throttle{}
	if burst > 0 {
		t.step = int(min(maxStepBytes, burst))
		t.max = burst
		t.long = rate.NewLimiter(rate.Limit(bytesPerSec), int(burst))
		t.long.ReserveN(now, int(burst))
		return t
	}
	t.step = int(min(maxStepBytes, of(throttleStep)))
	short := max(int64(t.step), of(throttleShortBurst))
	long := max(short, of(throttleLongBurst))
	t.max = short
	t.long = rate.NewLimiter(rate.Limit(bytesPerSec), int(long))
	t.long.ReserveN(now, int(long))
	t.short = rate.NewLimiter(rate.Limit(float64(bytesPerSec)*throttleHeadroom), int(short))
	t.short.ReserveN(now, int(short))
	return t
}

// reserve takes want bytes (at most one grant's worth) and says when they
// may move.
//
// When the pump is behind (both buckets hold tokens) a grant carries all
// the short bucket allows now, up to its burst, so catching up takes fewer
// round trips.
func (t *throttle) reserve(now time.Time, want int64) (int64, time.Duration) {
	n := min(max(want, 1), t.max)
	if t.short != nil {
		ready := int64(min(t.long.TokensAt(now), t.short.TokensAt(now)))
		n = max(n, min(ready, t.max))
	}
	d := t.long.ReserveN(now, int(n)).DelayFrom(now)
	if t.short != nil {
		d = max(d, t.short.ReserveN(now, int(n)).DelayFrom(now))
	}
	return n, d
}

// rates keeps the counters sampled over the last second, for bytes_per_sec.
type rates struct {
	samples []rateSample // oldest first, spanning at most rateWindow
}

type rateSample struct {
	at     time.Time
	totals map[string]uint64
}

func (r *rates) add(now time.Time, c flow.Counters) {
	s := rateSample{at: now, totals: make(map[string]uint64, len(c.Consumers)+len(c.Taps))}
	for _, list := range [][]flow.ChannelCounters{c.Consumers, c.Taps} {
		for _, ch := range list {
			s.totals[ch.Name] = ch.BytesTotal
		}
	}
	r.samples = append(r.samples, s)
	// Keep the newest sample at least rateWindow old, and everything after.
	i := 0
	for i+1 < len(r.samples) && now.Sub(r.samples[i+1].at) >= rateWindow {
		i++
	}
	r.samples = r.samples[i:]
}

// perSec returns the channel's rate from the oldest sample in the window to
// now, when its total is total.
func (r *rates) perSec(now time.Time, name string, total uint64) uint64 {
	if len(r.samples) == 0 {
		return 0
	}
	old := r.samples[0]
	dt := now.Sub(old.at)
	if dt <= 0 {
		return 0
	}
	base, ok := old.totals[name]
	if !ok || base > total {
		base = 0
	}
	return uint64(float64(total-base) / dt.Seconds())
}

// tapServer serves a splitter's taps on a Unix socket: every connection
// gets a tap, written until either side ends.
type tapServer struct {
	path string
	info os.FileInfo // the socket file this server created
	ln   *net.UnixListener
	fs   *flow.Splitter
	buf  int
	wg   sync.WaitGroup

	// mu guards conns.
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func listenTaps(path string, fs *flow.Splitter, bufBytes int) (*tapServer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("tap socket %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("tap socket %s: exists and is not a socket", path)
		}
		_ = os.Remove(path) // stale socket of an earlier run
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("tap socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // removed in close, only if still ours
	info, err := os.Lstat(path)
	if err == nil {
		err = os.Chmod(path, 0o600)
	}
	if err != nil {
		ln.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("tap socket %s: %w", path, err)
	}
	s := &tapServer{path: path, info: info, ln: ln, fs: fs, buf: bufBytes, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *tapServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		t, err := s.fs.AddTap(s.buf)
		if err != nil {
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			t.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(2)
		s.mu.Unlock()
		go func() { // tap → client
			defer s.wg.Done()
			_, _ = io.Copy(c, t)
			s.drop(c)
		}()
		go func() { // client hang-up detaches the tap
			defer s.wg.Done()
			_, _ = io.Copy(io.Discard, c)
			t.Close()
		}()
	}
}

func (s *tapServer) drop(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// close stops accepting, closes every connection, waits for the server's
// goroutines, and removes the socket file if it is still the one it made.
func (s *tapServer) close() {
	s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if fi, err := os.Lstat(s.path); err == nil && os.SameFile(fi, s.info) {
		_ = os.Remove(s.path)
	}
}
