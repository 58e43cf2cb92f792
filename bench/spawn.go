// spawn.go measures process spawning through proc.Spawner (one locked
// thread forks every child, with Setpgid, into the Spawner's PID namespace
// where the host allows one) against plain os/exec, interleaved in the same
// run, and what the PID namespace costs.

package bench

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"time"

	"github.com/shipote/shipote/internal/proc"
)

// spawnTrue is the program every spawn runs.
const spawnTrue = "/bin/true"

// RunSpawn measures spawn+wait of /bin/true through proc.Spawner against
// os/exec's Cmd.Run, sequentially and with two goroutines spawning at once.
// The two sides alternate spawn by spawn, so a load that drifts during the
// run (this is a shared 2-core machine) weighs on both alike; each side's
// rate is its spawns over its own summed time (divided by the goroutines).
// Rows are in spawns/s, median of 5 runs of 1000 spawns per side (quick: 1
// run of 200). Both sides run /bin/true with an empty environment, so the
// rows compare the mechanisms, not environment sizes.
func RunSpawn(ctx context.Context, r *Report, quick bool) error {
	n, runs := 1000, 5
	if quick {
		n, runs = 200, 1
	}
	if quick && smoke {
		n = 50
	}
	s := proc.NewSpawner()
	defer s.Close()
	viaSpawner := spawnerOnce(s)

	for _, workers := range []int{1, 2} {
		// Warm up both paths (page cache, the spawner's /dev/null).
		if _, _, err := spawnRates(ctx, workers, 50, viaSpawner, execOnce); err != nil {
			return err
		}
		var sp, ex []float64
		for range runs {
			a, b, err := spawnRates(ctx, workers, n, viaSpawner, execOnce)
			if err != nil {
				return err
			}
			sp, ex = append(sp, a), append(ex, b)
		}
		med, lo, hi := Median(sp)
		base, _, _ := Median(ex)
		name := "seq spawn+wait /bin/true"
		target := 0.90
		if workers > 1 {
			name = fmt.Sprintf("%d goroutines spawn+wait /bin/true", workers)
			target = 0.80 // forks are serialized on the spawning thread
		}
		row := Row{
			Group: "spawn", Name: name, Value: med, Unit: "spawns/s",
			Baseline: "os/exec Cmd.Run", Base: base, HigherIsBetter: true,
			Target: fmt.Sprintf(">= %.2fx", target),
			Note:   fmt.Sprintf("n=%d per side, alternated, median of %d", n, runs),
		}
		if runs > 1 {
			row.Min, row.Max = lo, hi
		}
		row.Met = Bool(row.Ratio() >= target)
		r.Add(row)
	}
	return spawnNamespaceRows(ctx, r, s, n, runs)
}

// spawnNamespaceRows measures what the PID namespace costs: spawn+wait in
// the Spawner's namespace against a Spawner without one (alternated, as
// above), and the first Start of a new Spawner, which makes the namespace
// and starts its init (this binary re-executed), against a first Start
// without.
func spawnNamespaceRows(ctx context.Context, r *Report, s *proc.Spawner, n, runs int) error {
	if s.Orphans() != proc.OrphansPIDNamespace {
		r.Add(Row{Group: "spawn", Name: "seq spawn+wait /bin/true in a pid namespace", Unit: "spawns/s",
			Note: "not measured: " + s.Orphans()})
		return nil
	}
	plain := proc.NewSpawnerOptions(proc.Options{NoPIDNamespace: true})
	defer plain.Close()
	viaNS, viaPlain := spawnerOnce(s), spawnerOnce(plain)
	if _, _, err := spawnRates(ctx, 1, 50, viaNS, viaPlain); err != nil {
		return err
	}
	var ns, pl []float64
	for range runs {
		a, b, err := spawnRates(ctx, 1, n, viaNS, viaPlain)
		if err != nil {
			return err
		}
		ns, pl = append(ns, a), append(pl, b)
	}
	med, lo, hi := Median(ns)
	base, _, _ := Median(pl)
	row := Row{
		Group: "spawn", Name: "seq spawn+wait /bin/true in the spawner's pid namespace", Value: med,
		Unit: "spawns/s", Baseline: "proc.Spawner without pid namespace", Base: base, HigherIsBetter: true,
		Note: fmt.Sprintf("the namespace's cost; the rows against os/exec above spawn in it. n=%d per side, alternated, median of %d", n, runs),
	}
	if runs > 1 {
		row.Min, row.Max = lo, hi
	}
	r.Add(row)

	var first, firstPlain []float64
	for range runs {
		for _, o := range []proc.Options{{}, {NoPIDNamespace: true}} {
			sp := proc.NewSpawnerOptions(o)
			t0 := time.Now()
			err := spawnerOnce(sp)()
			d := time.Since(t0)
			sp.Close()
			if err != nil {
				return err
			}
			if o.NoPIDNamespace {
				firstPlain = append(firstPlain, float64(d.Microseconds())/1000)
			} else {
				first = append(first, float64(d.Microseconds())/1000)
			}
		}
	}
	fmed, flo, fhi := Median(first)
	fbase, _, _ := Median(firstPlain)
	frow := Row{
		Group: "spawn", Name: "first Start of a Spawner: pid namespace and its init", Value: fmed, Unit: "ms",
		Baseline: "first Start without pid namespace", Base: fbase,
		Note: fmt.Sprintf("once per engine; median of %d", runs),
	}
	if runs > 1 {
		frow.Min, frow.Max = flo, fhi
	}
	r.Add(frow)
	return nil
}

// spawnerOnce returns a function that runs /bin/true once through s.
func spawnerOnce(s *proc.Spawner) func() error {
	return func() error {
		p, err := s.Start(proc.Spec{Path: spawnTrue})
		if err != nil {
			return err
		}
		if st := p.Wait(); !st.Success() {
			return fmt.Errorf("bench: %s through proc.Spawner: %v", spawnTrue, st)
		}
		return nil
	}
}

// execOnce runs /bin/true once through os/exec.
func execOnce() error {
	cmd := exec.Command(spawnTrue)
	cmd.Env = []string{}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bench: %s through os/exec: %w", spawnTrue, err)
	}
	return nil
}

// spawnRates runs a and b n times each, alternating (a first on even
// iterations, b first on odd ones), split over workers goroutines, and
// returns each side's spawns per second of its own time.
func spawnRates(ctx context.Context, workers, n int, a, b func() error) (rateA, rateB float64, err error) {
	type sums struct {
		a, b time.Duration
		err  error
	}
	res := make([]sums, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			sum := &res[w]
			for i := w; i < n; i += workers {
				if sum.err = ctx.Err(); sum.err != nil {
					return
				}
				first, second, df, ds := a, b, &sum.a, &sum.b
				if i%2 == 1 {
					first, second, df, ds = b, a, &sum.b, &sum.a
				}
				t0 := time.Now()
				if sum.err = first(); sum.err != nil {
					return
				}
				t1 := time.Now()
				if sum.err = second(); sum.err != nil {
					return
				}
				*df += t1.Sub(t0)
				*ds += time.Since(t1)
			}
		})
	}
	wg.Wait()
	var ta, tb time.Duration
	for _, s := range res {
		if s.err != nil {
			return 0, 0, s.err
		}
		ta += s.a
		tb += s.b
	}
	perWorker := func(t time.Duration) float64 { return t.Seconds() / float64(workers) }
	return float64(n) / perWorker(ta), float64(n) / perWorker(tb), nil
}
