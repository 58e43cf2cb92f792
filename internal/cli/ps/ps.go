// This file owns `shipote ps`: the commands of one workspace or of all.

// Package ps implements `shipote ps`.
package ps

import (
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

// Options are the inputs of `ps`.
type Options struct {
	IO        *cmdutil.IOStreams
	Client    func() (cmdutil.Client, error)
	Now       func() time.Time
	Workspace string // "" = every workspace
	Output    string
}

// NewCmdPs returns `ps`; runF replaces the run for tests.
func NewCmdPs(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Client: f.APIClient, Now: f.Clock}
	cmd := &cobra.Command{
		Use:   "ps [WS]",
		Short: "List the commands of a workspace, or of every workspace",
		Args:  cmdutil.RangeArgs(0, 1),

		ValidArgsFunction: cmdutil.CompleteWorkspaces(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Workspace = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return psRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func psRun(ctx context.Context, o *Options) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	cmds, err := c.Commands(ctx, o.Workspace)
	if err != nil {
		return fmt.Errorf("list commands: %w", err)
	}
	if o.Output == "json" {
		return cmdutil.WriteJSON(o.IO.Out, cmds)
	}
	labels := make(map[string]string)
	if wss, err := c.Workspaces(ctx); err == nil {
		for _, w := range wss {
			labels[w.ID] = w.Spec.Label
		}
	}
	WriteTable(o.IO.Out, cmds, labels, o.Now())
	return nil
}

// WriteTable prints commands: ID, WORKSPACE, LABEL, PID, STATE, RESTARTS,
// UPTIME, READY, NEXT. labels maps workspace IDs to labels (an unknown ID
// prints as is).
//
// In a cluster (any command has a node) a NODE column follows WORKSPACE.
func WriteTable(w io.Writer, cmds []messages.CommandInfo, labels map[string]string, now time.Time) {
	clustered := slices.ContainsFunc(cmds, func(c messages.CommandInfo) bool { return c.Node != "" })
	head := []string{"ID", "WORKSPACE", "LABEL", "PID", "STATE", "RESTARTS", "UPTIME", "READY", "NEXT"}
	if clustered {
		head = slices.Insert(head, 2, "NODE")
	}
	t := cmdutil.NewTable(w, head...)
	for _, c := range cmds {
		ws := labels[c.Workspace]
		if ws == "" {
			ws = c.Workspace
		}
		pid := "-"
		if c.Pid > 0 {
			pid = strconv.Itoa(c.Pid)
		}
		uptime := "-"
		if c.Alive() {
			uptime = cmdutil.FormatDuration(c.Uptime(now))
		}
		row := []string{c.ID, ws, c.Label, pid, State(c), strconv.Itoa(c.Restarts), uptime, Ready(c), Next(c, now)}
		if clustered {
			row = slices.Insert(row, 2, c.Node)
		}
		t.Row(row...)
	}
	t.Flush()
}

// State prints a command's state with how it ended: "exited (0)",
// "scheduled (0)" (its last run),
// "failed (SIGKILL)", "failed (2, gave up)", or why it was stopped:
// "stopped (user)", "stopped (ttl)".
func State(c messages.CommandInfo) string {
	s := string(c.State)
	if c.State == messages.CommandStopped {
		if c.StopReason == "" {
			return s
		}
		return s + " (" + strings.ReplaceAll(c.StopReason, "_", " ") + ")"
	}
	if !c.State.Ended() && c.State != messages.CommandBackoff && c.State != messages.CommandScheduled {
		return s // a scheduled command shows how its last run ended
	}
	var how string
	switch {
	case c.KilledBy != "":
		// "killed (oom)", "killed (quota)"; backoff (restarting) keeps its state.
		if c.State != messages.CommandBackoff {
			s = "killed"
		}
		how = c.KilledBy
	case c.Signal != "":
		how = c.Signal
	case c.ExitCode != nil:
		how = strconv.Itoa(*c.ExitCode)
	}
	if c.GaveUp {
		if how != "" {
			how += ", "
		}
		how += "gave up"
	}
	if how == "" {
		return s
	}
	return s + " (" + how + ")"
}

// Ready prints a command's readiness: starting, ready, unhealthy,
// "waiting:db,cache" while it waits for its dependencies, "-" when it
// does not run.
func Ready(c messages.CommandInfo) string {
	switch {
	case c.Readiness == messages.ReadyWaiting && len(c.WaitingOn) > 0:
		return "waiting:" + strings.Join(c.WaitingOn, ",")
	case c.Readiness != "":
		return string(c.Readiness)
	}
	return "-"
}

// Next prints when a scheduled command runs next, in now's time zone: a
// time of day within a day, else a date and time; "-" without.
func Next(c messages.CommandInfo, now time.Time) string {
	if c.NextRunAt.IsZero() {
		return "-"
	}
	at := c.NextRunAt.In(now.Location())
	if at.Sub(now) >= 24*time.Hour {
		return at.Format("2006-01-02T15:04")
	}
	return at.Format("15:04:05")
}
