// This file exports internals of package cli to its tests.

package cli

import "github.com/spf13/cobra"

func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}
