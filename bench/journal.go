// journal.go measures durable acknowledgements through the journal when
// the engine already holds many workspaces: the latency of one client's
// creates, the throughput of 64 clients beside bbolt's Batch holding as
// many entries on the same disk, whether the daemon's create rate holds
// while it grows from 0 to 10,000 workspaces, and the restore of a
// snapshot plus a long journal.

package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/bench/peers"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/persistence"
)

// RunJournal runs the journal figures at 10,000 workspaces (1,000 with
// quick). SHIPOTE_BENCH_JOURNAL, a comma-separated list of "creates",
// "growth" and "restore", runs only those parts (default: all).
func RunJournal(ctx context.Context, r *Report, quick bool) error {
	n, creates, clients, runs, records := 10000, 1024, 64, 3, 100_000
	growthRuns := 2
	if quick {
		n, creates, runs, records, growthRuns = 1000, 256, 1, 10_000, 1
	}
	if quick && smoke {
		n, creates, runs, records = 100, 128, 1, 1000
	}
	parts := strings.Split(os.Getenv("SHIPOTE_BENCH_JOURNAL"), ",")
	want := func(part string) bool { return parts[0] == "" || slices.Contains(parts, part) }
	if want("creates") {
		if err := journalCreates(ctx, r, n, creates, clients, runs); err != nil {
			return err
		}
	}
	if want("growth") {
		if err := journalGrowth(ctx, r, n, 12, growthRuns); err != nil {
			return err
		}
	}
	if want("restore") {
		return journalRestore(ctx, r, n, records, runs)
	}
	return nil
}

// growthRun is one run of n creates from 0: the creates/s of the first
// and the last tenth, and the total time.
type growthRun struct {
	first, last float64
	total       time.Duration
}

// timedCreates runs n creates from clients goroutines and times the
// first and last tenth of them, in the order they were answered.
func timedCreates(ctx context.Context, n, clients int, create func(i int) error) (growthRun, error) {
	done := make([]time.Time, n)
	var answered atomic.Int64
	start := time.Now()
	err := parallel(ctx, clients, n, func(i int) error {
		if err := create(i); err != nil {
			return err
		}
		done[answered.Add(1)-1] = time.Now()
		return nil
	})
	if err != nil {
		return growthRun{}, err
	}
	w := n / 10
	return growthRun{
		first: float64(w) / done[w-1].Sub(start).Seconds(),
		last:  float64(w) / done[n-1].Sub(done[n-1-w]).Seconds(),
		total: done[n-1].Sub(start),
	}, nil
}

// journalGrowth creates n workspaces from 0 through the daemon's API
// (clients clients over its Unix socket, each create answered once
// durable) and compares the creates/s of the last tenth with the first:
// a commit that costs the same whatever the daemon holds keeps the rate.
// Beside it, bbolt's Batch doing the same n creates from the same clients
// on the same disk: an embedded store whose commit is a B+tree
// transaction, the usual choice for a Go daemon's durable state, so its
// growth and total are what "holds as it grows" is measured against.
func journalGrowth(ctx context.Context, r *Report, n, clients, runs int) error {
	root, err := os.MkdirTemp("", "shipote-bench-growth-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	bin, err := peers.BuildShipote(ctx, root)
	if err != nil {
		return err
	}
	var ours, bolts []growthRun
	for i := range runs {
		sides := []func() error{
			func() error {
				d, err := peers.NewShipoteDaemon(bin, filepath.Join(root, fmt.Sprintf("d%d", i)))
				if err != nil {
					return err
				}
				if err := d.Launch(ctx); err != nil {
					return err
				}
				defer func() {
					// How long the daemon takes to stop its workspaces is
					// not this figure: a slow stop is said, not failed.
					if cerr := d.Close(); cerr != nil {
						fmt.Fprintf(os.Stderr, "shipote-bench: growth: %v\n", cerr)
					}
				}()
				c := d.Client()
				g, err := timedCreates(ctx, n, clients, func(i int) error {
					_, err := c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("g%05d", i)})
					return err
				})
				if err != nil {
					return fmt.Errorf("create %d workspaces through the API: %w", n, err)
				}
				ws, err := c.Workspaces(ctx)
				if err != nil {
					return err
				}
				if len(ws) != n {
					return fmt.Errorf("the daemon holds %d workspaces after %d creates", len(ws), n)
				}
				ours = append(ours, g)
				return nil
			},
			func() error {
				return withTempStore(openBolt, func(s durableStore) error {
					specs := make([][]byte, n)
					ids := make([]string, n)
					for i := range n {
						specs[i] = fmt.Appendf(nil, `{"label":"g%05d"}`, i)
						ids[i] = messages.NewID()
					}
					g, err := timedCreates(ctx, n, clients, func(i int) error { return s.create(ctx, ids[i], specs[i]) })
					if err != nil {
						return err
					}
					if got, err := s.count(ctx); err != nil || got != n {
						return fmt.Errorf("bbolt holds %d entries after %d creates: %v", got, n, err)
					}
					bolts = append(bolts, g)
					return nil
				})
			},
		}
		for j := range sides {
			if err := sides[(i+j)%len(sides)](); err != nil {
				return err
			}
		}
	}
	pick := func(gs []growthRun, f func(growthRun) float64) []float64 {
		out := make([]float64, len(gs))
		for i, g := range gs {
			out[i] = f(g)
		}
		return out
	}
	first := func(g growthRun) float64 { return g.first }
	last := func(g growthRun) float64 { return g.last }
	total := func(g growthRun) float64 { return g.total.Seconds() }
	ratio := func(g growthRun) float64 { return g.last / g.first }
	w := n / 10
	oFirst, _, _ := Median(pick(ours, first))
	oLast, lo, hi := Median(pick(ours, last))
	oTotal, tlo, thi := Median(pick(ours, total))
	oRatio, _, _ := Median(pick(ours, ratio))
	bFirst, _, _ := Median(pick(bolts, first))
	bLast, _, _ := Median(pick(bolts, last))
	bTotal, _, _ := Median(pick(bolts, total))
	bRatio, _, _ := Median(pick(bolts, ratio))
	note := fmt.Sprintf("%d creates from 0 through the daemon's API (Unix socket, default limits backend), %d clients, each answered once durable; median of %d runs, sides alternated; "+
		"in the order answered: first %d %.0f/s, last %d %.0f/s (%.2fx), total %.1f s; bbolt Batch, the same creates from the same clients on the same disk: first %.0f/s, last %.0f/s (%.2fx), total %.1f s",
		n, clients, runs, w, oFirst, w, oLast, oRatio, oTotal, bFirst, bLast, bRatio, bTotal)
	row := Row{Group: "persist", Name: fmt.Sprintf("durable creates/s through the API, last %d of %d from 0, %d clients", w, n, clients), Value: oLast, Unit: "creates/s",
		Baseline: fmt.Sprintf("the first %d of the same run", w), Base: oFirst, HigherIsBetter: true,
		Target: ">= 0.8x", Met: Bool(oLast >= 0.8*oFirst), Note: note}
	total2 := Row{Group: "persist", Name: fmt.Sprintf("%d durable creates through the API from 0, %d clients, total", n, clients), Value: oTotal, Unit: "s",
		Baseline: "bbolt Batch, the same creates", Base: bTotal, Note: note}
	if runs > 1 {
		row.Min, row.Max = lo, hi
		total2.Min, total2.Max = tlo, thi
	}
	r.Add(row)
	r.Add(total2)
	return nil
}

// startWith starts an engine on a state file holding n restorable
// workspaces.
func startWith(n int, cfg shipote.Config) (*shipote.Engine, *persistence.State, func(), error) {
	dir, err := os.MkdirTemp("", "shipote-bench-")
	if err != nil {
		return nil, nil, nil, err
	}
	st, data, err := RestorableState(n)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "state.json"), data, 0o600)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	cfg.Limits, cfg.StatePath = "none", filepath.Join(dir, "state.json")
	eng, err := shipote.Start(context.Background(), shipote.NewActorSystem(nil), cfg)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	return eng, st, func() { eng.Stop(context.Background()); os.RemoveAll(dir) }, nil
}

func journalCreates(ctx context.Context, r *Report, n, creates, clients, runs int) error {
	// One client: each create's latency, answered once its record is
	// fsynced; beside it, what a rewrite of the whole snapshot per create
	// costs on the same disk (json.Marshal + write + fsync of n entries).
	eng, st, stop, err := startWith(n, shipote.Config{})
	if err != nil {
		return err
	}
	// Enough creates to span at least one pass of the stats sampler over
	// every workspace (1 s apart), so that the tail counts the creates
	// that meet it, not only those that come before it.
	var lat []float64
	for i := range max(300, n*3/10) {
		t0 := time.Now()
		if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("one-%d", i)}); err != nil {
			stop()
			return err
		}
		lat = append(lat, ms(time.Since(t0)))
	}
	js := eng.SnapshotStats()
	stop()
	dir, err := os.MkdirTemp("", "shipote-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var plains []float64
	for range 5 {
		t0 := time.Now()
		if _, err := PlainSave(filepath.Join(dir, "plain.json"), st); err != nil {
			return err
		}
		plains = append(plains, ms(time.Since(t0)))
	}
	plain, _, _ := Median(plains)
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	note := fmt.Sprintf("%d sequential creates on an engine holding %d workspaces, each answered once its journal record is fdatasynced (%d appends, %d snapshots meanwhile)",
		len(lat), n, js.JournalAppends, js.Writes)
	r.Add(Row{Group: "persist", Name: fmt.Sprintf("durable create at %d workspaces, 1 client, p50", n), Value: p50, Unit: "ms",
		Baseline: "snapshot rewrite per create (json.Marshal+write+fsync)", Base: plain, Target: "<= 5 ms", Met: Bool(p50 <= 5), Note: note})
	r.Add(Row{Group: "persist", Name: fmt.Sprintf("durable create at %d workspaces, 1 client, p99", n), Value: p99, Unit: "ms",
		Baseline: "snapshot rewrite per create (json.Marshal+write+fsync)", Base: plain, Target: "<= 20 ms", Met: Bool(p99 <= 20), Note: note})

	// 64 clients on top of n workspaces, beside bbolt's Batch holding n
	// entries, on the same disk; sides alternate.
	var ours, bolts []float64
	for i := range runs {
		sides := []func() error{
			func() error {
				eng, _, stop, err := startWith(n, shipote.Config{})
				if err != nil {
					return err
				}
				defer stop()
				v, err := concurrentCreates(ctx, engineStore{eng: eng, base: n, next: new(atomic.Int64)}, creates, clients)
				ours = append(ours, v)
				return err
			},
			func() error {
				return withTempStore(func(dir string) (durableStore, error) { return openBoltWith(dir, n) },
					func(s durableStore) error {
						v, err := concurrentCreates(ctx, s, creates, clients)
						bolts = append(bolts, v)
						return err
					})
			},
		}
		for j := range sides {
			if err := sides[(i+j)%len(sides)](); err != nil {
				return err
			}
		}
	}
	med, lo, hi := Median(ours)
	base, _, _ := Median(bolts)
	row := Row{Group: "persist", Name: fmt.Sprintf("durable creates/s at %d workspaces, %d clients", n, clients), Value: med, Unit: "creates/s",
		Baseline: "bbolt Batch holding as many entries", Base: base, HigherIsBetter: true,
		Target: ">= 5000/s and >= 1x", Met: Bool(med >= 5000 && med >= base),
		Note: fmt.Sprintf("%d creates, median of %d runs, sides alternated; the same clients on the same disk; go.etcd.io/bbolt pre-filled with %d entries, each create a db.Batch call", creates, runs, n)}
	if runs > 1 {
		row.Min, row.Max = lo, hi
	}
	r.Add(row)
	return nil
}

// engineStore creates workspaces on an engine for concurrentCreates; base
// is how many it held before.
type engineStore struct {
	eng  *shipote.Engine
	base int
	next *atomic.Int64
}

func (s engineStore) create(ctx context.Context, _ string, _ []byte) error {
	_, err := s.eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("c%d", s.next.Add(1))})
	return err
}

func (s engineStore) count(ctx context.Context) (int, error) {
	ws, err := s.eng.Workspaces(ctx)
	return len(ws) - s.base, err
}

func (s engineStore) close() error { return nil }

// openBoltWith opens bbolt in dir holding n entries already.
func openBoltWith(dir string, n int) (durableStore, error) {
	s, err := openBolt(dir)
	if err != nil {
		return nil, err
	}
	b := s.(*boltStore)
	err = b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(workspacesBucket)
		for i := range n {
			if err := bk.Put([]byte(messages.NewID()), fmt.Appendf(nil, `{"label":"pre-%d"}`, i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.close()
		return nil, fmt.Errorf("bbolt: %w", err)
	}
	return offsetStore{durableStore: s, base: n}, nil
}

// offsetStore counts only the entries added after the first base.
type offsetStore struct {
	durableStore
	base int
}

func (s offsetStore) count(ctx context.Context) (int, error) {
	n, err := s.durableStore.count(ctx)
	return n - s.base, err
}

// journalRestore times a start (to ready) from a snapshot of n workspaces
// and a journal of records records after it (creates and removes of other
// workspaces, so that n are in effect), beside the start from the snapshot
// alone.
func journalRestore(ctx context.Context, r *Report, n, records, runs int) error {
	dir, err := os.MkdirTemp("", "shipote-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.json")
	_, data, err := RestorableState(n)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	plainPath := filepath.Join(dir, "plain", "state.json")
	if err := os.MkdirAll(filepath.Dir(plainPath), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(plainPath, data, 0o600); err != nil {
		return err
	}
	if err := churnJournal(path, records); err != nil {
		return err
	}
	fi, err := os.Stat(persistence.JournalPath(path))
	if err != nil {
		return err
	}
	var with, without []float64
	for range runs {
		for _, side := range []struct {
			path string
			out  *[]float64
		}{{path, &with}, {plainPath, &without}} {
			t0 := time.Now()
			eng, err := shipote.Start(context.Background(), shipote.NewActorSystem(nil), shipote.Config{Limits: "none", StatePath: side.path})
			if err != nil {
				return err
			}
			*side.out = append(*side.out, ms(time.Since(t0)))
			got := eng.RestoreReport().Workspaces
			if err := eng.Stop(ctx); err != nil {
				return err
			}
			if got != n {
				return fmt.Errorf("restored %d of %d workspaces", got, n)
			}
		}
	}
	row := Row{Group: "persist", Name: fmt.Sprintf("restore %d workspaces + a %d-record journal (start to ready)", n, records), Unit: "ms",
		Baseline: "restore of the snapshot alone", Target: "<= 2000 ms",
		Note: fmt.Sprintf("median of %d runs; the journal (%.1f MiB) creates and removes other workspaces", runs, float64(fi.Size())/(1<<20))}
	row.Value, row.Min, row.Max = Median(with)
	row.Base, _, _ = Median(without)
	row.Met = Bool(row.Value <= 2000)
	if runs == 1 {
		row.Min, row.Max = 0, 0
	}
	r.Add(row)
	return nil
}

// churnJournal appends records records to the journal of the state at
// path: workspaces created and removed again, 1,000 records an append.
func churnJournal(path string, records int) error {
	s, err := persistence.Open(path)
	if err != nil {
		return err
	}
	defer s.Close()
	if _, _, _, err := s.Load(); err != nil {
		return err
	}
	var batch []persistence.Record
	for i := 0; i < records; i += 2 {
		id := messages.NewID()
		next := &persistence.State{Workspaces: []persistence.WorkspaceEntry{{ID: id, Spec: messages.WorkspaceSpec{Label: fmt.Sprintf("churn-%d", i)}}}}
		recs, _, err := persistence.Delta(&persistence.State{}, next)
		if err != nil {
			return err
		}
		batch = append(batch, recs...)
		if i+1 < records {
			del, _, err := persistence.Delta(next, &persistence.State{})
			if err != nil {
				return err
			}
			batch = append(batch, del...)
		}
		if len(batch) >= 1000 || i+2 >= records {
			if _, err := s.Append(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}
