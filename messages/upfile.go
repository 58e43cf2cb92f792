// This file defines the file run by `shipote up` (SPEC §3.4): workspaces with
// their commands and pipelines.

package messages

import "fmt"

// UpFile is a file of workspaces with their commands and pipelines.
type UpFile struct {
	// Name names the project `shipote apply` records on what the file
	// manages; "" = the file's base name.
	Name       string        `json:"name,omitempty"`
	Workspaces []UpWorkspace `json:"workspaces"`
	// SavedPipelines are named pipeline specs to save (as `pipe save`),
	// started later into a workspace with `pipe start`.
	SavedPipelines []UpSavedPipeline `json:"saved_pipelines,omitempty"`
}

// UpSavedPipeline is a saved pipeline an up file declares.
type UpSavedPipeline struct {
	Name string       `json:"name"`
	Spec PipelineSpec `json:"spec"`
}

// UpWorkspace is a workspace spec with the commands and pipelines to start in
// it.
type UpWorkspace struct {
	WorkspaceSpec
	Commands  []CommandRef   `json:"commands,omitempty"`
	Pipelines []PipelineSpec `json:"pipelines,omitempty"`

	// DependsOn names other workspaces of the file: this one is created
	// once every command of each is ready (a one_shot one: exited with
	// success).
	DependsOn []string `json:"depends_on,omitempty"`
}

// Validate checks the whole file; errors name the path
// ("workspaces[0].pipelines[1].edges[0].to: no node \"x\"").
func (u *UpFile) Validate() error {
	if len(u.Workspaces) == 0 && len(u.SavedPipelines) == 0 {
		return fieldErr("workspaces", "must list at least one workspace or saved pipeline")
	}
	if u.Name != "" {
		if err := checkLabel("name", u.Name); err != nil {
			return err
		}
	}
	labels := make(map[string]int)
	for i := range u.Workspaces {
		w := &u.Workspaces[i]
		f := fmt.Sprintf("workspaces[%d]", i)
		if err := w.WorkspaceSpec.Validate(); err != nil {
			return WithPrefix(f, err)
		}
		if j, dup := labels[w.Label]; dup {
			return fieldErr(f+".label", "duplicate workspace %q (also workspaces[%d])", w.Label, j)
		}
		labels[w.Label] = i
		cmds := make(map[string]int)
		for j := range w.Commands {
			c := &w.Commands[j]
			cf := fmt.Sprintf("%s.commands[%d]", f, j)
			if err := c.ValidateIn(&w.WorkspaceSpec); err != nil {
				return WithPrefix(cf, err)
			}
			if c.InstanceOf != "" {
				return fieldErr(cf+".instance_of", "is set by shipote from instances, not written in a file")
			}
			for _, x := range c.ExpandInstances() {
				if x.Label == "" {
					continue
				}
				if k, dup := cmds[x.Label]; dup {
					return fieldErr(cf+".label", "duplicate command %q (also commands[%d])", x.Label, k)
				}
				cmds[x.Label] = j
			}
		}
		pipes := make(map[string]int)
		for j := range w.Pipelines {
			p := &w.Pipelines[j]
			pf := fmt.Sprintf("%s.pipelines[%d]", f, j)
			if err := p.Validate(); err != nil {
				return WithPrefix(pf, err)
			}
			if p.Project != "" {
				return fieldErr(pf+".project", "is set by shipote on saved pipelines, not written in a file")
			}
			if p.Workspace != "" && p.Workspace != w.Label {
				return fieldErr(pf+".workspace", "%q differs from the enclosing workspace %q", p.Workspace, w.Label)
			}
			if k, dup := pipes[p.Label]; dup {
				return fieldErr(pf+".label", "duplicate pipeline %q (also pipelines[%d])", p.Label, k)
			}
			pipes[p.Label] = j
		}
		deps := make(map[string][]string)
		for j := range w.Commands {
			c := &w.Commands[j]
			for k, d := range c.DependsOn {
				if _, ok := cmds[d]; !ok {
					return fieldErr(fmt.Sprintf("%s.commands[%d].depends_on[%d]", f, j, k), "no command %q in workspace %s", d, w.Label)
				}
			}
			if c.Label != "" {
				deps[c.Label] = c.DependsOn
			}
		}
		if cycle := FindCycle(deps); cycle != nil {
			return CycleError(fmt.Sprintf("%s.commands[%d].depends_on", f, cmds[cycle[0]]), cycle)
		}
	}
	if err := u.validateSaved(); err != nil {
		return err
	}
	return u.validateDependsOn(labels)
}

// validateSaved checks the saved pipelines: valid unique names, valid
// specs, no project (apply sets it).
func (u *UpFile) validateSaved() error {
	names := make(map[string]int, len(u.SavedPipelines))
	for i := range u.SavedPipelines {
		sp := &u.SavedPipelines[i]
		f := fmt.Sprintf("saved_pipelines[%d]", i)
		if err := checkLabel(f+".name", sp.Name); err != nil {
			return err
		}
		if j, dup := names[sp.Name]; dup {
			return fieldErr(f+".name", "duplicate saved pipeline %q (also saved_pipelines[%d])", sp.Name, j)
		}
		names[sp.Name] = i
		if err := sp.Spec.Validate(); err != nil {
			return WithPrefix(f+".spec", err)
		}
		if sp.Spec.Project != "" {
			return fieldErr(f+".spec.project", "is set by shipote from the file's project, not written in a file")
		}
	}
	return nil
}

// validateDependsOn checks the workspaces' depends_on: each names another
// workspace of the file, and they make no cycle.
func (u *UpFile) validateDependsOn(labels map[string]int) error {
	deps := make(map[string][]string)
	for i := range u.Workspaces {
		w := &u.Workspaces[i]
		for k, d := range w.DependsOn {
			f := fmt.Sprintf("workspaces[%d].depends_on[%d]", i, k)
			if _, ok := labels[d]; !ok {
				return fieldErr(f, "no workspace %q in this file", d)
			}
			if d == w.Label {
				return fieldErr(f, "a workspace cannot depend on itself (%q)", d)
			}
		}
		deps[w.Label] = w.DependsOn
	}
	if cycle := FindCycle(deps); cycle != nil {
		return CycleError(fmt.Sprintf("workspaces[%d].depends_on", labels[cycle[0]]), cycle)
	}
	return nil
}

// Order returns the indexes of the workspaces in an order that starts each
// after the workspaces it depends on (file order otherwise). The file
// must be valid.
func (u *UpFile) Order() []int {
	return dependencyOrder(len(u.Workspaces),
		func(i int) string { return u.Workspaces[i].Label },
		func(i int) []string { return u.Workspaces[i].DependsOn })
}

// CommandOrder returns the commands of w in an order that starts each
// after its depends_on (file order otherwise). w must be valid.
func (w *UpWorkspace) CommandOrder() []int {
	return dependencyOrder(len(w.Commands),
		func(i int) string { return w.Commands[i].Label },
		func(i int) []string { return w.Commands[i].DependsOn })
}

// dependencyOrder orders n items, labelled by label, so that each comes
// after the items its deps name (unknown names are ignored), keeping the
// given order otherwise. The graph must have no cycle.
func dependencyOrder(n int, label func(int) string, deps func(int) []string) []int {
	idx := make(map[string]int, n)
	for i := range n {
		if l := label(i); l != "" {
			idx[l] = i
		}
	}
	seen := make([]bool, n)
	out := make([]int, 0, n)
	var visit func(i int)
	visit = func(i int) {
		if seen[i] {
			return
		}
		seen[i] = true
		for _, d := range deps(i) {
			if j, ok := idx[d]; ok {
				visit(j)
			}
		}
		out = append(out, i)
	}
	for i := range n {
		visit(i)
	}
	return out
}
