// This file is the pipeline supervisor actor, a child of its workspace: it
// launches a run of a pipeline (one process per node, pipes between them,
// one splitter actor per producer node), tracks each node's exit, decides
// success or failure, and relaunches a failed run with a doubling backoff
// when the spec asks for it. It receives pipelineStart, nodeExited,
// SplitterFinished, restartDue-like timer messages and the routed
// PipelineRequests; it sends pipelineStatus to its workspace on every
// change of state.

package actors

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/logfile"
	"github.com/shipote/shipote/internal/logring"
	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/internal/supervise"
	"github.com/shipote/shipote/messages"
)

// nodePlan is what the workspace resolved for one node before the pipeline
// started: its process spec without stdio.
type nodePlan struct {
	label string
	spec  proc.Spec
}

type pipelineConfig struct {
	rt        *Runtime
	id        string
	workspace string
	wsLabel   string
	spec      messages.PipelineSpec
	tap       bool
	plans     []nodePlan
	flowDirs  []string
	rings     map[string]*logring.Ring   // per node, made by the workspace
	logs      map[string]*logfile.Writer // per node; empty without log files
	// A relaunch after the supervisor panicked: the restarts so far, the
	// backoff before the first run, and why the last run failed.
	restarts   int
	startAfter time.Duration
	lastError  string
}

type pipeline struct {
	cfg  pipelineConfig
	rt   *Runtime
	log  *zap.Logger
	self *actor.PID

	info    messages.PipelineInfo
	gen     int
	nodes   map[string]*pnode
	split   map[string]*actor.PID // producer node -> splitter actor
	final   map[string]messages.SplitterInfo
	rings   map[string]*logring.Ring
	sup     *supervise.Supervisor // restarts, backoff, give-up
	cancel  func()
	stopReq []Reply[PipelineAnswer]
	// restartReq waits for the relaunch of a restart; restarting is set
	// while the current run is being stopped for it.
	restartReq []Reply[PipelineAnswer]
	restarting bool
	stopped    bool
	killing    bool
	// pgids holds the process groups of every node started that may
	// still have members (a node's children outlive it in its group).
	pgids   map[int]struct{}
	readers *readerSet
	// taps waiting for the current run's splitters to start.
	pendingTaps []*PipelineRequest
}

type pnode struct {
	info messages.NodeInfo
	proc *proc.Process
}

// Internal messages of the pipeline supervisor.
type (
	runLaunched struct {
		rt      *Runtime
		to      *actor.PID // the pipeline actor
		gen     int
		procs   map[string]*proc.Process
		sources map[string]*os.File   // producer node -> its stdout read end
		sinks   map[string][]sinkFile // producer node -> consumers' stdin write ends
		drained map[string]*pumps     // node -> its output pumps (read by the launch goroutine only)
		err     error
	}
	sinkFile struct {
		node string
		w    *os.File
	}
	nodeExited struct {
		gen    int
		node   string
		status proc.ExitStatus
	}
	pipelineRestartDue struct{ gen int }
	pipelineKilled     struct{ gen int }
	// pipelineStatus tells the workspace the pipeline's current view.
	pipelineStatus struct {
		id   string
		from *actor.PID // the supervisor that sent it
		info messages.PipelineInfo
		// countersOnly: only flow counters changed (no process started or
		// ended), so the sampler need not hear of it.
		countersOnly bool
		// stopped are the stop requests this status ends: the workspace
		// answers them once its own view counts the run as ended, so a
		// list after the answer reads the stop.
		stopped []Reply[PipelineAnswer]
	}
)

func newPipelineProps(cfg pipelineConfig) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		rings := cfg.rings
		return &pipeline{
			cfg:     cfg,
			rt:      cfg.rt,
			log:     cfg.rt.Log.With(zap.String("pipeline", cfg.spec.Label), zap.String("run", cfg.id)),
			rings:   rings,
			sup:     supervise.New(supervise.PipelinePolicy(&cfg.spec), cfg.rt.now),
			final:   make(map[string]messages.SplitterInfo),
			pgids:   make(map[int]struct{}),
			readers: newReaderSet(),
			info: messages.PipelineInfo{
				ID:             cfg.id,
				Workspace:      cfg.workspace,
				WorkspaceLabel: cfg.wsLabel,
				Label:          cfg.spec.Label,
				Spec:           cfg.spec,
				State:          messages.PipelineRunning,
				Supervised:     cfg.spec.RestartOnFailure,
				Tap:            cfg.tap,
				Restarts:       cfg.restarts,
			},
		}
	}, cfg.rt.mailbox(KindPipeline))
}

func (p *pipeline) Receive(ctx actor.Context) {
	testPanic(KindPipeline, ctx.Message())
	switch m := ctx.Message().(type) {
	case *actor.Started:
		p.self = ctx.Self()
		if p.cfg.startAfter > 0 {
			p.sup.Resume(p.cfg.restarts)
			p.relaunchAfter(ctx, p.cfg.startAfter)
		} else {
			p.launch(ctx)
		}
	case *actor.Stopping:
		if p.cancel != nil {
			p.cancel()
		}
		p.rt.killGroups(slices.Collect(maps.Keys(p.pgids))...)
		p.readers.closeAll(p.rt)
		for _, r := range p.rings {
			r.Close()
		}
		for _, r := range p.stopReq {
			r.OK(PipelineAnswer{Info: p.view()})
		}
		for _, m := range p.pendingTaps {
			m.Reply.Fail(fmt.Errorf("pipeline %s stopped: %w", p.cfg.spec.Label, messages.ErrStopped))
		}
		for _, r := range p.restartReq {
			r.Fail(fmt.Errorf("pipeline %s stopped: %w", p.cfg.spec.Label, messages.ErrStopped))
		}
	case *actor.Stopped:
		// A run launched as the actor stopped is never read: its
		// processes are killed and its pipes closed.
		p.rt.releaseHeld(ctx.Self(), fmt.Errorf("pipeline %s stopped: %w", p.cfg.spec.Label, messages.ErrStopped))
	case *runLaunched:
		p.onLaunched(ctx, m)
	case *nodeExited:
		p.onNodeExited(ctx, m)
	case *pgidsGone:
		p.forgetGroups(m)
	case *flowCounters:
		// Live counters of a splitter of the current run: the workspace's
		// listing (pipe ls, /v1/pipelines, metrics) shows them.
		if pid, ok := p.split[m.stats.Node]; ok && pid.Equal(m.from) {
			p.final[m.stats.Node] = splitterInfo(m.stats)
			ctx.Send(ctx.Parent(), &pipelineStatus{id: p.cfg.id, from: p.self, info: p.view(), countersOnly: true})
		}
	case *SplitterFinished:
		// The splitter moved its last byte; the run ends with its nodes.
	case *ConsumerDropped:
		p.log.Debug("consumer dropped", zap.String("node", m.Node), zap.String("consumer", m.Consumer), zap.Error(m.Err))
	case *pipelineRestartDue:
		if m.gen == p.gen && p.info.State == messages.PipelineBackoff && !p.stopped && p.sup.RestartDue() {
			p.cancel = nil
			p.info.Restarts = p.sup.Restarts()
			p.launch(ctx)
		}
	case *pipelineKilled:
		p.onKilled(ctx)
	case *PipelineRequest:
		p.request(ctx, m)
	}
}

// view returns the info with the current node states and the last known
// counters (without asking the splitters). It shares no slice with the
// pipeline's state: views travel to other actors and callers while the
// pipeline goes on writing its own.
func (p *pipeline) view() messages.PipelineInfo {
	info := p.info
	info.Nodes = make([]messages.NodeInfo, 0, len(p.cfg.plans))
	for _, pl := range p.cfg.plans {
		if n, ok := p.nodes[pl.label]; ok {
			info.Nodes = append(info.Nodes, n.info)
		} else {
			info.Nodes = append(info.Nodes, messages.NodeInfo{Label: pl.label, State: messages.CommandStarting})
		}
	}
	info.Splitters = make([]messages.SplitterInfo, 0, len(p.final))
	for _, s := range p.final {
		s.Channels = slices.Clone(s.Channels)
		info.Splitters = append(info.Splitters, s)
	}
	sort.Slice(info.Splitters, func(i, j int) bool { return info.Splitters[i].Node < info.Splitters[j].Node })
	return info
}

func (p *pipeline) publishStatus(ctx actor.Context) {
	ctx.Send(ctx.Parent(), &pipelineStatus{id: p.cfg.id, from: p.self, info: p.view()})
}

// publishEnd publishes the ended run's status with the stop requests it
// answers, which the workspace answers after it took the status in.
func (p *pipeline) publishEnd(ctx actor.Context) {
	ctx.Send(ctx.Parent(), &pipelineStatus{id: p.cfg.id, from: p.self, info: p.view(), stopped: p.stopReq})
	p.stopReq = nil
}

// relaunchAfter is the start of a supervisor that replaces one that
// panicked: its run failed, so the next waits for the backoff, as after
// any failed run.
func (p *pipeline) relaunchAfter(ctx actor.Context, delay time.Duration) {
	now := p.rt.now()
	p.info.State = messages.PipelineBackoff
	p.info.EndedAt, p.info.NextStartAt, p.info.Error = now, now.Add(delay), p.cfg.lastError
	p.cancel = p.rt.after(delay, p.self, &pipelineRestartDue{gen: p.gen})
	p.publishStatus(ctx)
}

// launch starts a run: pipes are made and processes spawned in a goroutine;
// the splitters start when runLaunched arrives.
func (p *pipeline) launch(ctx actor.Context) {
	p.gen++
	p.sup.Start()
	p.info.State = messages.PipelineRunning
	p.info.StartedAt = p.rt.now()
	p.info.EndedAt, p.info.NextStartAt, p.info.Error = time.Time{}, time.Time{}, ""
	p.nodes = make(map[string]*pnode, len(p.cfg.plans))
	p.split = make(map[string]*actor.PID)
	for _, pl := range p.cfg.plans {
		p.nodes[pl.label] = &pnode{info: messages.NodeInfo{Label: pl.label, State: messages.CommandStarting}}
	}
	p.publishStatus(ctx)
	gen, rt, self := p.gen, p.rt, p.self
	plans, spec, readers := p.cfg.plans, p.cfg.spec, p.readers
	outs := make(map[string]output, len(plans))
	for _, pl := range plans {
		outs[pl.label] = output{ring: p.rings[pl.label], file: p.cfg.logs[pl.label]}
	}
	rt.Go(func() {
		m := spawnRun(rt, plans, spec, outs, readers)
		m.rt, m.to, m.gen = rt, self, gen
		procs, drained := m.procs, m.drained
		rt.sendHeld(self, m)
		for node, pr := range procs {
			rt.Go(func() {
				st := pr.Wait()
				drained[node].wait(outputDrainWait)
				rt.send(self, &nodeExited{gen: gen, node: node, status: st})
			})
		}
	})
}

// spawnRun makes the pipes of one run and spawns every node. On an error
// the nodes already started are killed (their exits still arrive).
func spawnRun(rt *Runtime, plans []nodePlan, spec messages.PipelineSpec, outs map[string]output, readers *readerSet) *runLaunched {
	m := &runLaunched{procs: make(map[string]*proc.Process), sources: make(map[string]*os.File), sinks: make(map[string][]sinkFile),
		drained: make(map[string]*pumps)}
	consumers := spec.Consumers()
	stdin := make(map[string]*os.File)  // node -> read end for its stdin (child side)
	stdout := make(map[string]*os.File) // producer -> write end for its stdout (child side)
	var childSide []*os.File
	fail := func(err error) *runLaunched {
		for _, f := range childSide {
			f.Close()
		}
		for _, f := range m.sources {
			f.Close()
		}
		for _, ss := range m.sinks {
			for _, s := range ss {
				s.w.Close()
			}
		}
		for _, pr := range m.procs {
			_ = proc.KillGroup(pr.Pid, unix.SIGKILL)
		}
		m.sources, m.sinks = nil, nil
		m.err = err
		return m
	}
	for _, pl := range plans {
		outs := consumers[pl.label]
		if len(outs) == 0 {
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			return fail(fmt.Errorf("pipe for %s: %w", pl.label, err))
		}
		m.sources[pl.label] = r
		stdout[pl.label] = w
		childSide = append(childSide, w)
		for _, to := range outs {
			cr, cw, err := os.Pipe()
			if err != nil {
				return fail(fmt.Errorf("pipe %s -> %s: %w", pl.label, to, err))
			}
			stdin[to] = cr
			childSide = append(childSide, cr)
			m.sinks[pl.label] = append(m.sinks[pl.label], sinkFile{node: to, w: cw})
		}
	}
	for _, pl := range plans {
		s := pl.spec
		s.Stdin = stdin[pl.label]
		drained := new(pumps)
		m.drained[pl.label] = drained
		var logW []*os.File
		if w, ok := stdout[pl.label]; ok {
			s.Stdout = w
		} else {
			r, w, err := os.Pipe()
			if err != nil {
				return fail(fmt.Errorf("stdout pipe for %s: %w", pl.label, err))
			}
			s.Stdout = w
			logW = append(logW, w)
			readers.add(r)
			drained.run(rt, r, messages.Stdout, outs[pl.label], readers)
		}
		r, w, err := os.Pipe()
		if err != nil {
			return fail(fmt.Errorf("stderr pipe for %s: %w", pl.label, err))
		}
		s.Stderr = w
		logW = append(logW, w)
		readers.add(r)
		drained.run(rt, r, messages.Stderr, outs[pl.label], readers)
		pr, err := rt.Spawner.Start(s)
		for _, f := range logW {
			f.Close()
		}
		if err != nil {
			return fail(fmt.Errorf("start node %s: %w", pl.label, err))
		}
		m.procs[pl.label] = pr
	}
	for _, f := range childSide {
		f.Close()
	}
	return m
}

func (p *pipeline) onLaunched(ctx actor.Context, m *runLaunched) {
	if !p.rt.take(p.self, m) {
		return // released already
	}
	if m.gen != p.gen {
		return
	}
	for label, pr := range m.procs {
		n := p.nodes[label]
		n.proc = pr
		p.pgids[pr.Pid] = struct{}{}
		n.info.State = messages.CommandRunning
		n.info.Pid = pr.Pid
	}
	if m.err != nil {
		p.info.Error = m.err.Error()
		p.log.Warn("pipeline run failed to start", zap.Error(m.err))
		p.answerRestarts(fmt.Errorf("pipeline %s: the run failed to start: %w", p.cfg.spec.Label, m.err))
		for _, n := range p.nodes {
			if n.proc == nil {
				n.info.State = messages.CommandFailed
				n.info.Error = "not started"
			}
		}
		p.checkRunEnd(ctx)
		p.servePendingTaps(ctx)
		return
	}
	if p.stopped || p.restarting {
		p.rt.killGroups(slices.Collect(maps.Keys(p.pgids))...)
	}
	d := p.cfg.spec.Discern
	for node, src := range m.sources {
		cfg := SplitterConfig{
			Pipeline:       p.cfg.spec.Label,
			Node:           node,
			Source:         src,
			MaxBytesPerSec: d.MaxBytesPerSec,
			BurstBytes:     d.BurstBytes,
			SlowConsumer:   string(d.SlowConsumer),
			BufferBytes:    int(d.BufferBytes),
			Logger:         p.log,
			Go:             p.rt.Go,
		}
		for _, s := range m.sinks[node] {
			cfg.Consumers = append(cfg.Consumers, flowConsumer(s.node, s.w))
		}
		if p.cfg.tap && len(p.cfg.flowDirs) > 0 {
			cfg.TapSocket = filepath.Join(p.cfg.flowDirs[0], p.cfg.spec.Label, node+".sock")
		}
		pid, err := ctx.SpawnNamed(NewSplitterProps(cfg).Configure(p.rt.mailbox(KindSplitter)), "split-"+node+"-"+fmt.Sprint(p.gen))
		if err != nil {
			p.log.Error("spawn splitter", zap.String("node", node), zap.Error(err))
			p.rt.closeFiles(src)
			for _, s := range m.sinks[node] {
				p.rt.closeFiles(s.w)
			}
			continue
		}
		p.split[node] = pid
	}
	p.rt.publish(messages.Event{Kind: messages.EventStarted, Workspace: p.cfg.workspace, Label: p.cfg.wsLabel,
		Pipeline: p.cfg.spec.Label, Message: fmt.Sprintf("run %d of %s", p.info.Restarts+1, p.cfg.id)})
	p.publishStatus(ctx)
	p.servePendingTaps(ctx)
	p.answerRestarts(nil)
}

// answerRestarts answers the restarts that waited for this run's launch.
func (p *pipeline) answerRestarts(err error) {
	for _, r := range p.restartReq {
		if err != nil {
			r.Fail(err)
		} else {
			r.OK(PipelineAnswer{Info: p.view()})
		}
	}
	p.restartReq = nil
}

// prunePgids asks a goroutine which of the run's process groups have no
// member left; the answer (pgidsGone) forgets them, so a recycled group ID
// is never signalled later.
func (p *pipeline) prunePgids() {
	check := slices.Collect(maps.Keys(p.pgids))
	rt, self := p.rt, p.self
	rt.Go(func() {
		if dead := deadGroups(check); len(dead) > 0 {
			rt.send(self, &pgidsGone{dead: dead})
		}
	})
}

// forgetGroups forgets the groups found empty, except one that a live
// process leads again (its ID was recycled since the check).
func (p *pipeline) forgetGroups(m *pgidsGone) {
	for _, pg := range m.dead {
		live := false
		for _, n := range p.nodes {
			if n.proc != nil && n.proc.Pid == pg {
				live = true
			}
		}
		if !live {
			delete(p.pgids, pg)
		}
	}
}

func (p *pipeline) onNodeExited(ctx actor.Context, m *nodeExited) {
	if m.gen != p.gen {
		return
	}
	n := p.nodes[m.node]
	n.proc = nil
	n.info.Pid = 0
	p.prunePgids()
	st := m.status
	if st.Signal != 0 {
		n.info.Signal = proc.SignalName(st.Signal)
	} else if st.Err == nil {
		code := st.Code
		n.info.ExitCode = &code
	}
	ok := st.Err == nil && messages.IsSuccess(p.nodeSpec(m.node).SuccessExitCodes, st.Code, int(st.Signal))
	if !ok && st.Signal == unix.SIGPIPE && len(p.cfg.spec.Consumers()[m.node]) > 0 {
		// Its consumers had all closed: the splitter closed its stdout.
		ok = true
	}
	if ok {
		n.info.State = messages.CommandExited
	} else {
		n.info.State = messages.CommandFailed
		if st.Err != nil {
			n.info.Error = st.Err.Error()
		}
	}
	p.checkRunEnd(ctx)
}

// checkRunEnd ends the run once every node has exited: it collects the
// splitters' final counters, then decides.
func (p *pipeline) checkRunEnd(ctx actor.Context) {
	for _, n := range p.nodes {
		if !n.info.State.Ended() {
			p.publishStatus(ctx)
			return
		}
	}
	gen := p.gen
	p.collectStats(ctx, func() {
		if gen == p.gen {
			p.endRun(ctx)
		}
	})
}

// collectStats asks every splitter for its counters, keeps them in
// p.final, and calls then once all have answered (or timed out).
func (p *pipeline) collectStats(ctx actor.Context, then func()) {
	if len(p.split) == 0 {
		then()
		return
	}
	left := len(p.split)
	for node, pid := range p.split {
		f := ctx.RequestFuture(pid, &GetFlowStats{}, 2*time.Second)
		ctx.ReenterAfter(f, func(res any, err error) {
			if fs, ok := res.(*FlowStats); ok && err == nil {
				p.final[node] = splitterInfo(fs)
			}
			left--
			if left == 0 {
				then()
			}
		})
	}
}

func (p *pipeline) endRun(ctx actor.Context) {
	for _, pid := range p.split {
		ctx.Stop(pid)
	}
	for node, s := range p.final {
		// Nothing flows once the run has ended. A new slice, so that
		// no view handed out earlier sees the change.
		s.Channels = slices.Clone(s.Channels)
		for i := range s.Channels {
			s.Channels[i].BytesPerSec = 0
		}
		p.final[node] = s
	}
	p.split = map[string]*actor.PID{}
	p.info.EndedAt = p.rt.now()
	if p.restarting && !p.stopped {
		// A restart: launch again at once, with the same run ID. The
		// old run's termination may still be finishing; it no longer
		// holds back a stop of the new run.
		p.restarting = false
		p.killing = false
		p.sup.RestartNow()
		p.info.Restarts = p.sup.Restarts()
		p.rt.publish(messages.Event{Kind: messages.EventRestarted, Workspace: p.cfg.workspace, Label: p.cfg.wsLabel,
			Pipeline: p.cfg.spec.Label, Message: "restarted on request"})
		p.launch(ctx)
		return
	}
	if p.restarting {
		p.restarting = false
		p.answerRestarts(fmt.Errorf("pipeline %s was stopped during its restart: %w", p.cfg.spec.Label, messages.ErrConflict))
	}
	success := p.info.Error == ""
	for _, n := range p.nodes {
		if n.info.State != messages.CommandExited {
			success = false
		}
	}
	switch d := p.sup.RunEnded(success, p.info.EndedAt.Sub(p.info.StartedAt)); d.Action {
	case supervise.Stopped:
		p.info.State = messages.PipelineStopped
	case supervise.Done:
		p.info.State = messages.PipelineFailed
		if d.Success {
			p.info.State = messages.PipelineSucceeded
		}
	case supervise.GiveUp:
		p.info.State = messages.PipelineGaveUp
	case supervise.Restart:
		p.info.State = messages.PipelineBackoff
		p.info.NextStartAt = d.At
		p.cancel = p.rt.after(d.Delay, p.self, &pipelineRestartDue{gen: p.gen})
	}
	kind := map[messages.PipelineState]messages.EventKind{
		messages.PipelineStopped:   messages.EventStopped,
		messages.PipelineSucceeded: messages.EventSucceeded,
		messages.PipelineFailed:    messages.EventFailed,
		messages.PipelineGaveUp:    messages.EventGaveUp,
		messages.PipelineBackoff:   messages.EventFailed,
	}[p.info.State]
	p.rt.publish(messages.Event{Kind: kind, Workspace: p.cfg.workspace, Label: p.cfg.wsLabel,
		Pipeline: p.cfg.spec.Label, Message: string(p.info.State)})
	if p.info.State == messages.PipelineGaveUp {
		p.log.Warn("pipeline gave up", zap.Int("restarts", p.info.Restarts))
	}
	if p.info.State.Ended() {
		p.publishEnd(ctx)
		return
	}
	p.publishStatus(ctx)
}

// stop ends the pipeline for good: SIGTERM to every node's group, grace,
// SIGKILL. The answer comes when the run has ended.
func (p *pipeline) stop(ctx actor.Context, grace time.Duration, reply Reply[PipelineAnswer]) {
	if reply.IsSet() {
		p.stopReq = append(p.stopReq, reply)
	}
	if p.info.State.Ended() {
		p.publishEnd(ctx)
		return
	}
	p.stopped = true
	if p.sup.Stop() == supervise.StopCancel {
		if p.cancel != nil {
			p.cancel()
			p.cancel = nil
		}
		p.info.State = messages.PipelineStopped
		p.info.NextStartAt = time.Time{}
		p.publishEnd(ctx)
		return
	}
	if p.killing {
		return
	}
	p.killing = true
	p.terminate("stop pipeline", grace)
}

// stopGroup is a process group a stop or restart ends, with its node's
// stop signal and timeout.
type stopGroup struct {
	sig     syscall.Signal
	timeout time.Duration
}

// terminate ends every process group of the run from a goroutine: each
// node's group gets its stop_signal, then SIGKILL after its
// stop_timeout_ms (default grace, itself defaulting to the engine's);
// other groups left by earlier runs get SIGTERM and grace. pipelineKilled
// comes back once all are gone.
func (p *pipeline) terminate(what string, grace time.Duration) {
	if grace <= 0 {
		grace = p.rt.Grace
	}
	byNode := make(map[int]messages.Node)
	for label, n := range p.nodes {
		if n.proc != nil {
			byNode[n.proc.Pid] = p.nodeSpec(label)
		}
	}
	groups := make(map[stopGroup][]int)
	for pg := range p.pgids {
		g := stopGroup{sig: unix.SIGTERM, timeout: grace}
		if spec, ok := byNode[pg]; ok {
			if sig, err := messages.ParseSignal(spec.StopSignal); err == nil && spec.StopSignal != "" {
				g.sig = sig
			}
			if spec.StopTimeoutMs > 0 {
				g.timeout = time.Duration(spec.StopTimeoutMs) * time.Millisecond
			}
		}
		groups[g] = append(groups[g], pg)
	}
	rt, self, gen := p.rt, p.self, p.gen
	rt.Go(func() {
		done := make(chan struct{}, len(groups))
		for g, pgids := range groups {
			rt.Go(func() {
				defer func() { done <- struct{}{} }()
				tctx, cancel := context.WithTimeout(context.Background(), g.timeout+10*time.Second)
				defer cancel()
				if err := proc.TerminateWith(tctx, pgids, g.sig, g.timeout); err != nil && !errors.Is(err, context.Canceled) {
					rt.Log.Warn(what, zap.Error(err))
				}
			})
		}
		for range groups {
			<-done
		}
		rt.send(self, &pipelineKilled{gen: gen})
	})
}

// nodeSpec returns the spec of node label.
func (p *pipeline) nodeSpec(label string) messages.Node {
	for _, n := range p.cfg.spec.Nodes {
		if n.Label == label {
			return n
		}
	}
	return messages.Node{Label: label}
}

func (p *pipeline) onKilled(ctx actor.Context) {
	p.killing = false
	// The nodes' exits arrive on their own and end the run.
}

func (p *pipeline) request(ctx actor.Context, m *PipelineRequest) {
	switch m.Op {
	case OpShow:
		if len(p.split) == 0 {
			m.Reply.OK(PipelineAnswer{Info: p.view()})
			return
		}
		p.collectStats(ctx, func() { m.Reply.OK(PipelineAnswer{Info: p.view()}) })
	case OpStop:
		p.stop(ctx, m.Grace, m.Reply)
	case OpTap:
		p.tap(ctx, m)
	case OpRestart:
		p.restart(ctx, m)
	case OpSignal:
		p.signal(m)
	}
}

// restart stops the current run (SIGTERM, grace, SIGKILL to every node's
// group) and launches it again once every node has exited; a run waiting
// to restart launches at once. An ended run is not restarted.
func (p *pipeline) restart(ctx actor.Context, m *PipelineRequest) {
	if p.stopped || p.info.State.Ended() {
		m.Reply.Fail(fmt.Errorf("pipeline %s has ended (%s); run it again with pipe run or pipe start: %w",
			p.cfg.spec.Label, p.info.State, messages.ErrConflict))
		return
	}
	p.restartReq = append(p.restartReq, m.Reply)
	if p.info.State == messages.PipelineBackoff {
		if p.cancel != nil {
			p.cancel()
			p.cancel = nil
		}
		p.sup.RestartNow()
		p.info.Restarts = p.sup.Restarts()
		p.rt.publish(messages.Event{Kind: messages.EventRestarted, Workspace: p.cfg.workspace, Label: p.cfg.wsLabel,
			Pipeline: p.cfg.spec.Label, Message: "restarted on request"})
		p.launch(ctx)
		return
	}
	if p.restarting || p.killing {
		return // the answer comes with the relaunch
	}
	p.restarting = true
	p.killing = true
	p.terminate("restart pipeline", m.Grace)
}

// signal sends a signal to the process groups of the current run's nodes
// (one node, or all), from a goroutine.
func (p *pipeline) signal(m *PipelineRequest) {
	if m.Node != "" {
		if _, ok := p.rings[m.Node]; !ok {
			m.Reply.Fail(fmt.Errorf("node %q in pipeline %s: %w", m.Node, p.cfg.spec.Label, messages.ErrNotFound))
			return
		}
	}
	var pgids []int
	for _, pl := range p.cfg.plans {
		if m.Node != "" && pl.label != m.Node {
			continue
		}
		if n, ok := p.nodes[pl.label]; ok && n.proc != nil && n.info.State == messages.CommandRunning {
			pgids = append(pgids, n.proc.Pid)
		}
	}
	if len(pgids) == 0 {
		what := "no node of pipeline " + p.cfg.spec.Label + " is running"
		if m.Node != "" {
			what = fmt.Sprintf("node %s of pipeline %s is not running", m.Node, p.cfg.spec.Label)
		}
		m.Reply.Fail(fmt.Errorf("%s (%s): %w", what, p.info.State, messages.ErrConflict))
		return
	}
	info, sig, reply := p.view(), m.Signal, m.Reply
	p.rt.Go(func() {
		var errs []error
		for _, pg := range pgids {
			if err := proc.KillGroup(pg, sig); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			reply.Fail(fmt.Errorf("signal pipeline %s: %w", info.Label, err))
			return
		}
		reply.OK(PipelineAnswer{Info: info})
	})
}

// launching reports whether the current run's processes are being spawned.
func (p *pipeline) launching() bool {
	if p.info.State != messages.PipelineRunning {
		return false
	}
	for _, n := range p.nodes {
		if n.info.State == messages.CommandStarting {
			return true
		}
	}
	return false
}

// servePendingTaps answers the taps that waited for the run to start.
func (p *pipeline) servePendingTaps(ctx actor.Context) {
	pending := p.pendingTaps
	p.pendingTaps = nil
	for _, m := range pending {
		p.tap(ctx, m)
	}
}

func (p *pipeline) tap(ctx actor.Context, m *PipelineRequest) {
	node := m.Node
	if node == "" {
		// The first node with consumers, else the first node.
		for _, pl := range p.cfg.plans {
			if len(p.cfg.spec.Consumers()[pl.label]) > 0 {
				node = pl.label
				break
			}
		}
		if node == "" {
			node = p.cfg.plans[0].label
		}
	}
	if _, ok := p.rings[node]; !ok {
		m.Reply.Fail(fmt.Errorf("node %q in pipeline %s: %w", node, p.cfg.spec.Label, messages.ErrNotFound))
		return
	}
	pid, ok := p.split[node]
	if !ok && p.launching() && len(p.cfg.spec.Consumers()[node]) > 0 {
		// The run is starting: serve the tap once its splitters exist.
		p.pendingTaps = append(p.pendingTaps, m)
		return
	}
	if !ok {
		m.Reply.Fail(fmt.Errorf("node %q of pipeline %s has no live splitter to tap (its output goes to its log; it is %s): %w",
			node, p.cfg.spec.Label, p.nodes[node].info.State, messages.ErrConflict))
		return
	}
	f := ctx.RequestFuture(pid, &OpenTap{BufBytes: m.TapBuf}, 5*time.Second)
	ctx.ReenterAfter(f, func(res any, err error) {
		if err != nil {
			m.Reply.Fail(fmt.Errorf("tap %s: %w", node, err))
			return
		}
		t, ok := res.(*TapOpened)
		if !ok || t.Err != nil {
			if ok {
				err = t.Err
			}
			m.Reply.Fail(fmt.Errorf("tap %s: %w", node, err))
			return
		}
		m.Reply.OK(PipelineAnswer{Info: p.view(), Tap: t.Tap})
	})
}
