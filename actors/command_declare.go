// This file is the declarative side of the workspace actor's commands:
// readiness and health probes, depends_on ordering, and cron schedules.
// The decisions are supervise's (Probes, DepMet, Scheduler); probes run in
// goroutines of the runtime and come back as messages, and every wait is a
// timer of the runtime: nothing here blocks Receive.

package actors

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/probe"
	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/internal/supervise"
	"github.com/shipote/shipote/messages"
)

// cmdDecl is the declarative state of one command.
type cmdDecl struct {
	probes      *supervise.Probes
	probeCancel [2]func() // the armed probe timers, by supervise.ProbeKind
	probeRun    [2]func() // end the probes under way (a run ended)
	sched       *supervise.Scheduler
	schedCancel func()
	// waiting: it has not started, held until its dependencies are met.
	waiting bool
	// lastOK: the last run of a scheduled command succeeded.
	lastOK bool
	// unhealthy is set when the current run is killed for failing its
	// health probe: however it exits, the run failed.
	unhealthy bool
	// killCancel is the SIGKILL timer of a run being killed for its
	// health or replaced by a scheduled run.
	killCancel func()
	// replace: a scheduled run waits for the current one to end.
	replace bool
	// restartNote is said in the event of the next start (why it was
	// restarted).
	restartNote string
	// ran: a run has spawned (the next one is a restart).
	ran bool
}

// Internal messages of this file.
type (
	probeDue struct {
		cmd  string
		gen  int
		kind supervise.ProbeKind
	}
	probeDone struct {
		cmd  string
		gen  int
		kind supervise.ProbeKind
		err  error
	}
	runKill struct {
		cmd string
		gen int
	}
	scheduleDue struct {
		cmd string
		due time.Time
	}
)

// newDecl builds the declarative state of a command with spec ref; ref
// has been validated (its schedule parses).
func newDecl(ref *messages.CommandRef) cmdDecl {
	d := cmdDecl{probes: supervise.NewProbes(ref.Ready, ref.Health)}
	if ref.Schedule != "" {
		if s, err := messages.ParseSchedule(ref.Schedule); err == nil {
			d.sched = supervise.NewScheduler(s, ref.EffectiveConcurrency())
		}
	}
	return d
}

// onDeclared handles the messages of this file; it reports whether msg
// was one.
func (w *workspace) onDeclared(msg any) bool {
	switch m := msg.(type) {
	case *probeDue:
		w.onProbeDue(m)
	case *probeDone:
		w.onProbeDone(m)
	case *runKill:
		w.onRunKill(m)
	case *scheduleDue:
		w.onScheduleDue(m)
	default:
		return false
	}
	return true
}

// checkDependsOn refuses a new command whose depends_on would close a
// cycle among the workspace's commands, naming its path.
func (w *workspace) checkDependsOn(ref *messages.CommandRef) error {
	if len(ref.DependsOn) == 0 {
		return nil
	}
	deps := make(map[string][]string, len(w.byLabel)+1)
	for label, id := range w.byLabel {
		spec := &w.cmds[id].info.Spec
		deps[label] = append(deps[label], spec.DependsOn...)
		if spec.InstanceOf != "" {
			// A dependency on a declaration is one on each of its copies.
			deps[spec.InstanceOf] = append(deps[spec.InstanceOf], label)
		}
	}
	deps[ref.Label] = append(deps[ref.Label], ref.DependsOn...)
	if ref.InstanceOf != "" {
		deps[ref.InstanceOf] = append(deps[ref.InstanceOf], ref.Label)
	}
	if cycle := messages.FindCycle(deps); cycle != nil {
		return messages.CycleError("depends_on", cycle)
	}
	return nil
}

// launch starts a command that is ready to run (exec, start): a scheduled
// one waits for its next time, one with unmet dependencies waits for them;
// in both cases its pending reply is answered now. Anything else starts.
func (w *workspace) launch(c *command) {
	d := &c.decl
	switch {
	case d.sched != nil:
		c.info.State = messages.CommandScheduled
		w.armSchedule(c)
		w.answerHeld(c)
	case len(w.waitingOn(c)) > 0:
		d.waiting = true
		c.info.State = messages.CommandStarting
		c.info.Readiness = messages.ReadyWaiting
		c.info.WaitingOn = w.waitingOn(c)
		w.answerHeld(c)
	default:
		w.start(c)
	}
}

// answerHeld answers the pending reply of a command that does not start
// now; declared state is answered once it is durable.
func (w *workspace) answerHeld(c *command) {
	w.rt.dirty()
	if !c.pending.IsSet() {
		c.restarting, c.restored = false, false
		return
	}
	if c.declared() && !c.restored {
		w.commitStart(c, c.pending)
	} else {
		c.pending.OK(c.info)
	}
	c.pending = Reply[messages.CommandInfo]{}
	c.restarting, c.restored = false, false
}

// depState is what a dependent sees of the command labelled label.
func (w *workspace) depState(label string) supervise.DepState {
	if id, ok := w.byLabel[label]; ok {
		return cmdDepState(w.cmds[id])
	}
	// A declaration with instances (label-0 ...): met when every copy is.
	var st supervise.DepState
	for _, id := range w.byLabel {
		c := w.cmds[id]
		if c.info.Spec.InstanceOf != label {
			continue
		}
		one := cmdDepState(c)
		if !st.Exists {
			st = one
			continue
		}
		st.OneShot = st.OneShot && one.OneShot
		st.Ready = st.Ready && one.Ready
		st.Succeeded = st.Succeeded && one.Succeeded
	}
	return st
}

func cmdDepState(c *command) supervise.DepState {
	return supervise.DepState{
		Exists:    true,
		OneShot:   c.info.Spec.Supervision.OneShot(),
		Ready:     c.decl.probes.Ready(),
		Succeeded: c.info.State == messages.CommandExited || c.info.State == messages.CommandScheduled && c.decl.lastOK,
	}
}

func (w *workspace) waitingOn(c *command) []string {
	return supervise.Waiting(c.info.Spec.DependsOn, w.depState)
}

// checkWaiting starts every waiting command whose dependencies are now
// met, in the order they were declared.
func (w *workspace) checkWaiting() {
	if w.removing != nil {
		return
	}
	for _, id := range slices.Clone(w.order) {
		c, ok := w.cmds[id]
		if !ok || !c.decl.waiting || c.stop != nil {
			continue
		}
		waiting := w.waitingOn(c)
		if len(waiting) > 0 {
			c.info.WaitingOn = waiting
			continue
		}
		c.decl.waiting = false
		c.info.WaitingOn = nil
		c.info.Readiness = ""
		w.start(c)
	}
}

// runUp starts the probing of a run that just spawned.
func (w *workspace) runUp(c *command) {
	d := &c.decl
	d.killCancel = nil
	d.unhealthy = false
	d.ran = true
	if d.probes.Spawned() {
		w.becameReady(c)
	} else {
		c.followProbes()
	}
	w.armProbe(c, supervise.ReadyProbe, 0)
	if c.info.Spec.Health != nil {
		w.armProbe(c, supervise.HealthProbe, c.info.Spec.Health.Interval())
	}
}

// runDown ends the probing of a run that ended.
func (w *workspace) runDown(c *command) {
	d := &c.decl
	d.probes.Ended()
	d.stopProbes()
	if d.killCancel != nil {
		d.killCancel()
		d.killCancel = nil
	}
	c.info.Readiness = ""
}

// followProbes sets the state and readiness of c's run from its probes:
// starting, ready (running without a ready probe) or unhealthy.
func (c *command) followProbes() {
	c.info.State, c.info.Readiness = c.decl.probes.State(), c.decl.probes.Readiness()
}

func (w *workspace) becameReady(c *command) {
	c.followProbes()
	w.rt.publish(messages.Event{Kind: messages.EventReady, Workspace: w.id, Label: w.spec.Label,
		Command: c.info.Label, Message: fmt.Sprintf("pid %d", c.info.Pid)})
	w.checkWaiting()
}

func probeOf(c *command, k supervise.ProbeKind) *messages.Probe {
	if k == supervise.ReadyProbe {
		return c.info.Spec.Ready
	}
	return c.info.Spec.Health
}

// armProbe sets the timer of the next probe of kind k, if the run wants
// one.
func (w *workspace) armProbe(c *command, k supervise.ProbeKind, after time.Duration) {
	if probeOf(c, k) == nil {
		return
	}
	c.decl.probeCancel[k] = w.rt.after(after, w.self, &probeDue{cmd: c.info.ID, gen: c.gen, kind: k})
}

func (w *workspace) onProbeDue(m *probeDue) {
	c, ok := w.cmds[m.cmd]
	if !ok || c.gen != m.gen || c.proc == nil || w.removing != nil {
		return
	}
	c.decl.probeCancel[m.kind] = nil
	if !c.decl.probes.Wants(m.kind) {
		// The health probe waits for readiness: look again later.
		if m.kind == supervise.HealthProbe && c.info.Readiness != messages.ReadyUnhealthy {
			w.armProbe(c, m.kind, probeOf(c, m.kind).Interval())
		}
		return
	}
	p := probeOf(c, m.kind)
	env := probe.Env{Starter: w.rt.Spawner, Spec: w.spawnSpec("", nil, c.env, c.info.Spec.Soma)}
	ctx, cancel := context.WithCancel(context.Background())
	c.decl.probeRun[m.kind] = cancel
	rt, self, id, gen, kind := w.rt, w.self, c.info.ID, c.gen, m.kind
	rt.Go(func() {
		defer cancel()
		err := probe.Run(ctx, p, env)
		rt.send(self, &probeDone{cmd: id, gen: gen, kind: kind, err: err})
	})
}

func (w *workspace) onProbeDone(m *probeDone) {
	c, ok := w.cmds[m.cmd]
	if !ok || c.gen != m.gen || c.proc == nil || w.removing != nil {
		return
	}
	c.decl.probeRun[m.kind] = nil
	p := probeOf(c, m.kind)
	switch c.decl.probes.Result(m.kind, m.err == nil) {
	case supervise.BecameReady:
		w.becameReady(c)
	case supervise.BecameNotReady:
		c.followProbes() // starting again
		w.logger().Info("command not ready", zap.String("command", c.info.Label), zap.Error(m.err))
	case supervise.BecameUnhealthy:
		c.followProbes()
		c.info.Error = fmt.Sprintf("unhealthy: %v", m.err)
		c.decl.restartNote = fmt.Sprintf("unhealthy after %d failed health probes: %v", p.Threshold(), m.err)
		w.logger().Warn("command unhealthy", zap.String("command", c.info.Label), zap.Error(m.err))
		w.rt.publish(messages.Event{Kind: messages.EventUnhealthy, Workspace: w.id, Label: w.spec.Label,
			Command: c.info.Label, Message: c.decl.restartNote})
		c.decl.unhealthy = true
		w.killRun(c)
		return
	}
	w.armProbe(c, m.kind, p.Interval())
}

// killRun ends the current run of c (not a stop: its supervision decides
// what follows): its stop_signal, then SIGKILL after its stop timeout.
func (w *workspace) killRun(c *command) {
	if c.proc == nil || c.decl.killCancel != nil {
		return
	}
	sig := unix.SIGTERM
	if s, err := messages.ParseSignal(c.info.Spec.StopSignal); c.info.Spec.StopSignal != "" && err == nil {
		sig = s
	}
	timeout := w.rt.Grace
	if ms := c.info.Spec.StopTimeoutMs; ms > 0 {
		timeout = time.Duration(ms) * time.Millisecond
	}
	pgid := c.proc.Pid
	w.rt.Go(func() { _ = proc.KillGroup(pgid, sig) })
	c.decl.killCancel = w.rt.after(timeout, w.self, &runKill{cmd: c.info.ID, gen: c.gen})
}

func (w *workspace) onRunKill(m *runKill) {
	c, ok := w.cmds[m.cmd]
	if !ok || c.gen != m.gen || c.proc == nil {
		return
	}
	pgid := c.proc.Pid
	w.rt.Go(func() { _ = proc.KillGroup(pgid, unix.SIGKILL) })
}

// armSchedule sets the timer of the next scheduled run (no backfill: the
// first time after now).
func (w *workspace) armSchedule(c *command) {
	d := &c.decl
	if d.schedCancel != nil {
		d.schedCancel()
	}
	now := w.rt.now()
	due := d.sched.Arm(now)
	c.info.NextRunAt = due
	d.schedCancel = w.rt.after(due.Sub(now), w.self, &scheduleDue{cmd: c.info.ID, due: due})
}

func (w *workspace) onScheduleDue(m *scheduleDue) {
	c, ok := w.cmds[m.cmd]
	if !ok || c.decl.sched == nil || w.removing != nil || c.stop != nil {
		return
	}
	running := c.proc != nil || c.info.State == messages.CommandStarting
	act, ok := c.decl.sched.Fire(m.due, running)
	if !ok {
		return
	}
	c.decl.schedCancel = nil
	w.armSchedule(c)
	switch act {
	case supervise.RunStart:
		c.decl.restartNote = "scheduled"
		w.start(c)
	case supervise.RunSkip:
		w.rt.publish(messages.Event{Kind: messages.EventSkipped, Workspace: w.id, Label: w.spec.Label,
			Command: c.info.Label, Message: fmt.Sprintf("run due at %s skipped: the last run still runs (concurrency: forbid)", m.due.Format(time.RFC3339))})
	case supervise.RunReplace:
		c.decl.replace = true
		w.killRun(c)
	case supervise.RunBeside:
		ref := c.info.Spec
		ref.Schedule, ref.Concurrency = "", ""
		ref.Label = w.freeLabel(c.info.Label + "-run")
		w.exec(&ExecCommand{Workspace: w.id, Command: ref})
	}
}

// declaredEnded follows the end of a run (not a stop): a scheduled
// command waits for its next run again, or starts the run that replaces
// it; dependents may start.
func (w *workspace) declaredEnded(c *command, success bool) {
	d := &c.decl
	if d.sched != nil && !d.sched.Due().IsZero() {
		d.lastOK = success
		c.info.State = messages.CommandScheduled
		if d.replace {
			d.replace = false
			d.restartNote = "replacing the last run (concurrency: replace)"
			w.start(c)
		}
	}
	w.checkWaiting()
}

// declaredStop stops what only this file keeps going: a schedule waiting
// for its time and a command waiting for its dependencies. It reports
// whether c had nothing else to stop (the stop is finished).
func (w *workspace) declaredStop(c *command) bool {
	d := &c.decl
	if d.sched != nil {
		d.sched.Disarm()
		if d.schedCancel != nil {
			d.schedCancel()
			d.schedCancel = nil
		}
		c.info.NextRunAt = time.Time{}
		d.replace = false
	}
	switch {
	case d.waiting:
		d.waiting = false
		c.info.Readiness, c.info.WaitingOn = "", nil
		c.stop.result = "stopped while waiting for its dependencies"
		return true
	case c.info.State == messages.CommandScheduled && c.proc == nil:
		c.stop.result = "schedule stopped"
		return true
	}
	return false
}

// declaredShutdown cancels the timers of c as its workspace goes away;
// a command that waits (for its time or its dependencies) counts as
// exited.
func (w *workspace) declaredShutdown(c *command) {
	d := &c.decl
	if d.schedCancel != nil {
		d.schedCancel()
		d.schedCancel = nil
	}
	if d.sched != nil {
		d.sched.Disarm()
	}
	d.stopProbes()
	if d.waiting || c.info.State == messages.CommandScheduled {
		d.waiting = false
		c.info.State = messages.CommandExited
	}
}

// stopProbes cancels the probe timers and ends the probes under way.
func (d *cmdDecl) stopProbes() {
	for i := range d.probeCancel {
		for _, f := range []*func(){&d.probeCancel[i], &d.probeRun[i]} {
			if *f != nil {
				(*f)()
				*f = nil
			}
		}
	}
}

// startNote is the reason said in a restarted event, once.
func (c *command) startNote() string {
	n := c.decl.restartNote
	c.decl.restartNote = ""
	if n == "" {
		return ""
	}
	return " (" + n + ")"
}
