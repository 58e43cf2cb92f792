// This file tests the plan of apply, diff and down: one table row per kind
// of entry, idempotence, ownership and the field paths of a change.

package plan

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/shipote/shipote/messages"
)

func cmd(label string, argv ...string) messages.CommandRef {
	return messages.CommandRef{Label: label, Payload: messages.Payload{Native: &messages.NativePayload{Exec: "/bin/sleep", Argv: argv}}}
}

func pipe(label string) messages.PipelineSpec {
	return messages.PipelineSpec{Label: label,
		Nodes: []messages.Node{{Label: "a", Payload: cmd("", "1").Payload}, {Label: "b", Payload: cmd("", "2").Payload}},
		Edges: []messages.Edge{{From: "a", To: "b"}}}
}

func file() *messages.UpFile {
	return &messages.UpFile{Name: "shop", Workspaces: []messages.UpWorkspace{{
		WorkspaceSpec: messages.WorkspaceSpec{Label: "web", TTLMs: 60000},
		Commands:      []messages.CommandRef{cmd("api", "100"), func() messages.CommandRef { c := cmd("worker", "5"); c.Instances = 2; return c }()},
		Pipelines:     []messages.PipelineSpec{pipe("etl")},
	}}, SavedPipelines: []messages.UpSavedPipeline{{Name: "nightly", Spec: pipe("nightly")}}}
}

// applied is the current state right after file() was applied.
func applied() Current {
	f := file()
	d, err := Desired("shop", f)
	if err != nil {
		panic(err)
	}
	w := Workspace{ID: "W1", Spec: d[0].WorkspaceSpec}
	for i, c := range d[0].Commands {
		w.Commands = append(w.Commands, Command{ID: "C" + string(rune('1'+i)), Spec: c})
	}
	w.Pipelines = []Pipeline{{ID: "P1", Spec: d[0].Pipelines[0]}}
	nightly := f.SavedPipelines[0].Spec
	nightly.Project = "shop"
	return Current{Workspaces: []Workspace{w}, Saved: []Saved{{Name: "nightly", Spec: nightly}}}
}

// brief renders entries as "action kind ws/name [fields]" lines.
func brief(p Plan) []string {
	var out []string
	for _, e := range p.Entries {
		s := string(e.Action) + " " + string(e.Kind) + " " + e.Workspace
		if e.Name != "" {
			s += "/" + e.Name
		}
		if len(e.Fields) > 0 {
			s += " " + strings.Join(e.Fields, ",")
		}
		if e.ID != "" {
			s += " #" + e.ID
		}
		out = append(out, s)
	}
	return out
}

func TestCompute(t *testing.T) {
	tests := []struct {
		name string
		file func(*messages.UpFile)
		cur  func(*Current)
		want []string
	}{
		{name: "create everything", cur: func(c *Current) { *c = Current{} }, want: []string{
			"create workspace web", "create command web/api", "create command web/worker-0",
			"create command web/worker-1", "create pipeline web/etl", "create saved_pipeline /nightly"}},
		{name: "same file twice changes nothing"},
		{name: "changed saved pipeline", file: func(f *messages.UpFile) {
			f.SavedPipelines[0].Spec.RestartOnFailure = true
			f.SavedPipelines[0].Spec.Edges = nil
		}, want: []string{"change saved_pipeline /nightly edges,restart_on_failure"}},
		{name: "saved pipeline dropped from the file", file: func(f *messages.UpFile) { f.SavedPipelines = nil },
			want: []string{"remove saved_pipeline /nightly"}},
		{name: "saved pipeline added", file: func(f *messages.UpFile) {
			f.SavedPipelines = append(f.SavedPipelines, messages.UpSavedPipeline{Name: "weekly", Spec: pipe("weekly")})
		}, want: []string{"create saved_pipeline /weekly"}},
		{name: "saved pipelines of others are left alone", cur: func(c *Current) {
			c.Saved = append(c.Saved, Saved{Name: "theirs", Spec: messages.PipelineSpec{Label: "x", Project: "other"}},
				Saved{Name: "byhand", Spec: pipe("byhand")})
		}},
		{name: "changed command restarts only it", file: func(f *messages.UpFile) {
			f.Workspaces[0].Commands[0].Payload.Native.Argv = []string{"200"}
			f.Workspaces[0].Commands[0].StopTimeoutMs = 100
		}, want: []string{"change command web/api payload.native.argv,stop_timeout_ms #C1"}},
		{name: "scale up adds an instance", file: func(f *messages.UpFile) { f.Workspaces[0].Commands[1].Instances = 3 },
			want: []string{"create command web/worker-2"}},
		{name: "scale down removes an instance", file: func(f *messages.UpFile) { f.Workspaces[0].Commands[1].Instances = 1 },
			want: []string{"remove command web/worker-1 #C3"}},
		{name: "command dropped from the file", file: func(f *messages.UpFile) { f.Workspaces[0].Commands = f.Workspaces[0].Commands[1:] },
			want: []string{"remove command web/api #C1"}},
		{name: "changed pipeline", file: func(f *messages.UpFile) {
			f.Workspaces[0].Pipelines[0].RestartOnFailure = true
		}, want: []string{"change pipeline web/etl restart_on_failure #P1"}},
		{name: "pipeline dropped while running", file: func(f *messages.UpFile) { f.Workspaces[0].Pipelines = nil },
			want: []string{"remove pipeline web/etl #P1"}},
		{name: "ended pipeline dropped is history", file: func(f *messages.UpFile) { f.Workspaces[0].Pipelines = nil },
			cur: func(c *Current) { c.Workspaces[0].Pipelines[0].Ended = true }},
		{name: "implied pipeline workspace is no change", file: func(f *messages.UpFile) { f.Workspaces[0].Pipelines[0].Workspace = "web" }},
		{name: "workspace change replaces it with its contents", file: func(f *messages.UpFile) {
			f.Workspaces[0].Soma.MemoryMaxBytes = 1 << 30
			f.Workspaces[0].Permissions.Workdir = "/tmp"
		}, want: []string{"replace workspace web permissions.workdir,soma.memory_max_bytes #W1", "create command web/api",
			"create command web/worker-0", "create command web/worker-1", "create pipeline web/etl"}},
		{name: "workspace limits change in place", file: func(f *messages.UpFile) {
			f.Workspaces[0].Soma = messages.Soma{CPUMax: 2, PidsMax: 100}
		}, want: []string{"change workspace web soma.cpu_max,soma.pids_max #W1"}},
		{name: "workspace limits and a command change", file: func(f *messages.UpFile) {
			f.Workspaces[0].Soma.MemoryMaxBytes = 1 << 30
			f.Workspaces[0].Commands[0].Payload.Native.Argv = []string{"1"}
		}, want: []string{"change workspace web soma.memory_max_bytes #W1", "change command web/api payload.native.argv #C1"}},
		{name: "nofile needs a replace", file: func(f *messages.UpFile) { f.Workspaces[0].Soma.NofileMax = 64 },
			want: []string{"replace workspace web soma.nofile_max #W1", "create command web/api",
				"create command web/worker-0", "create command web/worker-1", "create pipeline web/etl"}},
		{name: "workspace dropped from the file", file: func(f *messages.UpFile) {
			f.Workspaces[0].Label = "web2"
			f.Workspaces[0].Commands, f.Workspaces[0].Pipelines = nil, nil
		}, want: []string{"create workspace web2", "remove workspace web #W1"}},
		{name: "other projects are left alone", cur: func(c *Current) {
			c.Workspaces = append(c.Workspaces,
				Workspace{ID: "W2", Spec: messages.WorkspaceSpec{Label: "db", Project: "other"}},
				Workspace{ID: "W3", Spec: messages.WorkspaceSpec{Label: "manual"}})
		}},
		{name: "runs beside a scheduled command are its own", file: func(f *messages.UpFile) {
			f.Workspaces[0].Commands[0].Schedule = "0 3 * * *"
		}, cur: func(c *Current) {
			w := &c.Workspaces[0]
			w.Commands[0].Spec.Schedule = "0 3 * * *"
			for i, label := range []string{"api-run", "api-run-2", "api-runner", "worker-0-run"} {
				run := w.Commands[0]
				run.ID, run.Spec.Label, run.Spec.Schedule = "R"+string(rune('1'+i)), label, ""
				w.Commands = append(w.Commands, run)
			}
		}, want: []string{"remove command web/api-runner #R3", "remove command web/worker-0-run #R4"}},
		{name: "newest command of a label counts", cur: func(c *Current) {
			old := c.Workspaces[0].Commands[0]
			old.ID, old.Ended = "C0", true
			old.Spec.Payload.Native = &messages.NativePayload{Exec: "/bin/true"}
			c.Workspaces[0].Commands = append(c.Workspaces[0].Commands, old)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, cur := file(), applied()
			if tt.file != nil {
				tt.file(f)
			}
			if tt.cur != nil {
				tt.cur(&cur)
			}
			p, err := Compute("shop", f, cur)
			if err != nil {
				t.Fatalf("Compute() error = %v", err)
			}
			if got := brief(p); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Compute() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if p.Empty() != (len(tt.want) == 0) {
				t.Fatalf("Empty() = %v with %d entries", p.Empty(), len(p.Entries))
			}
		})
	}
}

func TestComputeCarriesSpecs(t *testing.T) {
	p, err := Compute("shop", file(), Current{})
	if err != nil {
		t.Fatal(err)
	}
	ws := p.Entries[0].WorkspaceSpec
	if ws == nil || ws.Project != "shop" || ws.OnExit != messages.ExitKeep {
		t.Fatalf("workspace entry spec = %+v, want project shop, normalized", ws)
	}
	w1 := p.Entries[3].Command
	if w1 == nil || w1.Label != "worker-1" || w1.InstanceOf != "worker" || w1.Instances != 0 {
		t.Fatalf("instance entry = %+v", w1)
	}
	if p.Replaces() {
		t.Fatal("Replaces() = true for a plan of creates")
	}
	sv := p.Entries[5]
	if sv.Kind != KindSaved || sv.Pipeline == nil || sv.Pipeline.Project != "shop" || sv.Name != "nightly" {
		t.Fatalf("saved pipeline entry = %+v, want nightly with project shop", sv)
	}
	if n := p.Counts(); n[Create] != 6 {
		t.Fatalf("Counts() = %v", n)
	}
}

func TestComputeErrors(t *testing.T) {
	tests := []struct {
		name    string
		project string
		file    func(*messages.UpFile)
		cur     Current
		is      error
		msg     string
	}{
		{name: "label of another project", project: "shop",
			cur: Current{Workspaces: []Workspace{{ID: "W9", Spec: messages.WorkspaceSpec{Label: "web", Project: "blog"}}}},
			is:  ErrForeign, msg: `workspace "web" (W9) belongs to project "blog"`},
		{name: "label created by hand", project: "shop",
			cur: Current{Workspaces: []Workspace{{ID: "W9", Spec: messages.WorkspaceSpec{Label: "web"}}}},
			is:  ErrForeign, msg: `workspace "web" (W9) exists and was not created by an applied file`},
		{name: "unlabelled command", project: "shop", file: func(f *messages.UpFile) { f.Workspaces[0].Commands[0].Label = "" },
			is: messages.ErrInvalid, msg: "workspaces[0].commands[0].label: is required by apply"},
		{name: "saved pipeline of another project", project: "shop",
			cur: Current{Saved: []Saved{{Name: "nightly", Spec: messages.PipelineSpec{Label: "n", Project: "blog"}}}},
			is:  ErrForeign, msg: `saved pipeline "nightly" belongs to project "blog"`},
		{name: "saved pipeline saved by hand", project: "shop",
			cur: Current{Saved: []Saved{{Name: "nightly", Spec: pipe("nightly")}}},
			is:  ErrForeign, msg: `saved pipeline "nightly" exists and was not saved by an applied file`},
		{name: "bad project name", project: "a/b", msg: `project: "a/b" has characters outside`},
		{name: "empty project name", project: "", msg: "project: must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := file()
			if tt.file != nil {
				tt.file(f)
			}
			_, err := Compute(tt.project, f, tt.cur)
			if err == nil || !strings.Contains(err.Error(), tt.msg) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("Compute() error = %v, want %q (is %v)", err, tt.msg, tt.is)
			}
		})
	}
}

func TestDown(t *testing.T) {
	cur := applied()
	cur.Workspaces = append(cur.Workspaces, Workspace{ID: "W2", Spec: messages.WorkspaceSpec{Label: "db", Project: "other"}})
	cur.Saved = append(cur.Saved, Saved{Name: "byhand", Spec: pipe("byhand")})
	p, err := Down("shop", cur)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := brief(p), []string{"remove workspace web #W1", "remove saved_pipeline /nightly"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Down() = %q, want %q", got, want)
	}
	if _, err := Down("", cur); err == nil {
		t.Fatal("Down with no project: nil error")
	}
}

func TestDiff(t *testing.T) {
	a := cmd("x", "1")
	b := cmd("x", "1")
	if d := Diff(a, b); d != nil {
		t.Fatalf("Diff(equal) = %q", d)
	}
	b.Supervision = messages.Supervision{Restart: &messages.RestartPolicy{On: messages.RestartAlways}}
	b.Payload.Native.Envp = []string{"A=1"}
	if d, want := Diff(a, b), []string{"payload.native.envp", "supervision.restart.on"}; !reflect.DeepEqual(d, want) {
		t.Fatalf("Diff() = %q, want %q", d, want)
	}
}

func TestScale(t *testing.T) {
	inst := func(id, label, of string) Command {
		c := cmd(label, "9")
		c.InstanceOf = of
		return Command{ID: id, Spec: c}
	}
	tests := []struct {
		name  string
		cmds  []Command
		n     int
		want  []string
		error string
	}{
		{name: "plain command to three", cmds: []Command{{ID: "C1", Spec: cmd("w", "9")}}, n: 3,
			want: []string{"create command ws/w-0", "create command ws/w-1", "create command ws/w-2", "remove command ws/w #C1"}},
		{name: "two to three", cmds: []Command{inst("C1", "w-0", "w"), inst("C2", "w-1", "w")}, n: 3,
			want: []string{"create command ws/w-2"}},
		{name: "three to one", cmds: []Command{inst("C1", "w-0", "w"), inst("C2", "w-1", "w"), inst("C3", "w-2", "w")}, n: 1,
			want: []string{"remove command ws/w-1 #C2", "remove command ws/w-2 #C3"}},
		{name: "same count", cmds: []Command{inst("C1", "w-0", "w"), {ID: "C2", Spec: cmd("other")}}, n: 1},
		{name: "to zero", cmds: []Command{inst("C1", "w-0", "w")}, n: 0, want: []string{"remove command ws/w-0 #C1"}},
		{name: "unknown", cmds: []Command{{ID: "C2", Spec: cmd("other")}}, n: 2, error: `no command "w" in workspace ws: not found`},
		{name: "negative", n: -1, error: "instances: -1 is not between 0 and 1000"},
		{name: "too many", n: 1001, error: "instances: 1001 is not between 0 and 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Scale("ws", tt.cmds, "w", tt.n)
			if tt.error != "" {
				if err == nil || err.Error() != tt.error {
					t.Fatalf("Scale() error = %v, want %q", err, tt.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := brief(p); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Scale() = %q, want %q", got, tt.want)
			}
		})
	}
}
