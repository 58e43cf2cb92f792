// This file is the retention side of the workspace actor: ended commands
// and pipeline runs are kept for inspection up to Runtime.KeepEnded of
// each, for at most Runtime.KeepEndedFor; then they are forgotten and their
// in-memory logs freed (log files follow their own retention).
// supervise.Retention decides which; this file carries it out and keeps a
// timer for the next one to age out.

package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shipote/shipote/internal/supervise"
	"github.com/shipote/shipote/messages"
)

// Retention defaults.
const (
	DefaultKeepEnded    = 100
	DefaultKeepEndedFor = time.Hour
)

func (rt *Runtime) retention() supervise.Retention {
	r := supervise.Retention{Keep: rt.KeepEnded, For: rt.KeepEndedFor}
	if r.Keep <= 0 {
		r.Keep = DefaultKeepEnded
	}
	if r.For <= 0 {
		r.For = DefaultKeepEndedFor
	}
	return r
}

// retainable reports whether retention may forget c: it has ended, nothing
// about it is under way, and it is not a supervised command stopped by the
// user (one that is started again by hand, so it stays until removed).
func (c *command) retainable() bool {
	return c.info.State.Ended() && c.proc == nil && !c.pending.IsSet() && c.stop == nil && c.cancel == nil &&
		!c.restarting && !c.undo &&
		!(c.info.State == messages.CommandStopped && c.info.Spec.Supervision.Restart != nil)
}

// retain forgets the ended commands and pipeline runs beyond the retention
// limits, and arms the timer for the next one to age out.
func (w *workspace) retain(ctx actor.Context) {
	if w.removing != nil {
		return
	}
	r, now := w.rt.retention(), w.rt.now()
	var cmds []supervise.Gone
	for _, id := range w.order {
		if c := w.cmds[id]; c.retainable() {
			at := c.info.ExitedAt
			if at.IsZero() {
				at = now
			}
			cmds = append(cmds, supervise.Gone{ID: id, At: at})
		}
	}
	drop, next := r.Drop(cmds, now)
	for _, id := range drop {
		w.drop(w.cmds[id])
	}
	var runs []supervise.Gone
	for _, id := range w.pipeOrder {
		if ref := w.pipes[id]; ref.info.State.Ended() && ref.stop == nil {
			at := ref.info.EndedAt
			if at.IsZero() {
				at = now
			}
			runs = append(runs, supervise.Gone{ID: id, At: at})
		}
	}
	dropRuns, nextRun := r.Drop(runs, now)
	for _, id := range dropRuns {
		w.dropRun(ctx, id)
	}
	if next.IsZero() || (!nextRun.IsZero() && nextRun.Before(next)) {
		next = nextRun
	}
	w.armRetention(next)
}

// armRetention makes sure the retention timer fires by at (zero: no timer
// needed).
func (w *workspace) armRetention(at time.Time) {
	if at.IsZero() {
		return
	}
	t := w.timer()
	if !t.retainAt.IsZero() && !t.retainAt.After(at) {
		return
	}
	if t.cancelRetain != nil {
		t.cancelRetain()
	}
	t.retainAt = at
	t.cancelRetain = w.rt.after(max(at.Sub(w.rt.now()), 0), w.self, &retentionDue{})
}

// drop forgets an ended command: its ring is freed, and its log file is
// closed once no other command has its label.
func (w *workspace) drop(c *command) {
	w.forget(c)
	c.ring.Close()
	if _, used := w.byLabel[c.info.Label]; !used {
		if lw, ok := w.logs[c.info.Label]; ok {
			delete(w.logs, c.info.Label)
			w.rt.closeLog(lw)
		}
	}
}

// dropRun forgets an ended pipeline run: its supervisor stops, which frees
// its rings.
func (w *workspace) dropRun(ctx actor.Context, id string) {
	ref := w.pipes[id]
	delete(w.pipes, id)
	for i, o := range w.pipeOrder {
		if o == id {
			w.pipeOrder = append(w.pipeOrder[:i], w.pipeOrder[i+1:]...)
			break
		}
	}
	ctx.Stop(ref.pid)
}
