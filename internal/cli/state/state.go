// This file owns `shipote state ls` and `state drop`: the entries of the
// state file that could not be restored and are kept, byte for byte, until
// they restore at a later start or the user drops them.

// Package state implements `shipote state ls` and `state drop`.
package state

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/internal/cli/cmdutil"
)

// NewCmdState returns the `state` group.
func NewCmdState(f *cmdutil.Factory) *cobra.Command {
	cmd := cmdutil.Group(&cobra.Command{
		Use:   "state",
		Short: "Entries of the state file kept but not restored",
		Long: `An entry of the state file that cannot be restored (a missing workdir, a
value this version refuses, an unknown variant) is not dropped: the daemon
keeps it, byte for byte, and writes it back on every save until it restores
at a later start or you drop it.`,
	})
	cmd.AddCommand(NewCmdList(f, nil), NewCmdDrop(f, nil))
	return cmd
}

// ListOptions are the inputs of `state ls`.
type ListOptions struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)
	Output string
}

// NewCmdList returns `state ls`; runF replaces the run for tests.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IO, Client: f.APIClient}
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the kept entries, with why each is not restored",
		Args:    cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func listRun(ctx context.Context, o *ListOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	st, err := c.StateFile(ctx)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if o.Output == "json" {
		return cmdutil.WriteJSON(o.IO.Out, st)
	}
	WriteTable(o.IO.Out, st)
	return nil
}

// WriteTable prints the state file's kept entries for people.
func WriteTable(w io.Writer, st api.StateInfo) {
	if st.Degraded != "" {
		fmt.Fprintf(w, "degraded: %s\n", st.Degraded)
	}
	if len(st.Kept) == 0 {
		fmt.Fprintf(w, "every entry of %s is restored\n", st.Path)
		return
	}
	t := cmdutil.NewTable(w, "REF", "KIND", "LABEL", "REASON")
	for _, k := range st.Kept {
		label := k.Label
		if label == "" {
			label = "-"
		}
		t.Row(k.Ref, kind(k.Section), label, k.Reason)
	}
	t.Flush()
}

func kind(section string) string {
	switch section {
	case "workspaces":
		return "workspace"
	case "saved_pipelines":
		return "saved pipeline"
	case "live_pipelines":
		return "live pipeline"
	}
	return section
}

// DropOptions are the inputs of `state drop`.
type DropOptions struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)
	Ref    string
}

// NewCmdDrop returns `state drop REF`; runF replaces the run for tests.
func NewCmdDrop(f *cmdutil.Factory, runF func(*DropOptions) error) *cobra.Command {
	opts := &DropOptions{IO: f.IO, Client: f.APIClient}
	return &cobra.Command{
		Use:   "drop REF",
		Short: "Remove a kept entry from the state file (by ID, label or REF from state ls)",
		Args:  cmdutil.ExactArgs(1, "REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = args[0]
			if runF != nil {
				return runF(opts)
			}
			c, err := opts.Client()
			if err != nil {
				return err
			}
			k, err := c.DropKept(cmd.Context(), opts.Ref)
			if err != nil {
				return fmt.Errorf("state drop %s: %w", opts.Ref, err)
			}
			fmt.Fprintf(opts.IO.Out, "dropped %s %s\n", kind(k.Section), k.Ref)
			return nil
		},
	}
}
