// This file owns the verbs that control one command: stop (or every
// command of a workspace), start, restart, signal and rm.

// Package control implements `shipote stop|start|restart|signal|rm`.
package control

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/messages"
)

// Options are the inputs of every verb.
type Options struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)

	Verb      string // stop, start, restart, signal or rm
	Workspace string
	Command   string // "" with All
	All       bool   // stop: every command of Workspace
	Signal    string // signal: as the user wrote it
	Output    string
}

// ParseRef splits WS/CMD; both parts are required.
func ParseRef(cmd *cobra.Command, arg string) (ws, c string, err error) {
	ws, c, ok := strings.Cut(arg, "/")
	switch {
	case ws == "":
		return "", "", cmdutil.FlagErrorf("%s: %q names no workspace: want WS/CMD", cmdutil.CmdName(cmd), arg)
	case !ok || c == "":
		return "", "", cmdutil.FlagErrorf("%s: %q names no command: want WS/CMD", cmdutil.CmdName(cmd), arg)
	case strings.Contains(c, "/"):
		return "", "", cmdutil.FlagErrorf("%s: %q has more than one /: want WS/CMD", cmdutil.CmdName(cmd), arg)
	}
	return ws, c, nil
}

func newCmd(f *cmdutil.Factory, runF func(*Options) error, verb string, c *cobra.Command) (*cobra.Command, *Options) {
	opts := &Options{IO: f.IO, Client: f.APIClient, Verb: verb}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if opts.All {
			if strings.Contains(args[0], "/") {
				return cmdutil.FlagErrorf("%s: --all takes a workspace, not %q", cmdutil.CmdName(cmd), args[0])
			}
			opts.Workspace = args[0]
		} else {
			ws, cm, err := ParseRef(cmd, args[0])
			if err != nil {
				if verb == "stop" && !strings.Contains(args[0], "/") {
					return cmdutil.FlagErrorf("%s: %q names no command: want WS/CMD, or WS --all", cmdutil.CmdName(cmd), args[0])
				}
				return err
			}
			opts.Workspace, opts.Command = ws, cm
		}
		if verb == "signal" {
			opts.Signal = args[1]
			if _, err := messages.ParseSignal(opts.Signal); err != nil {
				return cmdutil.FlagErrorf("%s: %w", cmdutil.CmdName(cmd), err)
			}
		}
		if runF != nil {
			return runF(opts)
		}
		return run(cmd.Context(), opts)
	}
	cmdutil.AddOutputFlag(c, &opts.Output)
	return c, opts
}

// NewCmdStop returns `stop`; runF replaces the run for tests.
func NewCmdStop(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	cmd, opts := newCmd(f, runF, "stop", &cobra.Command{
		Use:   "stop WS/CMD | WS --all",
		Short: "Stop a command gracefully, or every command of a workspace",
		Long: `Stop a command: its stop signal (--stop-signal of exec; SIGTERM by default)
goes to its whole process group, and SIGKILL follows after its stop timeout
(--stop-timeout of exec; the daemon's --grace by default). The command is
then "stopped (user)" and is not restarted until "shipote start". It prints
how the stop ended: "stopped by SIGTERM after 120ms" or "killed after the 5s
timeout".

With --all, every command of the workspace that has not ended is stopped;
its pipelines go on.`,
		Example: `  shipote stop build/web
  shipote stop build --all`,
	})
	cmd.Args = cmdutil.ExactArgs(1, "WS/CMD")
	cmd.Flags().BoolVar(&opts.All, "all", false, "stop every command of the workspace WS")
	cmd.ValidArgsFunction = cmdutil.CompleteCommandRefs(f, true)
	return cmd
}

// NewCmdStart returns `start`; runF replaces the run for tests.
func NewCmdStart(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	cmd, _ := newCmd(f, runF, "start", &cobra.Command{
		Use:   "start WS/CMD",
		Short: "Start a stopped or ended command again, with the same ID",
		Long: `Start a stopped or ended command again with the same ID and spec. It prints
the command's ID and its new pid once the process runs.`,
		Example: `  shipote start build/web`,
		Args:    cmdutil.ExactArgs(1, "WS/CMD"),
	})
	cmd.ValidArgsFunction = cmdutil.CompleteCommandRefs(f, false)
	return cmd
}

// NewCmdRestart returns `restart`; runF replaces the run for tests.
func NewCmdRestart(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	cmd, _ := newCmd(f, runF, "restart", &cobra.Command{
		Use:   "restart WS/CMD",
		Short: "Stop a command gracefully and start it again, with the same ID",
		Long: `Stop a running command as "shipote stop" does and start it again with the
same ID, or start an ended one. It prints the command's ID and its new pid
once the new process runs.`,
		Example: `  shipote restart build/web`,
		Args:    cmdutil.ExactArgs(1, "WS/CMD"),
	})
	cmd.ValidArgsFunction = cmdutil.CompleteCommandRefs(f, false)
	return cmd
}

// NewCmdSignal returns `signal`; runF replaces the run for tests.
func NewCmdSignal(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	cmd, _ := newCmd(f, runF, "signal", &cobra.Command{
		Use:   "signal WS/CMD SIG",
		Short: "Send a signal to every process of a running command's group",
		Long: `Send SIG to every process in a running command's process group. SIG is a
name (TERM, SIGHUP, usr1) or a number (9).`,
		Example: `  shipote signal build/web HUP
  shipote signal build/web 9`,
		Args: cmdutil.ExactArgs(2, "WS/CMD", "SIG"),
	})
	complete := cmdutil.CompleteCommandRefs(f, false)
	cmd.ValidArgsFunction = func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 1 {
			var out []cobra.Completion
			for _, s := range []string{"TERM", "INT", "HUP", "KILL", "USR1", "USR2", "QUIT", "STOP", "CONT"} {
				if strings.HasPrefix(s, strings.ToUpper(toComplete)) {
					out = append(out, s)
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		}
		return complete(c, args, toComplete)
	}
	return cmd
}

// NewCmdRm returns `rm`; runF replaces the run for tests.
func NewCmdRm(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	cmd, _ := newCmd(f, runF, "rm", &cobra.Command{
		Use:   "rm WS/CMD",
		Short: "Forget an ended command",
		Long: `Forget a command that has ended (exited, failed or stopped): it leaves ps, and
its label may be reused. Its log file stays. It prints the command's ID.`,
		Example: `  shipote rm build/test`,
		Args:    cmdutil.ExactArgs(1, "WS/CMD"),
	})
	cmd.ValidArgsFunction = cmdutil.CompleteCommandRefs(f, false)
	return cmd
}

func run(ctx context.Context, o *Options) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	if o.All {
		cmds, err := c.StopCommands(ctx, o.Workspace)
		if err != nil {
			return fmt.Errorf("stop %s --all: %w", o.Workspace, err)
		}
		if o.Output == "json" {
			return cmdutil.WriteJSON(o.IO.Out, cmds)
		}
		if len(cmds) == 0 {
			fmt.Fprintf(o.IO.ErrOut, "no command of %s was running\n", o.Workspace)
		}
		for _, ci := range cmds {
			fmt.Fprintf(o.IO.Out, "%s: %s\n", name(ci), ci.StopResult)
		}
		return nil
	}
	var info messages.CommandInfo
	switch o.Verb {
	case "stop":
		info, err = c.StopCommand(ctx, o.Workspace, o.Command)
	case "start":
		info, err = c.StartCommand(ctx, o.Workspace, o.Command)
	case "restart":
		info, err = c.RestartCommand(ctx, o.Workspace, o.Command)
	case "signal":
		info, err = c.SignalCommand(ctx, o.Workspace, o.Command, o.Signal)
	case "rm":
		info, err = c.RemoveCommand(ctx, o.Workspace, o.Command)
	default:
		return fmt.Errorf("unknown verb %q", o.Verb)
	}
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", o.Verb, o.Workspace, o.Command, err)
	}
	if o.Output == "json" {
		return cmdutil.WriteJSON(o.IO.Out, info)
	}
	switch o.Verb {
	case "stop":
		fmt.Fprintf(o.IO.Out, "%s: %s\n", name(info), info.StopResult)
	case "start", "restart":
		fmt.Fprintf(o.IO.Out, "%s pid %d\n", info.ID, info.Pid)
	case "signal":
		sig, _ := messages.ParseSignal(o.Signal)
		fmt.Fprintf(o.IO.Out, "sent %s to %s (process group %d)\n", proc.SignalName(sig), name(info), info.Pid)
	case "rm":
		fmt.Fprintln(o.IO.Out, info.ID)
	}
	return nil
}

// name is a command's label, or its ID when it has none.
func name(c messages.CommandInfo) string {
	if c.Label != "" {
		return c.Label
	}
	return c.ID
}
