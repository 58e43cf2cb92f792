// This file owns `shipote ws rm`.

package ws

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
)

// RemoveOptions are the inputs of `ws rm`.
type RemoveOptions struct {
	IO        *cmdutil.IOStreams
	Client    func() (cmdutil.Client, error)
	Workspace string
	Grace     time.Duration
}

// NewCmdRemove returns `ws rm`; runF replaces the run for tests.
func NewCmdRemove(f *cmdutil.Factory, runF func(*RemoveOptions) error) *cobra.Command {
	opts := &RemoveOptions{IO: f.IO, Client: f.APIClient, Grace: 5 * time.Second}
	cmd := &cobra.Command{
		Use:     "rm WS",
		Aliases: []string{"remove"},
		Short:   "Stop every process of a workspace and remove it",
		Long: `Stop every process of a workspace (SIGTERM, then SIGKILL after the grace
period) and remove it. Prints the removed workspace's ID.`,
		Args: cmdutil.ExactArgs(1, "WS"),

		ValidArgsFunction: cmdutil.CompleteWorkspaces(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workspace = args[0]
			if runF != nil {
				return runF(opts)
			}
			return removeRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().Var(cmdutil.DurationValue{P: &opts.Grace}, "grace", "time between SIGTERM and SIGKILL")
	return cmd
}

func removeRun(ctx context.Context, o *RemoveOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	info, err := c.RemoveWorkspace(ctx, o.Workspace, o.Grace)
	if err != nil {
		return fmt.Errorf("remove workspace: %w", err)
	}
	fmt.Fprintln(o.IO.Out, info.ID)
	return nil
}
