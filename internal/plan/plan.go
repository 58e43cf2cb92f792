// This file computes what `shipote apply`, `diff` and `down` do: the plan
// that turns the declared state a project owns into the one its file
// declares. It is a pure function of its inputs: no I/O, no clock.

// Package plan computes the plan of a declarative apply: which workspaces,
// commands, pipelines and saved pipelines of a project to create, change, replace or
// remove, and which fields differ.
package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/shipote/shipote/messages"
)

// The plan's types are wire types of messages; these names keep this
// package's code short.
type (
	Action = messages.PlanAction
	Kind   = messages.PlanKind
	Entry  = messages.PlanEntry
	Plan   = messages.Plan
)

// Actions and kinds.
const (
	Create  = messages.PlanCreate
	Change  = messages.PlanChange
	Replace = messages.PlanReplace
	Remove  = messages.PlanRemove

	KindWorkspace = messages.PlanWorkspace
	KindCommand   = messages.PlanCommand
	KindPipeline  = messages.PlanPipeline
	KindSaved     = messages.PlanSaved
)

// ErrForeign is wrapped when the file declares a name held by an object
// of another project, or by one created by hand.
var ErrForeign = errors.New("plan: name held outside the project")

// ErrNeedsForce is wrapped when a plan replaces a workspace and force was
// not given.
var ErrNeedsForce = errors.New("plan: replacing a workspace needs --force")

// Current is the declared state of the daemon that a plan starts from.
type Current struct {
	Workspaces []Workspace
	// Saved are the saved pipelines, each with the project of its spec
	// ("" for one saved by hand).
	Saved []Saved
}

// Saved is a saved pipeline.
type Saved struct {
	Name string
	Spec messages.PipelineSpec
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
			createWorkspace(&p, d, Create, "", nil)
			continue
		}
		if c.Spec.Project != project {
			return Plan{}, foreign(d.Label, c)
		}
		have := c.Spec
		have.Normalize()
		if fields := Diff(have, d.WorkspaceSpec); len(fields) > 0 {
			if !InPlace(fields) {
				createWorkspace(&p, d, Replace, c.ID, fields)
				continue
			}
			spec := d.WorkspaceSpec
			p.Entries = append(p.Entries, Entry{Action: Change, Kind: KindWorkspace, Workspace: d.Label, ID: c.ID, Fields: fields, WorkspaceSpec: &spec})
		}
		commands(&p, d, c)
		pipelines(&p, d, c)
	}
	for i := range cur.Workspaces {
		c := &cur.Workspaces[i]
		if c.Spec.Project == project && !declared[c.Spec.Label] {
			p.Entries = append(p.Entries, Entry{Action: Remove, Kind: KindWorkspace, Workspace: c.Spec.Label, ID: c.ID})
		}
	}
	if err := saved(&p, f.SavedPipelines, cur.Saved); err != nil {
		return Plan{}, err
	}
	return p, nil
}

// saved plans the saved pipelines: each declared name is created, changed
// (saved again with its new spec) or left alone; the project's other saved
// pipelines are removed. A name saved by hand or by another project is an
// error wrapping ErrForeign.
func saved(p *Plan, want []messages.UpSavedPipeline, have []Saved) error {
	byName := make(map[string]*Saved, len(have))
	for i := range have {
		byName[have[i].Name] = &have[i]
	}
	declared := make(map[string]bool, len(want))
	for _, w := range want {
		declared[w.Name] = true
		spec := w.Spec
		spec.Project = p.Project
		h, ok := byName[w.Name]
		if !ok {
			p.Entries = append(p.Entries, Entry{Action: Create, Kind: KindSaved, Name: w.Name, Pipeline: &spec})
			continue
		}
		if h.Spec.Project != p.Project {
			if h.Spec.Project == "" {
				return fmt.Errorf("saved pipeline %q exists and was not saved by an applied file: %w", w.Name, ErrForeign)
			}
			return fmt.Errorf("saved pipeline %q belongs to project %q: %w", w.Name, h.Spec.Project, ErrForeign)
		}
		if fields := Diff(h.Spec, spec); len(fields) > 0 {
			p.Entries = append(p.Entries, Entry{Action: Change, Kind: KindSaved, Name: w.Name, Fields: fields, Pipeline: &spec})
		}
	}
	for _, h := range have {
		if h.Spec.Project == p.Project && !declared[h.Name] {
			p.Entries = append(p.Entries, Entry{Action: Remove, Kind: KindSaved, Name: h.Name})
		}
	}
	return nil
}

// inPlace are the workspace fields the kernel lets change while its
// processes run: the cgroup limits.
var inPlace = map[string]bool{"soma.memory_max_bytes": true, "soma.cpu_max": true, "soma.pids_max": true}

// InPlace reports whether a workspace whose fields differ can be changed
// in place (only cgroup limits differ) rather than replaced.
func InPlace(fields []string) bool {
	for _, f := range fields {
		if !inPlace[f] {
			return false
		}
	}
	return true
}

// Down returns the plan that removes every workspace and saved pipeline
// of the project. What another project holds, or what was made by hand,
// is left alone; it is not an error (down removes only what is its own).
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
	for _, h := range cur.Saved {
		if h.Spec.Project == project {
			p.Entries = append(p.Entries, Entry{Action: Remove, Kind: KindSaved, Name: h.Name})
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
func createWorkspace(p *Plan, d *messages.UpWorkspace, a Action, id string, fields []string) {
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
func commands(p *Plan, d *messages.UpWorkspace, c *Workspace) {
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
		if !want[x.Spec.Label] && !scheduledRun(x.Spec.Label, d.Commands) {
			p.Entries = append(p.Entries, Entry{Action: Remove, Kind: KindCommand, Workspace: d.Label, Name: x.Spec.Label, ID: x.ID})
		}
	}
}

// scheduledRun reports whether label is a run that a declared scheduled
// command started beside its last one (concurrency: allow): the daemon
// labels those LABEL-run, LABEL-run-2, ... They belong to the declared
// command, so an apply leaves them to end by themselves.
func scheduledRun(label string, declared []messages.CommandRef) bool {
	for _, c := range declared {
		if c.Schedule == "" {
			continue
		}
		rest, ok := strings.CutPrefix(label, c.Label+"-run")
		if !ok {
			continue
		}
		if rest == "" {
			return true
		}
		if n, ok := strings.CutPrefix(rest, "-"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
			return true
		}
	}
	return false
}

// pipelines plans the pipelines of a workspace that stays. A run that
// has ended and is no longer declared is history, not something to
// remove.
func pipelines(p *Plan, d *messages.UpWorkspace, c *Workspace) {
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

// Scale returns the plan that gives the command label of workspace ws
// exactly n instances (label-0 … label-<n-1>), made from the spec of the
// newest command of that group (label itself, or an instance of it). n = 0
// removes them all. No command of that label wraps messages.ErrNotFound.
func Scale(ws string, cmds []Command, label string, n int) (Plan, error) {
	if n < 0 || n > messages.MaxInstances {
		return Plan{}, &messages.FieldError{Field: "instances", Message: fmt.Sprintf("%d is not between 0 and %d", n, messages.MaxInstances)}
	}
	var group []Command
	var tmpl *Command
	for i := range cmds {
		c := &cmds[i]
		if c.Spec.Label == label || c.Spec.InstanceOf == label {
			group = append(group, *c)
			if tmpl == nil || tmpl.ID < c.ID {
				tmpl = c
			}
		}
	}
	if tmpl == nil {
		return Plan{}, fmt.Errorf("no command %q in workspace %s: %w", label, ws, messages.ErrNotFound)
	}
	spec := tmpl.Spec
	spec.Label, spec.InstanceOf, spec.Instances = label, "", n
	var want []messages.CommandRef
	if n > 0 {
		want = spec.ExpandInstances()
	}
	d := messages.UpWorkspace{WorkspaceSpec: messages.WorkspaceSpec{Label: ws}, Commands: want}
	var p Plan
	commands(&p, &d, &Workspace{Commands: group})
	// Only the instance count changes: an instance whose spec differs
	// from the newest one is left as it is.
	kept := p.Entries[:0]
	for _, e := range p.Entries {
		if e.Action != Change {
			kept = append(kept, e)
		}
	}
	p.Entries = kept
	return p, nil
}
