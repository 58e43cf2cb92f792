// This file is the command-control side of the workspace actor: stop,
// start, restart, signal and forget one command, and stop them all. A stop
// sends the command's stop_signal to its process group, and SIGKILL after
// its stop_timeout_ms; the signals go out from goroutines, and the outcome
// comes back with the command's exit.

package actors

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/askproc"
	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/internal/supervise"
	"github.com/shipote/shipote/messages"
)

// cmdStop is a stop in progress.
type cmdStop struct {
	at      time.Time
	sig     syscall.Signal
	timeout time.Duration
	killed  bool // the timeout passed and SIGKILL went out
	replies []Reply[messages.CommandInfo]
	// then runs once the command has ended (a restart's start).
	then   func()
	cancel func()
	// keep: the command stays declared (a restart); else it leaves the
	// state file, and the signal goes out only once that is durable.
	keep bool
	// committed: no write was needed, or it is done.
	committed bool
	// sent: the stop signal went out.
	sent bool
	// exit and ran record a run that ended while the write was under way.
	exit *proc.ExitStatus
	ran  time.Duration
	// result overrides how the stop is described.
	result string
	// done run once the stop is over, whether it stopped the command or
	// its write failed (stopAll's next layer).
	done []func()
}

// startCommitted carries the outcome of the write that declared a
// supervised command's start.
type startCommitted struct {
	cmd   string
	gen   int
	info  messages.CommandInfo
	reply Reply[messages.CommandInfo]
	err   error
}

// stopCommitted carries the outcome of the write that took a supervised
// command out of the state file before its stop.
type cmdStopCommitted struct {
	cmd  string
	stop *cmdStop
	err  error
}

type stopTimeout struct {
	cmd string
	gen int
}

type signalSent struct {
	reply Reply[messages.CommandInfo]
	info  messages.CommandInfo
	sig   syscall.Signal
	err   error
}

func (w *workspace) control(m *ControlCommand) {
	c := w.findCommand(m.Command)
	if c == nil {
		m.Reply.Fail(fmt.Errorf("command %q in workspace %s: %w", m.Command, w.spec.Label, messages.ErrNotFound))
		return
	}
	if w.removing != nil && m.Op != CmdStop {
		m.Reply.Fail(fmt.Errorf("workspace %s is being removed: %w", w.spec.Label, messages.ErrConflict))
		return
	}
	switch m.Op {
	case CmdStop:
		if c.info.State.Ended() {
			m.Reply.Fail(fmt.Errorf("command %s is not running (%s): %w", c.info.Label, c.info.State, messages.ErrConflict))
			return
		}
		w.txn = m.Txn
		w.stopCommand(c, m.Reply, nil)
		w.txn = 0
		m.Prepared.OK(struct{}{})
	case CmdStart:
		if !c.info.State.Ended() {
			m.Reply.Fail(fmt.Errorf("command %s is already %s: %w", c.info.Label, c.info.State, messages.ErrConflict))
			return
		}
		w.startAgain(c, m.Reply)
	case CmdRestart:
		if c.info.State.Ended() {
			w.startAgain(c, m.Reply)
			return
		}
		reply := m.Reply
		w.stopCommand(c, Reply[messages.CommandInfo]{}, func() { w.startAgain(c, reply) })
	case CmdSignal:
		if c.proc == nil { // starting, ready and unhealthy runs have one too
			m.Reply.Fail(fmt.Errorf("command %s is not running (%s): %w", c.info.Label, c.info.State, messages.ErrConflict))
			return
		}
		pgid, sig, info, reply, rt, self := c.proc.Pid, m.Signal, c.info, m.Reply, w.rt, w.self
		rt.Go(func() {
			err := proc.KillGroup(pgid, sig)
			rt.send(self, &signalSent{reply: reply, info: info, sig: sig, err: err})
		})
	case CmdRemove:
		if !c.info.State.Ended() {
			m.Reply.Fail(fmt.Errorf("command %s is %s; stop it first: %w", c.info.Label, c.info.State, messages.ErrConflict))
			return
		}
		info := c.info
		w.forget(c)
		c.ring.Close()
		w.rt.dirty()
		w.rt.publish(messages.Event{Kind: messages.EventRemoved, Workspace: w.id, Label: w.spec.Label,
			Command: info.Label, Message: "command " + info.ID + " forgotten"})
		w.publishView() // a list after the answer no longer counts it
		m.Reply.OK(info)
	}
}

// stopCommandDone is stopCommand with done run once the stop is over
// (stopped, or its write failed).
func (w *workspace) stopCommandDone(c *command, reply Reply[messages.CommandInfo], done func()) {
	if c.stop == nil {
		w.stopCommandWith(c, reply, nil, done)
		return
	}
	c.stop.done = append(c.stop.done, done)
	w.stopCommand(c, reply, nil)
}

// stopCommand stops c gracefully; reply (if any) gets its view once it
// has ended, then runs.
func (w *workspace) stopCommand(c *command, reply Reply[messages.CommandInfo], then func()) {
	w.stopCommandWith(c, reply, then, nil)
}

func (w *workspace) stopCommandWith(c *command, reply Reply[messages.CommandInfo], then, done func()) {
	if s := c.stop; s != nil {
		if reply.IsSet() {
			s.replies = append(s.replies, reply)
		}
		if then != nil {
			prev := s.then
			s.then = func() {
				if prev != nil {
					prev()
				}
				then()
			}
		}
		return
	}
	sig := unix.SIGTERM
	if c.info.Spec.StopSignal != "" {
		if s, err := messages.ParseSignal(c.info.Spec.StopSignal); err == nil {
			sig = s
		}
	}
	timeout := w.rt.Grace
	if ms := c.info.Spec.StopTimeoutMs; ms > 0 {
		timeout = time.Duration(ms) * time.Millisecond
	}
	s := &cmdStop{at: w.rt.now(), sig: sig, timeout: timeout, then: then, keep: then != nil}
	if done != nil {
		s.done = append(s.done, done)
	}
	if reply.IsSet() {
		s.replies = append(s.replies, reply)
	}
	wasDeclared := c.declared()
	c.stop = s
	if (wasDeclared && !s.keep) || w.txn != 0 {
		// A supervised command leaves the state file before it is
		// stopped; a stop whose write fails leaves it as it was. In a
		// transaction every stop waits for its commit.
		rt, self, id := w.rt, w.self, c.info.ID
		w.askCommit(func(err error) {
			rt.send(self, &cmdStopCommitted{cmd: id, stop: s, err: err})
		})
		return
	}
	s.committed = true
	w.proceedStop(c)
}

// proceedStop carries out a stop whose write (if it needed one) is done.
func (w *workspace) proceedStop(c *command) {
	if w.declaredStop(c) {
		c.sup.Stop()
		w.finishStop(c)
		return
	}
	res := c.sup.Stop()
	switch {
	case c.proc != nil:
		w.sendStop(c)
	case res == supervise.StopCancel:
		// Nothing runs: it just does not restart.
		if c.cancel != nil {
			c.cancel()
			c.cancel = nil
		}
		c.info.NextStartAt = time.Time{}
		c.stop.result = "stopped while waiting to restart"
		w.finishStop(c)
	case c.info.State.Ended():
		// It ended on its own while the stop's write was under way.
		w.finishStop(c)
	} // starting: onSpawned goes on
}

func (w *workspace) onCmdStopCommitted(m *cmdStopCommitted) {
	c, ok := w.cmds[m.cmd]
	if !ok || c.stop != m.stop {
		return
	}
	if m.err != nil {
		c.stop = nil
		for _, r := range m.stop.replies {
			r.Fail(notSaved(fmt.Sprintf("command %s not stopped", c.info.Label), m.err))
		}
		for _, f := range m.stop.done {
			f()
		}
		switch {
		case m.stop.exit != nil:
			// It ended meanwhile: decide as if no stop had been asked.
			w.afterRun(c, *m.stop.exit, m.stop.ran)
		case c.info.State == messages.CommandBackoff && c.cancel == nil:
			c.cancel = w.rt.after(0, w.self, &restartDue{cmd: c.info.ID, gen: c.gen})
		}
		return
	}
	m.stop.committed = true
	w.proceedStop(c)
}

// commitStart answers reply once a snapshot holding c (a supervised
// command that just started) is durable; if that write fails, the command
// is killed and forgotten, and the caller gets the cause.
func (w *workspace) commitStart(c *command, reply Reply[messages.CommandInfo]) {
	rt, self, id, gen, info := w.rt, w.self, c.info.ID, c.gen, c.info
	w.askCommit(func(err error) {
		rt.send(self, &startCommitted{cmd: id, gen: gen, info: info, reply: reply, err: err})
	})
}

func (w *workspace) onStartCommitted(m *startCommitted) {
	if m.err == nil {
		m.reply.OK(m.info)
		return
	}
	m.reply.Fail(notSaved(fmt.Sprintf("command %s not started", m.info.Label), m.err))
	if c, ok := w.cmds[m.cmd]; ok {
		w.undoStart(c)
	}
}

// undoStart kills and forgets a started command whose start could not be
// made durable: it was never in effect.
func (w *workspace) undoStart(c *command) {
	c.undo = true
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	if c.proc != nil {
		pgid := c.proc.Pid
		w.rt.Go(func() { _ = proc.KillGroup(pgid, unix.SIGKILL) })
		return // forgotten once it has exited
	}
	// Not running (waiting, scheduled, or its spawn still under way: a run
	// that spawns for a forgotten command is killed by onSpawned).
	w.declaredShutdown(c)
	w.forget(c)
	c.ring.Close()
}

// sendStop signals a running command's group and arms the timeout.
func (w *workspace) sendStop(c *command) {
	s := c.stop
	if s.sent {
		return
	}
	s.sent = true
	pgid, sig := c.proc.Pid, s.sig
	w.rt.Go(func() { _ = proc.KillGroup(pgid, sig) })
	s.cancel = w.rt.after(s.timeout, w.self, &stopTimeout{cmd: c.info.ID, gen: c.gen})
}

func (w *workspace) onStopTimeout(m *stopTimeout) {
	c, ok := w.cmds[m.cmd]
	if !ok || c.gen != m.gen || c.stop == nil || c.proc == nil {
		return
	}
	c.stop.killed = true
	pgid := c.proc.Pid
	w.rt.Go(func() { _ = proc.KillGroup(pgid, unix.SIGKILL) })
}

// finishStop records how a stop ended, once the command's run is over.
func (w *workspace) finishStop(c *command) {
	s := c.stop
	c.stop = nil
	if s.cancel != nil {
		s.cancel()
	}
	result := s.result
	switch {
	case result != "":
	case s.killed:
		result = fmt.Sprintf("killed after the %s timeout", s.timeout)
	default:
		result = fmt.Sprintf("stopped by %s after %s", proc.SignalName(s.sig), w.rt.now().Sub(s.at).Round(time.Millisecond))
	}
	w.markStopped(c, messages.StopUser, result, s.then == nil)
	w.publishView() // a list after the answer no longer counts it alive
	for _, r := range s.replies {
		r.OK(c.info)
	}
	if s.then != nil {
		s.then()
	}
	for _, f := range s.done {
		f()
	}
}

// markStopped puts c in state stopped, with why and how; reap says whether
// the workspace may be reaped now (not in the middle of a restart).
func (w *workspace) markStopped(c *command, reason, result string, reap bool) {
	c.info.State = messages.CommandStopped
	c.info.StopReason = reason
	c.info.StopResult = result
	w.rt.dirty()
	w.rt.publish(messages.Event{Kind: messages.EventStopped, Workspace: w.id, Label: w.spec.Label,
		Command: c.info.Label, Message: result})
	if reap {
		w.maybeReap()
	}
}

// startAgain starts an ended command again with the same ID; reply gets
// its view once the process runs.
func (w *workspace) startAgain(c *command, reply Reply[messages.CommandInfo]) {
	if w.removing != nil {
		reply.Fail(fmt.Errorf("workspace %s is being removed: %w", w.spec.Label, messages.ErrConflict))
		return
	}
	if old, ok := w.byLabel[c.info.Label]; ok && old != c.info.ID && !w.cmds[old].info.State.Ended() {
		reply.Fail(fmt.Errorf("another command labelled %q runs in workspace %s (%s): %w", c.info.Label, w.spec.Label, old, messages.ErrConflict))
		return
	}
	put(&w.byLabel, c.info.Label, c.info.ID)
	c.sup.ResetBackoff()
	c.info.GaveUp = false
	c.info.StopReason = ""
	c.info.NextStartAt = time.Time{}
	if c.pending.IsSet() {
		c.pending.Fail(fmt.Errorf("command %s was started again: %w", c.info.Label, messages.ErrConflict))
	}
	c.pending = reply
	c.restarting = true
	w.launch(c)
}

// stopAll stops every command of the workspace that has not ended, in
// the reverse order of their depends_on: a command is stopped once every
// command that depends on it has ended.
func (w *workspace) stopAll(m *StopCommands) {
	var live []*command
	for _, id := range w.order {
		if c := w.cmds[id]; !c.info.State.Ended() {
			live = append(live, c)
		}
	}
	calls := make(map[string]askproc.Call[messages.CommandInfo], len(live))
	replies := make([]askproc.Call[messages.CommandInfo], 0, len(live))
	for _, c := range live {
		r := askproc.Begin[messages.CommandInfo](w.rt.asks())
		calls[c.info.ID] = r
		replies = append(replies, r)
	}
	w.stopLayers(stopLayers(live), calls)
	reply := m.Reply
	w.rt.Go(func() {
		out := make([]messages.CommandInfo, 0, len(replies))
		var errs []error
		for _, r := range replies {
			info, err := r.Wait(context.Background())
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, info)
		}
		if len(errs) > 0 {
			reply.Fail(fmt.Errorf("stop: %w", errs[0]))
			return
		}
		reply.OK(out)
	})
}

// stopLayers groups cmds for a stop: each layer holds the commands no
// command of a later layer depends on, dependents first.
func stopLayers(cmds []*command) [][]*command {
	left := slices.Clone(cmds)
	var layers [][]*command
	for len(left) > 0 {
		needed := make(map[string]bool)
		for _, c := range left {
			for _, d := range c.info.Spec.DependsOn {
				needed[d] = true
			}
		}
		var layer, rest []*command
		for _, c := range left {
			if needed[c.info.Label] || c.info.Spec.InstanceOf != "" && needed[c.info.Spec.InstanceOf] {
				rest = append(rest, c)
			} else {
				layer = append(layer, c)
			}
		}
		if len(layer) == 0 { // no cycle is accepted; stop the rest together
			layer, rest = rest, nil
		}
		layers = append(layers, layer)
		left = rest
	}
	return layers
}

// stopLayers stops the first layer, and each next one once the one
// before has ended; calls answers each command's stop.
func (w *workspace) stopLayers(layers [][]*command, calls map[string]askproc.Call[messages.CommandInfo]) {
	for len(layers) > 0 {
		layer, rest := layers[0], layers[1:]
		pending := 0
		next := func() {
			pending--
			if pending == 0 {
				w.stopLayers(rest, calls)
			}
		}
		var stops []*command
		for _, c := range layer {
			if c.info.State.Ended() {
				calls[c.info.ID].Reply.OK(c.info) // it ended meanwhile
				continue
			}
			stops = append(stops, c)
		}
		pending = len(stops) + 1
		for _, c := range stops {
			w.stopCommandDone(c, calls[c.info.ID].Reply, next)
		}
		pending--
		if pending > 0 {
			return // the last stop of this layer goes on with the rest
		}
		layers = rest
	}
}
