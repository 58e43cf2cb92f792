// This file owns `shipote logs`: one command's output, or every command's
// of a workspace prefixed with its label; -f follows.

// Package logs implements `shipote logs`.
package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
)

// Options are the inputs of `logs`.
type Options struct {
	IO        *cmdutil.IOStreams
	Client    func() (cmdutil.Client, error)
	Workspace string
	Command   string // "" = every command of the workspace
	Follow    bool
	Tail      int64
	Since     time.Duration
	Stream    string // "", "out" or "err"
}

// NewCmdLogs returns `logs`; runF replaces the run for tests.
func NewCmdLogs(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Client: f.APIClient}
	cmd := &cobra.Command{
		Use:   "logs WS[/CMD]",
		Short: "Print the output of a command, or of every command of a workspace",
		Long: `Print the output of a command (by label or ID) or, without /CMD, of every
command of the workspace, each line prefixed with the command's label. Both
streams go to stdout; --stream selects one. With -f, new lines follow until
Ctrl-C.`,
		Example: `  shipote logs build/web -f
  shipote logs build --since 10m --stream err`,
		Args: cmdutil.ExactArgs(1, "WS[/CMD]"),

		ValidArgsFunction: cmdutil.CompleteCommandRefs(f, true),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, c, _ := strings.Cut(args[0], "/")
			if ws == "" {
				return cmdutil.FlagErrorf("%s: %q names no workspace", cmdutil.CmdName(cmd), args[0])
			}
			if strings.HasSuffix(args[0], "/") {
				return cmdutil.FlagErrorf("%s: %q names no command after /", cmdutil.CmdName(cmd), args[0])
			}
			opts.Workspace, opts.Command = ws, c
			if runF != nil {
				return runF(opts)
			}
			return logsRun(cmd.Context(), opts)
		},
	}
	flags := cmd.Flags()
	flags.BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new lines until Ctrl-C")
	flags.Var(cmdutil.CountValue{P: &opts.Tail}, "tail", "print only the last N lines (0 = all)")
	flags.Var(cmdutil.DurationValue{P: &opts.Since}, "since", "print only lines newer than this (10m)")
	cmdutil.EnumVarP(cmd, &opts.Stream, "stream", "", "", []string{"out", "err"}, "only this stream: out or err")
	return cmd
}

func (o *Options) logOptions() api.LogOptions {
	return api.LogOptions{Tail: int(o.Tail), Since: o.Since, Stream: messages.Stream(o.Stream), Follow: o.Follow}
}

func logsRun(ctx context.Context, o *Options) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	err = run(ctx, c, o)
	if o.Follow && errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // Ctrl-C ends a follow
	}
	return err
}

func run(ctx context.Context, c cmdutil.Client, o *Options) error {
	if o.Command != "" {
		return c.Logs(ctx, o.Workspace, o.Command, o.logOptions(), func(l messages.LogLine) error {
			_, err := io.WriteString(o.IO.Out, l.Line+"\n")
			return err
		})
	}
	cmds, err := c.Commands(ctx, o.Workspace)
	if err != nil {
		return err
	}
	width := 0
	for _, cmd := range cmds {
		width = max(width, len(cmd.Label))
	}
	if !o.Follow {
		return merged(ctx, c, o, cmds, width)
	}
	return follow(ctx, c, o, cmds, width)
}

type labeled struct {
	prefix string
	line   messages.LogLine
	seq    int
}

// merged prints every command's lines ordered by time.
func merged(ctx context.Context, c cmdutil.Client, o *Options, cmds []messages.CommandInfo, width int) error {
	var all []labeled
	for _, cmd := range cmds {
		prefix := fmt.Sprintf("%-*s | ", width, cmd.Label)
		err := c.Logs(ctx, o.Workspace, cmd.ID, o.logOptions(), func(l messages.LogLine) error {
			all = append(all, labeled{prefix: prefix, line: l, seq: len(all)})
			return nil
		})
		if err != nil && !errors.Is(err, messages.ErrNotFound) {
			return fmt.Errorf("logs of %s: %w", cmd.Label, err)
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].line.Time.Before(all[j].line.Time) })
	for _, l := range all {
		if _, err := io.WriteString(o.IO.Out, l.prefix+l.line.Line+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// follow streams every command's lines as they come, until ctx ends or
// every stream ends.
func follow(ctx context.Context, c cmdutil.Client, o *Options, cmds []messages.CommandInfo, width int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs = make(chan error, len(cmds))
	)
	for _, cmd := range cmds {
		prefix := fmt.Sprintf("%-*s | ", width, cmd.Label)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.Logs(ctx, o.Workspace, cmd.ID, o.logOptions(), func(l messages.LogLine) error {
				mu.Lock()
				defer mu.Unlock()
				_, err := io.WriteString(o.IO.Out, prefix+l.Line+"\n")
				return err
			})
			if err != nil && !errors.Is(err, messages.ErrNotFound) {
				errs <- fmt.Errorf("logs of %s: %w", cmd.Label, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
