// This file owns `shipote stats`: a workspace's stats history, or with
// --watch one line per new sample.

// Package stats implements `shipote stats`.
package stats

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/internal/cli/ws"
	"github.com/shipote/shipote/messages"
)

// Options are the inputs of `stats`.
type Options struct {
	IO        *cmdutil.IOStreams
	Client    func() (cmdutil.Client, error)
	Workspace string
	Output    string
	Watch     bool
	// Interval is how often --watch polls.
	Interval time.Duration
	// Last is how many samples the table shows.
	Last int64
}

// NewCmdStats returns `stats`; runF replaces the run for tests.
func NewCmdStats(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Client: f.APIClient, Interval: time.Second, Last: 10}
	cmd := &cobra.Command{
		Use:   "stats WS [--watch]",
		Short: "Print a workspace's stats samples",
		Long: `Print a workspace's latest stats samples with sparklines of its history
(-o json: every kept sample). With --watch, print each new sample as it is
taken (-o json: one JSON object per line) until Ctrl-C.`,
		Args: cmdutil.ExactArgs(1, "WS"),

		ValidArgsFunction: cmdutil.CompleteWorkspaces(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Workspace = args[0]
			if opts.Interval <= 0 {
				return cmdutil.FlagErrorf("--interval must be above 0")
			}
			if runF != nil {
				return runF(opts)
			}
			return statsRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Watch, "watch", "w", false, "print new samples as they come, until Ctrl-C")
	cmd.Flags().Var(cmdutil.DurationValue{P: &opts.Interval}, "interval", "how often --watch asks the daemon")
	cmd.Flags().Var(cmdutil.CountValue{P: &opts.Last}, "last", "samples the table shows (0 = all)")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func statsRun(ctx context.Context, o *Options) error {
	c, err := o.Client()
	if err != nil {
		return err
	}
	hist, err := c.Stats(ctx, o.Workspace)
	if err != nil {
		return err
	}
	if !o.Watch {
		if o.Output == "json" {
			return cmdutil.WriteJSON(o.IO.Out, hist)
		}
		shown := hist
		if o.Last > 0 && int64(len(shown)) > o.Last {
			shown = shown[len(shown)-int(o.Last):]
		}
		t := cmdutil.NewTable(o.IO.Out, header...)
		for _, s := range shown {
			t.Row(row(s)...)
		}
		t.Flush()
		if len(hist) > 1 {
			rss, cpu := ws.History(hist, 60)
			fmt.Fprintf(o.IO.Out, "\nRSS %s\nCPU %s\n", rss, cpu)
		}
		return nil
	}
	return watch(ctx, c, o, hist)
}

var header = []string{"TIME", "ALIVE", "RSS", "PEAK", "CPU%", "CPU", "SOURCE"}

func row(s messages.Sample) []string {
	return []string{
		time.UnixMilli(s.TimestampMs).Format("15:04:05"),
		strconv.Itoa(s.CommandsAlive) + "/" + strconv.Itoa(s.CommandsTotal),
		cmdutil.FormatBytes(s.RSSBytes),
		cmdutil.FormatBytes(s.RSSPeakBytes),
		fmt.Sprintf("%.1f", s.CPUPercent),
		cmdutil.FormatDuration(time.Duration(s.CPUUsec) * time.Microsecond),
		s.Source,
	}
}

// watch prints the latest sample, then each newer one, until ctx ends.
func watch(ctx context.Context, c cmdutil.Client, o *Options, hist []messages.Sample) error {
	var last int64
	print := func(samples []messages.Sample) error {
		for _, s := range samples {
			if s.TimestampMs <= last {
				continue
			}
			last = s.TimestampMs
			if err := writeSample(o.IO.Out, o.Output, s); err != nil {
				return err
			}
		}
		return nil
	}
	if o.Output != "json" {
		fmt.Fprintf(o.IO.Out, "%-9s %-7s %-7s %-7s %-6s %-8s %s\n", "TIME", "ALIVE", "RSS", "PEAK", "CPU%", "CPU", "SOURCE")
	}
	if len(hist) > 0 {
		if err := print(hist[len(hist)-1:]); err != nil {
			return err
		}
	}
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		hist, err := c.Stats(ctx, o.Workspace)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := print(hist); err != nil {
			return err
		}
	}
}

func writeSample(w io.Writer, output string, s messages.Sample) error {
	if output == "json" {
		return cmdutil.WriteJSONLine(w, s)
	}
	r := row(s)
	_, err := fmt.Fprintf(w, "%-9s %-7s %-7s %-7s %-6s %-8s %s\n", r[0], r[1], r[2], r[3], r[4], r[5], r[6])
	return err
}
