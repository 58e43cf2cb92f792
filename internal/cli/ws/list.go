// This file owns `shipote ws ls`.

package ws

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
)

// ListOptions are the inputs of `ws ls`.
type ListOptions struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)
	Now    func() time.Time
	Output string
	Query  messages.ListQuery
}

// NewCmdList returns `ws ls`; runF replaces the run for tests.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IO, Client: f.APIClient, Now: f.Clock}
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List workspaces",
		Args:    cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.Query.Validate(); err != nil {
				return cmdutil.FlagErrorf("--%s", strings.Replace(err.Error(), "label_prefix", "label-prefix", 1))
			}
			if runF != nil {
				return runF(opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	flags := cmd.Flags()
	flags.IntVar(&opts.Query.Limit, "limit", 0, "list at most this many workspaces (0 = all); the next page's command is printed on stderr")
	flags.StringVar(&opts.Query.After, "after", "", "list the workspaces after this ID (the cursor a limited list prints)")
	flags.StringVar(&opts.Query.LabelPrefix, "label-prefix", "", "list only the workspaces whose label begins with this")
	return cmd
}

func listRun(ctx context.Context, o *ListOptions) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	var (
		list []messages.WorkspaceInfo
		next string
	)
	if o.Query == (messages.ListQuery{}) {
		list, err = c.Workspaces(ctx)
	} else {
		list, next, err = c.WorkspacePage(ctx, o.Query)
	}
	if err != nil {
		return fmt.Errorf("list workspaces: %w", err)
	}
	if o.Output == "json" {
		err = cmdutil.WriteJSON(o.IO.Out, list)
	} else {
		WriteTable(o.IO.Out, list, o.Now())
		writeStateNote(ctx, o.IO.ErrOut, c)
	}
	if next != "" {
		fmt.Fprintf(o.IO.ErrOut, "next page: shipote ws ls --after %s%s\n", next, pageFlags(o.Query))
	}
	return err
}

// pageFlags repeats the limit and label prefix of q for the next page's
// command.
func pageFlags(q messages.ListQuery) string {
	s := ""
	if q.Limit > 0 {
		s += " --limit " + strconv.Itoa(q.Limit)
	}
	if q.LabelPrefix != "" {
		s += " --label-prefix " + cmdutil.ShellQuote(q.LabelPrefix)
	}
	return s
}

// writeStateNote adds one line to a listing while the state file keeps
// entries that are not in effect, or cannot be written.
func writeStateNote(ctx context.Context, w io.Writer, c cmdutil.Client) {
	st, err := c.StateFile(ctx)
	if err != nil {
		return // an in-memory daemon, or an older one: nothing to say
	}
	if st.Degraded != "" {
		fmt.Fprintf(w, "note: %s; changes are refused until it can be written\n", st.Degraded)
	}
	if n := len(st.Kept); n > 0 {
		fmt.Fprintf(w, "note: %d %s of the state file not restored (kept on disk); see 'shipote state ls'\n", n, map[bool]string{true: "entry", false: "entries"}[n == 1])
	}
}

// WriteTable prints workspaces as a table: ID, LABEL, ALIVE, RSS, CPU,
// TTL LEFT.
//
// In a cluster (any workspace has a node) a NODE column follows LABEL.
func WriteTable(w interface{ Write([]byte) (int, error) }, list []messages.WorkspaceInfo, now time.Time) {
	clustered := slices.ContainsFunc(list, func(ws messages.WorkspaceInfo) bool { return ws.Node != "" })
	head := []string{"ID", "LABEL", "ALIVE", "RSS", "CPU", "TTL LEFT"}
	if clustered {
		head = slices.Insert(head, 2, "NODE")
	}
	t := cmdutil.NewTable(w, head...)
	for _, ws := range list {
		rss, cpu := "-", "-"
		if s := ws.Stats; s != nil {
			rss = cmdutil.FormatBytes(s.RSSBytes)
			cpu = fmt.Sprintf("%.1f%%", s.CPUPercent)
		}
		row := []string{ws.ID, ws.Spec.Label, strconv.Itoa(ws.CommandsAlive) + "/" + strconv.Itoa(ws.CommandsTotal),
			rss, cpu, TTLLeft(ws, now)}
		if clustered {
			row = slices.Insert(row, 2, ws.Node)
		}
		t.Row(row...)
	}
	t.Flush()
}

// TTLLeft prints the time left before a workspace's TTL deadline, "-"
// without one.
func TTLLeft(ws messages.WorkspaceInfo, now time.Time) string {
	if ws.Deadline.IsZero() {
		return "-"
	}
	return cmdutil.FormatDuration(ws.Deadline.Sub(now).Round(time.Second))
}
