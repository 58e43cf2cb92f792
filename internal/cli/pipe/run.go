// This file owns `shipote pipe run`, `pipe save` and `pipe start`.

package pipe

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
)

// RunOptions are the inputs of `pipe run`.
type RunOptions struct {
	IO        *cmdutil.IOStreams
	Client    func() (cmdutil.Client, error)
	Workspace string
	File      string
	Tap       bool
}

// NewCmdRun returns `pipe run`; runF replaces the run for tests.
func NewCmdRun(f *cmdutil.Factory, runF func(*RunOptions) error) *cobra.Command {
	opts := &RunOptions{IO: f.IO, Client: f.APIClient}
	cmd := &cobra.Command{
		Use:   "run WS -f pipeline.yaml [--tap]",
		Short: "Run a pipeline in a workspace and print the run ID",
		Args:  cmdutil.ExactArgs(1, "WS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workspace = args[0]
			if err := requireFile(cmd, opts.File); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.File, "file", "f", "", "pipeline spec file, JSON or YAML (- = stdin)")
	cmd.Flags().BoolVar(&opts.Tap, "tap", false, "also publish each producer's output as a socket in the workspace's flow dir")
	return cmd
}

func runRun(ctx context.Context, o *RunOptions) error {
	spec, err := ReadSpec(o.IO, o.File)
	if err != nil {
		return err
	}
	c, err := o.Client()
	if err != nil {
		return err
	}
	info, err := c.RunPipeline(ctx, o.Workspace, spec, o.Tap)
	if err != nil {
		return fmt.Errorf("run pipeline: %w", err)
	}
	fmt.Fprintln(o.IO.Out, info.ID)
	return nil
}

// SaveOptions are the inputs of `pipe save`.
type SaveOptions struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)
	Name   string
	File   string
}

// NewCmdSave returns `pipe save`; runF replaces the run for tests.
func NewCmdSave(f *cmdutil.Factory, runF func(*SaveOptions) error) *cobra.Command {
	opts := &SaveOptions{IO: f.IO, Client: f.APIClient}
	cmd := &cobra.Command{
		Use:   "save NAME -f pipeline.yaml",
		Short: "Save a pipeline spec under a name (replacing one saved before)",
		Args:  cmdutil.ExactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if err := requireFile(cmd, opts.File); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return saveRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.File, "file", "f", "", "pipeline spec file, JSON or YAML (- = stdin)")
	return cmd
}

func saveRun(ctx context.Context, o *SaveOptions) error {
	if err := messages.ValidateLabel(o.Name); err != nil {
		return fmt.Errorf("saved pipeline name: %w", err)
	}
	spec, err := ReadSpec(o.IO, o.File)
	if err != nil {
		return err
	}
	c, err := o.Client()
	if err != nil {
		return err
	}
	if err := c.SavePipeline(ctx, o.Name, spec); err != nil {
		return fmt.Errorf("save pipeline: %w", err)
	}
	return nil
}

// StartOptions are the inputs of `pipe start`.
type StartOptions struct {
	IO        *cmdutil.IOStreams
	Client    func() (cmdutil.Client, error)
	Name      string
	Workspace string
	Tap       bool
}

// NewCmdStart returns `pipe start`; runF replaces the run for tests.
func NewCmdStart(f *cmdutil.Factory, runF func(*StartOptions) error) *cobra.Command {
	opts := &StartOptions{IO: f.IO, Client: f.APIClient}
	cmd := &cobra.Command{
		Use:   "start NAME --ws WS [--tap]",
		Short: "Start a saved pipeline in a workspace and print the run ID",
		Args:  cmdutil.ExactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if opts.Workspace == "" {
				return cmdutil.FlagErrorf("%s: required flag --ws not set", cmdutil.CmdName(cmd))
			}
			if runF != nil {
				return runF(opts)
			}
			return startRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Workspace, "ws", "", "workspace to run in (ID or label)")
	cmd.Flags().BoolVar(&opts.Tap, "tap", false, "also publish each producer's output as a socket in the workspace's flow dir")
	return cmd
}

func startRun(ctx context.Context, o *StartOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	info, err := c.StartSavedPipeline(ctx, o.Name, o.Workspace, o.Tap)
	if err != nil {
		return fmt.Errorf("start pipeline: %w", err)
	}
	fmt.Fprintln(o.IO.Out, info.ID)
	return nil
}
