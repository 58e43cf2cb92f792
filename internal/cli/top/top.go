// This file owns `shipote top`: a dashboard of workspaces and pipelines
// with their flow counters, redrawn every --interval until Ctrl-C.

// Package top implements `shipote top`.
package top

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/internal/cli/dash"
)

// Options are the inputs of `top`.
type Options struct {
	IO         *cmdutil.IOStreams
	Client     func() (cmdutil.Client, error)
	Now        func() time.Time
	Interval   time.Duration
	Iterations int64 // 0 = until Ctrl-C
	Commands   bool
}

// NewCmdTop returns `top`; runF replaces the run for tests.
func NewCmdTop(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Client: f.APIClient, Now: f.Clock, Interval: time.Second}
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Live dashboard of workspaces, pipelines and flow channels",
		Long: `Show workspaces, pipelines and their flow channels (bytes, bytes/s, dropped),
refreshed every --interval until Ctrl-C. On a terminal the screen is redrawn;
otherwise each refresh is printed after the previous one.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Interval <= 0 {
				return cmdutil.FlagErrorf("--interval must be above 0")
			}
			if runF != nil {
				return runF(opts)
			}
			return topRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().Var(cmdutil.DurationValue{P: &opts.Interval}, "interval", "time between refreshes")
	cmd.Flags().VarP(cmdutil.CountValue{P: &opts.Iterations}, "iterations", "n", "stop after N refreshes (0 = until Ctrl-C)")
	cmd.Flags().BoolVarP(&opts.Commands, "commands", "c", false, "also list every command")
	return cmd
}

func topRun(ctx context.Context, o *Options) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	tty := o.IO.IsStdoutTTY()
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	for i := int64(1); ; i++ {
		var f dash.Frame
		f.Title = "shipote top"
		if f.Workspaces, err = c.Workspaces(ctx); err != nil {
			return done(ctx, err)
		}
		if f.Pipelines, err = c.Pipelines(ctx, ""); err != nil {
			return done(ctx, err)
		}
		if o.Commands {
			f.ShowCommands = true
			if f.Commands, err = c.Commands(ctx, ""); err != nil {
				return done(ctx, err)
			}
		}
		var buf bytes.Buffer
		if tty {
			buf.WriteString(cmdutil.ClearScreen)
		} else if i > 1 {
			buf.WriteString("\n")
		}
		dash.Render(&buf, f, o.Now())
		if _, err := o.IO.Out.Write(buf.Bytes()); err != nil {
			return err
		}
		if o.Iterations > 0 && i >= o.Iterations {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// done turns an error after Ctrl-C into a clean end.
func done(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("top: %w", err)
}
