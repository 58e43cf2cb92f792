// This file defines the requests the engine's actors answer. A request made
// from outside the actor world carries its own reply channel (buffered, one
// answer): it is faster than a future and race-free. A request that reaches
// a stopped actor is failed from the dead-letter hook, so a caller never
// waits for an answer that cannot come.

package actors

import (
	"syscall"
	"time"

	"github.com/shipote/shipote/internal/flow"
	"github.com/shipote/shipote/messages"
)

// Result is one answer: a value or an error.
type Result[T any] struct {
	Val T
	Err error
}

// Reply is a channel for one answer. Make it with NewReply.
type Reply[T any] chan Result[T]

// NewReply returns a reply channel with room for its one answer.
func NewReply[T any]() Reply[T] { return make(Reply[T], 1) }

// OK answers v.
func (r Reply[T]) OK(v T) { r.send(Result[T]{Val: v}) }

// Fail answers err.
func (r Reply[T]) Fail(err error) { r.send(Result[T]{Err: err}) }

func (r Reply[T]) send(res Result[T]) {
	if r == nil {
		return
	}
	select {
	case r <- res:
	default: // already answered
	}
}

// failer is a request that can be answered with an error when it reaches a
// dead actor.
type failer interface{ fail(error) }

// routed is a request the engine forwards to a workspace, found by ID or
// label.
type routed interface {
	failer
	workspaceRef() string
}

// CreateWorkspace creates a workspace. ID is empty for a new workspace and
// set when restoring one.
type CreateWorkspace struct {
	Spec  messages.WorkspaceSpec
	ID    string
	Reply Reply[messages.WorkspaceInfo]
}

func (m *CreateWorkspace) fail(err error) { m.Reply.Fail(err) }

// ListWorkspaces returns the registry: ID, label and PID of each workspace.
type ListWorkspaces struct {
	Reply Reply[[]WorkspaceRef]
}

func (m *ListWorkspaces) fail(err error) { m.Reply.Fail(err) }

// WorkspaceRef is a registry entry.
type WorkspaceRef struct {
	ID    string
	Label string
}

// GetWorkspace returns a workspace's view.
type GetWorkspace struct {
	Workspace string
	Reply     Reply[messages.WorkspaceInfo]
}

func (m *GetWorkspace) fail(err error)       { m.Reply.Fail(err) }
func (m *GetWorkspace) workspaceRef() string { return m.Workspace }

// RemoveWorkspace stops every process of a workspace (SIGTERM, grace,
// SIGKILL) and removes it.
type RemoveWorkspace struct {
	Workspace string
	Grace     time.Duration // 0 = the engine's default
	Reply     Reply[messages.WorkspaceInfo]
	reason    messages.EventKind
}

func (m *RemoveWorkspace) fail(err error)       { m.Reply.Fail(err) }
func (m *RemoveWorkspace) workspaceRef() string { return m.Workspace }

// ExecCommand starts a command in a workspace. The answer comes once the
// process has started (or failed to).
type ExecCommand struct {
	Workspace string
	Command   messages.CommandRef
	Reply     Reply[messages.CommandInfo]
	// ID, when set, restores a supervised command from the state file
	// with its ID (no commit of its own).
	ID string
}

func (m *ExecCommand) fail(err error)       { m.Reply.Fail(err) }
func (m *ExecCommand) workspaceRef() string { return m.Workspace }

// ListCommands returns the commands of a workspace.
type ListCommands struct {
	Workspace string
	Reply     Reply[[]messages.CommandInfo]
}

func (m *ListCommands) fail(err error)       { m.Reply.Fail(err) }
func (m *ListCommands) workspaceRef() string { return m.Workspace }

// OpenLogs returns a command's log ring, found by ID or label.
type OpenLogs struct {
	Workspace string
	Command   string
	Reply     Reply[LogHandle]
}

func (m *OpenLogs) fail(err error)       { m.Reply.Fail(err) }
func (m *OpenLogs) workspaceRef() string { return m.Workspace }

// RunPipeline starts a pipeline in a workspace.
type RunPipeline struct {
	Workspace string
	Spec      messages.PipelineSpec
	Tap       bool
	ID        string // set when restoring a supervised pipeline
	Reply     Reply[messages.PipelineInfo]
}

func (m *RunPipeline) fail(err error)       { m.Reply.Fail(err) }
func (m *RunPipeline) workspaceRef() string { return m.Workspace }

// ListPipelines returns the pipelines of one workspace.
type ListPipelines struct {
	Workspace string
	Reply     Reply[[]messages.PipelineInfo]
}

func (m *ListPipelines) fail(err error)       { m.Reply.Fail(err) }
func (m *ListPipelines) workspaceRef() string { return m.Workspace }

// PipelineRequest is routed to the workspace that runs pipeline Run.
type PipelineRequest struct {
	Workspace string
	Run       string // pipeline run ID or label
	Op        PipelineOp
	Node      string // for OpTap and OpSignal ("" = every node)
	TapBuf    int
	Signal    syscall.Signal // for OpSignal
	Grace     time.Duration  // for OpStop; 0 = the engine's default
	Reply     Reply[PipelineAnswer]
	// undo stops a supervised run whose start could not be written to the
	// state file: no commit of its own.
	undo bool
}

func (m *PipelineRequest) fail(err error)       { m.Reply.Fail(err) }
func (m *PipelineRequest) workspaceRef() string { return m.Workspace }

// PipelineOp is what a PipelineRequest asks.
type PipelineOp int

// Pipeline operations.
const (
	OpShow PipelineOp = iota
	OpStop
	OpTap
	// OpRestart stops the current run's nodes (SIGTERM, grace, SIGKILL)
	// and launches the run again at once with the same run ID; it answers
	// once the new run's processes run.
	OpRestart
	// OpSignal sends Signal to the process group of Node (every node when
	// Node is "") of the current run.
	OpSignal
)

// PipelineAnswer answers a PipelineRequest.
type PipelineAnswer struct {
	Info messages.PipelineInfo
	Tap  *flow.Tap
}

// GetStats returns a workspace's stats history (newest last).
type GetStats struct {
	Workspace string
	Reply     Reply[[]messages.Sample]
}

func (m *GetStats) fail(err error)       { m.Reply.Fail(err) }
func (m *GetStats) workspaceRef() string { return m.Workspace }
