// engine.go measures the engine end to end: commands started through the
// actor tree (validation, pipes, log readers, messages) against raw os/exec
// in the same run, and restart latency from a crash to the next exec above
// the configured backoff against a raw os/exec relaunch loop.
//
// Both sides of each figure do the same work, so that the ratio is the
// engine's overhead and nothing else:
//   - the same program with the same environment (PATH only, which is what a
//     workspace without env gives its commands; os/exec would otherwise pass
//     the whole environment of the test, and a larger execve);
//   - N starts, each returning once the program runs, then "all exited",
//     where both clocks stop at the same point: every child's exit observed
//     by the manager. os/exec reaps each child with Wait; the engine side
//     counts the exited events of its workspace (published once the
//     workspace actor has handled each exit, which does not wait for the
//     command's output pipes to reach EOF). So the os/exec side's pipe
//     readers are joined after its clock stops, as the engine's pumps finish
//     after its own. Polling Workspace() instead would add up to a poll
//     period plus timer slack to the engine side only, and its queries would
//     load the very actor being measured;
//   - a warm-up of both sides first (the engine's first commands otherwise
//     pay one-time costs, such as new threads and grown goroutine stacks,
//     that the raw side then runs without), and the order of the two sides
//     alternates from run to run, so a load that drifts during the run (this
//     is a shared 2-core machine) weighs on both alike.
//
// The engine captures each command's stdout and stderr through pipes read
// by goroutines. The target is judged against os/exec doing that same work
// (each child's stdout and stderr on pipes drained by a goroutine each, as
// any program keeping its children's output must); os/exec leaving the
// output on /dev/null is printed beside it as a reference floor.

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/messages"
)

// benchEnv is the environment of every command on both sides.
var benchEnv = []string{"PATH=" + messages.DefaultPath}

// RunEngine runs the engine figures.
func RunEngine(ctx context.Context, r *Report, quick bool) error {
	n, runs := 1000, 5
	if quick {
		n, runs = 200, 3
	}
	if quick && smoke {
		n, runs = 40, 1
	}
	eng, err := shipote.Start(context.Background(), shipote.NewActorSystem(nil), shipote.Config{Limits: "none", Grace: time.Second})
	if err != nil {
		return err
	}
	defer eng.Stop(context.Background())

	if _, err := engineSpawnRate(ctx, eng, "spawn-warmup", n/4, trueArgv); err != nil {
		return err
	}
	if _, err := rawSpawnRate(n/4, trueArgv); err != nil {
		return err
	}
	if _, err := rawCapturedSpawnRate(n/4, trueArgv); err != nil {
		return err
	}
	var viaEngine, raw, captured, ratios, cpuEngine, cpuRaw []float64
	for i := range runs {
		var a, b, c spawnRun
		sides := []func() error{
			func() (err error) {
				a, err = engineSpawnRate(ctx, eng, fmt.Sprintf("spawn-%d", i), n, trueArgv)
				return err
			},
			func() (err error) { c, err = rawCapturedSpawnRate(n, trueArgv); return err },
			func() (err error) { b, err = rawSpawnRate(n, trueArgv); return err },
		}
		for j := range sides {
			if err := sides[(i+j)%len(sides)](); err != nil { // rotate who goes first
				return err
			}
		}
		viaEngine, raw, captured = append(viaEngine, a.rate), append(raw, b.rate), append(captured, c.rate)
		ratios = append(ratios, a.rate/c.rate)
		cpuEngine, cpuRaw = append(cpuEngine, micros(a.cpu)), append(cpuRaw, micros(c.cpu))
	}
	med, lo, hi := Median(viaEngine)
	base, _, _ := Median(captured)
	floor, _, _ := Median(raw)
	rmed, rlo, rhi := Median(ratios)
	spawnRow := Row{
		Group: "engine", Name: fmt.Sprintf("exec %d x /bin/true, start..all exited", n), Value: med,
		Unit: "spawns/s", Baseline: "os/exec, output piped+read", Base: base, HigherIsBetter: true,
		Target: ">= 0.9x", Met: Bool(med >= 0.9*base),
		Note: fmt.Sprintf("median of %d runs, sides rotated; per-run ratios %.2f (%.2f..%.2f); both capture stdout+stderr; both clocks stop at the last exit observed", runs, rmed, rlo, rhi),
	}
	if runs > 1 {
		spawnRow.Min, spawnRow.Max = lo, hi
	}
	r.Add(spawnRow)
	r.Add(Row{
		Group: "engine", Name: fmt.Sprintf("exec %d x /bin/true, start..all exited", n), Value: med,
		Unit: "spawns/s", Baseline: "os/exec, output to /dev/null", Base: floor, HigherIsBetter: true,
		Note: "reference floor: os/exec keeping no output at all",
	})
	cmed, clo, chi := Median(cpuEngine)
	cbase, _, _ := Median(cpuRaw)
	cpuRow := Row{
		Group: "engine", Name: "CPU of this process per spawn", Value: cmed,
		Unit: "us", Baseline: "os/exec, output piped+read", Base: cbase,
		Note: "user+sys of the whole process over the runs above; the children's own CPU is not counted",
	}
	if runs > 1 {
		cpuRow.Min, cpuRow.Max = clo, chi
	}
	r.Add(cpuRow)

	restarts, rruns := 100, 5
	if quick {
		restarts, rruns = 60, 1
	}
	if quick && smoke {
		restarts = 20
	}
	var e50, e99, r50, r99 []float64
	for i := range rruns {
		// Sides alternate who goes first.
		for j := range 2 {
			if (i+j)%2 == 0 {
				p50, p99, err := engineRestartLatency(ctx, eng, restarts)
				if err != nil {
					return err
				}
				e50, e99 = append(e50, ms(p50)), append(e99, ms(p99))
			} else {
				p50, p99, err := rawRestartLatency(restarts)
				if err != nil {
					return err
				}
				r50, r99 = append(r50, ms(p50)), append(r99, ms(p99))
			}
		}
	}
	note := fmt.Sprintf("%d restarts per run, median of the runs' percentiles over %d runs, sides alternated; backoff_ms=1", restarts, rruns)
	p50Row := Row{
		Group: "engine", Name: "restart latency p50 (exit -> next exec, above backoff)",
		Unit: "ms", Baseline: "os/exec relaunch loop p50", Note: note,
	}
	p50Row.Value, p50Row.Min, p50Row.Max = Median(e50)
	p50Row.Base, _, _ = Median(r50)
	p50Row.Target, p50Row.Met = "p50 <= 1 ms", Bool(p50Row.Value <= 1)
	p99Row := Row{
		Group: "engine", Name: "restart latency p99 (exit -> next exec, above backoff)",
		Unit: "ms", Baseline: "os/exec relaunch loop p99", Note: note,
	}
	p99Row.Value, p99Row.Min, p99Row.Max = Median(e99)
	p99Row.Base, _, _ = Median(r99)
	if rruns == 1 {
		p50Row.Min, p50Row.Max, p99Row.Min, p99Row.Max = 0, 0, 0, 0
	}
	r.Add(p50Row)
	r.Add(p99Row)
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// spawnRun is one side of one spawn-rate run: spawns per second, and the CPU
// this process used per spawn.
type spawnRun struct {
	rate float64
	cpu  time.Duration
}

// processCPU returns the user+sys CPU time this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// trueArgv is the program of the spawn figures.
var trueArgv = []string{"/bin/true"}

// engineSpawnRate execs n x argv in a new workspace, one Exec after the
// other (each returns once its process runs), then waits for n exited events
// of that workspace.
func engineSpawnRate(ctx context.Context, eng *shipote.Engine, label string, n int, argv []string) (spawnRun, error) {
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: label})
	if err != nil {
		return spawnRun{}, err
	}
	defer eng.RemoveWorkspace(context.Background(), ws.ID, time.Second)
	// Room for every event of the run (started and exited per command) even
	// if nothing is read until the last Exec has returned.
	sub := eng.Events(4*n + 64)
	defer sub.Cancel()
	ref := messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: argv[0], Argv: argv[1:]}}}
	cpu0, start := processCPU(), time.Now()
	for i := range n {
		ref.Label = fmt.Sprintf("t%d", i)
		if _, err := eng.Exec(ctx, ws.ID, ref); err != nil {
			return spawnRun{}, err
		}
	}
	if err := awaitExited(ctx, sub.C, ws.ID, n, time.Minute); err != nil {
		if d := sub.Dropped(); d > 0 {
			err = fmt.Errorf("%w (the subscription dropped %d events)", err, d)
		}
		return spawnRun{}, err
	}
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	return spawnRun{rate: float64(n) / elapsed.Seconds(), cpu: cpu / time.Duration(n)}, nil
}

// errNotAllExited is returned by awaitExited when the commands do not all
// exit in time.
var errNotAllExited = errors.New("bench: commands did not all exit")

// awaitExited reads events from c until n exited events of workspace ws
// have come, ctx ends or timeout passes.
func awaitExited(ctx context.Context, c <-chan messages.Event, ws string, n int, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for exited := 0; exited < n; {
		select {
		case ev, ok := <-c:
			if !ok {
				return fmt.Errorf("%w: event subscription closed after %d of %d", errNotAllExited, exited, n)
			}
			if ev.Workspace == ws && ev.Kind == messages.EventExited {
				exited++
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("%w: %d of %d exited after %v", errNotAllExited, exited, n, timeout)
		}
	}
	return nil
}

// rawSpawnRate starts n x argv with os/exec, then waits for each.
func rawSpawnRate(n int, argv []string) (spawnRun, error) {
	cpu0, start := processCPU(), time.Now()
	cmds := make([]*exec.Cmd, 0, n)
	for range n {
		c := exec.Command(argv[0], argv[1:]...)
		c.Env = benchEnv
		if err := c.Start(); err != nil {
			return spawnRun{}, err
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		_ = c.Wait()
	}
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	return spawnRun{rate: float64(n) / elapsed.Seconds(), cpu: cpu / time.Duration(n)}, nil
}

// rawCapturedSpawnRate starts n x argv with os/exec, each with its stdout
// and stderr on pipes drained by a goroutine each, then waits for every
// child: the work the engine does, done by hand. Its clock stops once every
// exit is observed, where the engine side's does; the readers are joined
// after that.
func rawCapturedSpawnRate(n int, argv []string) (spawnRun, error) {
	cpu0, start := processCPU(), time.Now()
	cmds := make([]*exec.Cmd, 0, n)
	var readers sync.WaitGroup
	drain := func(r *os.File) {
		defer readers.Done()
		defer r.Close()
		buf := make([]byte, 32<<10)
		for {
			if _, err := r.Read(buf); err != nil {
				return
			}
		}
	}
	// On an error, the readers started so far end once their children exit.
	defer readers.Wait()
	for range n {
		c := exec.Command(argv[0], argv[1:]...)
		c.Env = benchEnv
		or, ow, err := os.Pipe()
		if err != nil {
			return spawnRun{}, err
		}
		er, ew, err := os.Pipe()
		if err != nil {
			return spawnRun{}, err
		}
		c.Stdout, c.Stderr = ow, ew
		err = c.Start()
		ow.Close()
		ew.Close()
		if err != nil {
			or.Close()
			er.Close()
			return spawnRun{}, err
		}
		readers.Add(2)
		go drain(or)
		go drain(er)
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		_ = c.Wait()
	}
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	return spawnRun{rate: float64(n) / elapsed.Seconds(), cpu: cpu / time.Duration(n)}, nil
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
	command := func() *exec.Cmd {
		c := exec.Command("/bin/false")
		c.Env = benchEnv
		return c
	}
	c := command()
	if err := c.Start(); err != nil {
		return 0, 0, err
	}
	for range n {
		_ = c.Wait()
		exited := time.Now()
		c = command()
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
