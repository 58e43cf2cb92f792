// This file tests validation of the `up` file: error paths carry the
// workspace, command and pipeline indexes.

package messages

import "testing"

func upFile() UpFile {
	clock := func() CommandRef {
		return CommandRef{Label: "clock", Payload: Payload{Native: &NativePayload{
			Exec: "/bin/sh", Argv: []string{"-c", "while :; do date; sleep 1; done"}}}}
	}
	echo := func() CommandRef {
		return CommandRef{Payload: Payload{Native: &NativePayload{Exec: "echo", Argv: []string{"hi"}}}}
	}
	chain := func() PipelineSpec {
		p := ring([]string{"a", "b"}, Edge{"a", "b"})
		p.Label = "chain"
		return p
	}
	return UpFile{Workspaces: []UpWorkspace{
		{
			WorkspaceSpec: WorkspaceSpec{Label: "demo", TTLMs: 600000, Soma: Soma{MemoryMaxBytes: 1 << 30}},
			Commands:      []CommandRef{clock(), echo(), echo()}, // unlabelled commands may repeat
			Pipelines:     []PipelineSpec{specPipeline(), chain()},
		},
		{WorkspaceSpec: WorkspaceSpec{Label: "other"}, Commands: []CommandRef{clock()}, Pipelines: []PipelineSpec{chain()}},
	}, SavedPipelines: []UpSavedPipeline{{Name: "nightly", Spec: chain()}, {Name: "fan", Spec: specPipeline()}}}
}

func TestUpFileValid(t *testing.T) {
	u := upFile()
	if err := u.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
	u.Workspaces[0].Pipelines[0].Workspace = "demo"
	if err := u.Validate(); err != nil {
		t.Fatalf("Validate() with a matching workspace = %v, want nil", err)
	}
	saved := UpFile{Name: "lib", SavedPipelines: u.SavedPipelines}
	if err := saved.Validate(); err != nil {
		t.Fatalf("Validate() of saved pipelines alone = %v, want nil", err)
	}
}

func TestUpFileInvalid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*UpFile)
		field  string
		exact  string
		subs   []string
	}{
		{name: "nothing declared", mutate: func(u *UpFile) { u.Workspaces, u.SavedPipelines = nil, nil },
			field: "workspaces", subs: []string{"at least one workspace or saved pipeline"}},
		{name: "saved pipeline name", mutate: func(u *UpFile) { u.SavedPipelines[1].Name = "../x" },
			field: "saved_pipelines[1].name", subs: []string{"characters outside"}},
		{name: "saved pipeline empty name", mutate: func(u *UpFile) { u.SavedPipelines[0].Name = "" },
			field: "saved_pipelines[0].name", subs: []string{"must not be empty"}},
		{name: "duplicate saved pipeline", mutate: func(u *UpFile) { u.SavedPipelines[1].Name = "nightly" },
			field: "saved_pipelines[1].name", exact: `saved_pipelines[1].name: duplicate saved pipeline "nightly" (also saved_pipelines[0])`},
		{name: "saved pipeline spec", mutate: func(u *UpFile) { u.SavedPipelines[1].Spec.Edges[0].To = "x" },
			field: "saved_pipelines[1].spec.edges[0].to", subs: []string{`no node "x"`}},
		{name: "saved pipeline node", mutate: func(u *UpFile) { u.SavedPipelines[0].Spec.Nodes[1].Label = "a" },
			field: "saved_pipelines[0].spec.nodes[1].label", subs: []string{`duplicate node "a"`}},
		{name: "saved pipeline project", mutate: func(u *UpFile) { u.SavedPipelines[0].Spec.Project = "other" },
			field: "saved_pipelines[0].spec.project", subs: []string{"is set by shipote"}},
		{name: "workspace pipeline project", mutate: func(u *UpFile) { u.Workspaces[1].Pipelines[0].Project = "other" },
			field: "workspaces[1].pipelines[0].project", subs: []string{"is set by shipote on saved pipelines"}},
		{name: "unknown edge end", mutate: func(u *UpFile) { u.Workspaces[0].Pipelines[1].Edges[0].To = "x" },
			field: "workspaces[0].pipelines[1].edges[0].to", exact: `workspaces[0].pipelines[1].edges[0].to: no node "x"`},
		{name: "pipeline cycle", mutate: func(u *UpFile) {
			p := &u.Workspaces[1].Pipelines[0]
			p.Edges = append(p.Edges, Edge{"b", "a"})
		}, field: "workspaces[1].pipelines[0].edges", exact: "workspaces[1].pipelines[0].edges: cycle a -> b -> a"},
		{name: "pipeline node label", mutate: func(u *UpFile) { u.Workspaces[0].Pipelines[0].Nodes[2].Label = "gen" },
			field: "workspaces[0].pipelines[0].nodes[2].label", subs: []string{`duplicate node "gen"`}},
		{name: "pipeline workspace mismatch", mutate: func(u *UpFile) { u.Workspaces[0].Pipelines[1].Workspace = "other" },
			field: "workspaces[0].pipelines[1].workspace", subs: []string{`"other" differs from the enclosing workspace "demo"`}},
		{name: "duplicate pipeline", mutate: func(u *UpFile) { u.Workspaces[0].Pipelines[1].Label = "fanout" },
			field: "workspaces[0].pipelines[1].label", subs: []string{`duplicate pipeline "fanout"`, "pipelines[0]"}},
		{name: "duplicate workspace", mutate: func(u *UpFile) { u.Workspaces[1].Label = "demo" },
			field: "workspaces[1].label", subs: []string{`duplicate workspace "demo"`, "workspaces[0]"}},
		{name: "workspace label", mutate: func(u *UpFile) { u.Workspaces[1].Label = "" },
			field: "workspaces[1].label", subs: []string{"must not be empty"}},
		{name: "workspace soma", mutate: func(u *UpFile) { u.Workspaces[0].Soma.PidsMax = -1 },
			field: "workspaces[0].soma.pids_max", subs: []string{">= 0"}},
		{name: "workspace allow_exec", mutate: func(u *UpFile) { u.Workspaces[1].Permissions.AllowExec = []string{"/bin/", "sh"} },
			field: "workspaces[1].permissions.allow_exec[1]", subs: []string{"not an absolute path"}},
		{name: "duplicate command", mutate: func(u *UpFile) { u.Workspaces[0].Commands[2].Label = "clock" },
			field: "workspaces[0].commands[2].label", subs: []string{`duplicate command "clock"`, "commands[0]"}},
		{name: "command exec", mutate: func(u *UpFile) { u.Workspaces[1].Commands[0].Payload.Native.Exec = "./run" },
			field: "workspaces[1].commands[0].payload.native.exec", subs: []string{`"./run" is a relative path`}},
		{name: "command restart", mutate: func(u *UpFile) {
			u.Workspaces[0].Commands[1].Supervision.Restart = &RestartPolicy{Max: -2}
		}, field: "workspaces[0].commands[1].supervision.restart.max", subs: []string{">= 0"}},
		{name: "command soma above workspace", mutate: func(u *UpFile) { u.Workspaces[0].Commands[0].Soma.MemoryMaxBytes = 2 << 30 },
			field: "workspaces[0].commands[0].soma.memory_max_bytes", subs: []string{"exceeds the workspace's"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := upFile()
			tt.mutate(&u)
			err := u.Validate()
			wantFieldErr(t, err, tt.field, tt.subs...)
			if tt.exact != "" && err.Error() != tt.exact {
				t.Errorf("error = %q, want exactly %q", err.Error(), tt.exact)
			}
		})
	}
}
