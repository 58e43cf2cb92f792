// This file owns `shipote ws show`: a workspace's spec, latest stats and a
// sparkline of its history.

package ws

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
)

// ShowOptions are the inputs of `ws show`.
type ShowOptions struct {
	IO        *cmdutil.IOStreams
	Client    func() (cmdutil.Client, error)
	Now       func() time.Time
	Workspace string
	Output    string
}

// NewCmdShow returns `ws show`; runF replaces the run for tests.
func NewCmdShow(f *cmdutil.Factory, runF func(*ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{IO: f.IO, Client: f.APIClient, Now: f.Clock}
	cmd := &cobra.Command{
		Use:   "show WS",
		Short: "Show a workspace: spec, latest stats, history",
		Args:  cmdutil.ExactArgs(1, "WS"),

		ValidArgsFunction: cmdutil.CompleteWorkspaces(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workspace = args[0]
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
	info, err := c.Workspace(ctx, o.Workspace)
	if err != nil {
		return err
	}
	if o.Output == "json" {
		return cmdutil.WriteJSON(o.IO.Out, info)
	}
	hist, err := c.Stats(ctx, info.ID)
	if err != nil {
		return err
	}
	WriteDetails(o.IO.Out, info, hist, o.Now())
	return nil
}

// WriteDetails prints a workspace for people.
func WriteDetails(w io.Writer, ws messages.WorkspaceInfo, hist []messages.Sample, now time.Time) {
	s := ws.Spec
	line := func(k, v string) {
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(w, "%-13s %s\n", k+":", v)
	}
	line("ID", ws.ID)
	line("Label", s.Label)
	if s.Project != "" {
		line("Project", s.Project+" (managed by shipote apply)")
	}
	line("Created", ws.CreatedAt.Local().Format(time.DateTime)+" ("+cmdutil.Age(now, ws.CreatedAt)+")")
	if ws.Deadline.IsZero() {
		line("TTL", "none")
	} else {
		line("TTL", fmt.Sprintf("%s left (deadline %s)", TTLLeft(ws, now), ws.Deadline.Local().Format(time.DateTime)))
	}
	line("Limits", cmdutil.FormatSoma(s.Soma, ", ")+limitsBackend(ws.LimitsBackend))
	line("Allow exec", strings.Join(s.Permissions.AllowExec, ", "))
	line("Workdir", s.Permissions.Workdir)
	line("Env", envString(s.Permissions.Env))
	if s.Permissions.UID != nil || s.Permissions.GID != nil {
		line("Credentials", fmt.Sprintf("uid %s, gid %s", optInt(s.Permissions.UID), optInt(s.Permissions.GID)))
	}
	line("Flow dirs", strings.Join(s.FlowDirs, ", "))
	line("On exit", string(s.OnExit))
	line("Quota", string(s.QuotaEnforce))
	line("Commands", fmt.Sprintf("%d alive, %d total", ws.CommandsAlive, ws.CommandsTotal))
	line("Pipelines", strconv.Itoa(ws.PipelinesTotal))
	latest := ws.Stats
	if latest == nil && len(hist) > 0 {
		latest = &hist[len(hist)-1]
	}
	if latest == nil {
		line("Stats", "no sample yet")
		return
	}
	line("Memory", fmt.Sprintf("%s (peak %s)", cmdutil.FormatBytes(latest.RSSBytes), cmdutil.FormatBytes(latest.RSSPeakBytes)))
	line("CPU", fmt.Sprintf("%.1f%% (%s total)", latest.CPUPercent,
		cmdutil.FormatDuration(time.Duration(latest.CPUUsec)*time.Microsecond)))
	line("Source", latest.Source)
	if len(hist) > 1 {
		rss, cpu := History(hist, 60)
		line("RSS history", rss)
		line("CPU history", cpu)
	}
}

// History returns sparklines of the RSS and CPU%% of the last n samples.
func History(hist []messages.Sample, n int) (rss, cpu string) {
	if len(hist) > n {
		hist = hist[len(hist)-n:]
	}
	r := make([]float64, len(hist))
	c := make([]float64, len(hist))
	for i, s := range hist {
		r[i] = float64(s.RSSBytes)
		c[i] = s.CPUPercent
	}
	var maxRSS uint64
	var maxCPU float64
	for _, s := range hist {
		maxRSS = max(maxRSS, s.RSSBytes)
		maxCPU = max(maxCPU, s.CPUPercent)
	}
	return fmt.Sprintf("%s  max %s", cmdutil.Sparkline(r), cmdutil.FormatBytes(maxRSS)),
		fmt.Sprintf("%s  max %.1f%%", cmdutil.Sparkline(c), maxCPU)
}

func limitsBackend(b string) string {
	if b == "" {
		return ""
	}
	return " (" + b + ")"
}

func envString(env map[string]string) string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + env[k]
	}
	return strings.Join(keys, " ")
}

func optInt(p *int64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatInt(*p, 10)
}
