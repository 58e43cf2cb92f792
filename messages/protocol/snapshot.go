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
// not answer in time even when no earlier snapshot had it. Spec is shared
// with the engine and the workspace's actor and must not be modified.
type WorkspacePID struct {
	ID   string
	PID  *actor.PID
	Spec *messages.WorkspaceSpec
}

// SnapshotWorkspace asks a workspace for its WorkspaceSnapshot.
type SnapshotWorkspace struct{ Gen uint64 }

// WorkspaceSnapshot is one workspace's part of a snapshot.
type WorkspaceSnapshot struct {
	Gen uint64
	ID  string
	// Spec is shared with the workspace's actor (which replaces it rather
	// than changing it) and the persistence's entries: never modified.
	Spec    *messages.WorkspaceSpec
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

// Change is what one mutation of declared state changed. The engine sends
// it with its commit, so that the persistence actor appends exactly the
// records of those entries instead of gathering the whole state; only a
// full snapshot (stats, explicit saves, retries, compaction) gathers
// everything.
type Change struct {
	// Created are new workspaces (their entry is their spec: a new
	// workspace has no supervised pipelines or commands yet).
	Created []WorkspacePID
	// Removed are workspaces that left the declared state, with their
	// supervised pipelines and commands.
	Removed []string
	// Changed are workspaces whose own entry changed (a supervised
	// pipeline or command started or stopped): they are asked again.
	Changed []WorkspacePID
	// Saved are saved pipelines set (Spec != nil) or deleted.
	Saved []SavedChange
}

// SavedChange is a saved pipeline set (Spec != nil) or deleted (nil).
type SavedChange struct {
	Name string
	Spec *messages.PipelineSpec
}
