// This file owns the root command and the one table that maps errors to
// exit codes.

// Package cli is the shipote command line: Main builds the command tree
// (one package per command family under internal/cli) and turns the
// outcome into an exit code.
//
// The commands here are clients of a daemon and link no engine. The
// commands that host an engine (daemon, up) live under internal/host and
// are registered by package main with WithCommands, as is the version
// that the binary was built with (WithVersion).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/internal/cli/apply"
	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/internal/cli/control"
	"github.com/shipote/shipote/internal/cli/events"
	"github.com/shipote/shipote/internal/cli/exec"
	"github.com/shipote/shipote/internal/cli/logs"
	"github.com/shipote/shipote/internal/cli/pipe"
	"github.com/shipote/shipote/internal/cli/ps"
	"github.com/shipote/shipote/internal/cli/service"
	"github.com/shipote/shipote/internal/cli/snapshot"
	"github.com/shipote/shipote/internal/cli/state"
	"github.com/shipote/shipote/internal/cli/stats"
	"github.com/shipote/shipote/internal/cli/tap"
	"github.com/shipote/shipote/internal/cli/top"
	"github.com/shipote/shipote/internal/cli/version"
	"github.com/shipote/shipote/internal/cli/ws"
)

// ExitCode is the process exit status.
type ExitCode int

// Exit codes (SPEC §3.3).
const (
	ExitOK          ExitCode = 0
	ExitError       ExitCode = 1
	ExitUsage       ExitCode = 2
	ExitUnreachable ExitCode = 3
	// ExitInterrupted is the status of a command stopped by Ctrl-C or
	// SIGTERM that reports it (shipote up).
	ExitInterrupted ExitCode = 130
)

// NewCmdFunc builds a command on the factory.
type NewCmdFunc func(f *cmdutil.Factory) *cobra.Command

// Option adds to the command tree that Main, Run and NewRootCmd build.
type Option func(*config)

type config struct {
	version string
	extra   []extraCmd
}

// extraCmd is a command added by WithCommands.
type extraCmd struct {
	group  string
	newCmd NewCmdFunc
}

// WithVersion sets the version that `shipote --version` and `shipote
// version` print as the client's.
func WithVersion(v string) Option {
	return func(c *config) { c.version = v }
}

// WithCommands adds commands to the root, in a group of its help: "run"
// or "inspect" (any other group ID lists them under "Additional
// Commands"). Help lists each group's commands by name, wherever they
// were added.
func WithCommands(group string, cmds ...NewCmdFunc) Option {
	return func(c *config) {
		for _, newCmd := range cmds {
			c.extra = append(c.extra, extraCmd{group: group, newCmd: newCmd})
		}
	}
}

// Main runs the CLI with the process's arguments and streams.
func Main(opts ...Option) ExitCode {
	return Run(context.Background(), cmdutil.NewFactory(), osArgs(), opts...)
}

// Run runs the CLI with args (without the program name) and returns its
// exit code. SIGINT and SIGTERM cancel the command's context; a second
// signal gets the default behavior back.
func Run(parent context.Context, f *cmdutil.Factory, args []string, opts ...Option) ExitCode {
	ctx, stop := cmdutil.SignalContext(parent)
	defer stop()
	defer context.AfterFunc(ctx, stop)()
	root := NewRootCmd(f, opts...)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	if code == ExitInterrupted && errors.Is(err, cmdutil.ErrInterrupted) {
		return code
	}
	printError(f.IO.ErrOut, f.Socket, err)
	// A command that chose its exit code (*ExitError) has said all there
	// is to say: no usage hint.
	var exitErr *cmdutil.ExitError
	if code == ExitUsage && cmd != nil && !errors.As(err, &exitErr) {
		fmt.Fprintf(f.IO.ErrOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// exitCode is the one error -> exit code table.
func exitCode(err error) ExitCode {
	var (
		flagErr *cmdutil.FlagError
		exitErr *cmdutil.ExitError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &exitErr):
		return ExitCode(exitErr.Code)
	case errors.As(err, &flagErr):
		return ExitUsage
	case errors.Is(err, api.ErrUnreachable):
		return ExitUnreachable
	case errors.Is(err, cmdutil.ErrInterrupted), errors.Is(err, context.Canceled):
		return ExitInterrupted
	default:
		return ExitError
	}
}

func printError(w io.Writer, socket string, err error) {
	var exitErr *cmdutil.ExitError
	if errors.As(err, &exitErr) && exitErr.Err == nil {
		return
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(w, "shipote: interrupted")
		return
	}
	msg := strings.TrimPrefix(err.Error(), "shipote: ")
	if errors.Is(err, api.ErrUnreachable) {
		if !strings.Contains(msg, socket) {
			msg += " (socket " + socket + ")"
		}
		msg += "; is `shipote daemon` running?"
	}
	fmt.Fprintln(w, "shipote: "+msg)
}

// NewRootCmd builds the command tree on f.
func NewRootCmd(f *cmdutil.Factory, opts ...Option) *cobra.Command {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	f.Version = cfg.version
	root := &cobra.Command{
		Use:   "shipote",
		Short: "Process workspaces, fan-out pipelines and supervision on one Linux host",
		Long: `shipote runs workspaces (groups of processes with resource limits, permissions
and a TTL) and pipelines (commands whose output fans out to several consumers),
supervises them and keeps them across restarts.

"shipote daemon" runs the engine; the other commands talk to it over its Unix
socket. "shipote up FILE" runs a file of workspaces and pipelines without a
daemon.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       version.Client(f.Version),
	}
	cmdutil.Group(root)
	root.SetVersionTemplate("shipote {{.Version}}\n")
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.SetIn(f.IO.In)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return cmdutil.FlagErrorWrap(err)
	})
	root.PersistentFlags().StringVar(&f.Socket, "socket", f.Socket,
		"daemon socket (env SHIPOTE_SOCKET)")

	root.AddGroup(
		&cobra.Group{ID: "run", Title: "Running:"},
		&cobra.Group{ID: "inspect", Title: "Inspecting:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add("run",
		service.NewCmdService(f, nil),
		apply.NewCmdApply(f, nil), apply.NewCmdDiff(f, nil), apply.NewCmdDown(f, nil), apply.NewCmdScale(f, nil),
		ws.NewCmdWs(f),
		exec.NewCmdExec(f, nil),
		control.NewCmdStop(f, nil),
		control.NewCmdStart(f, nil),
		control.NewCmdRestart(f, nil),
		control.NewCmdSignal(f, nil),
		control.NewCmdRm(f, nil),
		pipe.NewCmdPipe(f),
		snapshot.NewCmdSnapshot(f),
		state.NewCmdState(f),
	)
	add("inspect",
		ps.NewCmdPs(f, nil),
		logs.NewCmdLogs(f, nil),
		top.NewCmdTop(f, nil),
		tap.NewCmdTap(f, nil),
		stats.NewCmdStats(f, nil),
		events.NewCmdEvents(f, nil),
		version.NewCmdVersion(f, nil),
	)
	for _, e := range cfg.extra {
		if root.ContainsGroup(e.group) {
			add(e.group, e.newCmd(f))
		} else {
			root.AddCommand(e.newCmd(f))
		}
	}
	return root
}
