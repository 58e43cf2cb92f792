// This file owns the `shipote pipe` group and reading pipeline files.

// Package pipe implements `shipote pipe run|save|start|ls|show|stop|restart|signal`.
package pipe

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
)

// NewCmdPipe returns the `pipe` group.
func NewCmdPipe(f *cmdutil.Factory) *cobra.Command {
	cmd := cmdutil.Group(&cobra.Command{
		Use:   "pipe",
		Short: "Run, save, list, show, stop, restart and signal pipelines",
	})
	cmd.AddCommand(
		NewCmdRun(f, nil),
		NewCmdSave(f, nil),
		NewCmdStart(f, nil),
		NewCmdList(f, nil),
		NewCmdShow(f, nil),
		NewCmdStop(f, nil),
		NewCmdRestart(f, nil),
		NewCmdSignal(f, nil),
	)
	return cmd
}

// ReadSpec reads and strictly decodes a pipeline file (JSON or YAML; "-"
// = stdin).
func ReadSpec(ios *cmdutil.IOStreams, path string) (messages.PipelineSpec, error) {
	var spec messages.PipelineSpec
	data, err := cmdutil.ReadInput(ios, path)
	if err != nil {
		return spec, err
	}
	if err := messages.DecodeSpec(data, &spec); err != nil {
		return spec, fmt.Errorf("%s: %w", path, err)
	}
	return spec, nil
}

func requireFile(cmd *cobra.Command, file string) error {
	if file == "" {
		return cmdutil.FlagErrorf("%s: required flag -f/--file not set", cmdutil.CmdName(cmd))
	}
	return nil
}
