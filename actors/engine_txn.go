// This file owns the engine's transactions: the steps of one apply join a
// transaction instead of asking for a write each, and CommitTxn makes all
// of their changes durable in one write (or undoes all of them). Receives
// CommitTxn; commitIn is what the engine's mutations call instead of
// commit when their request carries a Txn.

package actors

import (
	"errors"
	"fmt"

	"github.com/shipote/shipote/messages/protocol"
)

type (
	// Declare is protocol.Declare.
	Declare = protocol.Declare
	// CommitTxn is protocol.CommitTxn.
	CommitTxn = protocol.CommitTxn
)

// txn is an open transaction: the change its steps made so far, and
// their continuations, in the order they joined.
type txn struct {
	ch    protocol.Change
	thens []func(error)
}

// errTxnOver undoes a step that joins a transaction already committed or
// aborted (it arrived late): it was never part of a write.
var errTxnOver = errors.New("the transaction it belongs to has ended")

// commitIn is commit for a step of transaction id (0: no transaction,
// commit at once). A step joins: its change is merged into the
// transaction's and then runs with the outcome of the transaction's write.
func (e *engine) commitIn(id uint64, ch *protocol.Change, then func(error)) {
	if id == 0 {
		e.commit(ch, then)
		return
	}
	if id <= e.txnDone {
		then(errTxnOver)
		return
	}
	t := e.txns[id]
	if t == nil {
		if e.txns == nil {
			e.txns = make(map[uint64]*txn)
		}
		t = &txn{}
		e.txns[id] = t
	}
	t.ch.Created = append(t.ch.Created, ch.Created...)
	t.ch.Removed = append(t.ch.Removed, ch.Removed...)
	t.ch.Changed = append(t.ch.Changed, ch.Changed...)
	t.ch.Saved = append(t.ch.Saved, ch.Saved...)
	t.thens = append(t.thens, then)
}

// commitTxn ends a transaction: one write of the merged change, then
// every step's continuation with its outcome, newest first (so undo steps
// restore what each step found).
func (e *engine) commitTxn(m *CommitTxn) {
	t := e.txns[m.Txn]
	delete(e.txns, m.Txn)
	if m.Txn > e.txnDone {
		e.txnDone = m.Txn
	}
	if t == nil {
		m.Reply.OK(struct{}{})
		return
	}
	finish := func(err error) {
		for i := len(t.thens) - 1; i >= 0; i-- {
			t.thens[i](err)
		}
		if err != nil && m.Abort == nil {
			m.Reply.Fail(notSaved("apply", err))
			return
		}
		m.Reply.OK(struct{}{})
	}
	c := &t.ch
	switch {
	case m.Abort != nil:
		finish(fmt.Errorf("apply aborted: %w", m.Abort))
	case len(c.Created) == 0 && len(c.Removed) == 0 && len(c.Changed) == 0 && len(c.Saved) == 0:
		finish(nil)
	default:
		e.rt.dirty()
		e.commit(c, finish)
	}
}
