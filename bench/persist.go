// persist.go measures persistence through the engine: create-workspace
// throughput with durable acknowledgements under concurrent clients (group
// commit) against one write+fsync per create, bbolt's Batch and SQLite in
// WAL mode (durable.go); a full snapshot built by the
// persistence actor (request-reply to every workspace) and written, against
// encoding/json + write + fsync of the same data; and restore time.

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/persistence"
)

// RunPersist runs the engine-level persistence figures.
func RunPersist(ctx context.Context, r *Report, quick bool) error {
	creates, clients, runs := 1024, 64, 5
	sizes := []int{1000, 10000}
	if quick {
		creates, sizes, runs = 256, []int{1000}, 3
	}
	if quick && smoke {
		creates, sizes, runs = 128, []int{100}, 1
	}
	if err := persistGroupCommit(ctx, r, creates, clients, runs); err != nil {
		return err
	}
	for _, n := range sizes {
		if err := persistSnapshot(ctx, r, n, runs); err != nil {
			return err
		}
	}
	return nil
}

func persistGroupCommit(ctx context.Context, r *Report, creates, clients, runs int) error {
	var grouped, naive, bolts, sqlites, ratios []float64
	for i := range runs {
		var g, n, b, q float64
		sides := []func() error{
			func() (err error) { g, err = groupCommitOnce(ctx, creates, clients); return err },
			func() (err error) { n, err = naiveCreatesOnce(creates); return err },
			func() error {
				return withTempStore(openBolt, func(s durableStore) (err error) {
					b, err = concurrentCreates(ctx, s, creates, clients)
					return err
				})
			},
			func() error {
				return withTempStore(openSQLite, func(s durableStore) (err error) {
					q, err = concurrentCreates(ctx, s, creates, clients)
					return err
				})
			},
		}
		for j := range sides {
			if err := sides[(i+j)%len(sides)](); err != nil { // rotate who goes first
				return err
			}
		}
		grouped, naive, ratios = append(grouped, g), append(naive, n), append(ratios, g/n)
		bolts, sqlites = append(bolts, b), append(sqlites, q)
	}
	med, lo, hi := Median(grouped)
	base, _, _ := Median(naive)
	rmed, rlo, rhi := Median(ratios)
	name := fmt.Sprintf("durable creates/s, %d clients", clients)
	note := fmt.Sprintf("%d creates, median of %d runs, sides rotated", creates, runs)
	row := Row{
		Group: "persist", Name: name, Value: med, Unit: "creates/s",
		Baseline: "one write+fsync per create", Base: base, HigherIsBetter: true,
		Target: ">= 5x", Met: Bool(med >= 5*base),
		Note: fmt.Sprintf("%s; per-run ratios %.2f (%.2f..%.2f)", note, rmed, rlo, rhi),
	}
	if runs > 1 {
		row.Min, row.Max = lo, hi
	}
	r.Add(row)
	peer := func(baseline string, vals []float64, how string) {
		b, _, _ := Median(vals)
		r.Add(Row{Group: "persist", Name: name, Value: med, Min: row.Min, Max: row.Max, Unit: "creates/s",
			Baseline: baseline, Base: b, HigherIsBetter: true,
			Note: fmt.Sprintf("%s; the same %d clients on the same disk; %s", note, clients, how)})
	}
	peer("bbolt Batch", bolts, "go.etcd.io/bbolt, each create a db.Batch call (default batch: 1000 calls or 10 ms), one fsynced transaction per batch")
	peer("SQLite WAL, synchronous=FULL", sqlites, "modernc.org/sqlite, one INSERT per create on one shared connection (SQLite admits one writer), the WAL fsynced at every commit")
	return nil
}

// groupCommitOnce creates workspaces from concurrent clients on a
// persistent engine, each create answered once durable.
func groupCommitOnce(ctx context.Context, creates, clients int) (float64, error) {
	dir, err := os.MkdirTemp("", "shipote-bench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	eng, err := shipote.Start(context.Background(), shipote.NewActorSystem(nil), shipote.Config{Limits: "none", StatePath: filepath.Join(dir, "state.json")})
	if err != nil {
		return 0, err
	}
	defer eng.Stop(context.Background())
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	per := creates / clients
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("c%d-%d", c, i)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(per*clients) / time.Since(start).Seconds(), nil
}

// naiveCreatesOnce is what a store without group commit does: one durable
// write per create, of a document growing the same way.
func naiveCreatesOnce(creates int) (float64, error) {
	dir, err := os.MkdirTemp("", "shipote-bench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	st := &persistence.State{Version: persistence.CurrentVersion}
	path := filepath.Join(dir, "naive.json")
	start := time.Now()
	for i := range creates {
		st.Workspaces = append(st.Workspaces, persistence.WorkspaceEntry{ID: messages.NewID(), Spec: messages.WorkspaceSpec{Label: fmt.Sprintf("n%d", i)}})
		if _, err := PlainSave(path, st); err != nil {
			return 0, err
		}
	}
	return float64(creates) / time.Since(start).Seconds(), nil
}

// RestorableState is SnapshotState(n, 16) with fresh IDs, no TTL, no
// workdir or uid/gid and no live pipelines, so that every entry restores
// on this machine, and its encoding.
func RestorableState(n int) (*persistence.State, []byte, error) {
	st := SnapshotState(n, 16)
	now := time.Now()
	for i := range st.Workspaces {
		st.Workspaces[i].ID = messages.NewIDAt(now)
		st.Workspaces[i].Spec.TTLMs = 0
		st.Workspaces[i].Spec.Permissions.Workdir = ""
		st.Workspaces[i].Spec.Permissions.UID = nil
		st.Workspaces[i].Spec.Permissions.GID = nil
	}
	st.LivePipelines = nil
	data, err := persistence.Encode(st)
	return st, data, err
}

func persistSnapshot(ctx context.Context, r *Report, n, runs int) error {
	dir, err := os.MkdirTemp("", "shipote-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "state.json")
	st, data, err := RestorableState(n)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}

	// Restore: a fresh engine from the file each run, against
	// json.Unmarshal of the same bytes; the last engine stays up for the
	// snapshot figure below.
	var restores, plainLoads []float64
	var eng *shipote.Engine
	for range runs {
		if eng != nil {
			if err := eng.Stop(ctx); err != nil {
				return err
			}
		}
		t0 := time.Now()
		eng, err = shipote.Start(context.Background(), shipote.NewActorSystem(nil), shipote.Config{Limits: "none", StatePath: path})
		if err != nil {
			return err
		}
		restores = append(restores, ms(time.Since(t0)))
		if got := eng.RestoreReport().Workspaces; got != n {
			eng.Stop(context.Background())
			return fmt.Errorf("restored %d of %d workspaces: %v", got, n, eng.RestoreReport().Skipped)
		}
		t0 = time.Now()
		var v persistence.State
		if err := json.Unmarshal(data, &v); err != nil {
			eng.Stop(context.Background())
			return err
		}
		plainLoads = append(plainLoads, ms(time.Since(t0)))
	}
	defer eng.Stop(context.Background())
	restoreRow := Row{
		Group: "persist", Name: fmt.Sprintf("restore %d workspaces (start to ready)", n), Unit: "ms",
		Baseline: "json.Unmarshal of the file", Note: fmt.Sprintf("median of %d runs", runs),
	}
	restoreRow.Value, restoreRow.Min, restoreRow.Max = Median(restores)
	restoreRow.Base, _, _ = Median(plainLoads)
	if runs == 1 {
		restoreRow.Min, restoreRow.Max = 0, 0
	}
	r.Add(restoreRow)

	// A save after a create writes a full snapshot: gathered from every
	// workspace actor, encoded, written, fsynced (the create itself is a
	// journal append; see journal.go).
	var builds, plains []float64
	for i := range 5 {
		if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("extra-%d", i)}); err != nil {
			return err
		}
		t0 := time.Now()
		if _, err := eng.SaveSnapshot(ctx); err != nil {
			return err
		}
		builds = append(builds, ms(time.Since(t0)))
		t0 = time.Now()
		if _, err := PlainSave(filepath.Join(dir, "plain.json"), st); err != nil {
			return err
		}
		plains = append(plains, ms(time.Since(t0)))
	}
	med, lo, hi := Median(builds)
	base, _, _ := Median(plains)
	r.Add(Row{
		Group: "persist", Name: fmt.Sprintf("snapshot build+write, %d workspaces x 16 samples", n), Value: med, Min: lo, Max: hi,
		Unit: "ms", Baseline: "json.Marshal+write+fsync", Base: base, Target: "<= 2x", Met: Bool(med <= 2*base),
		Note: "median of 5 saves, each after a create, answered once the snapshot is durable",
	})
	return nil
}
