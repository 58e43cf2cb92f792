// This file defines UpdateSoma, the request that changes a live
// workspace's resource envelope in place.

package protocol

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/shipote/shipote/messages"
)

// UpdateSoma sets a workspace's memory, CPU and pids limits in place (its
// processes keep running); nofile_max cannot change. It is answered with
// the workspace's view once the new limits are durable.
type UpdateSoma struct {
	Workspace string
	Soma      messages.Soma
	// Txn, when set, makes the change a step of that transaction (see
	// CommitTxn): it is answered once it has joined it.
	Txn   uint64
	Reply Reply[messages.WorkspaceInfo]
}

// Fail answers the request with err.
func (m *UpdateSoma) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *UpdateSoma) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Target is the workspace the request is for.
func (m *UpdateSoma) Target() string { return m.Workspace }

// Declare declares supervised commands and pipelines of a workspace, with
// the IDs they will start with, without starting them: the workspace lists
// them in its snapshots from now on, and a later ExecCommand or
// RunPipeline with the same ID starts them (and they are listed as
// running instead). It is answered once the declaration has joined
// transaction Txn (0: once it is durable); if that write fails, the
// declarations are dropped. Drop instead removes the declarations of the
// IDs it names (starts that failed) and answers once that is durable.
type Declare struct {
	Workspace string
	Txn       uint64
	Commands  []LiveCommand
	Pipelines []LivePipeline
	Drop      []string
	Reply     Reply[struct{}]
}

// Fail answers the request with err.
func (m *Declare) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *Declare) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Target is the workspace the request is for.
func (m *Declare) Target() string { return m.Workspace }

// CommitTxn ends transaction Txn: the changes of declared state its steps
// made are written in one durable write, then every step goes on (or is
// undone, newest first, when the write fails). With Abort set, nothing is
// written and every step is undone with Abort as the cause. It is answered
// once the steps have been told: with nil, or with the write's error.
type CommitTxn struct {
	Txn   uint64
	Abort error
	Reply Reply[struct{}]
}

// Fail answers the request with err.
func (m *CommitTxn) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *CommitTxn) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}
