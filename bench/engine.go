// engine.go measures the engine end to end: commands started through the
// actor tree (validation, pipes, log readers, messages) against raw os/exec
// in the same run, and restart latency from a crash to the next exec above
// the configured backoff against a raw os/exec relaunch loop.

package bench

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"time"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/messages"
)

// RunEngine runs the engine figures.
func RunEngine(ctx context.Context, r *Report, quick bool) error {
	n, runs := 1000, 5
	if quick {
		n, runs = 200, 1
	}
	eng, err := shipote.Start(shipote.NewActorSystem(nil), shipote.Config{Limits: "none", Grace: time.Second})
	if err != nil {
		return err
	}
	defer eng.Stop(context.Background())

	var viaEngine, raw []float64
	for i := range runs {
		a, err := engineSpawnRate(ctx, eng, fmt.Sprintf("spawn-%d", i), n)
		if err != nil {
			return err
		}
		b, err := rawSpawnRate(n)
		if err != nil {
			return err
		}
		viaEngine, raw = append(viaEngine, a), append(raw, b)
	}
	med, lo, hi := Median(viaEngine)
	base, _, _ := Median(raw)
	r.Add(Row{
		Group: "engine", Name: fmt.Sprintf("exec %d x /bin/true, start..all exited", n), Value: med, Min: lo, Max: hi,
		Unit: "spawns/s", Baseline: "os/exec Start+Wait", Base: base, HigherIsBetter: true,
		Target: ">= 0.9x", Met: Bool(med >= 0.9*base),
	})

	restarts := 300
	if quick {
		restarts = 60
	}
	eP50, eP99, err := engineRestartLatency(ctx, eng, restarts)
	if err != nil {
		return err
	}
	rP50, rP99, err := rawRestartLatency(restarts)
	if err != nil {
		return err
	}
	r.Add(Row{
		Group: "engine", Name: "restart latency p50 (exit -> next exec, above backoff)", Value: ms(eP50),
		Unit: "ms", Baseline: "os/exec relaunch loop p50", Base: ms(rP50),
		Target: "p50 <= 1 ms", Met: Bool(eP50 <= time.Millisecond),
	})
	r.Add(Row{
		Group: "engine", Name: "restart latency p99 (exit -> next exec, above backoff)", Value: ms(eP99),
		Unit: "ms", Baseline: "os/exec relaunch loop p99", Base: ms(rP99),
	})
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func engineSpawnRate(ctx context.Context, eng *shipote.Engine, label string, n int) (float64, error) {
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: label})
	if err != nil {
		return 0, err
	}
	defer eng.RemoveWorkspace(context.Background(), ws.ID, time.Second)
	ref := messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: "/bin/true"}}}
	start := time.Now()
	for i := range n {
		ref.Label = fmt.Sprintf("t%d", i)
		if _, err := eng.Exec(ctx, ws.ID, ref); err != nil {
			return 0, err
		}
	}
	for {
		info, err := eng.Workspace(ctx, ws.ID)
		if err != nil {
			return 0, err
		}
		if info.CommandsAlive == 0 {
			break
		}
		time.Sleep(200 * time.Microsecond)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func rawSpawnRate(n int) (float64, error) {
	start := time.Now()
	cmds := make([]*exec.Cmd, 0, n)
	for range n {
		c := exec.Command("/bin/true")
		if err := c.Start(); err != nil {
			return 0, err
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		_ = c.Wait()
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// engineRestartLatency runs a command that exits at once under
// restart-always with the minimum backoff (1 ms) and measures, from the
// events, the time from each exit to the next start, minus the backoff.
func engineRestartLatency(ctx context.Context, eng *shipote.Engine, restarts int) (p50, p99 time.Duration, err error) {
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "restart-latency"})
	if err != nil {
		return 0, 0, err
	}
	defer eng.RemoveWorkspace(context.Background(), ws.ID, time.Second)
	sub := eng.Events(4 * restarts)
	defer sub.Cancel()
	const backoff = time.Millisecond
	ref := messages.CommandRef{
		Label:   "crash",
		Payload: messages.Payload{Native: &messages.NativePayload{Exec: "/bin/false"}},
		Supervision: messages.Supervision{Restart: &messages.RestartPolicy{
			On: messages.RestartAlways, BackoffMs: 1, MaxBackoffMs: 1, Max: int64(restarts),
		}},
	}
	if _, err := eng.Exec(ctx, ws.ID, ref); err != nil {
		return 0, 0, err
	}
	var lat []time.Duration
	var lastExit time.Time
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case ev := <-sub.C:
			if ev.Workspace != ws.ID {
				continue
			}
			switch ev.Kind {
			case messages.EventExited:
				lastExit = ev.Time
			case messages.EventRestarted:
				if !lastExit.IsZero() {
					lat = append(lat, ev.Time.Sub(lastExit)-backoff)
				}
			case messages.EventGaveUp:
				p50, p99 = percentiles(lat)
				return p50, p99, nil
			}
		case <-timeout:
			return 0, 0, fmt.Errorf("restart latency: no gave_up after %d restarts", len(lat))
		}
	}
}

// rawRestartLatency is the floor: a loop that waits for /bin/false to exit
// and starts it again at once.
func rawRestartLatency(n int) (p50, p99 time.Duration, err error) {
	var lat []time.Duration
	c := exec.Command("/bin/false")
	if err := c.Start(); err != nil {
		return 0, 0, err
	}
	for range n {
		_ = c.Wait()
		exited := time.Now()
		c = exec.Command("/bin/false")
		if err := c.Start(); err != nil {
			return 0, 0, err
		}
		lat = append(lat, time.Since(exited))
	}
	_ = c.Wait()
	p50, p99 = percentiles(lat)
	return p50, p99, nil
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2], d[min(len(d)-1, len(d)*99/100)]
}
