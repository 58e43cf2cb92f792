// This file defines the plan of a declarative apply as it travels: the
// steps `shipote apply` takes (create, change, replace, remove) with the
// fields that differ. internal/plan computes it.

package messages

// PlanAction is what an entry does.
type PlanAction string

// Actions.
const (
	// PlanCreate makes an object the file declares and the daemon lacks.
	PlanCreate PlanAction = "create"
	// PlanChange updates an object in place (a command or pipeline is
	// restarted with its new spec; nothing else is touched).
	PlanChange PlanAction = "change"
	// PlanReplace removes a workspace and creates it again with its new spec,
	// with everything in it: only with force.
	PlanReplace PlanAction = "replace"
	// PlanRemove takes away an object of the project the file no longer
	// declares.
	PlanRemove PlanAction = "remove"
)

// PlanKind is the kind of object an entry is about.
type PlanKind string

// Kinds.
const (
	PlanWorkspace PlanKind = "workspace"
	PlanCommand   PlanKind = "command"
	PlanPipeline  PlanKind = "pipeline"
	// PlanSaved is a saved pipeline (a global named spec); its entry's
	// Workspace is "" and Name is the saved name.
	PlanSaved PlanKind = "saved_pipeline"
)

// PlanEntry is one step of a plan.
type PlanEntry struct {
	Action PlanAction `json:"action"`
	Kind   PlanKind   `json:"kind"`
	// Workspace is the workspace's label.
	Workspace string `json:"workspace"`
	// Name is the command's or pipeline's label ("" for a workspace).
	Name string `json:"name,omitempty"`
	// Fields are the spec fields that differ, for change and replace
	// (dotted paths such as "payload.native.argv").
	Fields []string `json:"fields,omitempty"`
	// ID is the existing object's ID (workspace, command or pipeline run),
	// for change, replace and remove.
	ID string `json:"id,omitempty"`
	// Workspace spec to create, for a workspace create or replace.
	WorkspaceSpec *WorkspaceSpec `json:"workspace_spec,omitempty"`
	// Command to start, for a command create or change.
	Command *CommandRef `json:"command,omitempty"`
	// Pipeline to run, for a pipeline create or change; the spec to save,
	// for a saved pipeline create or change.
	Pipeline *PipelineSpec `json:"pipeline,omitempty"`
}

// Plan is every step an apply takes, in the order it takes them.
type Plan struct {
	Project string      `json:"project"`
	Entries []PlanEntry `json:"entries"`
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Entries) == 0 }

// Replaces reports whether the plan replaces a workspace.
func (p *Plan) Replaces() bool {
	for _, e := range p.Entries {
		if e.Action == PlanReplace {
			return true
		}
	}
	return false
}

// Counts returns how many entries of each action the plan has.
func (p *Plan) Counts() map[PlanAction]int {
	n := make(map[PlanAction]int)
	for _, e := range p.Entries {
		n[e.Action]++
	}
	return n
}

// ApplyRequest asks the daemon to apply a file (POST /v1/apply).
type ApplyRequest struct {
	// Project names what the file manages; "" = File.Name.
	Project string `json:"project,omitempty"`
	// File is the up file, validated and with its env files read.
	File UpFile `json:"file"`
	// DryRun computes the plan and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// Force allows a plan that replaces a workspace.
	Force bool `json:"force,omitempty"`
	// Down removes every workspace of the project instead.
	Down bool `json:"down,omitempty"`
}

// ApplyResult is the answer to an ApplyRequest.
type ApplyResult struct {
	Plan Plan `json:"plan"`
	// Applied is true when the plan was carried out (false for a dry run).
	Applied bool `json:"applied"`
}

// ScaleRequest sets the number of instances of a command
// (POST /v1/workspaces/{ws}/commands/{cmd}/scale).
type ScaleRequest struct {
	Instances int `json:"instances"`
}

// EventUpdated: a workspace's spec changed in place (its limits).
const EventUpdated EventKind = "updated"
