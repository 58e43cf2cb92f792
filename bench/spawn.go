// spawn.go measures process spawning through proc.Spawner (one locked
// thread forks every child, with Setpgid and PDEATHSIG) against plain os/exec,
// interleaved in the same run.

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

// RunSpawn measures sequential spawn+wait of /bin/true through proc.Spawner
// and through os/exec's Cmd.Run, interleaved, and the same with two
// goroutines spawning at once. Rows are in spawns/s, median of 5 runs of 2000
// spawns (quick: 1 run of 200). Both sides run /bin/true with an empty
// environment, so the rows compare the mechanisms, not environment sizes.
func RunSpawn(ctx context.Context, r *Report, quick bool) error {
	n, runs := 2000, 5
	if quick {
		n, runs = 200, 1
	}
	s := proc.NewSpawner()
	defer s.Close()

	for _, workers := range []int{1, 2} {
		// Warm up both paths (page cache, the spawner's /dev/null).
		if _, err := spawnRate(ctx, workers, 50, spawnerOnce(s)); err != nil {
			return err
		}
		if _, err := spawnRate(ctx, workers, 50, execOnce); err != nil {
			return err
		}
		var sp, ex []float64
		for i := range runs {
			// Alternate which side goes first, so neither always runs warmer.
			order := []bool{true, false}
			if i%2 == 1 {
				order = []bool{false, true}
			}
			for _, spawner := range order {
				if spawner {
					v, err := spawnRate(ctx, workers, n, spawnerOnce(s))
					if err != nil {
						return err
					}
					sp = append(sp, v)
				} else {
					v, err := spawnRate(ctx, workers, n, execOnce)
					if err != nil {
						return err
					}
					ex = append(ex, v)
				}
			}
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
			Note:   fmt.Sprintf("n=%d, median of %d", n, runs),
		}
		if runs > 1 {
			row.Min, row.Max = lo, hi
		}
		row.Met = Bool(row.Ratio() >= target)
		r.Add(row)
	}
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

// spawnRate runs once n times split over workers goroutines and returns
// spawns per second.
func spawnRate(ctx context.Context, workers, n int, once func() error) (float64, error) {
	start := time.Now()
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				if err := once(); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return float64(n) / elapsed.Seconds(), nil
}
