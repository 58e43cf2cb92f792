// This file tests package ws: flag parsing (argv to options, or a usage
// error) and what the commands print.

package ws

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/cli/clitest"
	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
)

func TestNewCmdCreate(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    CreateFlags
		changed []string
		file    string
		usage   string // a usage error containing this
	}{
		{name: "label only", args: []string{"--label", "build"}, want: CreateFlags{Label: "build"}, changed: []string{"label"}},
		{
			name: "every flag",
			args: []string{"--label", "build", "--mem", "512M", "--cpu", "1.5", "--pids", "64", "--nofile", "1024",
				"--ttl", "10m", "--on-exit", "reap", "--quota-enforce", "kill", "--allow-exec", "/usr/bin/",
				"--allow-exec", "/bin/sh", "--workdir", "/srv", "--env", "A=1", "--env", "B=x=y",
				"--flow-dir", "/run/f", "--uid", "1000", "--gid", "100"},
			want: CreateFlags{Label: "build", Mem: 512 << 20, CPU: 1.5, Pids: 64, Nofile: 1024, TTL: 10 * time.Minute,
				OnExit: "reap", QuotaEnforce: "kill", AllowExec: []string{"/usr/bin/", "/bin/sh"}, Workdir: "/srv",
				Env: []string{"A=1", "B=x=y"}, FlowDirs: []string{"/run/f"}, UID: 1000, GID: 100},
			changed: []string{"label", "mem", "cpu", "pids", "nofile", "ttl", "on-exit", "quota-enforce", "allow-exec",
				"workdir", "env", "flow-dir", "uid", "gid"},
		},
		{name: "allow-exec keeps commas", args: []string{"--label", "a", "--allow-exec", "/opt/a,b"},
			want: CreateFlags{Label: "a", AllowExec: []string{"/opt/a,b"}}, changed: []string{"label", "allow-exec"}},
		{name: "file without label", args: []string{"-f", "ws.yaml"}, file: "ws.yaml", changed: []string{}},
		{name: "empty label is passed on", args: []string{"--label", ""}, changed: []string{"label"}},
		{name: "no label", args: nil, usage: "required flag --label"},
		{name: "negative size", args: []string{"--label", "a", "--mem", "-1G"}, usage: `negative size "-1G"`},
		{name: "bad size", args: []string{"--label", "a", "--mem", "lots"}, usage: `invalid size "lots"`},
		{name: "negative cpu", args: []string{"--label", "a", "--cpu", "-0.5"}, usage: "--cpu"},
		{name: "negative pids", args: []string{"--label", "a", "--pids", "-1"}, usage: "--pids"},
		{name: "bad ttl", args: []string{"--label", "a", "--ttl", "10"}, usage: "is not a duration"},
		{name: "negative ttl", args: []string{"--label", "a", "--ttl", "-1m"}, usage: "is negative"},
		{name: "bad on-exit", args: []string{"--label", "a", "--on-exit", "drop"}, usage: `"drop" is not one of keep or reap`},
		{name: "bad quota", args: []string{"--label", "a", "--quota-enforce", "on"}, usage: `"on" is not one of off, warn or kill`},
		{name: "bad env", args: []string{"--label", "a", "--env", "A"}, usage: `"A" is not K=V`},
		{name: "argument", args: []string{"--label", "a", "extra"}, usage: `unexpected argument "extra"`},
		{name: "unknown flag", args: []string{"--label", "a", "--memory", "1G"}, usage: "unknown flag: --memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := clitest.Parse(t, NewCmdCreate, tt.args, tt.usage)
			if got == nil {
				return
			}
			if !reflect.DeepEqual(got.Flags, tt.want) {
				t.Errorf("flags = %+v\nwant    %+v", got.Flags, tt.want)
			}
			if got.File != tt.file {
				t.Errorf("file = %q, want %q", got.File, tt.file)
			}
			changed := make(map[string]bool)
			for _, c := range tt.changed {
				changed[c] = true
			}
			if !reflect.DeepEqual(got.Changed, changed) {
				t.Errorf("changed = %v, want %v", got.Changed, changed)
			}
		})
	}
}

func TestCreateSpecFlagsOverrideFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ws.yaml")
	os.WriteFile(file, []byte(`label: fromfile
soma: {memory_max_bytes: 1024, pids_max: 8}
permissions: {env: {A: "1", B: "2"}}
ttl_ms: 5000
`), 0o600)
	f, _, _ := clitest.Factory(&clitest.FakeClient{}, time.Now())
	var got *CreateOptions
	cmd := NewCmdCreate(f, func(o *CreateOptions) error { got = o; return nil })
	if err := clitest.Run(cmd, "-f", file, "--mem", "2G", "--env", "B=3", "--ttl", "1m"); err != nil {
		t.Fatal(err)
	}
	spec, err := got.Spec()
	if err != nil {
		t.Fatal(err)
	}
	want := messages.WorkspaceSpec{
		Label:       "fromfile",
		Soma:        messages.Soma{MemoryMaxBytes: 2 << 30, PidsMax: 8},
		Permissions: messages.Permissions{Env: map[string]string{"A": "1", "B": "3"}},
		TTLMs:       60000,
	}
	if !reflect.DeepEqual(spec, want) {
		t.Errorf("spec = %+v\nwant   %+v", spec, want)
	}
}

func TestCreateSpecBadFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ content, err string }{
		{`{"label": "x",`, "malformed"},
		{"label: x\ncolour: red\n", `unknown field "colour"`},
		{"", "empty document"},
		{"label: x\n---\nlabel: y\n", "more than one YAML document"},
	}
	for _, tt := range tests {
		file := filepath.Join(dir, "ws.yaml")
		os.WriteFile(file, []byte(tt.content), 0o600)
		o := &CreateOptions{File: file}
		o.IO, _, _, _ = cmdutil.Test()
		_, err := o.Spec()
		if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), file) {
			t.Errorf("%q: err = %v, want one naming the file and %q", tt.content, err, tt.err)
		}
	}
}

func TestCreateRun(t *testing.T) {
	fc := &clitest.FakeClient{}
	f, out, _ := clitest.Factory(fc, time.Now())
	if err := clitest.Run(NewCmdCreate(f, nil), "--label", "a", "--cpu", "0.5"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "01ARZ3NDEKTSV4RRFFQ69G5FAV\n" {
		t.Errorf("stdout %q, want the ID alone", out.String())
	}
	if fc.CreatedSpec.Label != "a" || fc.CreatedSpec.Soma.CPUMax != 0.5 {
		t.Errorf("spec sent: %+v", fc.CreatedSpec)
	}
}

func TestListRun(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	fc := &clitest.FakeClient{WorkspaceList: []messages.WorkspaceInfo{
		{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAV", Spec: messages.WorkspaceSpec{Label: "build"}, CommandsAlive: 2, CommandsTotal: 3,
			Deadline: now.Add(9*time.Minute + 30*time.Second),
			Stats:    &messages.Sample{RSSBytes: 12_900_000, CPUPercent: 150.25}},
		{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAW", Spec: messages.WorkspaceSpec{Label: "idle"}},
	}}
	f, out, _ := clitest.Factory(fc, now)
	if err := clitest.Run(NewCmdList(f, nil)); err != nil {
		t.Fatal(err)
	}
	want := `ID                          LABEL  ALIVE  RSS    CPU     TTL LEFT
01ARZ3NDEKTSV4RRFFQ69G5FAV  build  2/3    12.3M  150.2%  9m30s
01ARZ3NDEKTSV4RRFFQ69G5FAW  idle   0/0    -      -       -
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	if err := clitest.Run(NewCmdList(f, nil), "-o", "json"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "[\n  {\n    \"id\": \"01ARZ3NDEKTSV4RRFFQ69G5FAV\",") {
		t.Errorf("json: %s", out.String())
	}
}

func TestShowRun(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	fc := &clitest.FakeClient{
		WorkspaceList: []messages.WorkspaceInfo{{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAV", CreatedAt: now.Add(-time.Minute),
			Spec: messages.WorkspaceSpec{Label: "build", Soma: messages.Soma{MemoryMaxBytes: 512 << 20, CPUMax: 1.5}}}},
		Samples: []messages.Sample{{RSSBytes: 1 << 20, CPUPercent: 0}, {RSSBytes: 4 << 20, CPUPercent: 50, Source: "cgroup1"}},
	}
	f, out, _ := clitest.Factory(fc, now)
	if err := clitest.Run(NewCmdShow(f, nil), "build"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Label:        build", "Limits:       memory 512M, cpu 1.5", "TTL:          none",
		"Memory:       4.0M", "RSS history:  ▃█  max 4.0M", "CPU history:  ▁█  max 50.0%"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
}

func TestListPages(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	fc := &clitest.FakeClient{WorkspaceList: []messages.WorkspaceInfo{
		{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAA", Spec: messages.WorkspaceSpec{Label: "web-1"}},
		{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAB", Spec: messages.WorkspaceSpec{Label: "db"}},
		{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAC", Spec: messages.WorkspaceSpec{Label: "web 2"}},
		{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAD", Spec: messages.WorkspaceSpec{Label: "web-3"}},
	}}
	for _, tt := range []struct {
		args      []string
		ids       []string
		nextPage  string
		wantQuery messages.ListQuery
	}{
		{args: []string{"--limit", "2"}, ids: []string{"FAA", "FAB"},
			nextPage: "next page: shipote ws ls --after 01ARZ3NDEKTSV4RRFFQ69G5FAB --limit 2\n", wantQuery: messages.ListQuery{Limit: 2}},
		{args: []string{"--limit", "2", "--after", "01ARZ3NDEKTSV4RRFFQ69G5FAB"}, ids: []string{"FAC", "FAD"},
			wantQuery: messages.ListQuery{Limit: 2, After: "01ARZ3NDEKTSV4RRFFQ69G5FAB"}},
		{args: []string{"--label-prefix", "web", "--limit", "1"}, ids: []string{"FAA"},
			nextPage:  "next page: shipote ws ls --after 01ARZ3NDEKTSV4RRFFQ69G5FAA --limit 1 --label-prefix web\n",
			wantQuery: messages.ListQuery{Limit: 1, LabelPrefix: "web"}},
		{args: []string{"--label-prefix", "web ", "--limit", "1"}, ids: []string{"FAC"},
			wantQuery: messages.ListQuery{Limit: 1, LabelPrefix: "web "}},
		{args: []string{"--label-prefix", "web", "--limit", "2", "-o", "json"}, ids: []string{"FAA", "FAC"},
			nextPage:  "next page: shipote ws ls --after 01ARZ3NDEKTSV4RRFFQ69G5FAC --limit 2 --label-prefix web\n",
			wantQuery: messages.ListQuery{Limit: 2, LabelPrefix: "web"}},
	} {
		f, out, errOut := clitest.Factory(fc, now)
		if err := clitest.Run(NewCmdList(f, nil), tt.args...); err != nil {
			t.Fatal(err)
		}
		if fc.PageQuery == nil || *fc.PageQuery != tt.wantQuery {
			t.Errorf("%v: query %+v, want %+v", tt.args, fc.PageQuery, tt.wantQuery)
		}
		for _, id := range tt.ids {
			if !strings.Contains(out.String(), "01ARZ3NDEKTSV4RRFFQ69G5"+id) {
				t.Errorf("%v: no %s in\n%s", tt.args, id, out.String())
			}
		}
		if n := strings.Count(out.String(), "01ARZ3NDEKTSV4RRFFQ69G5"); n != len(tt.ids) {
			t.Errorf("%v: %d workspaces listed, want %d:\n%s", tt.args, n, len(tt.ids), out.String())
		}
		if got := errOut.String(); !strings.Contains(got, tt.nextPage) || (tt.nextPage == "" && strings.Contains(got, "next page")) {
			t.Errorf("%v: stderr %q, want %q", tt.args, got, tt.nextPage)
		}
	}
}

func TestNewCmdListBadPaging(t *testing.T) {
	for _, tt := range []struct {
		args  []string
		usage string
	}{
		{[]string{"--limit", "-1"}, "--limit: must be >= 0, got -1"},
		{[]string{"--after", "web-1"}, `--after: "web-1" is not an ID`},
		{[]string{"--limit", "ten"}, `invalid argument "ten" for "--limit"`},
	} {
		clitest.Parse(t, NewCmdList, tt.args, tt.usage)
	}
}
