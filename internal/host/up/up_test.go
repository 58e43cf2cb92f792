// This file tests package up: flag parsing (argv to options, or a usage
// error) and what the commands print.

package up

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/internal/cli/clitest"
	"github.com/shipote/shipote/internal/cli/cmdutil"
)

func TestNewCmdUp(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		want  Options
		usage string
	}{
		{name: "file", args: []string{"demo.yaml"},
			want: Options{File: "demo.yaml", Interval: time.Second, Grace: 5 * time.Second, Limits: "auto", LogLevel: "warn"}},
		{name: "every flag", args: []string{"demo.yaml", "--state", "/tmp/s.json", "--interval", "250ms", "--grace", "1s",
			"--limits", "none", "--log-level", "debug"},
			want: Options{File: "demo.yaml", StatePath: "/tmp/s.json", Interval: 250 * time.Millisecond, Grace: time.Second,
				Limits: "none", LogLevel: "debug"}},
		{name: "no file", args: nil, usage: "missing FILE"},
		{name: "two files", args: []string{"a.yaml", "b.yaml"}, usage: `unexpected argument "b.yaml"`},
		{name: "zero interval", args: []string{"a.yaml", "--interval", "0s"}, usage: "--interval must be above 0"},
		{name: "bad limits", args: []string{"a.yaml", "--limits", "cgroup3"}, usage: `"cgroup3" is not one of`},
		{name: "bad log level", args: []string{"a.yaml", "--log-level", "loud"}, usage: `"loud" is not one of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := clitest.Parse(t, NewCmdUp, tt.args, tt.usage)
			if got == nil {
				return
			}
			got.IO, got.Now = nil, nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("options %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, err string
	}{
		{"good", "workspaces:\n  - label: w\n    commands: [{payload: {native: {exec: 'true'}}}]\n", ""},
		{"no workspaces", "workspaces: []\n", "workspaces: must list at least one workspace"},
		{"malformed", "workspaces: [\n", "malformed"},
		{"unknown field", "workspaces:\n  - label: w\n    command: []\n", `unknown field "workspaces[0].command"`},
		{"bad label", "workspaces:\n  - label: ''\n", "workspaces[0].label: must not be empty"},
		{"duplicate workspace", "workspaces:\n  - label: w\n  - label: w\n", `workspaces[1].label: duplicate workspace "w"`},
		{"relative exec", "workspaces:\n  - label: w\n    commands: [{payload: {native: {exec: ./x}}}]\n",
			"workspaces[0].commands[0].payload.native.exec"},
		{"unknown node", "workspaces:\n  - label: w\n    pipelines:\n      - label: p\n        nodes: [{label: a, payload: {native: {exec: seq}}}]\n        edges: [{from: a, to: x}]\n",
			`workspaces[0].pipelines[0].edges[0].to: no node "x"`},
		{"negative size", "workspaces:\n  - label: w\n    soma: {memory_max_bytes: -5}\n", "workspaces[0].soma.memory_max_bytes: must be >= 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, "up.yaml")
			os.WriteFile(p, []byte(tt.content), 0o600)
			ios, _, _, _ := cmdutil.Test()
			uf, err := cmdutil.LoadUpFile(ios, p)
			if tt.err == "" {
				if err != nil || len(uf.Workspaces) != 1 {
					t.Fatalf("Load = %+v, %v", uf, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), p+": ") {
				t.Errorf("err = %v, want %q after the file name", err, tt.err)
			}
		})
	}
}

// TestUpRun runs a small file in the in-process engine (no kernel limits)
// and checks the end and the summary.
func TestUpRun(t *testing.T) {
	dir := t.TempDir()
	write := func(content string) string {
		p := filepath.Join(dir, "up.yaml")
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	t.Run("succeeds", func(t *testing.T) {
		ios, _, out, errOut := cmdutil.Test()
		o := &Options{IO: ios, Now: time.Now, Interval: time.Second, Grace: time.Second, Limits: "none", LogLevel: "error",
			File: write(`workspaces:
  - label: w
    commands:
      - {label: once, payload: {native: {exec: echo, argv: [hi]}}}
    pipelines:
      - label: p
        nodes:
          - {label: gen, payload: {native: {exec: seq, argv: ["1000"]}}}
          - {label: count, payload: {native: {exec: wc, argv: ["-l"]}}}
          - {label: copy, payload: {native: {exec: cat}}}
        edges: [{from: gen, to: count}, {from: gen, to: copy}]
`)}
		if err := upRun(context.Background(), o); err != nil {
			t.Fatalf("upRun: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
		}
		for _, want := range []string{"pipeline w/p: succeeded", "gen → count: 3893 bytes", "gen → copy: 3893 bytes",
			"count: 1000", "copy: 1000", "command w/once: exited (0)", "created   ws=w"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("no %q in\n%s", want, out.String())
			}
		}
	})
	t.Run("saved pipelines", func(t *testing.T) {
		ios, _, out, errOut := cmdutil.Test()
		state := filepath.Join(dir, "state", "state.json")
		o := &Options{IO: ios, Now: time.Now, Interval: time.Second, Grace: time.Second, Limits: "none", LogLevel: "error",
			StatePath: state, File: write(`saved_pipelines:
  - name: nightly
    spec:
      label: nightly
      nodes: [{label: gen, payload: {native: {exec: seq, argv: ["3"]}}}]
workspaces:
  - label: w
    commands:
      - {label: once, payload: {native: {exec: echo, argv: [hi]}}}
`)}
		if err := upRun(context.Background(), o); err != nil {
			t.Fatalf("upRun: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
		}
		eng, err := shipote.Start(context.Background(), shipote.NewActorSystem(nil), shipote.Config{StatePath: state, Limits: "none"})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := eng.Stop(context.Background()); err != nil {
				t.Error(err)
			}
		}()
		saved, err := eng.SavedPipelines(context.Background())
		if err != nil || len(saved) != 1 || saved[0].Name != "nightly" || len(saved[0].Spec.Nodes) != 1 {
			t.Fatalf("saved pipelines after up: %+v, %v; want nightly", saved, err)
		}
		run, err := eng.StartSavedPipeline(context.Background(), "nightly", "w", false)
		if err != nil || run.Label != "nightly" {
			t.Fatalf("pipe start of the saved pipeline: %+v, %v", run, err)
		}
	})
	t.Run("depends_on", func(t *testing.T) {
		ios, _, out, errOut := cmdutil.Test()
		m1, m2 := filepath.Join(dir, "db-done"), filepath.Join(dir, "first-done")
		// app is listed first but waits for db; each later step checks that
		// the one it depends on has finished, and fails otherwise.
		o := &Options{IO: ios, Now: time.Now, Interval: time.Second, Grace: time.Second, Limits: "none", LogLevel: "error",
			File: write(`workspaces:
  - label: app
    depends_on: [db]
    commands:
      - {label: second, depends_on: [first], payload: {native: {exec: test, argv: [-f, ` + m2 + `]}}}
      - {label: first, payload: {native: {exec: sh, argv: [-c, "test -f ` + m1 + ` && sleep 0.3 && touch ` + m2 + `"]}}}
  - label: db
    commands:
      - {label: init, payload: {native: {exec: sh, argv: [-c, "sleep 0.3; touch ` + m1 + `"]}}}
`)}
		if err := upRun(context.Background(), o); err != nil {
			t.Fatalf("upRun: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
		}
		for _, want := range []string{"command db/init: exited (0)", "command app/first: exited (0)", "command app/second: exited (0)"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("no %q in\n%s", want, out.String())
			}
		}
	})
	t.Run("depends_on a failed workspace", func(t *testing.T) {
		ios, _, out, _ := cmdutil.Test()
		o := &Options{IO: ios, Now: time.Now, Interval: time.Second, Grace: time.Second, Limits: "none", LogLevel: "error",
			File: write("workspaces:\n  - label: app\n    depends_on: [db]\n  - label: db\n    commands:\n      - {label: init, payload: {native: {exec: 'false'}}}\n")}
		err := upRun(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), "workspaces[0] (app): depends_on db: command init did not succeed (failed (1))") {
			t.Errorf("err = %v\n%s", err, out)
		}
	})
	t.Run("fails", func(t *testing.T) {
		ios, _, out, _ := cmdutil.Test()
		o := &Options{IO: ios, Now: time.Now, Interval: time.Second, Grace: time.Second, Limits: "none", LogLevel: "error",
			File: write("workspaces:\n  - label: w\n    pipelines:\n      - {label: p, nodes: [{label: a, payload: {native: {exec: 'false'}}}]}\n")}
		err := upRun(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), "pipeline w/p (failed)") {
			t.Errorf("err = %v\n%s", err, out)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		ios, _, out, _ := cmdutil.Test()
		o := &Options{IO: ios, Now: time.Now, Interval: time.Second, Grace: time.Second, Limits: "none", LogLevel: "error",
			File: write("workspaces:\n  - label: w\n    commands:\n      - {label: s, payload: {native: {exec: sleep, argv: ['300']}}}\n      - {label: e, payload: {native: {exec: 'true'}}}\n")}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := upRun(ctx, o)
		// The sleeper was running when up was interrupted: the summary says
		// it was stopped, not that it runs; the command that had ended
		// keeps its end.
		if !errors.Is(err, cmdutil.ErrInterrupted) || !strings.Contains(out.String(), "command w/s: stopped (was running; up was interrupted)") ||
			!strings.Contains(out.String(), "command w/e: exited (0)") || strings.Contains(out.String(), ": running") {
			t.Errorf("err = %v\n%s", err, out)
		}
	})
}
