// This file owns argument checks that fail as usage errors (exit 2).

package cmdutil

import (
	"strings"

	"github.com/spf13/cobra"
)

// ExactArgs accepts exactly n arguments, named in the error.
func ExactArgs(n int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		if len(args) < n {
			missing := names[min(len(args), len(names)):]
			if len(missing) > 0 {
				return FlagErrorf("%s: missing %s", CmdName(cmd), strings.Join(missing, " "))
			}
			return FlagErrorf("%s: needs %d arguments, got %d", CmdName(cmd), n, len(args))
		}
		return FlagErrorf("%s: unexpected argument %q", CmdName(cmd), args[n])
	}
}

// RangeArgs accepts between lo and hi arguments.
func RangeArgs(lo, hi int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < lo:
			missing := names[min(len(args), len(names)):min(lo, len(names))]
			return FlagErrorf("%s: missing %s", CmdName(cmd), strings.Join(missing, " "))
		case len(args) > hi:
			return FlagErrorf("%s: unexpected argument %q", CmdName(cmd), args[hi])
		}
		return nil
	}
}

// NoArgs accepts no argument.
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return FlagErrorf("%s: unexpected argument %q", CmdName(cmd), args[0])
	}
	return nil
}

// Group makes cmd a command that only holds subcommands: with no argument
// it prints its help; an unknown subcommand is a usage error.
func Group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return FlagErrorf("unknown command %q for %q", args[0], c.CommandPath())
		}
		return nil
	}
	cmd.RunE = func(c *cobra.Command, args []string) error {
		return c.Help()
	}
	return cmd
}

// CmdName is cmd's path without the program name ("ws create"), for error
// messages that Main prefixes with "shipote: ".
func CmdName(cmd *cobra.Command) string {
	if !cmd.HasParent() {
		return cmd.Name()
	}
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}
