// This file is the pipeline side of the workspace actor: it plans and
// starts pipeline supervisors (its children), routes requests to them, and
// keeps the last view each one reported, for listings, reaping and
// snapshots.

package actors

import (
	"fmt"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shipote/shipote/internal/askproc"
	"github.com/shipote/shipote/internal/logfile"
	"github.com/shipote/shipote/internal/logring"
	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
)

// pipelineRef is the workspace's record of one pipeline supervisor.
type pipelineRef struct {
	pid   *actor.PID
	info  messages.PipelineInfo
	rings map[string]*logring.Ring
	// stop is set once a supervised run is being stopped: the run is left
	// out of snapshots, and it is stopped only once a snapshot without it
	// is durable.
	stop *pendingStop
	// cfg is what the supervisor was started with, for a relaunch after
	// it panicked (panicked holds why, until it is gone); streak counts
	// such relaunches for the backoff, relaunches all of them.
	cfg        pipelineConfig
	panicked   string
	streak     int
	relaunches int
}

// pendingStop is a stop of a supervised run waiting for its durable write
// (durable false) or under way (durable true).
type pendingStop struct {
	durable bool
	waiting []*PipelineRequest
}

// stopCommitted carries the outcome of the write that took a supervised
// run off the disk.
type stopCommitted struct {
	run  string
	stop *pendingStop
	err  error
}

func (r *pipelineRef) aliveNodes() int {
	n := 0
	for _, node := range r.info.Nodes {
		if node.State == messages.CommandRunning || node.State == messages.CommandStarting {
			n++
		}
	}
	return n
}

func (w *workspace) receivePipelineMessage(ctx actor.Context, msg any) {
	switch m := msg.(type) {
	case *RunPipeline:
		w.runPipeline(ctx, m)
	case *pipelineResolved:
		w.onPipelineResolved(ctx, m)
	case *ListPipelines:
		out := make([]messages.PipelineInfo, 0, len(w.pipeOrder))
		for _, id := range w.pipeOrder {
			out = append(out, w.pipes[id].info)
		}
		m.Reply.OK(out)
	case *PipelineRequest:
		ref := w.findPipeline(m.Run)
		if ref == nil {
			m.Reply.Fail(fmt.Errorf("pipeline %q in workspace %s: %w", m.Run, w.spec.Label, messages.ErrNotFound))
			return
		}
		if m.Op == OpStop && (ref.info.Supervised || m.Txn != 0) && !ref.info.State.Ended() {
			// In a transaction even a run that is not declared state
			// stops only after the commit.
			w.txn = m.Txn
			w.stopDurably(ctx, ref, m)
			w.txn = 0
			m.Prepared.OK(struct{}{})
			return
		}
		ctx.Send(ref.pid, m)
	case *stopCommitted:
		w.onStopCommitted(m)
	case *actor.Terminated:
		w.onPipelineGone(ctx, m.Who)
	case *pipelineStatus:
		if ref, ok := w.pipes[m.id]; ok && ref.pid.Equal(m.from) {
			ref.info = m.info
			if m.countersOnly {
				return
			}
			w.tellSampler(ctx)
			if m.info.State.Ended() {
				w.publishView() // before the stops are answered
				for _, r := range m.stopped {
					r.OK(PipelineAnswer{Info: m.info})
				}
				m.stopped = nil
				w.maybeReap()
				w.retain(ctx)
			}
		}
		for _, r := range m.stopped {
			// A status of a run the workspace no longer holds.
			r.OK(PipelineAnswer{Info: m.info})
		}
	}
}

// stopDurably stops a supervised run once the state file no longer holds
// it: a stop whose write fails leaves the run as it was, and the caller is
// told why.
func (w *workspace) stopDurably(ctx actor.Context, ref *pipelineRef, m *PipelineRequest) {
	w.rt.dirty()
	if m.Undo {
		ref.stop = &pendingStop{durable: true}
		ctx.Send(ref.pid, m)
		return
	}
	if ref.stop != nil {
		if ref.stop.durable {
			ctx.Send(ref.pid, m)
		} else {
			ref.stop.waiting = append(ref.stop.waiting, m)
		}
		return
	}
	st := &pendingStop{waiting: []*PipelineRequest{m}}
	ref.stop = st
	rt, self, run := w.rt, w.self, ref.info.ID
	w.askCommit(func(err error) {
		rt.send(self, &stopCommitted{run: run, stop: st, err: err})
	})
}

func (w *workspace) onStopCommitted(m *stopCommitted) {
	ref, ok := w.pipes[m.run]
	if !ok || ref.stop != m.stop {
		for _, r := range m.stop.waiting {
			r.Reply.Fail(fmt.Errorf("pipeline %s: %w", m.run, messages.ErrNotFound))
		}
		return
	}
	waiting := m.stop.waiting
	m.stop.waiting = nil
	if m.err != nil {
		ref.stop = nil
		for _, r := range waiting {
			r.Reply.Fail(notSaved(fmt.Sprintf("pipeline %s not stopped", ref.info.Label), m.err))
		}
		return
	}
	m.stop.durable = true
	for _, r := range waiting {
		w.rt.send(ref.pid, r)
	}
}

func (w *workspace) findPipeline(ref string) *pipelineRef {
	if r, ok := w.pipes[ref]; ok {
		return r
	}
	if r, ok := w.pipes[strings.ToUpper(ref)]; ok {
		return r
	}
	// By label: the newest run with that label.
	for i := len(w.pipeOrder) - 1; i >= 0; i-- {
		if r := w.pipes[w.pipeOrder[i]]; r.info.Label == ref {
			return r
		}
	}
	return nil
}

// runPipeline validates the spec, resolves and checks every node's
// executable, and starts a supervisor. Nothing starts if any node is
// refused.
func (w *workspace) runPipeline(ctx actor.Context, m *RunPipeline) {
	if w.removing != nil {
		m.Reply.Fail(fmt.Errorf("workspace %s is being removed: %w", w.spec.Label, messages.ErrConflict))
		return
	}
	spec := m.Spec
	if err := spec.Validate(); err != nil {
		m.Reply.Fail(err)
		return
	}
	if spec.Workspace != "" && spec.Workspace != w.spec.Label && !strings.EqualFold(spec.Workspace, w.id) {
		m.Reply.Fail(&messages.FieldError{Field: "workspace", Message: fmt.Sprintf("%q differs from the workspace it is started in (%s)", spec.Workspace, w.spec.Label)})
		return
	}
	for _, id := range w.pipeOrder {
		if r := w.pipes[id]; r.info.Label == spec.Label && !r.info.State.Ended() {
			m.Reply.Fail(fmt.Errorf("pipeline %q is already running in workspace %s (run %s): %w", spec.Label, w.spec.Label, id, messages.ErrConflict))
			return
		}
	}
	if _, busy := w.pipeStarting[spec.Label]; busy {
		m.Reply.Fail(fmt.Errorf("pipeline %q is already starting in workspace %s: %w", spec.Label, w.spec.Label, messages.ErrConflict))
		return
	}
	type nodeCheck struct {
		field, label, exec string
		env                []string
		have               *logfile.Writer
		file               logFile
	}
	checks := make([]nodeCheck, 0, len(spec.Nodes))
	for i, n := range spec.Nodes {
		f := fmt.Sprintf("nodes[%d]", i)
		if err := n.Soma.Within("soma", w.spec.Soma); err != nil {
			m.Reply.Fail(messages.WithPrefix(f, err))
			return
		}
		if err := messages.CheckArgSize(f+".payload", n.Payload.Native, w.spec.Permissions.Env); err != nil {
			m.Reply.Fail(err)
			return
		}
		name := spec.Label + "/" + n.Label
		checks = append(checks, nodeCheck{field: f + ".payload.native.exec", label: n.Label, exec: n.Payload.Native.Exec,
			env: buildEnv(w.spec.Permissions.Env, n.Payload.Native.Envp), have: w.logWriter(name), file: w.logFile(name)})
	}
	// Resolving, allow_exec checks and log-file opens touch the disk: a
	// goroutine does them, and pipelineResolved finishes the start. The
	// label stays reserved meanwhile.
	if w.pipeStarting == nil {
		w.pipeStarting = make(map[string]struct{})
	}
	w.pipeStarting[spec.Label] = struct{}{}
	rt, self, allow := w.rt, w.self, w.spec.Permissions.AllowExec
	rt.Go(func() {
		res := &pipelineResolved{rt: rt, to: self, req: m, paths: make(map[string]string, len(checks)),
			logs: make(map[string]*logfile.Writer, len(checks))}
		for _, ch := range checks {
			path, err := proc.Resolve(ch.exec, ch.env)
			if err != nil {
				res.err = &messages.FieldError{Field: ch.field, Message: err.Error()}
				break
			}
			if err := proc.CheckAllowed(path, allow); err != nil {
				res.err = fmt.Errorf("%w: %w", messages.ErrRefused, &messages.FieldError{Field: ch.field, Message: err.Error()})
				break
			}
			res.paths[ch.label] = path
		}
		for _, ch := range checks {
			if res.err != nil {
				break
			}
			if ch.have != nil {
				res.logs[ch.label] = ch.have
				continue
			}
			lw, err := ch.file.open()
			if err != nil {
				res.err = fmt.Errorf("open the log file of node %s: %w", ch.label, err)
				break
			}
			if lw != nil {
				res.logs[ch.label] = lw
				res.opened = append(res.opened, lw)
			}
		}
		rt.sendHeld(self, res)
	})
}

// pipelineResolved carries the checks of a pipeline's nodes back to the
// workspace: each node's resolved path and log file, or why the run
// cannot start.
type pipelineResolved struct {
	rt     *Runtime
	to     *actor.PID // the workspace actor
	req    *RunPipeline
	paths  map[string]string          // node -> resolved exec path
	logs   map[string]*logfile.Writer // node -> log file
	opened []*logfile.Writer          // the files opened for this run
	err    error
}

// fail handles a result that reaches a workspace already gone (or whose
// handling panicked before the workspace took it): the files it opened
// are closed and the run's caller is told.
func (m *pipelineResolved) fail(err error) { m.rt.failHeld(m.to, m, err) }

// release closes the files the result opened and fails the run's request.
func (m *pipelineResolved) release(err error) {
	for _, lw := range m.opened {
		m.rt.closeLog(lw)
	}
	m.req.Reply.Fail(err)
}

// onPipelineResolved starts the supervisor of a pipeline whose nodes
// passed their checks.
func (w *workspace) onPipelineResolved(ctx actor.Context, r *pipelineResolved) {
	if !w.rt.take(w.self, r) {
		return // released already
	}
	m, spec := r.req, r.req.Spec
	delete(w.pipeStarting, spec.Label)
	err := r.err
	if err == nil && w.removing != nil {
		err = fmt.Errorf("workspace %s is being removed: %w", w.spec.Label, messages.ErrConflict)
	}
	if err != nil {
		r.release(err)
		return
	}
	plans := make([]nodePlan, 0, len(spec.Nodes))
	for _, n := range spec.Nodes {
		env := buildEnv(w.spec.Permissions.Env, n.Payload.Native.Envp)
		plans = append(plans, nodePlan{label: n.Label, spec: w.spawnSpec(r.paths[n.Label], n.Payload.Native.Argv, env, n.Soma)})
	}
	id := m.ID
	if id == "" {
		id = messages.NewID()
	}
	rings := make(map[string]*logring.Ring, len(plans))
	logs := make(map[string]*logfile.Writer, len(plans))
	for _, pl := range plans {
		rings[pl.label] = logring.New(w.rt.LogRingBytes)
		lw := r.logs[pl.label]
		if lw == nil {
			continue
		}
		name := spec.Label + "/" + pl.label
		if have, ok := w.logs[name]; ok && have != lw {
			w.rt.closeLog(lw) // opened meanwhile by another run of this label
			lw = have
		}
		put(&w.logs, name, lw)
		logs[pl.label] = lw
	}
	cfg := pipelineConfig{
		rt: w.rt, id: id, workspace: w.id, wsLabel: w.spec.Label, spec: spec, tap: m.Tap,
		plans: plans, flowDirs: w.spec.FlowDirs, rings: rings, logs: logs,
	}
	pid, err := ctx.SpawnNamed(newPipelineProps(cfg), "pipe-"+id)
	if err != nil {
		m.Reply.Fail(fmt.Errorf("spawn pipeline actor: %w", err))
		return
	}
	info := messages.PipelineInfo{
		ID: id, Workspace: w.id, WorkspaceLabel: w.spec.Label, Label: spec.Label, Spec: spec,
		State: messages.PipelineRunning, Supervised: spec.RestartOnFailure, Tap: m.Tap, StartedAt: w.rt.now(),
		Splitters: []messages.SplitterInfo{},
	}
	for _, pl := range plans {
		info.Nodes = append(info.Nodes, messages.NodeInfo{Label: pl.label, State: messages.CommandStarting})
	}
	put(&w.pipes, id, &pipelineRef{pid: pid, info: info, rings: rings, cfg: cfg})
	w.undeclare(id) // listed as a run from now on
	w.pipeOrder = append(w.pipeOrder, id)
	w.reaper.Ran()
	if spec.RestartOnFailure && m.ID == "" {
		w.rt.dirty()
	}
	w.publishView() // a list after the answer counts the nodes
	m.Reply.OK(info)
}

// stopPipelines asks every pipeline to stop with grace; the returned
// calls answer when each has.
func (w *workspace) stopPipelines(ctx actor.Context, grace time.Duration) []askproc.Call[PipelineAnswer] {
	var out []askproc.Call[PipelineAnswer]
	for _, id := range w.pipeOrder {
		r := w.pipes[id]
		if r.info.State.Ended() {
			continue
		}
		reply := askproc.Begin[PipelineAnswer](w.rt.asks())
		ctx.Send(r.pid, &PipelineRequest{Workspace: w.id, Run: id, Op: OpStop, Grace: grace, Reply: reply.Reply})
		out = append(out, reply)
	}
	return out
}

// askCommit asks the engine for a durable snapshot holding this
// workspace's current entry (as a step of transaction w.txn, when set);
// then runs with the outcome. The engine
// answers with a *Result[struct{}] to this workspace, whose ID names then
// in w.commits: then is a continuation of this actor, run in its own
// Receive, never in the engine's.
func (w *workspace) askCommit(then func(error)) {
	w.commitSeq++
	if w.commits == nil {
		w.commits = make(map[uint64]func(error))
	}
	w.commits[w.commitSeq] = then
	w.rt.send(w.engine, &commitFor{ws: []string{w.id}, txn: w.txn, reply: protocol.ReplyTo[struct{}](w.rt.System, w.self, w.commitSeq)})
}

func (w *workspace) onCommitted(m *Result[struct{}]) {
	if then, ok := w.commits[m.ID]; ok {
		delete(w.commits, m.ID)
		then(m.Err)
	}
}
