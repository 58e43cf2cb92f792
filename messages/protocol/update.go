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
	Reply     Reply[messages.WorkspaceInfo]
}

// Fail answers the request with err.
func (m *UpdateSoma) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *UpdateSoma) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Target is the workspace the request is for.
func (m *UpdateSoma) Target() string { return m.Workspace }

// CommitStarts makes the starts of a workspace's commands, made with
// ExecCommand.Deferred, durable in one write; if that write fails, each of
// them is killed and forgotten (never in effect) and the request fails
// with the cause.
type CommitStarts struct {
	Workspace string
	IDs       []string
	Reply     Reply[struct{}]
}

// Fail answers the request with err.
func (m *CommitStarts) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *CommitStarts) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Target is the workspace the request is for.
func (m *CommitStarts) Target() string { return m.Workspace }
