// This file tests package top: flag parsing (argv to options, or a usage
// error) and what the commands print.

package top

import (
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/cli/clitest"
	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
)

func TestTopRun(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	fc := &clitest.FakeClient{
		WorkspaceList: []messages.WorkspaceInfo{{ID: "W1", Spec: messages.WorkspaceSpec{Label: "build"}}},
		PipelineList: []messages.PipelineInfo{{ID: "P1", Workspace: "W1", WorkspaceLabel: "build", Label: "fan", State: messages.PipelineRunning,
			Nodes:     []messages.NodeInfo{{Label: "gen", State: messages.CommandRunning, Pid: 7}, {Label: "count", State: messages.CommandRunning, Pid: 8}},
			Splitters: []messages.SplitterInfo{{Node: "gen", Channels: []messages.ChannelInfo{{From: "gen", To: "count", BytesTotal: 2048, BytesPerSec: 1024}}}}}},
	}
	f, out, _ := clitest.Factory(fc, now)
	if err := clitest.Run(NewCmdTop(f, nil), "-n", "2", "--interval", "10ms"); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.Count(s, "shipote top") != 2 || strings.Contains(s, cmdutil.ClearScreen) {
		t.Errorf("want two frames without screen clearing (not a terminal):\n%s", s)
	}
	for _, want := range []string{"pipeline build/fan  P1  running", "→ count", "2.0K", "1.0K/s"} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in\n%s", want, s)
		}
	}
	out.Reset()
	f.IO.SetStdoutTTY(true)
	if err := clitest.Run(NewCmdTop(f, nil), "-n", "1"); err != nil || !strings.HasPrefix(out.String(), cmdutil.ClearScreen) {
		t.Errorf("terminal: %v, %q", err, out.String())
	}
	if err := clitest.Run(NewCmdTop(f, nil), "--interval", "0s"); !clitest.IsUsage(err) {
		t.Errorf("zero interval: %v", err)
	}
}
