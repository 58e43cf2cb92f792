// bench_test.go holds the package's benchmarks: Start+Wait of /bin/true on
// both wait paths (pidfd on the poller, os.Process's blocking waitid), with
// many other children being waited for, and the cost of the hop to the
// spawning thread.

package proc

import (
	"sync"
	"syscall"
	"testing"
)

// benchKinds returns a Spawner per wait path, closed at the end of b.
func benchKinds(b *testing.B) map[string]*Spawner {
	b.Helper()
	fallback := NewSpawner()
	b.Cleanup(fallback.Close)
	fallback.pidfd = false
	kinds := map[string]*Spawner{"os.Process": fallback}
	if pidfdWorks() {
		s := NewSpawner()
		b.Cleanup(s.Close)
		kinds["pidfd"] = s
	}
	return kinds
}

// BenchmarkStartWait starts /bin/true and waits for it, one at a time.
func BenchmarkStartWait(b *testing.B) {
	for _, kind := range []string{"pidfd", "os.Process"} {
		s := benchKinds(b)[kind]
		if s == nil {
			continue
		}
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				p, err := s.Start(Spec{Path: "/bin/true"})
				if err != nil {
					b.Fatal(err)
				}
				if st := p.Wait(); !st.Success() {
					b.Fatal(st)
				}
			}
		})
	}
}

// BenchmarkStartGoWait starts /bin/true b.N times, each waited for by its own
// goroutine as the engine does, then waits for all: the start rate with the
// waiting going on alongside.
func BenchmarkStartGoWait(b *testing.B) {
	for _, kind := range []string{"pidfd", "os.Process"} {
		s := benchKinds(b)[kind]
		if s == nil {
			continue
		}
		b.Run(kind, func(b *testing.B) {
			var wg sync.WaitGroup
			for b.Loop() {
				p, err := s.Start(Spec{Path: "/bin/true"})
				if err != nil {
					b.Fatal(err)
				}
				wg.Go(func() { p.Wait() })
			}
			wg.Wait()
		})
	}
}

// BenchmarkStartWaitAmongWaiters is BenchmarkStartWait while 256 other
// children run, each waited for by a goroutine. It reports the process's
// threads: a blocking waitid holds one per waiter, the poller none.
func BenchmarkStartWaitAmongWaiters(b *testing.B) {
	const waiters = 256
	for _, kind := range []string{"pidfd", "os.Process"} {
		s := benchKinds(b)[kind]
		if s == nil {
			continue
		}
		b.Run(kind, func(b *testing.B) {
			var wg sync.WaitGroup
			procs := make([]*Process, 0, waiters)
			defer func() {
				for _, p := range procs {
					_ = p.Signal(syscall.SIGKILL)
				}
				wg.Wait()
			}()
			for range waiters {
				p, err := s.Start(Spec{Path: mustResolve("sleep"), Args: []string{"1000"}})
				if err != nil {
					b.Fatal(err)
				}
				procs = append(procs, p)
				wg.Go(func() { p.Wait() })
			}
			for b.Loop() {
				p, err := s.Start(Spec{Path: "/bin/true"})
				if err != nil {
					b.Fatal(err)
				}
				p.Wait()
			}
			b.ReportMetric(float64(benchThreads(b)), "threads")
		})
	}
}

// BenchmarkSpawnHop compares Start (a request to the spawning thread and its
// reply) with the same fork made on the calling goroutine's own thread, which
// Start never does: that thread could end with a goroutine that locked it,
// and PDEATHSIG would then kill the child. The difference is the cost of the
// hop: waking the spawning thread and then the caller's.
func BenchmarkSpawnHop(b *testing.B) {
	s := NewSpawner()
	b.Cleanup(s.Close)
	b.Run("spawning-thread", func(b *testing.B) {
		for b.Loop() {
			p, err := s.Start(Spec{Path: "/bin/true"})
			if err != nil {
				b.Fatal(err)
			}
			p.Wait()
		}
	})
	b.Run("calling-thread", func(b *testing.B) {
		for b.Loop() {
			spec := Spec{Path: "/bin/true"}
			p, err := s.spawn(&spec)
			if err != nil {
				b.Fatal(err)
			}
			p.Wait()
		}
	})
}

// benchThreads returns the number of threads of this process.
func benchThreads(b *testing.B) int {
	b.Helper()
	n, err := countThreads()
	if err != nil {
		b.Fatal(err)
	}
	return n
}
