// control.go owns the command-control comparison: restarting one running
// command, and stopping one, with the shipote daemon (over its API), pm2
// (`pm2 restart|stop NAME`) and supervisord (`supervisorctl restart|stop
// NAME`), each managing the same few /bin/sleep programs.

package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/shipote/shipote/bench/peers"
)

// Figures of the control comparison.
const (
	FigRestartOne = "restart one running command"
	FigStopOne    = "stop one running command"
)

// ControlParams size a control run.
type ControlParams struct {
	N      int // sleepers each system runs; sleeper 0 is the one acted on
	Rounds int // restarts and stops measured per system (figures are medians)
}

// ControlParamsFor returns the sizes of a full or quick run.
func ControlParamsFor(quick bool) ControlParams {
	if quick {
		return ControlParams{N: 10, Rounds: 5}
	}
	return ControlParams{N: 10, Rounds: 15}
}

// ControlResult is one system's figures.
type ControlResult struct {
	System  string
	Version string
	Missing string // why it was not measured
	Restart Stat   // ms
	Stop    Stat   // ms
}

// controlPoll is how often the children are read while a restart or a
// stop is timed: fine enough for figures of a few ms.
const controlPoll = time.Millisecond

// RunControl measures the shipote daemon, pm2 and supervisord and adds one
// "control" row per figure per peer: Value is the daemon's median, Base
// the peer's. The target (≤ 0.1× the faster peer) sits on the row of the
// faster peer. RunControl fails only when shipote cannot be measured.
func RunControl(ctx context.Context, r *Report, quick bool) error {
	par := ControlParamsFor(quick)
	res, err := MeasureControl(ctx, par)
	if err != nil {
		return err
	}
	for _, row := range ControlRows(par, res) {
		r.Add(row)
	}
	return nil
}

// MeasureControl measures each system in turn; a peer that is missing or
// fails is reported in its Missing. The error is set when the shipote
// daemon could not be measured or ctx ended.
func MeasureControl(ctx context.Context, par ControlParams) ([]ControlResult, error) {
	root, err := os.MkdirTemp("", "shipote-control-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	res := []ControlResult{{System: SystemDaemon}, {System: SystemPM2}, {System: SystemSupervd}}
	bin, err := peers.BuildShipote(ctx, root)
	if err != nil {
		return res, fmt.Errorf("control: shipote daemon not built: %w", err)
	}
	for i := range res {
		dir := filepath.Join(root, fmt.Sprint(i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return res, err
		}
		var m peers.Manager
		switch i {
		case 0:
			m, err = peers.NewShipoteDaemon(bin, dir)
		case 1:
			m, err = peers.NewPM2(dir)
		default:
			m, err = peers.NewSupervisord(ctx, dir)
		}
		if err != nil {
			res[i].Missing = err.Error()
			continue
		}
		restart, stop, err := measureControlOne(ctx, par, m)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res[i].Missing = fmt.Sprintf("%s failed: %v", res[i].System, err)
			continue
		}
		res[i].Version, res[i].Restart, res[i].Stop = m.Version(), statOf(restart), statOf(stop)
	}
	if res[0].Missing != "" {
		return res, fmt.Errorf("control: %s", res[0].Missing)
	}
	return res, nil
}

// measureControlOne launches m with par.N sleepers, then par.Rounds times:
// restarts sleeper 0, timed from the request until its new process runs
// (par.N sleepers, one of them a pid not seen before) and the request has
// returned; stops it, timed until par.N-1 are left and the request has
// returned; starts it again (not timed).
func measureControlOne(ctx context.Context, par ControlParams, m peers.Manager) (restart, stop []float64, err error) {
	defer func() {
		if cerr := m.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	c, ok := m.(peers.Controller)
	if !ok {
		return nil, nil, fmt.Errorf("%s cannot control one process", m.Name())
	}
	if err := m.Launch(ctx); err != nil {
		return nil, nil, fmt.Errorf("launch: %w", err)
	}
	pid := m.PID()
	if err := m.PrepareSleepers(ctx, par.N); err != nil {
		return nil, nil, fmt.Errorf("prepare: %w", err)
	}
	if err := m.StartSleepers(ctx); err != nil {
		return nil, nil, fmt.Errorf("start: %w", err)
	}
	sleepers := func() ([]int, error) {
		kids, err := peers.Children(pid)
		if err != nil {
			return nil, err
		}
		var out []int
		for _, k := range kids {
			if slices.Equal(peers.Cmdline(k), peers.SleeperArgv) {
				out = append(out, k)
			}
		}
		return out, nil
	}
	// waitFor polls the sleepers until ok holds.
	waitFor := func(what string, ok func([]int) bool) error {
		deadline := time.Now().Add(time.Minute)
		for {
			s, err := sleepers()
			if err == nil && ok(s) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: not after 1 minute (%d sleepers, %v)", what, len(s), err)
			}
			if err := sleepCtx(ctx, controlPoll); err != nil {
				return err
			}
		}
	}
	all := func(s []int) bool { return len(s) == par.N }
	if err := waitFor(fmt.Sprintf("%d sleepers running", par.N), all); err != nil {
		return nil, nil, err
	}
	for range par.Rounds {
		before, err := sleepers()
		if err != nil {
			return nil, nil, err
		}
		t0 := time.Now()
		if err := c.RestartOne(ctx, 0); err != nil {
			return nil, nil, fmt.Errorf("restart: %w", err)
		}
		if err := waitFor("the restarted sleeper running", func(s []int) bool {
			return len(s) == par.N && slices.ContainsFunc(s, func(p int) bool { return !slices.Contains(before, p) })
		}); err != nil {
			return nil, nil, err
		}
		restart = append(restart, ms(time.Since(t0)))

		t0 = time.Now()
		if err := c.StopOne(ctx, 0); err != nil {
			return nil, nil, fmt.Errorf("stop: %w", err)
		}
		if err := waitFor("the stopped sleeper gone", func(s []int) bool { return len(s) == par.N-1 }); err != nil {
			return nil, nil, err
		}
		stop = append(stop, ms(time.Since(t0)))

		if err := c.StartOne(ctx, 0); err != nil {
			return nil, nil, fmt.Errorf("start again: %w", err)
		}
		if err := waitFor("the sleeper running again", all); err != nil {
			return nil, nil, err
		}
	}
	return restart, stop, nil
}

// ControlRows turns the results into rows: for each figure and each peer,
// the daemon's median beside the peer's, with the ≤ 0.1× target on the
// faster peer's row.
func ControlRows(par ControlParams, res []ControlResult) []Row {
	self := res[0]
	figs := []struct {
		name string
		get  func(ControlResult) Stat
		how  map[string]string
	}{
		{FigRestartOne, func(c ControlResult) Stat { return c.Restart }, map[string]string{
			SystemPM2:     "`pm2 restart s000`",
			SystemSupervd: "`supervisorctl restart s000` (it returns once the new process has lived startsecs=1 s, its default)",
		}},
		{FigStopOne, func(c ControlResult) Stat { return c.Stop }, map[string]string{
			SystemPM2:     "`pm2 stop s000`",
			SystemSupervd: "`supervisorctl stop s000`",
		}},
	}
	var rows []Row
	for _, f := range figs {
		faster, best := "", 0.0
		for _, p := range res[1:] {
			if p.Missing == "" && f.get(p).N > 0 && (best == 0 || f.get(p).Median < best) {
				faster, best = p.System, f.get(p).Median
			}
		}
		for _, p := range res[1:] {
			st, pst := f.get(self), f.get(p)
			label := p.System
			if p.Version != "" {
				label += " " + p.Version
			}
			row := Row{Group: "control", Name: f.name, Value: st.Median, Unit: "ms", Baseline: label, Base: pst.Median}
			if st.N > 1 {
				row.Min, row.Max = st.Min, st.Max
			}
			var notes []string
			if p.Missing != "" {
				notes = append(notes, p.Missing)
			} else {
				notes = append(notes, fmt.Sprintf("shipote: the API call (answered once the new process runs, or once the old one has ended); %s: %s; "+
					"%d /bin/sleep programs running, sleeper 0 acted on, timed from the request until the process change shows in /proc and the request returned; "+
					"median of %d (peer %s–%s ms)", p.System, f.how[p.System], par.N, par.Rounds, fmtNum(pst.Min), fmtNum(pst.Max)))
			}
			if p.System == faster {
				row.Target = "<= 0.1x"
				row.Met = Bool(st.Median <= 0.1*pst.Median)
				notes = append(notes, "the faster peer")
			}
			row.Note = strings.Join(notes, "; ")
			rows = append(rows, row)
		}
	}
	return rows
}
