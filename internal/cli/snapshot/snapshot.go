// This file owns `shipote snapshot save|show`.

// Package snapshot implements `shipote snapshot save` and `snapshot show`.
package snapshot

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/persistence"
)

// NewCmdSnapshot returns the `snapshot` group.
func NewCmdSnapshot(f *cmdutil.Factory) *cobra.Command {
	cmd := cmdutil.Group(&cobra.Command{
		Use:   "snapshot",
		Short: "Write or show the daemon's state snapshot",
	})
	cmd.AddCommand(NewCmdSave(f, nil), NewCmdShow(f, nil))
	return cmd
}

// SaveOptions are the inputs of `snapshot save`.
type SaveOptions struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)
}

// NewCmdSave returns `snapshot save`; runF replaces the run for tests.
func NewCmdSave(f *cmdutil.Factory, runF func(*SaveOptions) error) *cobra.Command {
	opts := &SaveOptions{IO: f.IO, Client: f.APIClient}
	return &cobra.Command{
		Use:   "save",
		Short: "Write a snapshot now (skipped when nothing changed)",
		Args:  cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			c, err := opts.Client()
			if err != nil {
				return err
			}
			saved, path, err := c.SaveSnapshot(cmd.Context())
			if err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
			if saved {
				fmt.Fprintf(opts.IO.Out, "saved %s\n", path)
			} else {
				fmt.Fprintf(opts.IO.Out, "unchanged %s\n", path)
			}
			return nil
		},
	}
}

// ShowOptions are the inputs of `snapshot show`.
type ShowOptions struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)
	Output string
}

// NewCmdShow returns `snapshot show`; runF replaces the run for tests.
func NewCmdShow(f *cmdutil.Factory, runF func(*ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{IO: f.IO, Client: f.APIClient}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show the last snapshot written",
		Args:  cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return showRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func showRun(ctx context.Context, o *ShowOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	st, err := c.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if o.Output == "json" {
		return cmdutil.WriteJSON(o.IO.Out, st)
	}
	WriteSummary(o.IO.Out, st)
	return nil
}

// WriteSummary prints a snapshot for people.
func WriteSummary(w io.Writer, st *persistence.State) {
	ts := "-"
	if st.TimestampMs > 0 {
		ts = time.UnixMilli(st.TimestampMs).Local().Format(time.DateTime + ".000")
	}
	fmt.Fprintf(w, "Version:   %d\nTaken:     %s\n\n", st.Version, ts)
	t := cmdutil.NewTable(w, "KIND", "ID/NAME", "LABEL", "DETAIL")
	for _, ws := range st.Workspaces {
		t.Row("workspace", ws.ID, ws.Spec.Label, fmt.Sprintf("%d samples", len(ws.StatsHistory)))
	}
	for _, sp := range st.SavedPipelines {
		t.Row("saved pipeline", sp.Name, sp.Spec.Label, fmt.Sprintf("%d nodes", len(sp.Spec.Nodes)))
	}
	for _, lp := range st.LivePipelines {
		t.Row("live pipeline", lp.ID, lp.Spec.Label, "workspace "+lp.Workspace)
	}
	t.Flush()
}
