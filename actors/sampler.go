// This file is the sampler actor: once per interval it reads the kernel's
// accounting for every workspace in one pass — the workspace's cgroup
// where it has one, else one scan of /proc whose process trees are summed
// per workspace — and sends each workspace its reading. Workspaces tell it
// their root processes (samplerRoots) and when they go (samplerForget).
// The reading itself runs in a goroutine it owns; a tick that comes while
// the previous pass is still running is skipped. A workspace found idle
// (no root process, nothing counted in its cgroup or process tree) is not
// read again until its roots change: nothing can start in it without the
// workspace telling the sampler, and its last reading stays true. A
// workspace where nothing has run yet, with no cgroup, takes its one
// reading itself (nothing counted) and tells the sampler so: a restore or
// a burst of creates makes no pass and no message per workspace.
// Readings go out under flow control: at most readingWindow of them are
// unanswered at a time, and each workspace acknowledges its reading. A
// pass over 10,000 workspaces would otherwise make 10,000 mailboxes
// runnable at once (about 35 µs of work each), and any other actor's next
// message (a create on the engine, say) could wait behind all of them for
// a third of a second.

package actors

import (
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/bytesize"
	"github.com/shipote/shipote/internal/limits"
	"github.com/shipote/shipote/internal/procstats"
	"github.com/shipote/shipote/internal/supervise"
	"github.com/shipote/shipote/messages"
)

// SamplerConfig configures the sampler actor.
type SamplerConfig struct {
	Runtime  *Runtime
	Interval time.Duration
	// Reader reads /proc; nil = procstats.NewReader("").
	Reader *procstats.Reader
	// stall replaces readingStall (tests).
	stall time.Duration
}

// Messages between workspaces and the sampler.
type (
	// samplerRoots registers or updates a workspace's root processes.
	samplerRoots struct {
		id    string
		pid   *actor.PID
		group limits.Group
		roots []int
		// counted: the workspace took its reading itself (nothing has
		// run in it and it has no cgroup, so nothing can be counted);
		// the sampler need not read it until its roots change.
		counted bool
	}
	samplerForget struct{ id string }
	// samplerHalt ends the sampling for good: the engine is stopping
	// every workspace.
	samplerHalt struct{}
	// samplerReader hands the sampler its /proc reader, opened in a
	// goroutine.
	samplerReader struct{ r *procstats.Reader }
	samplerTick   struct{}
	// readingDone acknowledges a Reading: the workspace has taken it in.
	readingDone struct{}
	// samplerStalled checks that acknowledgements still come (a reading
	// sent to a workspace that stopped is never acknowledged). seq tells
	// the check armed last from one whose timer was stopped too late.
	samplerStalled struct{ seq uint64 }
	samplerDone    struct {
		readings []delivery
		// known holds the descendants seen per workspace read on
		// procfs (none for a workspace with no process).
		known []knownUpdate
		// idle holds the workspaces this pass found idle, with the
		// generation of the roots it read them with.
		idle []idleMark
		took time.Duration
	}
	knownUpdate struct {
		id    string
		known procstats.Known
	}
	idleMark struct {
		id  string
		gen uint64
	}
	// Reading is one kernel reading for a workspace, sent by the sampler.
	Reading struct {
		At      time.Time
		RSS     uint64
		RSSPeak uint64 // 0 when the source keeps no peak
		CPUUsec uint64
		Pids    int
		Source  string
		Err     error
	}
	reading = Reading
)

type sampled struct {
	pid   *actor.PID
	group limits.Group
	roots []int
	known procstats.Known
	// gen counts the roots updates: a pass's idle verdict holds only
	// if no update came while it read.
	gen uint64
	// idle: the last reading, taken with these roots (none), counted no
	// process. Passes skip the workspace until its roots change.
	idle bool
}

type sampler struct {
	cfg    SamplerConfig
	rt     *Runtime
	self   *actor.PID
	ws     map[string]*sampled
	busy   bool
	halted bool
	// halt tells a pass under way to stop reading (samplerHalt).
	halt   atomic.Bool
	cancel func()
	reader *procstats.Reader
	// pending holds the readings of the last pass not sent yet; the
	// sampler stays busy until it is empty. inflight counts the readings
	// sent and not acknowledged; acked notes an acknowledgement since the
	// stall check was armed.
	pending     []delivery
	sent        int
	inflight    int
	acked       bool
	cancelStall func()
	stallSeq    uint64
	// countedSince notes a workspace that took its own reading since
	// the last StatsChanged: the next tick says so once for all.
	countedSince bool
}

// delivery is one reading on its way to its workspace.
type delivery struct {
	id string
	r  reading
}

// readingWindow is how many readings may be unacknowledged at a time: a
// few milliseconds of work on two cores. readingStall is how long the
// sampler waits for an acknowledgement before it counts the readings in
// flight as lost.
const (
	readingWindow = 64
	readingStall  = 20 * time.Millisecond
)

// NewSamplerProps returns the props of the sampler actor.
func NewSamplerProps(cfg SamplerConfig) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &sampler{cfg: cfg, rt: cfg.Runtime, ws: make(map[string]*sampled), reader: cfg.Reader}
	}, cfg.Runtime.mailbox(KindSampler))
}

func (s *sampler) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.self = ctx.Self()
		if s.reader == nil {
			// Opening /proc touches the disk: a goroutine does it, and
			// passes wait for the reader.
			rt, self := s.rt, s.self
			rt.Go(func() {
				r, err := procstats.NewReader("")
				if err != nil {
					rt.Log.Error("stats sampling disabled: cannot read /proc", zap.Error(err))
					return
				}
				rt.send(self, &samplerReader{r: r})
			})
		}
		s.arm()
	case *samplerReader:
		s.reader = m.r
	case *actor.Stopping:
		if s.cancel != nil {
			s.cancel()
		}
		s.stopStallCheck()
	case *samplerRoots:
		w := s.ws[m.id]
		if w == nil {
			w = &sampled{}
			s.ws[m.id] = w
		}
		w.pid, w.group, w.roots = m.pid, m.group, m.roots
		// Something started or ended: the next pass reads it again,
		// unless the workspace counted itself (and no descendant of an
		// earlier process is known, which would need reading).
		w.gen++
		w.idle = m.counted && len(w.known) == 0
		s.countedSince = s.countedSince || m.counted
	case *samplerForget:
		delete(s.ws, m.id)
	case *samplerHalt:
		s.halted = true
		s.halt.Store(true)
		if s.cancel != nil {
			s.cancel()
		}
		s.stopStallCheck()
		s.pending = nil
	case *samplerTick:
		if s.halted {
			return
		}
		s.arm()
		if !s.busy && s.reader != nil {
			s.pass()
		}
		if !s.busy && s.countedSince {
			s.statsChanged()
		}
	case *samplerDone:
		for _, k := range m.known {
			if w := s.ws[k.id]; w != nil {
				w.known = k.known
			}
		}
		for _, i := range m.idle {
			if w := s.ws[i.id]; w != nil && w.gen == i.gen {
				w.idle = true
			}
		}
		s.pending, s.sent = m.readings, 0
		s.deliver(ctx)
	case *readingDone:
		s.inflight = max(s.inflight-1, 0)
		s.acked = true
		if s.inflight <= readingWindow/2 {
			s.deliver(ctx)
		}
	case *samplerStalled:
		if m.seq != s.stallSeq {
			return // stopped or replaced after its timer fired
		}
		s.cancelStall = nil
		if !s.acked {
			// Nothing came back for readingStall: the readings in
			// flight went to workspaces that stopped.
			s.inflight = 0
		}
		s.deliver(ctx)
	}
}

// deliver sends pending readings while fewer than readingWindow are
// unacknowledged; the acknowledgements bring it back. When none is left
// to send, the pass is over.
func (s *sampler) deliver(ctx actor.Context) {
	if s.halted || !s.busy {
		return
	}
	for len(s.pending) > 0 && s.inflight < readingWindow {
		d := s.pending[0]
		s.pending[0] = delivery{}
		s.pending = s.pending[1:]
		// A workspace forgotten since the pass read it gets nothing.
		if w := s.ws[d.id]; w != nil {
			ctx.Send(w.pid, &d.r)
			s.inflight++
			s.sent++
		}
	}
	if len(s.pending) > 0 {
		if s.cancelStall == nil {
			s.acked = false
			stall := s.cfg.stall
			if stall <= 0 {
				stall = readingStall
			}
			s.stallSeq++
			s.cancelStall = s.rt.after(stall, s.self, &samplerStalled{seq: s.stallSeq})
		}
		return
	}
	s.pending = nil
	s.busy = false
	s.stopStallCheck()
	if s.sent > 0 || s.countedSince {
		s.statsChanged()
	}
}

// statsChanged tells the engine that samples were taken: by the pass just
// over, or by workspaces that counted themselves since the last one.
func (s *sampler) statsChanged() {
	s.countedSince = false
	if s.rt.StatsChanged != nil {
		s.rt.StatsChanged()
	}
}

// stopStallCheck stops the stall check; a samplerStalled already on its
// way is told by its seq.
func (s *sampler) stopStallCheck() {
	if s.cancelStall != nil {
		s.cancelStall()
		s.cancelStall = nil
		s.stallSeq++
	}
}

func (s *sampler) arm() {
	s.cancel = s.rt.after(s.cfg.Interval, s.self, &samplerTick{})
}

// pass copies what it needs and reads the kernel in a goroutine. Idle
// workspaces are left out; with none to read, nothing starts.
func (s *sampler) pass() {
	type job struct {
		id    string
		group limits.Group
		roots []int
		known procstats.Known
		gen   uint64
	}
	var jobs []job
	for id, w := range s.ws {
		if !w.idle {
			if jobs == nil {
				jobs = make([]job, 0, len(s.ws))
			}
			jobs = append(jobs, job{id: id, group: w.group, roots: slices.Clone(w.roots), known: w.known, gen: w.gen})
		}
	}
	if len(jobs) == 0 {
		return
	}
	s.busy = true
	reader, rt, self, halt := s.reader, s.rt, s.self, &s.halt
	rt.Go(func() {
		start := time.Now()
		out := &samplerDone{readings: make([]delivery, 0, len(jobs))}
		// add keeps a reading, and notes a workspace with no root whose
		// reading counted no process: nothing runs in it until it says
		// otherwise.
		add := func(j job, r reading) {
			out.readings = append(out.readings, delivery{id: j.id, r: r})
			if len(j.roots) == 0 && r.Err == nil && r.Pids == 0 {
				out.idle = append(out.idle, idleMark{id: j.id, gen: j.gen})
			}
		}
		var table *procstats.Table
		var scanErr error
		now := rt.now()
		for i, j := range jobs {
			if halt.Load() {
				// The workspaces are stopping: reading their cgroups
				// now would only slow their removal.
				break
			}
			if i%256 == 255 {
				// Thousands of workspaces take tens of milliseconds:
				// let the actors' goroutines run in between.
				runtime.Gosched()
			}
			if j.group != nil {
				if u, ok, err := j.group.Usage(); ok || err != nil {
					add(j, reading{At: now, RSS: u.MemoryBytes, RSSPeak: u.MemoryPeakBytes, CPUUsec: u.CPUUsec,
						Pids: int(u.Pids), Source: j.group.Source(), Err: err})
					continue
				}
			}
			if len(j.roots) == 0 && len(j.known) == 0 {
				// No process to look for: no scan, no tree.
				add(j, reading{At: now, Source: "procfs"})
				continue
			}
			if table == nil && scanErr == nil {
				table, scanErr = reader.Scan()
			}
			if scanErr != nil {
				add(j, reading{At: now, Source: "procfs", Err: scanErr})
				continue
			}
			ts, known := table.Tree(j.roots, j.known)
			out.known = append(out.known, knownUpdate{id: j.id, known: known})
			add(j, reading{At: now, RSS: ts.RSSBytes, CPUUsec: ts.CPUUsec, Pids: len(ts.Pids), Source: "procfs"})
		}
		out.took = time.Since(start)
		rt.send(self, out)
	})
}

// onReading turns a kernel reading into a sample, keeps the history and
// enforces the quota.
func (w *workspace) onReading(m *Reading) {
	w.readSinceRoots = true
	if m.Err != nil {
		w.logger().Debug("stats reading failed", zap.Error(m.Err))
		return
	}
	s := messages.Sample{
		TimestampMs: m.At.UnixMilli(),
		RSSBytes:    m.RSS,
		CPUUsec:     m.CPUUsec,
		UptimeMs:    m.At.Sub(w.created).Milliseconds(),
		Source:      m.Source,
	}
	info := w.info()
	s.CommandsAlive, s.CommandsTotal = info.CommandsAlive, info.CommandsTotal
	s.RSSPeakBytes = max(m.RSSPeak, m.RSS)
	if n := len(w.history); n > 0 {
		prev := w.history[n-1]
		s.RSSPeakBytes = max(s.RSSPeakBytes, prev.RSSPeakBytes)
		if dt := s.TimestampMs - prev.TimestampMs; dt > 0 && s.CPUUsec >= prev.CPUUsec && prev.Source == s.Source {
			s.CPUPercent = float64(s.CPUUsec-prev.CPUUsec) / float64(dt*1000) * 100
		}
	}
	s.CPUCores = s.CPUPercent / 100
	w.history = append(w.history, s)
	if len(w.history) > HistorySize {
		w.history = append(w.history[:0], w.history[len(w.history)-HistorySize:]...)
	}
	w.enforceQuota(s, m.Pids)
}

// enforceQuota applies quota_enforce to a sample (supervise.Quota decides:
// warn once per excursion, or kill the workspace's processes when memory
// is over the limit).
func (w *workspace) enforceQuota(s messages.Sample, pids int) {
	d := w.quota.Observe(supervise.Usage{RSSBytes: s.RSSBytes, Pids: pids, CPUCores: s.CPUCores}, w.removing != nil)
	over := make([]string, 0, len(d.Over))
	for _, e := range d.Over {
		over = append(over, describeExcess(e))
	}
	switch d.Action {
	case supervise.QuotaKill:
		msg := "killed: " + over[0]
		w.logger().Warn("quota exceeded; killing the workspace's processes", zap.Strings("over", over))
		w.rt.publish(messages.Event{Kind: messages.EventQuota, Workspace: w.id, Label: w.spec.Label, Message: msg})
		w.killAllForQuota(msg)
	case supervise.QuotaWarn:
		w.logger().Warn("quota exceeded", zap.Strings("over", over))
		w.rt.publish(messages.Event{Kind: messages.EventQuota, Workspace: w.id, Label: w.spec.Label, Message: joinComma(over)})
	}
}

// describeExcess says which figure is over which limit.
func describeExcess(e supervise.Excess) string {
	switch e.Resource {
	case supervise.Memory:
		return "memory " + bytesize.IEC(uint64(e.Used)) + " > memory_max_bytes " + bytesize.IEC(uint64(e.Limit))
	case supervise.Pids:
		return "processes " + itoa(int(e.Used)) + " > pids_max " + itoa(int(e.Limit))
	}
	return "cpu " + ftoa(e.Used) + " cores > cpu_max " + ftoa(e.Limit)
}

// killAllForQuota SIGKILLs every process of the workspace and notes why on
// each running command; supervision may restart them.
func (w *workspace) killAllForQuota(msg string) {
	for _, c := range w.cmds {
		if c.proc != nil && c.sup.QuotaKill() {
			c.info.Error = msg
		}
	}
	if group, log := w.group, w.logger(); group != nil {
		// Killing a cgroup repeats until it is empty (seconds at worst):
		// a goroutine does it while the workspace keeps answering.
		w.rt.Go(func() {
			if err := group.Kill(unix.SIGKILL); err != nil {
				log.Warn("quota kill", zap.Error(err))
			}
		})
	}
	groups := slices.Collect(maps.Keys(w.pgids))
	for _, r := range w.pipes {
		for _, n := range r.info.Nodes {
			if n.Pid > 0 {
				groups = append(groups, n.Pid)
			}
		}
	}
	w.rt.killGroups(groups...)
}

// roots lists the live processes of the workspace: commands and pipeline
// nodes (each the leader of its process group).
func (w *workspace) roots() []int {
	out := make([]int, 0, len(w.live))
	for pid := range w.live {
		out = append(out, pid)
	}
	for _, r := range w.pipes {
		for _, n := range r.info.Nodes {
			if n.Pid > 0 {
				out = append(out, n.Pid)
			}
		}
	}
	return out
}

// rootsDelay batches the updates of a workspace's roots to the sampler:
// a burst of starts and exits costs one message.
const rootsDelay = 50 * time.Millisecond

// flushRoots sends the batched roots update.
type flushRoots struct{}

// tellSampler schedules sending the sampler the current roots. The first
// one goes at once (a new workspace is sampled from the next tick, or
// counts itself at once when nothing can have run in it: sendRoots).
func (w *workspace) tellSampler(ctx actor.Context) {
	if w.rt.Sampler == nil || w.removing != nil || w.rootsPending {
		return
	}
	if !w.rootsSent {
		w.sendRoots(ctx)
		return
	}
	w.resample()
}

// resample asks the sampler for a fresh reading of this workspace (its
// roots again, batched like any update): something changed that the
// sampler cannot see, such as a command removed from an idle workspace.
func (w *workspace) resample() {
	if w.rt.Sampler == nil || w.removing != nil || w.rootsPending || !w.rootsSent {
		return
	}
	w.rootsPending = true
	w.cancelRoots = w.rt.after(rootsDelay, w.self, &flushRoots{})
}

func (w *workspace) sendRoots(ctx actor.Context) {
	w.rootsPending, w.rootsSent, w.readSinceRoots = false, true, false
	if w.rt.Sampler == nil || w.removing != nil {
		return
	}
	m := &samplerRoots{id: w.id, pid: w.self, group: w.group, roots: w.roots()}
	if len(m.roots) > 0 {
		w.hadRoots = true
	} else if w.group == nil && !w.hadRoots {
		// Nothing has run here, and there is no cgroup to read: the
		// sampler would find nothing. The reading is taken here, which
		// spares a restore or a burst of creates a message each way
		// per workspace in the next pass.
		w.onReading(&Reading{At: w.rt.now(), Source: "procfs"})
		m.counted = true
	}
	ctx.Send(w.rt.Sampler, m)
}

func itoa(n int) string     { return strconv.Itoa(n) }
func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

func joinComma(s []string) string { return strings.Join(s, ", ") }
