// retention.go measures what a workspace running short commands forever
// costs the daemon: 100,000 runs of /bin/true in one workspace through a
// real `shipote daemon` (over its API socket), and the daemon's RSS after
// them against its RSS after the first 1,000. Ended commands are kept up
// to --keep-ended (100) and then forgotten with their log rings, so the
// second figure should match the first.

package bench

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/bench/peers"
	"github.com/shipote/shipote/messages"
)

// RetentionParams size the retention suite.
type RetentionParams struct {
	First   int           // commands before the baseline reading
	N       int           // commands in all
	Clients int           // concurrent API clients issuing them
	Settle  time.Duration // before each RSS reading
}

// RetentionParamsFor returns the sizes of a full or quick run.
func RetentionParamsFor(quick bool) RetentionParams {
	switch {
	case quick && smoke:
		return RetentionParams{First: 300, N: 1500, Clients: 4, Settle: 500 * time.Millisecond}
	case quick:
		return RetentionParams{First: 1000, N: 10000, Clients: 4, Settle: 2 * time.Second}
	}
	return RetentionParams{First: 1000, N: 100000, Clients: 4, Settle: 2 * time.Second}
}

// RunRetention runs the retention suite with RetentionParamsFor(quick).
func RunRetention(ctx context.Context, r *Report, quick bool) error {
	return MeasureRetention(ctx, r, RetentionParamsFor(quick))
}

// MeasureRetention builds and launches a daemon, runs par.N short commands
// in one workspace and adds the row.
func MeasureRetention(ctx context.Context, r *Report, par RetentionParams) (err error) {
	root, err := os.MkdirTemp("", "shipote-bench-retention-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	bin, err := peers.BuildShipote(ctx, root)
	if err != nil {
		return err
	}
	d, err := peers.NewShipoteDaemon(bin, root)
	if err != nil {
		return err
	}
	if err := d.Launch(ctx); err != nil {
		return err
	}
	defer func() {
		if cerr := d.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	c, pid := d.Client(), d.PID()
	ws, err := c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "periodic"})
	if err != nil {
		return err
	}
	ref := messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: "/bin/true"}}}
	start := time.Now()
	first, err := runShort(ctx, c, ws.ID, ref, 0, par.First, par)
	if err != nil {
		return err
	}
	rssFirst, err := settledRSS(ctx, pid, par.Settle)
	if err != nil {
		return err
	}
	last, err := runShort(ctx, c, ws.ID, ref, par.First, par.N, par)
	if err != nil {
		return err
	}
	rssLast, err := settledRSS(ctx, pid, par.Settle)
	if err != nil {
		return err
	}
	mib := func(b float64) float64 { return b / (1 << 20) }
	r.Add(Row{
		Group: "retention", Name: fmt.Sprintf("daemon RSS after %d x /bin/true in one workspace", par.N),
		Value: mib(rssLast), Unit: "MiB", Baseline: fmt.Sprintf("daemon RSS after the first %d", par.First), Base: mib(rssFirst),
		Target: "<= 1.1x", Met: Bool(rssLast <= 1.1*rssFirst),
		Note: fmt.Sprintf("one daemon, --keep-ended 100 (default); %d API clients; %d commands kept at the end (%d at the baseline); %s in all; RSS read %s after the last exit",
			par.Clients, last, first, time.Since(start).Round(time.Second), par.Settle),
	})
	return nil
}

// runShort execs commands from..to-1 from par.Clients clients, waits until
// none is alive, and returns how many commands the workspace still lists.
func runShort(ctx context.Context, c *api.Client, ws string, ref messages.CommandRef, from, to int, par RetentionParams) (int, error) {
	err := parallel(ctx, par.Clients, to-from, func(int) error {
		_, err := c.Exec(ctx, ws, ref)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("exec %d..%d: %w", from, to, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		info, err := c.Workspace(ctx, ws)
		if err != nil {
			return 0, err
		}
		if info.CommandsAlive == 0 {
			return info.CommandsTotal, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d commands still alive after 2 min", info.CommandsAlive)
		}
		if err := peers.SleepCtx(ctx, 20*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// settledRSS waits settle, then reads the RSS of pid in bytes.
func settledRSS(ctx context.Context, pid int, settle time.Duration) (float64, error) {
	if err := peers.SleepCtx(ctx, settle); err != nil {
		return 0, err
	}
	v, err := peers.RSS(pid)
	return float64(v), err
}
