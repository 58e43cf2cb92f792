// This file tests package stats: flag parsing (argv to options, or a usage
// error) and what the commands print.

package stats

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/cli/clitest"
	"github.com/shipote/shipote/messages"
)

func TestStatsRun(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.Local)
	fc := &clitest.FakeClient{Samples: []messages.Sample{
		{TimestampMs: t0.UnixMilli(), CommandsAlive: 1, CommandsTotal: 1, RSSBytes: 1 << 20, RSSPeakBytes: 2 << 20, CPUUsec: 1500000, CPUPercent: 12.5, Source: "cgroup1"},
		{TimestampMs: t0.Add(time.Second).UnixMilli(), CommandsAlive: 0, CommandsTotal: 1, RSSBytes: 0, RSSPeakBytes: 2 << 20, CPUUsec: 1500000, Source: "cgroup1"},
	}}
	f, out, _ := clitest.Factory(fc, t0)
	if err := clitest.Run(NewCmdStats(f, nil), "build"); err != nil {
		t.Fatal(err)
	}
	want := `TIME      ALIVE  RSS   PEAK  CPU%  CPU  SOURCE
12:00:00  1/1    1.0M  2.0M  12.5  1s   cgroup1
12:00:01  0/1    0B    2.0M  0.0   1s   cgroup1

RSS █▁  max 1.0M
CPU █▁  max 12.5%
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	if err := clitest.Run(NewCmdStats(f, nil), "build", "-o", "json"); err != nil || !strings.Contains(out.String(), `"rss_bytes": 1048576`) {
		t.Errorf("-o json: %v %s", err, out.String())
	}
	// --watch prints the latest sample, then each newer one, until ctx ends.
	out.Reset()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	o := &Options{IO: f.IO, Client: f.APIClient, Workspace: "build", Watch: true, Interval: 50 * time.Millisecond, Output: "json"}
	if err := statsRun(ctx, o); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 1 || !strings.Contains(lines[0], `"commands_alive":0`) {
		t.Errorf("--watch -o json printed %q, want the latest sample once", out.String())
	}
	if err := clitest.Run(NewCmdStats(f, nil), "build", "--interval", "0s"); !clitest.IsUsage(err) {
		t.Errorf("zero interval: %v", err)
	}
}
