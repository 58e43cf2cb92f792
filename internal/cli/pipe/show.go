// This file owns `shipote pipe ls`, `pipe show` and `pipe stop`, and how a
// pipeline run is printed (nodes and flow channels).

package pipe

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
)

// ListOptions are the inputs of `pipe ls`.
type ListOptions struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)
	Now    func() time.Time
	Saved  bool
	Output string
}

// NewCmdList returns `pipe ls`; runF replaces the run for tests.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IO, Client: f.APIClient, Now: f.Clock}
	cmd := &cobra.Command{
		Use:     "ls [--saved]",
		Aliases: []string{"list"},
		Short:   "List pipeline runs, or saved pipelines",
		Args:    cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Saved, "saved", false, "list saved pipelines instead of runs")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func listRun(ctx context.Context, o *ListOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	if o.Saved {
		saved, err := c.SavedPipelines(ctx)
		if err != nil {
			return fmt.Errorf("list saved pipelines: %w", err)
		}
		if o.Output == "json" {
			return cmdutil.WriteJSON(o.IO.Out, saved)
		}
		t := cmdutil.NewTable(o.IO.Out, "NAME", "LABEL", "NODES", "EDGES", "SUPERVISED", "PROJECT")
		for _, s := range saved {
			project := s.Spec.Project
			if project == "" {
				project = "-" // saved by hand, not by apply
			}
			t.Row(s.Name, s.Spec.Label, strconv.Itoa(len(s.Spec.Nodes)), strconv.Itoa(len(s.Spec.Edges)),
				strconv.FormatBool(s.Spec.RestartOnFailure), project)
		}
		return t.Flush()
	}
	runs, err := c.Pipelines(ctx, "")
	if err != nil {
		return fmt.Errorf("list pipelines: %w", err)
	}
	if o.Output == "json" {
		return cmdutil.WriteJSON(o.IO.Out, runs)
	}
	WriteList(o.IO.Out, runs, o.Now())
	return nil
}

// WriteList prints pipeline runs: ID, WORKSPACE, LABEL, STATE, RESTARTS,
// NODES (running/total), BYTES (total over every channel), AGE. In a
// cluster (any run has a member) a NODE column follows WORKSPACE.
func WriteList(w io.Writer, runs []messages.PipelineInfo, now time.Time) {
	clustered := slices.ContainsFunc(runs, func(p messages.PipelineInfo) bool { return p.Node != "" })
	head := []string{"ID", "WORKSPACE", "LABEL", "STATE", "RESTARTS", "NODES", "BYTES", "AGE"}
	if clustered {
		head = slices.Insert(head, 2, "NODE")
	}
	t := cmdutil.NewTable(w, head...)
	for _, p := range runs {
		running := 0
		for _, n := range p.Nodes {
			if n.State.Running() {
				running++
			}
		}
		var total uint64
		for _, s := range p.Splitters {
			for _, ch := range s.Channels {
				if !ch.Tap {
					total += ch.BytesTotal
				}
			}
		}
		ws := p.WorkspaceLabel
		if ws == "" {
			ws = p.Workspace
		}
		row := []string{p.ID, ws, p.Label, string(p.State), strconv.Itoa(p.Restarts),
			fmt.Sprintf("%d/%d", running, len(p.Nodes)), cmdutil.FormatBytes(total), age(now, p.StartedAt)}
		if clustered {
			row = slices.Insert(row, 2, cmp.Or(p.Node, "-"))
		}
		t.Row(row...)
	}
	t.Flush()
}

func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return cmdutil.FormatDuration(now.Sub(t))
}

// ShowOptions are the inputs of `pipe show`.
type ShowOptions struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)
	Now    func() time.Time
	Run    string
	Output string
}

// NewCmdShow returns `pipe show`; runF replaces the run for tests.
func NewCmdShow(f *cmdutil.Factory, runF func(*ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{IO: f.IO, Client: f.APIClient, Now: f.Clock}
	cmd := &cobra.Command{
		Use:   "show RUN",
		Short: "Show a pipeline run: nodes, states and flow channels",
		Args:  cmdutil.ExactArgs(1, "RUN"),

		ValidArgsFunction: cmdutil.CompleteRuns(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Run = args[0]
			if runF != nil {
				return runF(opts)
			}
			return showRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func showRun(ctx context.Context, o *ShowOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	p, err := c.Pipeline(ctx, o.Run)
	if err != nil {
		return err
	}
	if o.Output == "json" {
		return cmdutil.WriteJSON(o.IO.Out, p)
	}
	WriteDetails(o.IO.Out, p, o.Now())
	return nil
}

// WriteDetails prints a pipeline run for people: a header, its nodes and
// its flow channels.
func WriteDetails(w io.Writer, p messages.PipelineInfo, now time.Time) {
	ws := p.WorkspaceLabel
	if ws == "" {
		ws = p.Workspace
	} else {
		ws += " (" + p.Workspace + ")"
	}
	fmt.Fprintf(w, "%-11s %s\n", "ID:", p.ID)
	fmt.Fprintf(w, "%-11s %s\n", "Label:", p.Label)
	fmt.Fprintf(w, "%-11s %s\n", "Workspace:", ws)
	state := string(p.State)
	if p.State == messages.PipelineBackoff && !p.NextStartAt.IsZero() {
		state += ", next run in " + cmdutil.FormatDuration(p.NextStartAt.Sub(now))
	}
	fmt.Fprintf(w, "%-11s %s\n", "State:", state)
	sup := "no"
	if p.Supervised {
		sup = fmt.Sprintf("yes, %d restarts", p.Restarts)
	}
	fmt.Fprintf(w, "%-11s %s\n", "Supervised:", sup)
	if !p.StartedAt.IsZero() {
		fmt.Fprintf(w, "%-11s %s\n", "Started:", cmdutil.Age(now, p.StartedAt))
	}
	if !p.EndedAt.IsZero() {
		fmt.Fprintf(w, "%-11s %s (ran %s)\n", "Ended:", cmdutil.Age(now, p.EndedAt),
			cmdutil.FormatDuration(p.EndedAt.Sub(p.StartedAt)))
	}
	if p.Error != "" {
		fmt.Fprintf(w, "%-11s %s\n", "Error:", p.Error)
	}
	fmt.Fprintln(w)
	WriteNodes(w, p)
	fmt.Fprintln(w)
	WriteFlows(w, p)
}

// WriteNodes prints a run's nodes: NODE, STATE, PID, EXIT.
func WriteNodes(w io.Writer, p messages.PipelineInfo) {
	t := cmdutil.NewTable(w, "NODE", "STATE", "PID", "EXIT")
	for _, n := range p.Nodes {
		pid := "-"
		if n.Pid > 0 {
			pid = strconv.Itoa(n.Pid)
		}
		t.Row(n.Label, string(n.State), pid, NodeExit(n))
	}
	t.Flush()
}

// NodeExit prints how a node ended: its exit code, its signal, or its
// error.
func NodeExit(n messages.NodeInfo) string {
	var parts []string
	if n.ExitCode != nil {
		parts = append(parts, strconv.Itoa(*n.ExitCode))
	}
	if n.Signal != "" {
		parts = append(parts, n.Signal)
	}
	if n.Error != "" {
		parts = append(parts, n.Error)
	}
	return strings.Join(parts, " ")
}

// WriteFlows prints a run's flow channels: FROM → TO, BYTES (total), RATE
// (bytes/s over the last second), DROPPED; and per producer, bytes in and
// time throttled.
func WriteFlows(w io.Writer, p messages.PipelineInfo) {
	t := cmdutil.NewTable(w, "FLOW", "BYTES", "RATE", "DROPPED")
	for _, s := range p.Splitters {
		for _, ch := range s.Channels {
			to := ch.To
			if ch.Tap {
				to = "tap:" + ch.To
			}
			t.Row(ch.From+" → "+to, cmdutil.FormatBytes(ch.BytesTotal), cmdutil.FormatRate(ch.BytesPerSec),
				cmdutil.FormatBytes(ch.DroppedBytes))
		}
	}
	t.Flush()
	for _, s := range p.Splitters {
		fmt.Fprintf(w, "%s: %s in, throttled %s\n", s.Node, cmdutil.FormatBytes(s.BytesIn),
			cmdutil.FormatDuration(time.Duration(s.ThrottledMs)*time.Millisecond))
	}
}

// StopOptions are the inputs of `pipe stop`.
type StopOptions struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)
	Run    string
}

// NewCmdStop returns `pipe stop`; runF replaces the run for tests.
func NewCmdStop(f *cmdutil.Factory, runF func(*StopOptions) error) *cobra.Command {
	opts := &StopOptions{IO: f.IO, Client: f.APIClient}
	cmd := &cobra.Command{
		Use:   "stop RUN",
		Short: "Stop a pipeline run for good and print its final state",
		Args:  cmdutil.ExactArgs(1, "RUN"),

		ValidArgsFunction: cmdutil.CompleteRuns(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Run = args[0]
			if runF != nil {
				return runF(opts)
			}
			return stopRun(cmd.Context(), opts)
		},
	}
	return cmd
}

func stopRun(ctx context.Context, o *StopOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	p, err := c.StopPipeline(ctx, o.Run)
	if err != nil {
		return fmt.Errorf("stop pipeline: %w", err)
	}
	fmt.Fprintf(o.IO.Out, "%s %s\n", p.ID, p.State)
	return nil
}
