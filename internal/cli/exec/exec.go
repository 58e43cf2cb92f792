// This file owns `shipote exec`: a command started in a workspace, with
// its supervision policy; the new command's ID is printed alone.

// Package exec implements `shipote exec`.
package exec

import (
	"context"
	"fmt"
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
to --max-backoff; after --max-restarts restarts (0 = no limit) it gives up.`,
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
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workspace, opts.Exec, opts.Argv = args[0], args[1], args[2:]
			if opts.Restart == "never" {
				for _, name := range []string{"backoff", "max-backoff", "max-restarts"} {
					if cmd.Flags().Changed(name) {
						return cmdutil.FlagErrorf("--%s needs --restart on-failure or always", name)
					}
				}
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
	return cmd
}

// Command builds the command spec.
func (o *Options) Command() messages.CommandRef {
	ref := messages.CommandRef{
		Label:   o.Label,
		Payload: messages.Payload{Native: &messages.NativePayload{Exec: o.Exec, Argv: o.Argv, Envp: o.Env}},
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
