// This file is what happens when an actor panics. protoactor recovers the
// panic, suspends the actor's mailbox and asks its parent's supervisor
// strategy; the message that panicked is lost. Its default strategy
// restarts the actor: a new instance from the producer, with the state of
// the old one (process groups, pipes, pumps) forgotten but still alive.
// So every actor that has children says what happens instead:
//
//   - The engine (for its workspaces) and the guardian of the engine's
//     top-level actors resume a panicking actor: its state and processes
//     stay as they were, and a request whose handling panicked is answered
//     with an error. Restarting would lose declared state (a workspace's
//     commands, the engine's registry) and leak processes; stopping would
//     kill processes that were fine.
//   - A workspace (for its pipelines) and a pipeline (for its splitters)
//     stop the child that panicked, never restart it: a pipeline's
//     Stopping kills its process groups and closes its pipes, a splitter's
//     closes its fds. The run is then failed, so its restart policy
//     applies: a pipeline's run ends as failed when one of its splitters
//     panicked, and a workspace relaunches a supervised pipeline whose
//     supervisor panicked as it would relaunch a failed run (same run ID,
//     backoff, restart_max).

package actors

import (
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/shipote/shipote/internal/logring"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
)

// panicHook is nil outside tests. Tests set it to make the engine,
// workspace, pipeline and splitter actors panic on a chosen message; kind
// is the actor's Kind.
var panicHook atomic.Pointer[func(kind string, msg any)]

// testPanic runs panicHook, if set, at the top of a Receive.
func testPanic(kind string, msg any) {
	if h := panicHook.Load(); h != nil {
		(*h)(kind, msg)
	}
}

// failPanicked answers the request whose handling panicked, if it was one,
// so that its caller does not wait for an answer that cannot come.
func failPanicked(what string, msg any, reason any) {
	err := fmt.Errorf("the %s actor failed on this request: %v", what, reason)
	// A request made with ctx.Request (or a custom sender) comes in an
	// envelope; its Reply was bound to the sender before the panic.
	switch f := actor.UnwrapEnvelopeMessage(msg).(type) {
	case protocol.Request:
		f.Fail(err)
	case failer:
		f.fail(err)
	}
}

// resumeStrategy resumes the actor that panicked.
type resumeStrategy struct {
	log  *zap.Logger
	what string
}

// ResumeOnPanic is the supervisor strategy that resumes a panicking actor
// with its state as it was, answers the request that panicked with an
// error and logs the panic. The engine applies it to its workspaces; Start
// applies it, as the guardian, to the engine's top-level actors.
func ResumeOnPanic(log *zap.Logger, what string) actor.SupervisorStrategy {
	if log == nil {
		log = zap.NewNop()
	}
	return &resumeStrategy{log: log, what: what}
}

// HandleFailure implements actor.SupervisorStrategy.
func (s *resumeStrategy) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason, msg any) {
	s.log.Error(s.what+" actor panicked; resuming it", zap.String("actor", child.GetId()),
		zap.Any("reason", reason), zap.String("message", fmt.Sprintf("%T", msg)))
	failPanicked(s.what, msg, reason)
	sup.ResumeChildren(child)
}

// HandleFailure makes the pipeline the supervisor strategy of its
// splitters: one that panics is stopped (its Stopping closes its fds), and
// the current run is ended as failed: every process group of the run is
// terminated, and the run's end applies the restart policy.
func (p *pipeline) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason, msg any) {
	p.log.Error("splitter actor panicked; stopping it and failing the run", zap.String("actor", child.GetId()),
		zap.Any("reason", reason), zap.String("message", fmt.Sprintf("%T", msg)))
	failPanicked("splitter", msg, reason)
	sup.StopChildren(child)
	for node, pid := range p.split {
		if !pid.Equal(child) {
			continue
		}
		delete(p.split, node)
		if p.info.Error == "" {
			p.info.Error = fmt.Sprintf("the splitter of node %s failed: %v", node, reason)
		}
		if !p.killing && !p.stopped && !p.info.State.Ended() {
			// Not marked as killing: a stop of the next run must not
			// wait for this termination.
			p.terminate("end a run whose splitter failed", 0)
		}
	}
}

// HandleFailure makes the workspace the supervisor strategy of its
// pipelines: one that panics is stopped (its Stopping kills its process
// groups and closes its pipes), and relaunched by onPipelineGone once it is
// gone.
func (w *workspace) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason, msg any) {
	w.logger().Error("pipeline actor panicked; stopping it", zap.String("actor", child.GetId()),
		zap.Any("reason", reason), zap.String("message", fmt.Sprintf("%T", msg)))
	failPanicked("pipeline", msg, reason)
	for _, ref := range w.pipes {
		if ref.pid.Equal(child) {
			ref.panicked = fmt.Sprint(reason)
		}
	}
	sup.StopChildren(child)
}

// onPipelineGone handles the end of a pipeline actor. Only one that
// panicked matters here (others stop with their workspace): its run is
// failed, and a supervised pipeline is relaunched in a new actor with the
// same run ID after the backoff, unless it has reached restart_max.
func (w *workspace) onPipelineGone(ctx actor.Context, who *actor.PID) {
	var ref *pipelineRef
	for _, r := range w.pipes {
		if r.pid.Equal(who) && r.panicked != "" {
			ref = r
		}
	}
	if ref == nil {
		return
	}
	why := ref.panicked
	ref.panicked = ""
	info := &ref.info
	now := w.rt.now()
	info.EndedAt = now
	info.NextStartAt = time.Time{}
	info.Error = "the pipeline's supervisor failed: " + why
	// A new slice: views handed out earlier share the old one.
	info.Nodes = slices.Clone(info.Nodes)
	for i := range info.Nodes {
		if !info.Nodes[i].State.Ended() {
			info.Nodes[i].State = messages.CommandFailed
			info.Nodes[i].Pid = 0
		}
	}
	spec := ref.cfg.spec
	switch {
	case w.removing != nil || ref.stop != nil:
		info.State = messages.PipelineStopped
	case !spec.RestartOnFailure:
		info.State = messages.PipelineFailed
	case spec.RestartMax > 0 && int64(info.Restarts) >= spec.RestartMax:
		info.State = messages.PipelineGaveUp
	default:
		delay := NextBackoff(spec.Backoffs, &ref.streak, now.Sub(info.StartedAt))
		cfg := ref.cfg
		cfg.restarts = info.Restarts
		cfg.startAfter = delay
		cfg.rings = make(map[string]*logring.Ring, len(cfg.plans))
		for _, pl := range cfg.plans {
			cfg.rings[pl.label] = logring.New(w.rt.LogRingBytes)
		}
		// A new name: the old supervisor's goroutines (node waits, a
		// launch under way) still send to its PID, and what they send
		// must reach the dead-letter hook, not the new supervisor.
		ref.relaunches++
		pid, err := ctx.SpawnNamed(newPipelineProps(cfg), fmt.Sprintf("pipe-%s-%d", cfg.id, ref.relaunches))
		if err != nil {
			w.logger().Error("relaunch pipeline actor", zap.String("run", cfg.id), zap.Error(err))
			info.State = messages.PipelineFailed
			break
		}
		ref.pid, ref.cfg, ref.rings = pid, cfg, cfg.rings
		info.State = messages.PipelineBackoff
		info.NextStartAt = now.Add(delay)
	}
	kind := messages.EventFailed
	if info.State == messages.PipelineGaveUp {
		kind = messages.EventGaveUp
	}
	w.rt.publish(messages.Event{Kind: kind, Workspace: w.id, Label: w.spec.Label, Pipeline: spec.Label,
		Message: info.Error})
	w.tellSampler(ctx)
	if info.State.Ended() {
		w.maybeReap()
	}
}

// fail releases what a launched run holds when its pipeline is gone (the
// message reached a dead actor, or its handling panicked before the
// pipeline took it).
func (m *runLaunched) fail(err error) { m.rt.failHeld(m.to, m, err) }

// release kills the nodes' process groups and closes the pipes, from
// goroutines of the runtime (it may run in a Receive). The nodes' waits
// still reap them.
func (m *runLaunched) release(error) {
	pgids := make([]int, 0, len(m.procs))
	for _, pr := range m.procs {
		pgids = append(pgids, pr.Pid)
	}
	m.rt.killGroups(pgids...)
	var files []*os.File
	for _, src := range m.sources {
		files = append(files, src)
	}
	for _, sinks := range m.sinks {
		for _, s := range sinks {
			files = append(files, s.w)
		}
	}
	m.rt.closeFiles(files...)
}
