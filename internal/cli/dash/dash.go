// This file owns the dashboard frame that `shipote top` and `shipote up`
// draw: workspaces, commands, pipeline nodes and flow channels.

// Package dash renders the live view of workspaces, commands and
// pipelines shared by `shipote top` and `shipote up`.
package dash

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/internal/cli/pipe"
	"github.com/shipote/shipote/internal/cli/ps"
	"github.com/shipote/shipote/internal/cli/ws"
	"github.com/shipote/shipote/messages"
)

// Frame is what one refresh shows.
type Frame struct {
	Title      string
	Workspaces []messages.WorkspaceInfo
	// Commands are shown when ShowCommands is set.
	Commands     []messages.CommandInfo
	ShowCommands bool
	Pipelines    []messages.PipelineInfo
}

// Render writes f.
func Render(w io.Writer, f Frame, now time.Time) {
	fmt.Fprintf(w, "%s  %s  %d workspaces, %d pipelines\n\n", f.Title, now.Format("15:04:05"),
		len(f.Workspaces), len(f.Pipelines))
	labels := make(map[string]string, len(f.Workspaces))
	for _, w := range f.Workspaces {
		labels[w.ID] = w.Spec.Label
	}
	if len(f.Workspaces) > 0 {
		ws.WriteTable(w, f.Workspaces, now)
	} else {
		fmt.Fprintln(w, "no workspaces")
	}
	if f.ShowCommands && len(f.Commands) > 0 {
		fmt.Fprintln(w)
		ps.WriteTable(w, f.Commands, labels, now)
	}
	runs := append([]messages.PipelineInfo(nil), f.Pipelines...)
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].StartedAt.Before(runs[j].StartedAt) })
	for _, p := range runs {
		wsLabel := p.WorkspaceLabel
		if wsLabel == "" {
			wsLabel = labels[p.Workspace]
		}
		fmt.Fprintf(w, "\npipeline %s/%s  %s  %s", wsLabel, p.Label, p.ID, p.State)
		if p.Node != "" {
			fmt.Fprintf(w, "  on %s", p.Node)
		}
		if p.Restarts > 0 {
			fmt.Fprintf(w, "  restarts %d", p.Restarts)
		}
		if !p.StartedAt.IsZero() {
			end := now
			if !p.EndedAt.IsZero() {
				end = p.EndedAt
			}
			fmt.Fprintf(w, "  %s", cmdutil.FormatDuration(end.Sub(p.StartedAt)))
		}
		fmt.Fprintln(w)
		t := cmdutil.NewTable(w, "  NODE", "STATE", "PID", "EXIT", "FLOW", "BYTES", "RATE", "DROPPED")
		flows := make(map[string][]messages.ChannelInfo)
		for _, s := range p.Splitters {
			flows[s.Node] = s.Channels
		}
		for _, n := range p.Nodes {
			pid := "-"
			if n.Pid > 0 {
				pid = strconv.Itoa(n.Pid)
			}
			chans := flows[n.Label]
			if len(chans) == 0 {
				t.Row("  "+n.Label, string(n.State), pid, pipe.NodeExit(n), "", "", "", "")
				continue
			}
			for i, ch := range chans {
				to := ch.To
				if ch.Tap {
					to = "tap:" + to
				}
				cells := []string{"  " + n.Label, string(n.State), pid, pipe.NodeExit(n)}
				if i > 0 {
					cells = []string{"  ", " ", " ", " "}
				}
				rate := cmdutil.FormatRate(ch.BytesPerSec)
				if p.State.Ended() {
					rate = "-"
				}
				t.Row(append(cells, "→ "+to, cmdutil.FormatBytes(ch.BytesTotal), rate,
					cmdutil.FormatBytes(ch.DroppedBytes))...)
			}
		}
		t.Flush()
	}
}
