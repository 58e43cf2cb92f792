// This file owns `shipote up`: the command, its flags, and reading and
// validating the whole file before anything starts.

// Package up implements `shipote up`: a file of workspaces, commands and
// pipelines run in an in-process engine, no daemon needed. It hosts that
// engine, so it lives apart from internal/cli, whose commands link none;
// cmd/shipote adds it to the command tree (cli.WithCommands).
package up

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
)

// Options are the inputs of `up`.
type Options struct {
	IO   *cmdutil.IOStreams
	Now  func() time.Time
	File string
	// StatePath makes the engine persistent; "" = nothing persisted.
	StatePath string
	Interval  time.Duration
	Grace     time.Duration
	Limits    string
	LogLevel  string
}

// NewCmdUp returns `up`; runF replaces the run for tests.
func NewCmdUp(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Now: f.Clock, Interval: time.Second, Grace: 5 * time.Second}
	cmd := &cobra.Command{
		Use:   "up FILE",
		Short: "Run a file of workspaces, commands and pipelines (no daemon needed)",
		Long: `Run a file of workspaces with their commands and pipelines in an in-process
engine: the whole file is validated first (errors name the path, like
workspaces[0].pipelines[1].edges[0].to), then every workspace is created,
its commands started in order and its pipelines run.

On a terminal a live view (workspaces, commands, pipeline nodes and flow
channels with bytes/s) is redrawn every --interval; otherwise each lifecycle
event is printed as a line. shipote up ends when every pipeline has ended and
every command that will not restart has exited, and prints a summary.

Exit codes: 0 if every pipeline succeeded, 1 otherwise (or on a bad file),
2 on usage errors, 130 after Ctrl-C or SIGTERM (everything is stopped
cleanly first).`,
		Example: `  shipote up examples/demo.yaml`,
		Args:    cmdutil.ExactArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			if opts.Interval <= 0 {
				return cmdutil.FlagErrorf("--interval must be above 0")
			}
			if runF != nil {
				return runF(opts)
			}
			return upRun(cmd.Context(), opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.StatePath, "state", "", "persist to this state file (default: nothing is persisted)")
	flags.Var(cmdutil.DurationValue{P: &opts.Interval}, "interval", "live view refresh period")
	flags.Var(cmdutil.DurationValue{P: &opts.Grace}, "grace", "time between SIGTERM and SIGKILL when stopping processes")
	cmdutil.EnumVarP(cmd, &opts.Limits, "limits", "", "auto", []string{"auto", "cgroup2", "cgroup1", "rlimit", "none"},
		"resource-limit backend: auto, cgroup2, cgroup1, rlimit or none")
	cmdutil.EnumVarP(cmd, &opts.LogLevel, "log-level", "", "warn", []string{"debug", "info", "warn", "error"},
		"engine log level (logs go to stderr)")
	return cmd
}
