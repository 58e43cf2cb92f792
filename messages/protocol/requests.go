package protocol

import (
	"fmt"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shipote/shipote/internal/flow"
	"github.com/shipote/shipote/internal/logring"
	"github.com/shipote/shipote/messages"
)

// Reasons for a RemoveWorkspace the engine sends itself.
const (
	// ReasonShutdown marks a removal done because the engine stops: the
	// workspace stays declared and its log files stay.
	ReasonShutdown messages.EventKind = "shutdown"
	// ReasonUndo marks the removal of a workspace whose creation could
	// not be written to the state file.
	ReasonUndo messages.EventKind = "undo"
)

// CreateWorkspace creates a workspace. ID is empty for a new workspace and
// set when restoring one.
type CreateWorkspace struct {
	Spec messages.WorkspaceSpec
	ID   string
	// Txn, when set, makes the create a step of that transaction (see
	// CommitTxn): it is answered once it has joined it, and the label of
	// a workspace the same transaction removes may be taken.
	Txn   uint64
	Reply Reply[messages.WorkspaceInfo]
}

// ListWorkspaces returns the registry: ID and label of each workspace.
type ListWorkspaces struct {
	Reply Reply[[]WorkspaceRef]
}

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

// RemoveWorkspace stops every process of a workspace (SIGTERM, grace,
// SIGKILL) and removes it.
type RemoveWorkspace struct {
	Workspace string
	Grace     time.Duration // 0 = the engine's default
	Reply     Reply[messages.WorkspaceInfo]
	// Reason is set by the engine only (ReasonShutdown, ReasonUndo); a
	// user's removal leaves it empty.
	Reason messages.EventKind
	// Txn, when set, makes the removal a step of that transaction (see
	// CommitTxn): Prepared is answered once it has joined it, and the
	// workspace is stopped (and Reply answered) only after the commit.
	Txn      uint64
	Prepared Reply[struct{}]
}

// ShutdownWorkspace returns the message that stops a workspace's processes
// because the engine stops; the workspace stays declared.
func ShutdownWorkspace(grace time.Duration, reply Reply[messages.WorkspaceInfo]) *RemoveWorkspace {
	return &RemoveWorkspace{Grace: grace, Reply: reply, Reason: ReasonShutdown}
}

// BeginShutdown makes the engine refuse new work; it answers with the
// PIDs of the live workspaces.
type BeginShutdown struct {
	Reply Reply[[]*actor.PID]
}

// ExecCommand starts a command in a workspace. The answer comes once the
// process has started (or failed to); at once for a command that waits for
// its depends_on or its schedule.
type ExecCommand struct {
	Workspace string
	Command   messages.CommandRef
	Reply     Reply[messages.CommandInfo]
	// ID, when set, starts a supervised command that is declared already
	// (restored from the state file, or declared by Declare) with its ID:
	// no commit of its own.
	ID string
}

// ListCommands returns the commands of a workspace.
type ListCommands struct {
	Workspace string
	Reply     Reply[[]messages.CommandInfo]
}

// OpenLogs returns a command's log ring, found by ID or label.
type OpenLogs struct {
	Workspace string
	Command   string
	Reply     Reply[LogHandle]
}

// LogHandle gives access to a command's output: its in-memory ring and,
// when the engine keeps log files, the file's path.
type LogHandle struct {
	Command messages.CommandInfo
	Ring    *logring.Ring
	Path    string
}

// RunPipeline starts a pipeline in a workspace.
type RunPipeline struct {
	Workspace string
	Spec      messages.PipelineSpec
	Tap       bool
	ID        string // set when restoring a supervised pipeline
	Reply     Reply[messages.PipelineInfo]
}

// ListPipelines returns the pipelines of one workspace.
type ListPipelines struct {
	Workspace string
	Reply     Reply[[]messages.PipelineInfo]
}

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
	// Undo is set by the engine only: it stops a supervised run whose
	// start could not be written to the state file (no commit of its
	// own).
	Undo bool
	// Txn, when set, makes an OpStop a step of that transaction (see
	// CommitTxn): Prepared is answered once it has joined it, and the run
	// is stopped (and Reply answered) only after the commit.
	Txn      uint64
	Prepared Reply[struct{}]
}

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

// SeedHistory puts restored stats samples (oldest first) at the start of a
// workspace's history. It has no answer.
type SeedHistory struct {
	Workspace string
	Samples   []messages.Sample
}

// CommandOp is what a ControlCommand asks.
type CommandOp int

// Command operations.
const (
	CmdStop CommandOp = iota
	CmdStart
	CmdRestart
	CmdSignal
	CmdRemove
)

func (op CommandOp) String() string {
	switch op {
	case CmdStop:
		return "stop"
	case CmdStart:
		return "start"
	case CmdRestart:
		return "restart"
	case CmdSignal:
		return "signal"
	case CmdRemove:
		return "rm"
	}
	return fmt.Sprintf("op %d", int(op))
}

// ControlCommand stops, starts, restarts, signals or forgets one command.
// Stop answers once the command has ended; start and restart once the new
// process runs; signal once the signal is sent; remove at once.
type ControlCommand struct {
	Workspace string
	Command   string // label or ID
	Op        CommandOp
	Signal    syscall.Signal // CmdSignal
	Reply     Reply[messages.CommandInfo]
	// Txn, when set, makes a CmdStop a step of that transaction (see
	// CommitTxn): Prepared is answered once it has joined it, and the
	// command is signalled (and Reply answered) only after the commit.
	Txn      uint64
	Prepared Reply[struct{}]
}

// StopCommands stops every running command of a workspace (not its
// pipelines) and answers with their views once all have ended.
type StopCommands struct {
	Workspace string
	Reply     Reply[[]messages.CommandInfo]
}

// SavedPipeline is a named pipeline spec.
type SavedPipeline struct {
	Name string                `json:"name"`
	Spec messages.PipelineSpec `json:"spec"`
}

// SavePipeline saves (or replaces) a named pipeline spec.
type SavePipeline struct {
	Name    string
	Spec    messages.PipelineSpec
	Restore bool // from the state file: no commit
	// Txn, when set, makes the save a step of that transaction (see
	// CommitTxn): it is answered once it has joined it.
	Txn   uint64
	Reply Reply[SavedPipeline]
}

// GetSavedPipelines lists the saved pipelines.
type GetSavedPipelines struct{ Reply Reply[[]SavedPipeline] }

// DeleteSavedPipeline deletes a saved pipeline.
type DeleteSavedPipeline struct {
	Name string
	// Txn, when set, makes the delete a step of that transaction (see
	// CommitTxn): it is answered once it has joined it.
	Txn   uint64
	Reply Reply[struct{}]
}

// StartSavedPipeline starts a saved pipeline into a workspace.
type StartSavedPipeline struct {
	Name      string
	Workspace string
	Tap       bool
	Reply     Reply[messages.PipelineInfo]
}
