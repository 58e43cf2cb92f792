// apply.go measures `shipote apply` against the daemon: applying a file of
// 200 supervised sleepers until all run, beside the peers' own way of
// starting 200 programs from one file (`pm2 start ecosystem.config.js`,
// `supervisorctl update`) measured in the same run, and a no-op re-apply
// of the same file.

package bench

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shipote/shipote/bench/peers"
	"github.com/shipote/shipote/messages"
)

// Figure names of the "apply" rows.
const (
	FigApply     = "apply 200-command file, until all running"
	FigApplyNoop = "re-apply of the same file (no changes)"
)

// applyFile is the file the suite applies: one workspace with n
// supervised sleepers.
func applyFile(n int) messages.UpFile {
	w := messages.UpWorkspace{WorkspaceSpec: messages.WorkspaceSpec{Label: "bench-apply"}}
	for i := range n {
		w.Commands = append(w.Commands, messages.CommandRef{
			Label:       peers.SleeperName(i),
			Payload:     messages.Payload{Native: &messages.NativePayload{Exec: peers.SleeperArgv[0], Argv: peers.SleeperArgv[1:]}},
			Supervision: messages.Supervision{Restart: &messages.RestartPolicy{On: messages.RestartAlways}},
		})
	}
	return messages.UpFile{Name: "bench", Workspaces: []messages.UpWorkspace{w}}
}

// RunApply adds the "apply" rows: the median time to apply a 200-command
// file until every command runs, against each installed peer's start of
// 200 programs from one file, and the median no-op re-apply.
func RunApply(ctx context.Context, r *Report, quick bool) error {
	n, runs, noops := 200, 5, 20
	if quick {
		runs, noops = 1, 5
	}
	root, err := os.MkdirTemp("", "shipote-apply-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	bin, err := peers.BuildShipote(ctx, root)
	if err != nil {
		return err
	}
	applyMs, noopMs, err := measureApply(ctx, bin, filepath.Join(root, "daemon"), n, runs, noops)
	if err != nil {
		return err
	}
	self, _, _ := Median(applyMs)

	type peer struct {
		name string
		make func(dir string) (peers.Manager, error)
	}
	all := []peer{
		{"pm2 start ecosystem.config.js (200 apps)", func(dir string) (peers.Manager, error) { return peers.NewPM2(dir) }},
		{"supervisorctl update (200 programs)", func(dir string) (peers.Manager, error) { return peers.NewSupervisord(ctx, dir) }},
	}
	var rows []Row
	faster := math.Inf(1)
	for _, p := range all {
		row := Row{Group: "apply", Name: FigApply, Value: self, Unit: "ms", Baseline: p.name}
		row.Min, row.Max = minMax(applyMs)
		base, version, err := measurePeerStart(ctx, p.make, filepath.Join(root, strings.Fields(p.name)[0]), n, runs)
		if err != nil {
			row.Note = err.Error()
		} else {
			row.Base = base
			row.Baseline = version + ": " + p.name
			faster = math.Min(faster, base)
		}
		rows = append(rows, row)
	}
	for _, row := range rows {
		if row.Base > 0 && row.Base == faster {
			row.Target, row.Met = "<= 0.2x the faster peer", Bool(self <= 0.2*faster)
		}
		r.Add(row)
	}
	med, lo, hi := Median(noopMs)
	r.Add(Row{Group: "apply", Name: FigApplyNoop, Value: med, Min: lo, Max: hi, Unit: "ms",
		Baseline: "the first apply of the file", Base: self, Target: "<= 50 ms", Met: Bool(med <= 50),
		Note: fmt.Sprintf("%d commands; median of %d re-applies", n, noops*runs)})
	return nil
}

func minMax(xs []float64) (lo, hi float64) {
	_, lo, hi = Median(xs)
	return lo, hi
}

// measureApply launches the daemon and, runs times, applies the file and
// waits until every sleeper runs, re-applies it noops times, then takes
// it down.
func measureApply(ctx context.Context, bin, dir string, n, runs, noops int) (applyMs, noopMs []float64, err error) {
	d, err := peers.NewShipoteDaemon(bin, dir)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if cerr := d.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := d.Launch(ctx); err != nil {
		return nil, nil, err
	}
	c := d.Client()
	count := func() (int, error) { return peers.CountChildren(d.PID(), peers.SleeperArgv) }
	req := messages.ApplyRequest{File: applyFile(n)}
	for range runs {
		t0 := time.Now()
		res, err := c.Apply(ctx, req)
		if err != nil {
			return nil, nil, fmt.Errorf("apply: %w", err)
		}
		if len(res.Plan.Entries) != n+1 {
			return nil, nil, fmt.Errorf("apply: a plan of %d entries, want %d", len(res.Plan.Entries), n+1)
		}
		if err := waitCount(ctx, count, n, 2*time.Minute); err != nil {
			return nil, nil, fmt.Errorf("apply: %w", err)
		}
		applyMs = append(applyMs, ms(time.Since(t0)))
		for range noops {
			t0 := time.Now()
			res, err := c.Apply(ctx, req)
			if err != nil {
				return nil, nil, fmt.Errorf("re-apply: %w", err)
			}
			noopMs = append(noopMs, ms(time.Since(t0)))
			if !res.Plan.Empty() {
				return nil, nil, fmt.Errorf("re-apply: %d entries, want none", len(res.Plan.Entries))
			}
		}
		if _, err := c.Apply(ctx, messages.ApplyRequest{File: req.File, Down: true}); err != nil {
			return nil, nil, fmt.Errorf("down: %w", err)
		}
		if err := waitCount(ctx, count, 0, 2*time.Minute); err != nil {
			return nil, nil, fmt.Errorf("down: %w", err)
		}
	}
	return applyMs, noopMs, nil
}

// measurePeerStart, runs times, launches a fresh peer daemon, starts n
// sleepers from one file until all run, and closes it (every process
// gone); it returns the median start.
func measurePeerStart(ctx context.Context, mk func(string) (peers.Manager, error), dir string, n, runs int) (float64, string, error) {
	var xs []float64
	var version string
	for i := range runs {
		x, v, err := peerStartOnce(ctx, mk, filepath.Join(dir, fmt.Sprint(i)), n)
		if err != nil {
			return 0, "", err
		}
		xs, version = append(xs, x), v
	}
	med, _, _ := Median(xs)
	return med, version, nil
}

func peerStartOnce(ctx context.Context, mk func(string) (peers.Manager, error), dir string, n int) (_ float64, version string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, "", err
	}
	m, err := mk(dir)
	if err != nil {
		return 0, "", err
	}
	defer func() {
		if cerr := m.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := m.Launch(ctx); err != nil {
		return 0, "", err
	}
	if err := m.PrepareSleepers(ctx, n); err != nil {
		return 0, "", err
	}
	count := func() (int, error) { return peers.CountChildren(m.PID(), peers.SleeperArgv) }
	t0 := time.Now()
	if err := m.StartSleepers(ctx); err != nil {
		return 0, "", err
	}
	if err := waitCount(ctx, count, n, 2*time.Minute); err != nil {
		return 0, "", err
	}
	return ms(time.Since(t0)), m.Name() + " " + m.Version(), nil
}
