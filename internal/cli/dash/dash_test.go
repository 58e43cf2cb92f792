// This file tests package dash: one rendered frame.

package dash

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

func TestRender(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	zero := 0
	f := Frame{
		Title:        "t",
		Workspaces:   []messages.WorkspaceInfo{{ID: "W1", Spec: messages.WorkspaceSpec{Label: "w"}}},
		ShowCommands: true,
		Commands:     []messages.CommandInfo{{ID: "C1", Workspace: "W1", Label: "clock", State: messages.CommandRunning, Pid: 5, StartedAt: now.Add(-time.Second)}},
		Pipelines: []messages.PipelineInfo{{ID: "P1", Workspace: "W1", Label: "p", State: messages.PipelineSucceeded,
			StartedAt: now.Add(-3 * time.Second), EndedAt: now.Add(-time.Second),
			Nodes: []messages.NodeInfo{{Label: "gen", State: messages.CommandExited, ExitCode: &zero}, {Label: "a", State: messages.CommandExited, ExitCode: &zero}},
			Splitters: []messages.SplitterInfo{{Node: "gen", Channels: []messages.ChannelInfo{
				{From: "gen", To: "a", BytesTotal: 100, BytesPerSec: 50}, {From: "gen", To: "b", BytesTotal: 100}}}}}},
	}
	var buf bytes.Buffer
	Render(&buf, f, now)
	s := buf.String()
	for _, want := range []string{"t  12:00:00  1 workspaces, 1 pipelines", "clock", "pipeline w/p  P1  succeeded  2s",
		"gen   exited  -    0     → a   100B   -     0B", "→ b"} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in\n%s", want, s)
		}
	}
}
