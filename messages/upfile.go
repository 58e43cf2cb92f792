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
}

// UpWorkspace is a workspace spec with the commands and pipelines to start in
// it.
type UpWorkspace struct {
	WorkspaceSpec
	Commands  []CommandRef   `json:"commands,omitempty"`
	Pipelines []PipelineSpec `json:"pipelines,omitempty"`
}

// Validate checks the whole file; errors name the path
// ("workspaces[0].pipelines[1].edges[0].to: no node \"x\"").
func (u *UpFile) Validate() error {
	if len(u.Workspaces) == 0 {
		return fieldErr("workspaces", "must list at least one workspace")
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
			if p.Workspace != "" && p.Workspace != w.Label {
				return fieldErr(pf+".workspace", "%q differs from the enclosing workspace %q", p.Workspace, w.Label)
			}
			if k, dup := pipes[p.Label]; dup {
				return fieldErr(pf+".label", "duplicate pipeline %q (also pipelines[%d])", p.Label, k)
			}
			pipes[p.Label] = j
		}
	}
	return nil
}
