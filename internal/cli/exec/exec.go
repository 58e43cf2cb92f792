// This file owns `shipote exec`: a command started in a workspace, with
// its supervision policy; the new command's ID is printed alone.

// Package exec implements `shipote exec`.
package exec

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
)

// Options are the inputs of `exec`.
type Options struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)

	Workspace   string
	Label       string
	Restart     string // never | on-failure | always
	Backoff     time.Duration
	MaxBackoff  time.Duration
	MaxRestarts int64
	Env         []string
	StopSignal  string        // as written; "" = SIGTERM
	StopTimeout time.Duration // 0 = the daemon's --grace
	// SuccessCodes are the exit codes that count as success; nil = [0].
	SuccessCodes []int
	// DependsOn, Schedule and Concurrency are the command's fields of the
	// same names.
	DependsOn   []string
	Schedule    string
	Concurrency string
	Exec        string
	Argv        []string
}

// NewCmdExec returns `exec`; runF replaces the run for tests.
func NewCmdExec(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Client: f.APIClient}
	cmd := &cobra.Command{
		Use:   "exec WS [flags] -- CMD [ARG...]",
		Short: "Start a command in a workspace and print its ID",
		Long: `Start a command in a workspace and print its ID. CMD is an absolute path or a
bare name looked up on the workspace's PATH; it is never run through a shell.

--restart never runs it once; on-failure restarts it when it exits non-zero
or is killed, always whenever it ends. Restarts wait --backoff, doubling up
to --max-backoff; after --max-restarts restarts (0 = no limit) it gives up.

"shipote stop" sends --stop-signal (default TERM) to the command's process
group and SIGKILL after --stop-timeout (default: the daemon's --grace).
--success-codes lists the exit codes that count as success (default 0), for
--restart on-failure; a code above 128 also matches death by signal
code-128 (143 = SIGTERM).

--depends-on holds the command back until those commands of the workspace
are ready; --schedule runs a one_shot command at the times of a cron spec
(the ID is printed at once; "shipote ps" shows the next run).`,
		Example: `  shipote exec build --label web --restart on-failure -- python3 -m http.server
  shipote exec build -- /bin/sh -c 'make -j2 all'`,
		Args: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			switch {
			case len(args) == 0 || dash == 0:
				return cmdutil.FlagErrorf("%s: missing WS", cmdutil.CmdName(cmd))
			case len(args) == 1:
				return cmdutil.FlagErrorf("%s: missing the command to run: shipote exec WS [flags] -- CMD [ARG...]", cmdutil.CmdName(cmd))
			case dash > 1:
				return cmdutil.FlagErrorf("%s: unexpected argument %q before --: shipote exec WS [flags] -- CMD [ARG...]",
					cmdutil.CmdName(cmd), args[1])
			}
			return nil
		},
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return cmdutil.CompleteWorkspaces(f)(c, args, toComplete)
			}
			return nil, cobra.ShellCompDirectiveDefault // the command and its arguments: files
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workspace, opts.Exec, opts.Argv = args[0], args[1], args[2:]
			if opts.Restart == "never" {
				for _, name := range []string{"backoff", "max-backoff", "max-restarts"} {
					if cmd.Flags().Changed(name) {
						return cmdutil.FlagErrorf("--%s needs --restart on-failure or always", name)
					}
				}
			}
			if opts.StopSignal != "" {
				if _, err := messages.ParseSignal(opts.StopSignal); err != nil {
					return cmdutil.FlagErrorf("--stop-signal: %w", err)
				}
			}
			if cmd.Flags().Changed("stop-timeout") && opts.StopTimeout < time.Millisecond {
				return cmdutil.FlagErrorf("--stop-timeout must be at least 1ms, got %s", opts.StopTimeout)
			}
			if opts.MaxBackoff > 0 && opts.Backoff > opts.MaxBackoff {
				return cmdutil.FlagErrorf("--backoff %s is above --max-backoff %s", opts.Backoff, opts.MaxBackoff)
			}
			if runF != nil {
				return runF(opts)
			}
			return execRun(cmd.Context(), opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.Label, "label", "", "command label (default: derived from CMD)")
	cmdutil.EnumVarP(cmd, &opts.Restart, "restart", "", "never", []string{"never", "on-failure", "always"},
		"restart policy: never, on-failure or always")
	opts.Backoff, opts.MaxBackoff = 200*time.Millisecond, 30*time.Second
	flags.Var(cmdutil.DurationValue{P: &opts.Backoff}, "backoff", "first restart delay")
	flags.Var(cmdutil.DurationValue{P: &opts.MaxBackoff}, "max-backoff", "longest restart delay")
	flags.Var(cmdutil.CountValue{P: &opts.MaxRestarts}, "max-restarts", "restarts before giving up (0 = no limit)")
	flags.Var(cmdutil.EnvValue{P: &opts.Env}, "env", "environment variable K=V (repeatable)")
	flags.StringVar(&opts.StopSignal, "stop-signal", "", "signal a stop sends first: a name (TERM, INT, HUP) or a number (default TERM)")
	flags.Var(cmdutil.DurationValue{P: &opts.StopTimeout}, "stop-timeout", "how long a stop waits before SIGKILL (default: the daemon's --grace)")
	flags.Var(exitCodesValue{p: &opts.SuccessCodes}, "success-codes", "exit codes that count as success, comma-separated (default 0)")
	flags.StringSliceVar(&opts.DependsOn, "depends-on", nil, "start once these commands of the workspace are ready (a one_shot one: exited 0); comma-separated, repeatable")
	flags.StringVar(&opts.Schedule, "schedule", "", `run at the times of a cron spec ("0 3 * * *", "*/10 * * * * *" with seconds, "@every 1m"); needs --restart never`)
	cmdutil.EnumVarP(cmd, &opts.Concurrency, "concurrency", "", "", []string{"allow", "forbid", "replace"},
		"what a scheduled run does while the last one still runs: allow (default), forbid or replace")
	return cmd
}

// Command builds the command spec.
func (o *Options) Command() messages.CommandRef {
	ref := messages.CommandRef{
		Label:   o.Label,
		Payload: messages.Payload{Native: &messages.NativePayload{Exec: o.Exec, Argv: o.Argv, Envp: o.Env}},

		StopSignal:       o.StopSignal,
		StopTimeoutMs:    o.StopTimeout.Milliseconds(),
		SuccessExitCodes: o.SuccessCodes,
		DependsOn:        o.DependsOn,
		Schedule:         o.Schedule,
		Concurrency:      messages.Concurrency(o.Concurrency),
	}
	if o.Restart != "never" && o.Restart != "" {
		on := messages.RestartOnFailure
		if o.Restart == "always" {
			on = messages.RestartAlways
		}
		ref.Supervision.Restart = &messages.RestartPolicy{
			On:           on,
			BackoffMs:    o.Backoff.Milliseconds(),
			MaxBackoffMs: o.MaxBackoff.Milliseconds(),
			Max:          o.MaxRestarts,
		}
	}
	return ref
}

// exitCodesValue is a flag of comma-separated exit codes (0 to 255).
type exitCodesValue struct{ p *[]int }

func (v exitCodesValue) String() string {
	if v.p == nil || len(*v.p) == 0 {
		return ""
	}
	s := make([]string, len(*v.p))
	for i, c := range *v.p {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

func (v exitCodesValue) Set(s string) error {
	var out []int
	seen := make(map[int]bool)
	for _, c := range *v.p {
		seen[c] = true
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return fmt.Errorf("empty exit code in %q", s)
		}
		n, err := strconv.Atoi(part)
		if err != nil {
			return fmt.Errorf("%q is not an exit code (0 to 255)", part)
		}
		if n < 0 || n > 255 {
			return fmt.Errorf("%d is not an exit code (0 to 255)", n)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	*v.p = append(*v.p, out...)
	return nil
}

func (v exitCodesValue) Type() string { return "codes" }

func execRun(ctx context.Context, o *Options) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	info, err := c.Exec(ctx, o.Workspace, o.Command())
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	fmt.Fprintln(o.IO.Out, info.ID)
	return nil
}
