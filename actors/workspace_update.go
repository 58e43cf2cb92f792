// This file owns changing a live workspace's resource envelope in place:
// the new limits are written to its group by a goroutine, then made
// durable, then answered. Receives UpdateSoma and somaUpdated.

package actors

import (
	"fmt"
	"slices"

	"github.com/asynkron/protoactor-go/actor"

	"go.uber.org/zap"

	"github.com/shipote/shipote/internal/limits"
	"github.com/shipote/shipote/internal/supervise"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
)

// UpdateSoma is protocol.UpdateSoma.
type UpdateSoma = protocol.UpdateSoma

// specChanged tells the engine a workspace's spec changed in place, so its
// registry (the snapshot's fallback for a workspace that does not answer)
// holds the spec in effect.
type specChanged struct {
	id   string
	pid  *actor.PID
	spec *messages.WorkspaceSpec // a new value, never changed after
}

// somaUpdated carries the outcome of writing new limits to the group.
type somaUpdated struct {
	req  *UpdateSoma
	old  messages.Soma
	undo bool // writing the old limits back after a failed commit
	err  error
}

func toLimits(s messages.Soma) limits.Limits {
	return limits.Limits{MemoryMaxBytes: s.MemoryMaxBytes, CPUMax: s.CPUMax, PidsMax: s.PidsMax, NofileMax: s.NofileMax}
}

// writeLimits writes s to the group in a goroutine and reports back.
func (w *workspace) writeLimits(s messages.Soma, report *somaUpdated) {
	g, rt, self := w.group, w.rt, w.self
	rt.Go(func() {
		if g != nil {
			if u, ok := g.(limits.Updater); ok {
				report.err = u.Update(toLimits(s))
			} else {
				report.err = limits.ErrNotUpdatable
			}
		}
		rt.send(self, report)
	})
}

func (w *workspace) updateSoma(m *UpdateSoma) {
	switch {
	case w.removing != nil:
		m.Reply.Fail(fmt.Errorf("workspace %s is being removed: %w", w.spec.Label, messages.ErrConflict))
		return
	case w.updatingSoma:
		m.Reply.Fail(fmt.Errorf("workspace %s: its limits are being changed: %w", w.spec.Label, messages.ErrConflict))
		return
	}
	// Validate the envelope alone: the rest of the spec is unchanged.
	if err := m.Soma.Validate("soma"); err != nil {
		m.Reply.Fail(err)
		return
	}
	if m.Soma.NofileMax != w.spec.Soma.NofileMax {
		m.Reply.Fail(&messages.FieldError{Field: "soma.nofile_max",
			Message: "cannot change in place: it is an rlimit fixed when each process starts"})
		return
	}
	for _, id := range w.order {
		c := w.cmds[id]
		if c.info.State.Ended() {
			continue
		}
		if err := c.info.Spec.Soma.Within("soma", m.Soma); err != nil {
			m.Reply.Fail(fmt.Errorf("command %s: %w", c.info.Label, err))
			return
		}
	}
	w.updatingSoma = true
	w.writeLimits(m.Soma, &somaUpdated{req: m, old: w.spec.Soma})
}

func (w *workspace) onSomaUpdated(m *somaUpdated) {
	if m.undo {
		// The old limits are back (or could not be put back): the next
		// update may begin.
		w.updatingSoma = false
		if m.err != nil {
			w.logger().Error("could not restore the limits of a refused update", zap.Error(m.err))
		}
		return
	}
	if m.err != nil {
		// Part of the new limits may be written (memory, then cpu, then
		// pids): put the old ones back, so the kernel keeps what the
		// spec says.
		m.req.Reply.Fail(fmt.Errorf("workspace %s: change limits: %w", w.spec.Label, m.err))
		w.writeLimits(m.old, &somaUpdated{req: m.req, undo: true})
		return
	}
	w.setSoma(m.req.Soma)
	w.txn = m.req.Txn
	w.askCommit(func(err error) {
		if err != nil {
			// Not durable, so not in effect; updatingSoma stays set until
			// the old limits are written back.
			w.setSoma(m.old)
			w.writeLimits(m.old, &somaUpdated{req: m.req, undo: true})
			m.req.Reply.Fail(notSaved("change limits", err))
			return
		}
		w.updatingSoma = false
		w.rt.publish(messages.Event{Kind: messages.EventUpdated, Workspace: w.id, Label: w.spec.Label, Message: "limits changed in place"})
		m.req.Reply.OK(w.info())
	})
	w.txn = 0
	if m.req.Txn != 0 {
		m.req.Reply.OK(w.info()) // joined; a second answer is ignored
	}
}

func (w *workspace) setSoma(s messages.Soma) {
	spec := *w.spec // shared with the engine's entry: replaced, not changed
	spec.Soma = s
	w.spec = &spec
	w.quota = supervise.NewQuota(w.spec.QuotaEnforce, s)
	w.republishView() // lists read the spec from the published view
	w.rt.send(w.engine, &specChanged{id: w.id, pid: w.self, spec: w.spec})
}

// declare records supervised commands and pipelines to start later with
// their IDs (m.Commands, m.Pipelines): the snapshot lists them from now
// on. Or it drops declarations (m.Drop) whose start failed. Either way the
// change is made durable (in m.Txn when set, then answered at once).
func (w *workspace) declare(m *Declare) {
	if w.removing != nil && len(m.Drop) == 0 {
		m.Reply.Fail(fmt.Errorf("workspace %s is being removed: %w", w.spec.Label, messages.ErrConflict))
		return
	}
	cmds, pipes := m.Commands, m.Pipelines
	w.declCmds = append(w.declCmds, cmds...)
	w.declPipes = append(w.declPipes, pipes...)
	for _, id := range m.Drop {
		w.undeclare(id)
	}
	w.rt.dirty()
	w.txn = m.Txn
	w.askCommit(func(err error) {
		if err != nil {
			for _, c := range cmds {
				w.undeclare(c.ID)
			}
			for _, p := range pipes {
				w.undeclare(p.ID)
			}
		}
		if m.Txn != 0 {
			return
		}
		if err != nil {
			m.Reply.Fail(notSaved("declare", err))
			return
		}
		m.Reply.OK(struct{}{})
	})
	w.txn = 0
	if m.Txn != 0 {
		m.Reply.OK(struct{}{})
	}
}

// undeclare drops the declaration of the command or pipeline run id, if
// there is one: it starts (and is listed as running), or it will not.
func (w *workspace) undeclare(id string) {
	w.declCmds = slices.DeleteFunc(w.declCmds, func(c LiveCommand) bool { return c.ID == id })
	w.declPipes = slices.DeleteFunc(w.declPipes, func(p LivePipeline) bool { return p.ID == id })
}
