// This file owns `shipote pipe restart` and `shipote pipe signal`.

package pipe

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/messages"
)

// RestartOptions are the inputs of `pipe restart`.
type RestartOptions struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)
	Run    string
}

// NewCmdRestart returns `pipe restart`; runF replaces the run for tests.
func NewCmdRestart(f *cmdutil.Factory, runF func(*RestartOptions) error) *cobra.Command {
	opts := &RestartOptions{IO: f.IO, Client: f.APIClient}
	cmd := &cobra.Command{
		Use:   "restart RUN",
		Short: "Stop a run's nodes and launch the run again, with the same run ID",
		Long: `Stop every node of a pipeline run (SIGTERM to each node's process group, the
daemon's grace period, then SIGKILL) and launch the run again at once with
the same run ID; a run waiting to restart launches at once. It prints the run
ID, its run count and the new pids. A run that has ended cannot be restarted:
run it again with "pipe run" or "pipe start".`,
		Example:           `  shipote pipe restart 01J9Z3NDEKTSV4RRFFQ69G5FAX`,
		Args:              cmdutil.ExactArgs(1, "RUN"),
		ValidArgsFunction: cmdutil.CompleteRuns(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Run = args[0]
			if runF != nil {
				return runF(opts)
			}
			return restartRun(cmd.Context(), opts)
		},
	}
	return cmd
}

func restartRun(ctx context.Context, o *RestartOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	p, err := c.RestartPipeline(ctx, o.Run)
	if err != nil {
		return fmt.Errorf("restart pipeline: %w", err)
	}
	fmt.Fprintf(o.IO.Out, "%s run %d %s\n", p.ID, p.Restarts+1, nodePids(p))
	return nil
}

// nodePids lists "node=pid" for every node with a pid.
func nodePids(p messages.PipelineInfo) string {
	var parts []string
	for _, n := range p.Nodes {
		if n.Pid > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", n.Label, n.Pid))
		}
	}
	return strings.Join(parts, " ")
}

// SignalOptions are the inputs of `pipe signal`.
type SignalOptions struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)
	Run    string
	Node   string // "" = every running node
	Signal string
}

// NewCmdSignal returns `pipe signal`; runF replaces the run for tests.
func NewCmdSignal(f *cmdutil.Factory, runF func(*SignalOptions) error) *cobra.Command {
	opts := &SignalOptions{IO: f.IO, Client: f.APIClient}
	complete := cmdutil.CompleteRuns(f)
	cmd := &cobra.Command{
		Use:   "signal RUN [--node N] SIG",
		Short: "Send a signal to the process groups of a run's nodes",
		Long: `Send SIG to the process group of every running node of a pipeline run, or of
one node with --node. SIG is a name (TERM, SIGHUP, usr1) or a number (9).`,
		Example: `  shipote pipe signal 01J9Z3NDEKTSV4RRFFQ69G5FAX HUP
  shipote pipe signal fan --node count 9`,
		Args: cmdutil.ExactArgs(2, "RUN", "SIG"),
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return complete(c, args, toComplete)
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Run, opts.Signal = args[0], args[1]
			if _, err := messages.ParseSignal(opts.Signal); err != nil {
				return cmdutil.FlagErrorf("%s: %w", cmdutil.CmdName(cmd), err)
			}
			if cmd.Flags().Changed("node") && opts.Node == "" {
				return cmdutil.FlagErrorf("%s: --node needs a node label", cmdutil.CmdName(cmd))
			}
			if runF != nil {
				return runF(opts)
			}
			return signalRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Node, "node", "", "only this node (default: every running node)")
	return cmd
}

func signalRun(ctx context.Context, o *SignalOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	p, err := c.SignalPipeline(ctx, o.Run, o.Node, o.Signal)
	if err != nil {
		return fmt.Errorf("signal pipeline: %w", err)
	}
	sig, _ := messages.ParseSignal(o.Signal)
	var to []string
	for _, n := range p.Nodes {
		if n.Pid > 0 && (o.Node == "" || n.Label == o.Node) {
			to = append(to, n.Label)
		}
	}
	fmt.Fprintf(o.IO.Out, "sent %s to %s of %s\n", proc.SignalName(sig), strings.Join(to, ", "), p.ID)
	return nil
}
