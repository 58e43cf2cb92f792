// This file owns `shipote events`: the daemon's recent lifecycle events,
// and with -f the new ones as they happen.

// Package events implements `shipote events`.
package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
)

// Options are the inputs of `events`.
type Options struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)
	Follow bool
	Output string
}

// NewCmdEvents returns `events`; runF replaces the run for tests.
func NewCmdEvents(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Client: f.APIClient}
	cmd := &cobra.Command{
		Use:   "events [-f]",
		Short: "Print lifecycle events (created, started, exited, restarted, gave_up, ...)",
		Long: `Print the daemon's recent lifecycle events: created, started, exited,
restarted, gave_up, quota, expired, restored, removed, failed, stopped,
succeeded. With -f, keep printing new ones until Ctrl-C. -o json prints an
array, or with -f one JSON object per line.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return eventsRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new events until Ctrl-C")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func eventsRun(ctx context.Context, o *Options) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	if o.Output == "json" && !o.Follow {
		var all []messages.Event
		if err := c.Events(ctx, false, func(ev messages.Event) error {
			all = append(all, ev)
			return nil
		}); err != nil {
			return err
		}
		return cmdutil.WriteJSON(o.IO.Out, all)
	}
	err = c.Events(ctx, o.Follow, func(ev messages.Event) error {
		if o.Output == "json" {
			return cmdutil.WriteJSONLine(o.IO.Out, ev)
		}
		_, err := io.WriteString(o.IO.Out, Format(ev)+"\n")
		return err
	})
	if o.Follow && errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// Format prints an event on one line: time, kind, then who and what.
func Format(ev messages.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-9s", ev.Time.Local().Format("15:04:05.000"), ev.Kind)
	if ev.Member != "" {
		b.WriteString(" member=" + ev.Member)
	}
	ws := ev.Label
	if ws == "" {
		ws = ev.Workspace
	}
	if ws != "" {
		b.WriteString(" ws=" + ws)
	}
	if ev.Command != "" {
		b.WriteString(" cmd=" + ev.Command)
	}
	if ev.Pipeline != "" {
		b.WriteString(" pipe=" + ev.Pipeline)
	}
	if ev.Node != "" {
		b.WriteString(" node=" + ev.Node)
	}
	if ev.Message != "" {
		b.WriteString("  " + ev.Message)
	}
	return b.String()
}
