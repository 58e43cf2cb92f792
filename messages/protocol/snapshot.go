package protocol

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/shipote/shipote/messages"
)

// The persistence actor builds a snapshot by request and reply: it asks
// the engine for the registry and the saved pipelines (SnapshotEngine),
// then each workspace for its entry (SnapshotWorkspace). The answers go
// with ctx.Respond to the asking actor.

// PersistedSamples is how many stats samples per workspace a snapshot keeps.
const PersistedSamples = 16

// SnapshotEngine asks the engine for an EngineSnapshot.
type SnapshotEngine struct{ Gen uint64 }

// EngineSnapshot is the engine's part of a snapshot.
type EngineSnapshot struct {
	Gen        uint64
	Workspaces []WorkspacePID // in ID order
	Saved      []SavedPipeline
}

// WorkspacePID is a registry entry with its actor and its spec (which
// never changes), so that a snapshot can hold a workspace whose actor did
// not answer in time even when no earlier snapshot had it.
type WorkspacePID struct {
	ID   string
	PID  *actor.PID
	Spec messages.WorkspaceSpec
}

// SnapshotWorkspace asks a workspace for its WorkspaceSnapshot.
type SnapshotWorkspace struct{ Gen uint64 }

// WorkspaceSnapshot is one workspace's part of a snapshot.
type WorkspaceSnapshot struct {
	Gen     uint64
	ID      string
	Spec    messages.WorkspaceSpec
	History []messages.Sample // the last PersistedSamples samples
	Live    []LivePipeline    // supervised pipelines that have not ended
	// Commands are the supervised commands that are declared: started
	// with a restart policy, and neither stopped, removed nor given up.
	Commands []LiveCommand
}

// LiveCommand is a supervised command to relaunch after a restart.
type LiveCommand struct {
	ID   string
	Spec messages.CommandRef
}

// LivePipeline is a supervised pipeline to relaunch after a restart.
type LivePipeline struct {
	ID   string
	Spec messages.PipelineSpec
	Tap  bool
}
