// This file tests package logs: flag parsing (argv to options, or a usage
// error) and what the commands print.

package logs

import (
	"reflect"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/cli/clitest"
	"github.com/shipote/shipote/messages"
)

func TestNewCmdLogs(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		want  Options
		usage string
	}{
		{name: "workspace", args: []string{"build"}, want: Options{Workspace: "build"}},
		{name: "command", args: []string{"build/web"}, want: Options{Workspace: "build", Command: "web"}},
		{name: "pipeline node", args: []string{"build/fan/count"}, want: Options{Workspace: "build", Command: "fan/count"}},
		{name: "every flag", args: []string{"build/web", "-f", "--tail", "20", "--since", "10m", "--stream", "err"},
			want: Options{Workspace: "build", Command: "web", Follow: true, Tail: 20, Since: 10 * time.Minute, Stream: "err"}},
		{name: "long follow", args: []string{"b", "--follow"}, want: Options{Workspace: "b", Follow: true}},
		{name: "no argument", args: nil, usage: "missing WS[/CMD]"},
		{name: "two arguments", args: []string{"a", "b"}, usage: `unexpected argument "b"`},
		{name: "empty workspace", args: []string{"/web"}, usage: "names no workspace"},
		{name: "empty command", args: []string{"build/"}, usage: "names no command"},
		{name: "negative tail", args: []string{"b", "--tail", "-1"}, usage: "--tail"},
		{name: "bad since", args: []string{"b", "--since", "yesterday"}, usage: "not a duration"},
		{name: "bad stream", args: []string{"b", "--stream", "stdout"}, usage: `"stdout" is not one of out or err`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := clitest.Parse(t, NewCmdLogs, tt.args, tt.usage)
			if got == nil {
				return
			}
			got.IO, got.Client = nil, nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("options = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestLogsRun(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	fc := &clitest.FakeClient{
		CommandList: []messages.CommandInfo{{ID: "C1", Label: "web"}, {ID: "C2", Label: "worker"}},
		LogLines: map[string][]messages.LogLine{
			"web":    {{Time: t0, Stream: messages.Stdout, Line: "listening"}},
			"C1":     {{Time: t0, Stream: messages.Stdout, Line: "listening"}, {Time: t0.Add(2 * time.Second), Stream: messages.Stderr, Line: "GET /"}},
			"C2":     {{Time: t0.Add(time.Second), Stream: messages.Stdout, Line: "tick"}},
			"worker": {{Time: t0.Add(time.Second), Stream: messages.Stdout, Line: "tick"}},
		},
	}
	f, out, _ := clitest.Factory(fc, t0)
	if err := clitest.Run(NewCmdLogs(f, nil), "build/web"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "listening\n" {
		t.Errorf("one command: %q", out.String())
	}
	out.Reset()
	if err := clitest.Run(NewCmdLogs(f, nil), "build"); err != nil {
		t.Fatal(err)
	}
	want := "web    | listening\nworker | tick\nweb    | GET /\n"
	if out.String() != want {
		t.Errorf("every command, by time:\n%q\nwant\n%q", out.String(), want)
	}
	out.Reset()
	if err := clitest.Run(NewCmdLogs(f, nil), "build", "-f", "--stream", "err"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "web    | GET /\n" {
		t.Errorf("follow, err only: %q", out.String())
	}
}
