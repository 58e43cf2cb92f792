// This file tests package pipe: flag parsing (argv to options, or a usage
// error) and what the commands print.

package pipe

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/cli/clitest"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
)

func TestNewCmdPipe(t *testing.T) {
	type parsed struct {
		ws, file, name, run string
		tap, saved          bool
		output              string
		node, sig           string
	}
	tests := []struct {
		name  string
		args  []string
		want  parsed
		usage string
	}{
		{name: "run", args: []string{"run", "build", "-f", "p.yaml"}, want: parsed{ws: "build", file: "p.yaml"}},
		{name: "run with tap", args: []string{"run", "build", "--file", "-", "--tap"}, want: parsed{ws: "build", file: "-", tap: true}},
		{name: "run without -f", args: []string{"run", "build"}, usage: "required flag -f/--file"},
		{name: "run without workspace", args: []string{"run", "-f", "p.yaml"}, usage: "missing WS"},
		{name: "save", args: []string{"save", "fan", "-f", "p.yaml"}, want: parsed{name: "fan", file: "p.yaml"}},
		{name: "save without -f", args: []string{"save", "fan"}, usage: "required flag -f/--file"},
		{name: "save without name", args: []string{"save", "-f", "p.yaml"}, usage: "missing NAME"},
		{name: "start", args: []string{"start", "fan", "--ws", "build", "--tap"}, want: parsed{name: "fan", ws: "build", tap: true}},
		{name: "start without --ws", args: []string{"start", "fan"}, usage: "required flag --ws"},
		{name: "ls", args: []string{"ls"}, want: parsed{}},
		{name: "ls saved json", args: []string{"ls", "--saved", "-o", "json"}, want: parsed{saved: true, output: "json"}},
		{name: "ls bad output", args: []string{"ls", "-o", "wide"}, usage: `"wide" is not one of json`},
		{name: "show", args: []string{"show", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "-o", "json"}, want: parsed{run: "01ARZ3NDEKTSV4RRFFQ69G5FAV", output: "json"}},
		{name: "show without run", args: []string{"show"}, usage: "missing RUN"},
		{name: "stop", args: []string{"stop", "fan"}, want: parsed{run: "fan"}},
		{name: "stop two runs", args: []string{"stop", "a", "b"}, usage: `unexpected argument "b"`},
		{name: "unknown subcommand", args: []string{"reload", "x"}, usage: `unknown command "reload"`},
		{name: "restart", args: []string{"restart", "fan"}, want: parsed{run: "fan"}},
		{name: "restart without run", args: []string{"restart"}, usage: "missing RUN"},
		{name: "signal", args: []string{"signal", "fan", "HUP"}, want: parsed{run: "fan", sig: "HUP"}},
		{name: "signal node", args: []string{"signal", "fan", "--node", "count", "9"}, want: parsed{run: "fan", node: "count", sig: "9"}},
		{name: "signal empty node", args: []string{"signal", "fan", "--node", "", "9"}, usage: "--node needs a node label"},
		{name: "signal bad", args: []string{"signal", "fan", "HANGUP"}, usage: `"HANGUP" is not a signal name or number`},
		{name: "signal missing", args: []string{"signal", "fan"}, usage: "missing SIG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _ := clitest.Factory(&clitest.FakeClient{}, time.Now())
			var got parsed
			capture := func(p parsed) error { got = p; return clitest.ErrCaptured }
			root := NewCmdPipe(f)
			for _, c := range root.Commands() {
				root.RemoveCommand(c)
			}
			root.AddCommand(
				NewCmdRun(f, func(o *RunOptions) error { return capture(parsed{ws: o.Workspace, file: o.File, tap: o.Tap}) }),
				NewCmdSave(f, func(o *SaveOptions) error { return capture(parsed{name: o.Name, file: o.File}) }),
				NewCmdStart(f, func(o *StartOptions) error { return capture(parsed{name: o.Name, ws: o.Workspace, tap: o.Tap}) }),
				NewCmdList(f, func(o *ListOptions) error { return capture(parsed{saved: o.Saved, output: o.Output}) }),
				NewCmdShow(f, func(o *ShowOptions) error { return capture(parsed{run: o.Run, output: o.Output}) }),
				NewCmdStop(f, func(o *StopOptions) error { return capture(parsed{run: o.Run}) }),
				NewCmdRestart(f, func(o *RestartOptions) error { return capture(parsed{run: o.Run}) }),
				NewCmdSignal(f, func(o *SignalOptions) error { return capture(parsed{run: o.Run, node: o.Node, sig: o.Signal}) }),
			)
			if !clitest.ExpectParsed(t, root, tt.args, tt.usage) {
				return
			}
			if got != tt.want {
				t.Errorf("parsed %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadSpec(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	f, _, _ := clitest.Factory(&clitest.FakeClient{}, time.Now())
	good := write("good.yaml", "label: p\nnodes: [{label: a, payload: {native: {exec: seq, argv: ['3']}}}]\n")
	spec, err := ReadSpec(f.IO, good)
	if err != nil || spec.Label != "p" || spec.Nodes[0].Payload.Native.Argv[0] != "3" {
		t.Fatalf("ReadSpec = %+v, %v", spec, err)
	}
	for content, want := range map[string]string{
		"label: p\nnodez: []\n":     `unknown field "nodez"`,
		"{\"label\": \"p\"":         "malformed",
		"label: p\nLabel: q\n":      "case-sensitive",
		"label: [1, 2\nnodes: []\n": "malformed",
	} {
		_, err := ReadSpec(f.IO, write("bad.yaml", content))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "bad.yaml") {
			t.Errorf("%q: err = %v, want one naming the file and %q", content, err, want)
		}
	}
	if _, err := ReadSpec(f.IO, filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestShowRun(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	zero := 0
	p := messages.PipelineInfo{
		ID: "01ARZ3NDEKTSV4RRFFQ69G5FAX", Workspace: "01ARZ3NDEKTSV4RRFFQ69G5FAV", WorkspaceLabel: "build", Label: "fan",
		State: messages.PipelineRunning, StartedAt: now.Add(-3 * time.Second),
		Nodes: []messages.NodeInfo{
			{Label: "gen", State: messages.CommandRunning, Pid: 42},
			{Label: "count", State: messages.CommandExited, ExitCode: &zero},
		},
		Splitters: []messages.SplitterInfo{{Node: "gen", BytesIn: 3 << 20, ThrottledMs: 1500, Channels: []messages.ChannelInfo{
			{From: "gen", To: "count", BytesTotal: 3 << 20, BytesPerSec: 1 << 20},
			{From: "gen", To: "t1", Tap: true, BytesTotal: 1024, DroppedBytes: 2048},
		}}},
	}
	fc := &clitest.FakeClient{PipelineList: []messages.PipelineInfo{p}}
	f, out, _ := clitest.Factory(fc, now)
	if err := clitest.Run(NewCmdShow(f, nil), "fan"); err != nil {
		t.Fatal(err)
	}
	want := `ID:         01ARZ3NDEKTSV4RRFFQ69G5FAX
Label:      fan
Workspace:  build (01ARZ3NDEKTSV4RRFFQ69G5FAV)
State:      running
Supervised: no
Started:    3s ago

NODE   STATE    PID  EXIT
gen    running  42   -
count  exited   -    0

FLOW          BYTES  RATE    DROPPED
gen → count   3.0M   1.0M/s  0B
gen → tap:t1  1.0K   0B/s    2.0K
gen: 3.0M in, throttled 1s
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestRestartAndSignalRun(t *testing.T) {
	run := messages.PipelineInfo{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAX", Label: "fan", State: messages.PipelineRunning,
		Nodes: []messages.NodeInfo{{Label: "gen", Pid: 42}, {Label: "count", Pid: 43}}}
	ended := messages.PipelineInfo{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAY", Label: "old", State: messages.PipelineSucceeded}
	fc := &clitest.FakeClient{PipelineList: []messages.PipelineInfo{run, ended}}
	f, out, _ := clitest.Factory(fc, time.Now())
	if err := clitest.Run(NewCmdRestart(f, nil), "fan"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "01ARZ3NDEKTSV4RRFFQ69G5FAX run 2 gen=42 count=43\n" {
		t.Errorf("restart printed %q", out.String())
	}
	out.Reset()
	if err := clitest.Run(NewCmdSignal(f, nil), "fan", "--node", "count", "usr1"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "sent SIGUSR1 to count of 01ARZ3NDEKTSV4RRFFQ69G5FAX\n" || fc.Signals[0] != "fan/count usr1" {
		t.Errorf("signal printed %q, sent %q", out.String(), fc.Signals)
	}
	out.Reset()
	if err := clitest.Run(NewCmdSignal(f, nil), "fan", "15"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "sent SIGTERM to gen, count of 01ARZ3NDEKTSV4RRFFQ69G5FAX\n" {
		t.Errorf("signal printed %q", out.String())
	}
	if err := clitest.Run(NewCmdRestart(f, nil), "old"); err == nil || !strings.Contains(err.Error(), "restart pipeline: pipeline old has ended") {
		t.Errorf("restart of an ended run: %v", err)
	}
	if err := clitest.Run(NewCmdSignal(f, nil), "nope", "TERM"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("signal of an unknown run: %v", err)
	}
}

func TestListSaved(t *testing.T) {
	node := messages.Node{Label: "a", Payload: messages.Payload{Native: &messages.NativePayload{Exec: "seq"}}}
	fc := &clitest.FakeClient{SavedList: []protocol.SavedPipeline{
		{Name: "by-hand", Spec: messages.PipelineSpec{Label: "p", Nodes: []messages.Node{node}}},
		{Name: "nightly", Spec: messages.PipelineSpec{Label: "q", Nodes: []messages.Node{node}, RestartOnFailure: true, Project: "stack"}},
	}}
	f, out, _ := clitest.Factory(fc, time.Now())
	if err := clitest.Run(NewCmdList(f, nil), "--saved"); err != nil {
		t.Fatal(err)
	}
	want := `NAME     LABEL  NODES  EDGES  SUPERVISED  PROJECT
by-hand  p      1      0      false       -
nightly  q      1      0      true        stack
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// TestWriteListNodeColumn checks that runs gathered from a cluster get a
// NODE column after WORKSPACE, and a lone daemon's none.
func TestWriteListNodeColumn(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	run := messages.PipelineInfo{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAV", WorkspaceLabel: "build", Label: "fan",
		State: messages.PipelineRunning, StartedAt: now.Add(-time.Minute)}
	tests := []struct {
		name  string
		nodes []string
		head  string
	}{
		{"lone daemon", []string{""}, "ID                          WORKSPACE  LABEL"},
		{"cluster", []string{"node-a", ""}, "ID                          WORKSPACE  NODE    LABEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs []messages.PipelineInfo
			for _, n := range tt.nodes {
				r := run
				r.Node = n
				runs = append(runs, r)
			}
			var b strings.Builder
			WriteList(&b, runs, now)
			lines := strings.Split(b.String(), "\n")
			if !strings.HasPrefix(lines[0], tt.head) {
				t.Errorf("header %q, want it to start with %q", lines[0], tt.head)
			}
			if len(tt.nodes) > 1 {
				if !strings.Contains(lines[1], " node-a ") || !strings.Contains(lines[2], " - ") {
					t.Errorf("rows lack their member:\n%s", b.String())
				}
			}
		})
	}
}
