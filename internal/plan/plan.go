// This file computes what `shipote apply`, `diff` and `down` do: the plan
// that turns the declared state a project owns into the one its file
// declares. It is a pure function of its inputs: no I/O, no clock.

// Package plan computes the plan of a declarative apply: which workspaces,
// commands and pipelines of a project to create, change, replace or
// remove, and which fields differ.
package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"

	"github.com/shipote/shipote/messages"
)

// Action is what an entry does.
type Action string

// Actions.
const (
	// Create makes an object the file declares and the daemon lacks.
	Create Action = "create"
	// Change updates an object in place (a command or pipeline is
	// restarted with its new spec; nothing else is touched).
	Change Action = "change"
	// Replace removes a workspace and creates it again with its new spec,
	// with everything in it: only with force.
	Replace Action = "replace"
	// Remove takes away an object of the project the file no longer
	// declares.
	Remove Action = "remove"
)

// Kind is the kind of object an entry is about.
type Kind string

// Kinds.
const (
	KindWorkspace Kind = "workspace"
	KindCommand   Kind = "command"
	KindPipeline  Kind = "pipeline"
)

// ErrForeign is wrapped when the file declares a name held by an object
// of another project, or by one created by hand.
var ErrForeign = errors.New("plan: name held outside the project")

// ErrNeedsForce is wrapped when a plan replaces a workspace and force was
// not given.
var ErrNeedsForce = errors.New("plan: replacing a workspace needs --force")

// Entry is one step of a plan.
type Entry struct {
	Action Action `json:"action"`
	Kind   Kind   `json:"kind"`
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
	WorkspaceSpec *messages.WorkspaceSpec `json:"workspace_spec,omitempty"`
	// Command to start, for a command create or change.
	Command *messages.CommandRef `json:"command,omitempty"`
	// Pipeline to run, for a pipeline create or change.
	Pipeline *messages.PipelineSpec `json:"pipeline,omitempty"`
}

// Plan is every step an apply takes, in the order it takes them.
type Plan struct {
	Project string  `json:"project"`
	Entries []Entry `json:"entries"`
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Entries) == 0 }

// Replaces reports whether the plan replaces a workspace.
func (p *Plan) Replaces() bool {
	for _, e := range p.Entries {
		if e.Action == Replace {
			return true
		}
	}
	return false
}

// Counts returns how many entries of each action the plan has.
func (p *Plan) Counts() map[Action]int {
	n := make(map[Action]int)
	for _, e := range p.Entries {
		n[e.Action]++
	}
	return n
}

// Current is the declared state of the daemon that a plan starts from.
type Current struct {
	Workspaces []Workspace
}

// Workspace is a live workspace with its commands and pipeline runs.
type Workspace struct {
	ID        string
	Spec      messages.WorkspaceSpec
	Commands  []Command
	Pipelines []Pipeline
}

// Command is a command of a live workspace.
type Command struct {
	ID    string
	Spec  messages.CommandRef
	Ended bool
}

// Pipeline is a pipeline run of a live workspace.
type Pipeline struct {
	ID    string
	Spec  messages.PipelineSpec
	Ended bool
}

// Desired turns a validated file into the specs apply compares: every
// workspace gets the project, every command is expanded into its
// instances. Commands need a label (apply finds them again by it).
func Desired(project string, f *messages.UpFile) ([]messages.UpWorkspace, error) {
	if err := messages.ValidateLabel(project); err != nil {
		return nil, fmt.Errorf("project: %w", err)
	}
	out := make([]messages.UpWorkspace, len(f.Workspaces))
	for i, w := range f.Workspaces {
		w.Project = project
		w.Normalize()
		var cmds []messages.CommandRef
		for j, c := range w.Commands {
			if c.Label == "" {
				return nil, &messages.FieldError{Field: fmt.Sprintf("workspaces[%d].commands[%d].label", i, j),
					Message: "is required by apply, which finds the command again by its label"}
			}
			cmds = append(cmds, c.ExpandInstances()...)
		}
		w.Commands = cmds
		out[i] = w
	}
	return out, nil
}

// Compute returns the plan that makes the project's declared state what
// f declares. A workspace of the same label owned by another project, or
// by none, is an error wrapping ErrForeign that names it. Workspaces of
// the project that f no longer declares are removed.
func Compute(project string, f *messages.UpFile, cur Current) (Plan, error) {
	desired, err := Desired(project, f)
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Project: project}
	byLabel := make(map[string]*Workspace, len(cur.Workspaces))
	for i := range cur.Workspaces {
		byLabel[cur.Workspaces[i].Spec.Label] = &cur.Workspaces[i]
	}
	declared := make(map[string]bool, len(desired))
	for i := range desired {
		d := &desired[i]
		declared[d.Label] = true
		c, ok := byLabel[d.Label]
		if !ok {
			p.createWorkspace(d, Create, "", nil)
			continue
		}
		if c.Spec.Project != project {
			return Plan{}, foreign(d.Label, c)
		}
		have := c.Spec
		have.Normalize()
		if fields := Diff(have, d.WorkspaceSpec); len(fields) > 0 {
			p.createWorkspace(d, Replace, c.ID, fields)
			continue
		}
		p.commands(d, c)
		p.pipelines(d, c)
	}
	for i := range cur.Workspaces {
		c := &cur.Workspaces[i]
		if c.Spec.Project == project && !declared[c.Spec.Label] {
			p.Entries = append(p.Entries, Entry{Action: Remove, Kind: KindWorkspace, Workspace: c.Spec.Label, ID: c.ID})
		}
	}
	return p, nil
}

// Down returns the plan that removes every workspace of the project. A
// workspace f declares that another project holds is left alone; it is
// not an error (down removes only what is its own).
func Down(project string, cur Current) (Plan, error) {
	if err := messages.ValidateLabel(project); err != nil {
		return Plan{}, fmt.Errorf("project: %w", err)
	}
	p := Plan{Project: project}
	for _, c := range cur.Workspaces {
		if c.Spec.Project == project {
			p.Entries = append(p.Entries, Entry{Action: Remove, Kind: KindWorkspace, Workspace: c.Spec.Label, ID: c.ID})
		}
	}
	return p, nil
}

func foreign(label string, c *Workspace) error {
	if c.Spec.Project == "" {
		return fmt.Errorf("workspace %q (%s) exists and was not created by an applied file: %w", label, c.ID, ErrForeign)
	}
	return fmt.Errorf("workspace %q (%s) belongs to project %q: %w", label, c.ID, c.Spec.Project, ErrForeign)
}

// createWorkspace adds a workspace create or replace with everything the
// file declares in it.
func (p *Plan) createWorkspace(d *messages.UpWorkspace, a Action, id string, fields []string) {
	spec := d.WorkspaceSpec
	p.Entries = append(p.Entries, Entry{Action: a, Kind: KindWorkspace, Workspace: d.Label, ID: id, Fields: fields, WorkspaceSpec: &spec})
	for i := range d.Commands {
		c := d.Commands[i]
		p.Entries = append(p.Entries, Entry{Action: Create, Kind: KindCommand, Workspace: d.Label, Name: c.Label, Command: &c})
	}
	for i := range d.Pipelines {
		s := d.Pipelines[i]
		p.Entries = append(p.Entries, Entry{Action: Create, Kind: KindPipeline, Workspace: d.Label, Name: s.Label, Pipeline: &s})
	}
}

// commands plans the commands of a workspace that stays: each declared
// label is created, changed (restarted with its new spec) or left alone;
// every other command is removed.
func (p *Plan) commands(d *messages.UpWorkspace, c *Workspace) {
	have := make(map[string]*Command, len(c.Commands))
	for i := range c.Commands {
		x := &c.Commands[i]
		if prev, ok := have[x.Spec.Label]; !ok || prev.ID < x.ID {
			have[x.Spec.Label] = x // the newest command of a label
		}
	}
	want := make(map[string]bool, len(d.Commands))
	for i := range d.Commands {
		w := d.Commands[i]
		want[w.Label] = true
		h, ok := have[w.Label]
		if !ok {
			p.Entries = append(p.Entries, Entry{Action: Create, Kind: KindCommand, Workspace: d.Label, Name: w.Label, Command: &w})
			continue
		}
		if fields := Diff(h.Spec, w); len(fields) > 0 {
			p.Entries = append(p.Entries, Entry{Action: Change, Kind: KindCommand, Workspace: d.Label, Name: w.Label, ID: h.ID, Fields: fields, Command: &w})
		}
	}
	for _, x := range c.Commands {
		if !want[x.Spec.Label] {
			p.Entries = append(p.Entries, Entry{Action: Remove, Kind: KindCommand, Workspace: d.Label, Name: x.Spec.Label, ID: x.ID})
		}
	}
}

// pipelines plans the pipelines of a workspace that stays. A run that
// has ended and is no longer declared is history, not something to
// remove.
func (p *Plan) pipelines(d *messages.UpWorkspace, c *Workspace) {
	have := make(map[string]*Pipeline, len(c.Pipelines))
	for i := range c.Pipelines {
		x := &c.Pipelines[i]
		if prev, ok := have[x.Spec.Label]; !ok || prev.ID < x.ID {
			have[x.Spec.Label] = x
		}
	}
	want := make(map[string]bool, len(d.Pipelines))
	for i := range d.Pipelines {
		w := d.Pipelines[i]
		want[w.Label] = true
		h, ok := have[w.Label]
		if !ok {
			p.Entries = append(p.Entries, Entry{Action: Create, Kind: KindPipeline, Workspace: d.Label, Name: w.Label, Pipeline: &w})
			continue
		}
		hs, ws := h.Spec, w
		hs.Workspace, ws.Workspace = "", "" // implied by where it runs
		if fields := Diff(hs, ws); len(fields) > 0 {
			p.Entries = append(p.Entries, Entry{Action: Change, Kind: KindPipeline, Workspace: d.Label, Name: w.Label, ID: h.ID, Fields: fields, Pipeline: &w})
		}
	}
	for _, x := range c.Pipelines {
		if !want[x.Spec.Label] && !x.Ended {
			p.Entries = append(p.Entries, Entry{Action: Remove, Kind: KindPipeline, Workspace: d.Label, Name: x.Spec.Label, ID: x.ID})
		}
	}
}

// Diff returns the paths of the fields that differ between two specs of
// the same type, as their JSON encodings name them ("soma.cpu_max",
// "payload.native.argv"), sorted. Lists compare whole.
func Diff(a, b any) []string {
	var out []string
	diffValues("", toTree(a), toTree(b), &out)
	sort.Strings(out)
	return out
}

func toTree(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		// Specs are plain data; an encoding failure compares as the
		// error text, so that it shows as a difference, never as equal.
		return err.Error()
	}
	var t any
	if err := json.Unmarshal(data, &t); err != nil {
		return err.Error()
	}
	return t
}

func diffValues(path string, a, b any, out *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if !aok || !bok {
		if !reflect.DeepEqual(a, b) {
			*out = append(*out, path)
		}
		return
	}
	keys := make(map[string]bool)
	for k := range am {
		keys[k] = true
	}
	for k := range bm {
		keys[k] = true
	}
	for k := range keys {
		sub := k
		if path != "" {
			sub = path + "." + k
		}
		av, aHas := am[k]
		bv, bHas := bm[k]
		// An object left out (omitted as empty) compares as {}, so that
		// the paths inside it are named.
		if _, isMap := bv.(map[string]any); !aHas && isMap {
			av = map[string]any{}
		}
		if _, isMap := av.(map[string]any); !bHas && isMap {
			bv = map[string]any{}
		}
		if aHas != bHas && (av == nil || bv == nil) {
			*out = append(*out, sub)
			continue
		}
		diffValues(sub, av, bv, out)
	}
}
