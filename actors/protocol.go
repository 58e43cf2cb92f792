// The requests the engine's actors answer, and their answers, are defined
// in package messages/protocol so that code speaking the protocol does not
// import the actors. The names below keep them at hand inside this
// package. A request's Reply names the PID its answer goes to; an unset
// Reply is bound to the sender of the message when the request arrives
// (bindSender), so an actor that asks with ctx.Request gets its answer in
// its own Receive. A request that reaches a stopped actor is failed from
// the dead-letter hook (FailDeadLetter), so a caller never waits for an
// answer that cannot come.

package actors

import (
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
)

type (
	// Result is one answer: a value or an error.
	Result[T any] = protocol.Result[T]
	// Reply names where the answer to a request goes.
	Reply[T any] = protocol.Reply[T]

	CreateWorkspace     = protocol.CreateWorkspace
	ListWorkspaces      = protocol.ListWorkspaces
	WorkspaceRef        = protocol.WorkspaceRef
	GetWorkspace        = protocol.GetWorkspace
	RemoveWorkspace     = protocol.RemoveWorkspace
	ExecCommand         = protocol.ExecCommand
	ListCommands        = protocol.ListCommands
	OpenLogs            = protocol.OpenLogs
	LogHandle           = protocol.LogHandle
	RunPipeline         = protocol.RunPipeline
	ListPipelines       = protocol.ListPipelines
	PipelineRequest     = protocol.PipelineRequest
	PipelineOp          = protocol.PipelineOp
	PipelineAnswer      = protocol.PipelineAnswer
	GetStats            = protocol.GetStats
	SeedHistory         = protocol.SeedHistory
	ControlCommand      = protocol.ControlCommand
	StopCommands        = protocol.StopCommands
	CommandOp           = protocol.CommandOp
	SavedPipeline       = protocol.SavedPipeline
	SavePipeline        = protocol.SavePipeline
	GetSavedPipelines   = protocol.GetSavedPipelines
	DeleteSavedPipeline = protocol.DeleteSavedPipeline
	StartSavedPipeline  = protocol.StartSavedPipeline
	BeginShutdown       = protocol.BeginShutdown
	SnapshotEngine      = protocol.SnapshotEngine
	EngineSnapshot      = protocol.EngineSnapshot
	WorkspacePID        = protocol.WorkspacePID
	SnapshotWorkspace   = protocol.SnapshotWorkspace
	WorkspaceSnapshot   = protocol.WorkspaceSnapshot
	LiveCommand         = protocol.LiveCommand
	LivePipeline        = protocol.LivePipeline

	// routed is a request the engine forwards to a workspace.
	routed = protocol.Routed
)

// Pipeline and command operations.
const (
	OpShow    = protocol.OpShow
	OpStop    = protocol.OpStop
	OpTap     = protocol.OpTap
	OpRestart = protocol.OpRestart
	OpSignal  = protocol.OpSignal

	CmdStop    = protocol.CmdStop
	CmdStart   = protocol.CmdStart
	CmdRestart = protocol.CmdRestart
	CmdSignal  = protocol.CmdSignal
	CmdRemove  = protocol.CmdRemove

	// PersistedSamples is how many stats samples per workspace a
	// snapshot keeps.
	PersistedSamples = protocol.PersistedSamples
)

// ShutdownWorkspace returns the message that stops a workspace's processes
// because the engine stops; the workspace stays declared.
var ShutdownWorkspace = protocol.ShutdownWorkspace

// failer is an internal message that cleans up (closes what it carries,
// tells its requester) when it reaches a dead actor.
type failer interface{ fail(error) }

// bindSender binds the unset Reply of a request to the message's sender,
// so a request sent with ctx.Request (or RequestWithCustomSender) is
// answered to its sender. It runs first in the Receive of the engine and
// workspace actors; a forwarded request keeps the Reply bound where it
// first arrived.
func bindSender(ctx actor.Context) {
	if r, ok := ctx.Message().(protocol.Request); ok {
		if s := ctx.Sender(); s != nil {
			r.BindSender(ctx.ActorSystem(), s)
		}
	}
}

// FailDeadLetter answers a request that reached a stopped actor with an
// error, so its caller does not wait. sender is the message's sender (nil
// when it was sent without one); it gets the answer when the request's
// Reply is unset. It reports whether msg was a request.
func FailDeadLetter(system *actor.ActorSystem, msg any, sender *actor.PID) bool {
	err := fmt.Errorf("the actor that owned it is gone: %w", messages.ErrNotFound)
	switch f := msg.(type) {
	case protocol.Request:
		if sender != nil {
			f.BindSender(system, sender)
		}
		f.Fail(err)
	case failer:
		f.fail(err)
	default:
		return false
	}
	return true
}
