// This file owns the `shipote top` command: on a terminal the interactive
// dashboard (model.go), otherwise, or with --iterations, a plain table of
// workspaces, pipelines and flow channels printed every --interval.

// Package top implements `shipote top`, the live dashboard of workspaces,
// commands, pipelines and flow channels.
package top

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

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
	// Socket is the daemon's socket, shown when it is not reachable.
	Socket string
	// ProgramOptions are added to the interactive program's (tests).
	ProgramOptions []tea.ProgramOption
}

// NewCmdTop returns `top`; runF replaces the run for tests.
func NewCmdTop(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Client: f.APIClient, Now: f.Clock, Interval: time.Second}
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Live dashboard of workspaces, pipelines and flow channels",
		Long: `Show workspaces, pipelines and their flow channels (bytes, bytes/s, dropped),
refreshed every --interval and on every event of the daemon.

On a terminal, top is interactive: a list of workspaces (commands alive/total,
RSS and CPU with sparklines, TTL left, memory used against memory_max, quota
state); Enter opens a workspace's commands and pipelines, and a pipeline's DAG
with each flow channel's bytes, bytes/s, throughput history, dropped bytes and
throttling. Keys: arrows or j/k move, Enter opens, Esc goes back, / filters,
s sorts, x stops a pipeline or removes a workspace (after y), l follows the log
of the selected command, r refreshes now, q quits. When the daemon goes away top says so and
reconnects by itself. NO_COLOR turns colors off.

When stdout is not a terminal, or top is not in its terminal's foreground
process group (as under timeout(1)), or with --iterations, each refresh is
printed as a plain table after the previous one (--commands adds every
command).

q or the Ctrl-C key end top with status 0; SIGINT ends it with 130 and
SIGTERM with 143 (a second signal gets the default behavior).`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Interval <= 0 {
				return cmdutil.FlagErrorf("--interval must be above 0")
			}
			opts.Socket = f.Socket
			if runF != nil {
				return runF(opts)
			}
			var err error
			if opts.IO.IsStdoutTTY() && opts.Iterations == 0 && inForeground(opts.IO.Out) {
				err = interactiveRun(cmd.Context(), opts)
			} else {
				err = topRun(cmd.Context(), opts)
			}
			if se := cmdutil.SignalOf(cmd.Context()); err == nil && se != nil {
				return &cmdutil.ExitError{Code: se.ExitCode()}
			}
			return err
		},
	}
	cmd.Flags().Var(cmdutil.DurationValue{P: &opts.Interval}, "interval", "time between refreshes")
	cmd.Flags().VarP(cmdutil.CountValue{P: &opts.Iterations}, "iterations", "n", "stop after N refreshes (0 = until Ctrl-C)")
	cmd.Flags().BoolVarP(&opts.Commands, "commands", "c", false, "also list every command")
	return cmd
}

// interactiveRun runs the dashboard until q, Ctrl-C or SIGTERM.
func interactiveRun(ctx context.Context, o *Options) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	r := newRunner(ctx, c)
	defer r.Close()
	m := NewModel(Config{
		Socket:   o.Socket,
		Interval: o.Interval,
		Now:      o.Now,
		Renderer: lipgloss.NewRenderer(o.IO.Out),
	}, r)
	// The CLI's signal context alone handles SIGINT and SIGTERM: it cancels
	// ctx, which ends the program, and then restores the default handlers.
	popts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithOutput(o.IO.Out), tea.WithAltScreen(), tea.WithoutSignalHandler()}
	if o.IO.In != os.Stdin {
		popts = append(popts, tea.WithInput(o.IO.In))
	}
	popts = append(popts, o.ProgramOptions...)
	_, err = tea.NewProgram(m, popts...).Run()
	switch {
	case err == nil, errors.Is(err, tea.ErrInterrupted):
		return nil
	case errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil:
		return nil // Ctrl-C or SIGTERM
	default:
		return fmt.Errorf("top: %w", err)
	}
}

// inForeground reports whether w is a terminal whose foreground process
// group is ours, or is not a terminal at all. A program of a background
// group that sets the terminal's modes or reads it is stopped by the kernel
// (SIGTTOU, SIGTTIN) and would stay stopped, deaf to SIGTERM: such a top
// prints the plain dashboard instead, which only writes.
func inForeground(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return true
	}
	pgrp, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	if err != nil {
		return true
	}
	return pgrp == unix.Getpgrp()
}

// topRun prints the plain dashboard every --interval.
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
