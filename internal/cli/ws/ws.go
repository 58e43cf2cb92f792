// This file owns the `shipote ws` group.

// Package ws implements `shipote ws create|ls|show|rm`.
package ws

import (
	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
)

// NewCmdWs returns the `ws` group.
func NewCmdWs(f *cmdutil.Factory) *cobra.Command {
	cmd := cmdutil.Group(&cobra.Command{
		Use:   "ws",
		Short: "Create, list, show and remove workspaces",
	})
	cmd.AddCommand(
		NewCmdCreate(f, nil),
		NewCmdList(f, nil),
		NewCmdShow(f, nil),
		NewCmdRemove(f, nil),
	)
	return cmd
}
