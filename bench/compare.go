// compare.go measures shipote against pm2 and supervisord on this machine, in
// the same run: time to start 200 long-running processes, the daemon's RSS
// and idle CPU with them running (every daemon idling side by side over one
// shared window), the restart latency of a crashing process, and the time to
// stop them all; each figure is a median over several runs. The drivers live
// in bench/peers; setup.sh there installs the peers.

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shipote/shipote/bench/peers"
)

// System names in PeerResult.System.
const (
	SystemDaemon   = "shipote daemon"
	SystemEmbedded = "shipote embedded"
	SystemPM2      = "pm2"
	SystemSupervd  = "supervisord"
)

// Figure names of the "peers" rows (Row.Name), also used by WriteCharts.
const (
	FigStart      = "start 200 x sleep, until all running"
	FigRSSIdle    = "daemon RSS, 0 processes"
	FigRSSRunning = "daemon RSS, 200 running"
	FigCPUIdle    = "daemon CPU while idle, 200 running"
	FigRestart    = "restart latency p50, crash loop"
	FigStop       = "stop 200, until all gone"
)

// Stat is a figure's median over the runs, with its spread; N is the number
// of runs that produced it (0 = not measured).
type Stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

func statOf(xs []float64) Stat {
	med, lo, hi := Median(xs)
	return Stat{Median: med, Min: lo, Max: hi, N: len(xs)}
}

// PeerResult is one system's figures: the machine-readable peer table.
type PeerResult struct {
	System  string `json:"system"`
	Version string `json:"version,omitempty"`
	// Missing says why the system was not measured (not installed, failed).
	Missing        string `json:"missing,omitempty"`
	StartMs        Stat   `json:"start_200_ms"`
	RSSIdleMiB     Stat   `json:"rss_idle_mib"`
	RSSRunningMiB  Stat   `json:"rss_200_mib"`
	CPUIdlePercent Stat   `json:"cpu_idle_percent"`
	RestartP50Ms   Stat   `json:"restart_p50_ms"`
	RestartP90Ms   Stat   `json:"restart_p90_ms"`
	StopMs         Stat   `json:"stop_200_ms"`
	Backoff        string `json:"backoff,omitempty"`
	// Errors lists failed runs (the figures are from the others).
	Errors []string `json:"errors,omitempty"`
}

// Label is the system with its version, e.g. "pm2 7.0.4".
func (p PeerResult) Label() string {
	if p.Version == "" {
		return p.System
	}
	return p.System + " " + p.Version
}

// PeerParams size a peer run.
type PeerParams struct {
	N        int           `json:"n"`         // long-running processes per system, 200
	Runs     int           `json:"runs"`      // runs, each measuring every system (figures are medians)
	Settle   time.Duration `json:"settle_ns"` // after the launches, and after the starts, before reading
	Window   time.Duration `json:"window_ns"` // idle window shared by the daemons: CPU, then RSS with N
	Restarts int           `json:"restarts"`  // crash-loop restarts measured
}

// PeerRun is the outcome of MeasurePeers: the machine-readable peer table.
type PeerRun struct {
	Params PeerParams `json:"params"`
	// ProbeFloorMs is the crash probe's own share of a restart (sh and
	// date starting), p50 of a plain os/exec relaunch loop.
	ProbeFloorMs float64 `json:"probe_floor_ms"`
	// Systems are the shipote daemon, the embedded engine, pm2 and
	// supervisord, in that order.
	Systems []PeerResult `json:"systems"`
}

// PeerParamsFor returns the sizes of a full or quick run.
func PeerParamsFor(quick bool) PeerParams {
	if quick {
		return PeerParams{N: 200, Runs: 1, Settle: time.Second, Window: 5 * time.Second, Restarts: 10}
	}
	return PeerParams{N: 200, Runs: 5, Settle: 2 * time.Second, Window: 30 * time.Second, Restarts: 12}
}

// Peers runs the peer comparison. Its zero value is ready to use.
type Peers struct {
	// TableDir, when set, receives peers.json and peers.md: every system's
	// figures, including the embedded engine's.
	TableDir string
	// Params overrides PeerParamsFor(quick) when N > 0.
	Params PeerParams

	last PeerRun
}

// RunPeers measures the shipote daemon, the embedded engine, pm2 and
// supervisord, and adds one "peers" row per figure per peer: Value is the
// shipote daemon's figure, Base the peer's from the same run. A peer that
// is not installed or fails gets rows saying why; RunPeers fails only when
// shipote cannot be measured.
func RunPeers(ctx context.Context, r *Report, quick bool) error {
	return new(Peers).Run(ctx, r, quick)
}

// Last returns the figures of the last Run.
func (p *Peers) Last() PeerRun { return p.last }

// Run is RunPeers, writing the table to TableDir when set.
func (p *Peers) Run(ctx context.Context, r *Report, quick bool) error {
	par := p.Params
	if par.N <= 0 {
		par = PeerParamsFor(quick)
	}
	run, err := MeasurePeers(ctx, par)
	p.last = run
	if err != nil {
		return err
	}
	for _, row := range PeerRows(run) {
		r.Add(row)
	}
	if p.TableDir != "" {
		if err := WritePeerTable(p.TableDir, run); err != nil {
			return err
		}
	}
	return nil
}

// MeasurePeers runs every system par.Runs times. One run launches every
// system at once and measures them phase by phase (see measureRun),
// rotating which goes first in each phase. The error is set only when
// neither shipote system could be measured or ctx ended.
func MeasurePeers(ctx context.Context, par PeerParams) (out PeerRun, err error) {
	out.Params = par
	root, err := os.MkdirTemp("", "shipote-peers-")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(root)
	if out.ProbeFloorMs, err = probeFloor(ctx, par.Restarts); err != nil {
		return out, fmt.Errorf("peers: crash probe: %w", err)
	}

	results := []PeerResult{{System: SystemDaemon}, {System: SystemEmbedded}, {System: SystemPM2}, {System: SystemSupervd}}
	defer func() { out.Systems = results }()
	bin, buildErr := peers.BuildShipote(ctx, root)
	if buildErr != nil {
		results[0].Missing = "shipote daemon not built: " + buildErr.Error()
	}
	if _, _, err := peers.FindPM2(); err != nil {
		results[2].Missing = "pm2 not installed: " + strings.TrimPrefix(err.Error(), peers.ErrNotInstalled.Error()+": ")
	}
	if _, _, _, err := peers.FindSupervisord(ctx); err != nil {
		results[3].Missing = "supervisord not installed: " + strings.TrimPrefix(err.Error(), peers.ErrNotInstalled.Error()+": ")
	}
	newManager := func(i int, dir string) (peers.Manager, error) {
		switch i {
		case 0:
			return peers.NewShipoteDaemon(bin, dir)
		case 1:
			return peers.NewShipoteEngine(), nil
		case 2:
			return peers.NewPM2(dir)
		default:
			return peers.NewSupervisord(ctx, dir)
		}
	}

	samples := make([]peerSamples, len(results))
	for run := range par.Runs {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		var systems []*peerSys
		for j := range results {
			i := (run + j) % len(results)
			if results[i].Missing != "" {
				continue
			}
			dir := filepath.Join(root, fmt.Sprintf("run%d-%d", run, i))
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return out, err
			}
			systems = append(systems, &peerSys{i: i, dir: dir, daemon: i != 1})
		}
		if err := measureRun(ctx, par, systems, newManager); err != nil {
			return out, err
		}
		for _, p := range systems {
			i := p.i
			// A run that measured everything counts even when
			// cleaning up failed; its error is still reported.
			if p.m != nil && (p.err == nil || p.s.p50Ms >= 0) {
				samples[i].add(p.s)
				results[i].Version, results[i].Backoff = p.m.Version(), p.m.Backoff()
			}
			if p.err != nil {
				results[i].Errors = append(results[i].Errors, fmt.Sprintf("run %d: %v", run+1, p.err))
			}
		}
	}
	for i := range results {
		samples[i].into(&results[i])
		if results[i].Missing == "" && results[i].StartMs.N == 0 {
			results[i].Missing = fmt.Sprintf("%s failed: %s", results[i].System, strings.Join(results[i].Errors, "; "))
		}
	}
	if results[0].Missing != "" && results[1].Missing != "" {
		return out, fmt.Errorf("peers: shipote could not be measured: %s; %s", results[0].Missing, results[1].Missing)
	}
	return out, nil
}

// peerSample is one run of one system; a negative figure was not measured.
type peerSample struct {
	startMs, rssIdleMiB, rssRunMiB, cpuPct, p50Ms, p90Ms, stopMs float64
}

type peerSamples struct{ start, rssIdle, rssRun, cpu, p50, p90, stop []float64 }

func (s *peerSamples) add(x peerSample) {
	app := func(xs *[]float64, v float64) {
		if v >= 0 {
			*xs = append(*xs, v)
		}
	}
	app(&s.start, x.startMs)
	app(&s.rssIdle, x.rssIdleMiB)
	app(&s.rssRun, x.rssRunMiB)
	app(&s.cpu, x.cpuPct)
	app(&s.p50, x.p50Ms)
	app(&s.p90, x.p90Ms)
	app(&s.stop, x.stopMs)
}

func (s *peerSamples) into(r *PeerResult) {
	r.StartMs, r.RSSIdleMiB, r.RSSRunningMiB = statOf(s.start), statOf(s.rssIdle), statOf(s.rssRun)
	r.CPUIdlePercent, r.RestartP50Ms, r.RestartP90Ms, r.StopMs = statOf(s.cpu), statOf(s.p50), statOf(s.p90), statOf(s.stop)
}

const mib = 1 << 20

// peerSys is one system during one run of measureRun.
type peerSys struct {
	i      int    // index in PeerRun.Systems
	dir    string // its private directory for this run
	daemon bool   // false for the embedded engine: no RSS or CPU figures
	m      peers.Manager
	pid    int
	s      peerSample
	// err is the system's first failure; it takes no further part in the
	// run, and the others go on.
	err error

	cpu0 time.Duration // CPU time at the start of the idle window
	at0  time.Time     // when they were read
}

func (p *peerSys) count() (int, error) { return peers.CountChildren(p.pid, peers.SleeperArgv) }

// measureRun measures every system of one run, all launched at once, phase
// by phase, each phase taking the systems in the order given:
//
//  1. launch every manager, wait par.Settle, and read each daemon's RSS with
//     no process;
//  2. for each system in turn, start par.N sleepers, timed until they all
//     exist (the other daemons idle meanwhile);
//  3. wait par.Settle, then hold one idle window of par.Window shared by
//     every daemon: each daemon's own utime+stime is read at its start and
//     end, its RSS at the end, and each must still have its par.N sleepers;
//  4. for each system in turn, stop the sleepers, timed until none is left;
//  5. for each system in turn, the crash loop;
//  6. close every manager (always).
//
// A system that fails records the error in its peerSys and skips the later
// phases; the others go on. With daemon false (the embedded engine, whose
// process is this benchmark) RSS and CPU are not read. The error is set only
// when ctx ended.
func measureRun(ctx context.Context, par PeerParams, systems []*peerSys, newManager func(i int, dir string) (peers.Manager, error)) (err error) {
	for _, p := range systems {
		p.s = peerSample{-1, -1, -1, -1, -1, -1, -1}
	}
	defer func() {
		for _, p := range systems {
			if p.m == nil {
				continue
			}
			if cerr := p.m.Close(); cerr != nil && p.err == nil {
				p.err = cerr
			}
		}
	}()
	// each runs f on every system still in the run, in order; a failure
	// takes that system out, unless ctx ended, which ends the run.
	each := func(daemonsOnly bool, f func(p *peerSys) error) error {
		for _, p := range systems {
			if p.err != nil || (daemonsOnly && !p.daemon) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := f(p); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				p.err = err
			}
		}
		return ctx.Err()
	}
	anyDaemon := func() bool {
		for _, p := range systems {
			if p.err == nil && p.daemon {
				return true
			}
		}
		return false
	}

	// 1. Launch, and RSS with no process.
	if err := each(false, func(p *peerSys) error {
		m, err := newManager(p.i, p.dir)
		if err != nil {
			return err
		}
		p.m = m
		if err := m.Launch(ctx); err != nil {
			return fmt.Errorf("launch: %w", err)
		}
		p.pid = m.PID()
		return nil
	}); err != nil {
		return err
	}
	if anyDaemon() {
		if err := sleepCtx(ctx, par.Settle); err != nil {
			return err
		}
		if err := each(true, func(p *peerSys) error {
			rss, err := peers.RSS(p.pid)
			if err != nil {
				return fmt.Errorf("RSS with 0 processes: %w", err)
			}
			p.s.rssIdleMiB = float64(rss) / mib
			return nil
		}); err != nil {
			return err
		}
	}

	// 2. Start N, one system at a time.
	if err := each(false, func(p *peerSys) error {
		if err := p.m.PrepareSleepers(ctx, par.N); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		t0 := time.Now()
		if err := p.m.StartSleepers(ctx); err != nil {
			return fmt.Errorf("start %d: %w", par.N, err)
		}
		if err := waitCount(ctx, p.count, par.N, 2*time.Minute); err != nil {
			return fmt.Errorf("start %d: %w", par.N, err)
		}
		p.s.startMs = ms(time.Since(t0))
		return nil
	}); err != nil {
		return err
	}

	// 3. CPU and RSS with N running and nothing asked of any daemon: one
	// window shared by all of them.
	if anyDaemon() {
		if err := sleepCtx(ctx, par.Settle); err != nil {
			return err
		}
		if err := each(true, func(p *peerSys) error {
			t, err := peers.CPUTime(p.pid)
			if err != nil {
				return fmt.Errorf("CPU time at the idle window's start: %w", err)
			}
			p.cpu0, p.at0 = t, time.Now()
			return nil
		}); err != nil {
			return err
		}
		if anyDaemon() {
			if err := sleepCtx(ctx, par.Window); err != nil {
				return err
			}
		}
		if err := each(true, func(p *peerSys) error {
			t, err := peers.CPUTime(p.pid)
			if err != nil {
				return fmt.Errorf("CPU time at the idle window's end: %w", err)
			}
			cpu := (t - p.cpu0).Seconds() / time.Since(p.at0).Seconds() * 100
			rss, err := peers.RSS(p.pid)
			if err != nil {
				return fmt.Errorf("RSS with %d processes: %w", par.N, err)
			}
			if n, err := p.count(); err != nil || n != par.N {
				return fmt.Errorf("%d of %d processes running after the idle window (%v)", n, par.N, err)
			}
			p.s.cpuPct, p.s.rssRunMiB = cpu, float64(rss)/mib
			return nil
		}); err != nil {
			return err
		}
	}

	// 4. Stop N, one system at a time.
	if err := each(false, func(p *peerSys) error {
		t0 := time.Now()
		if err := p.m.StopSleepers(ctx); err != nil {
			return fmt.Errorf("stop: %w", err)
		}
		if err := waitCount(ctx, p.count, 0, 2*time.Minute); err != nil {
			return fmt.Errorf("stop: %w", err)
		}
		p.s.stopMs = ms(time.Since(t0))
		return nil
	}); err != nil {
		return err
	}

	// 5. Crash loop, one system at a time.
	return each(false, func(p *peerSys) error {
		file := filepath.Join(p.dir, "crash.log")
		if err := p.m.PrepareCrasher(ctx, file, par.Restarts); err != nil {
			return fmt.Errorf("crash probe: %w", err)
		}
		if err := p.m.StartCrasher(ctx); err != nil {
			return fmt.Errorf("crash probe: %w", err)
		}
		gaps, werr := waitRestarts(ctx, file, par.Restarts, time.Duration(par.Restarts)*3*time.Second+30*time.Second)
		if err := p.m.StopCrasher(ctx); err != nil && werr == nil {
			werr = err
		}
		if werr != nil {
			return fmt.Errorf("crash probe: %w", werr)
		}
		p.s.p50Ms, p.s.p90Ms = pct(gaps, 50), pct(gaps, 90)
		return nil
	})
}

// waitCount polls count every 20 ms until it returns want.
func waitCount(ctx context.Context, count func() (int, error), want int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		n, err := count()
		if err == nil && n == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d processes after %v, want %d (%v)", n, limit, want, err)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// waitRestarts polls the probe's file until it holds n restarts and returns
// the first n exit -> next start gaps.
func waitRestarts(ctx context.Context, file string, n int, limit time.Duration) ([]time.Duration, error) {
	deadline := time.Now().Add(limit)
	for {
		_, gaps, err := peers.ReadCrashLog(file)
		if err == nil && len(gaps) >= n {
			return gaps[:n], nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d restarts after %v, want %d", len(gaps), limit, n)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// probeFloor runs the crash probe in a plain os/exec relaunch loop: the
// part of every peer's figure that is the probe itself (sh and date
// starting), in ms at p50.
func probeFloor(ctx context.Context, n int) (float64, error) {
	f, err := os.CreateTemp("", "shipote-probe-")
	if err != nil {
		return 0, err
	}
	f.Close()
	defer os.Remove(f.Name())
	_ = os.Truncate(f.Name(), 0)
	for range n + 1 {
		if err := exec.CommandContext(ctx, "/bin/sh", "-c", peers.CrashScript(f.Name())).Run(); err == nil {
			return 0, errors.New("crash probe exited 0")
		} else if ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
	_, gaps, err := peers.ReadCrashLog(f.Name())
	if err != nil {
		return 0, err
	}
	return pct(gaps, 50), nil
}

// pct returns the p-th percentile of d in ms (nearest rank).
func pct(d []time.Duration, p int) float64 {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	return ms(s[max(0, min(len(s)-1, i-1))])
}

// sleepCtx waits d, or until ctx ends.
var sleepCtx = peers.SleepCtx

// peerFig describes one figure of the comparison.
type peerFig struct {
	name, unit string
	get        func(PeerResult) Stat
	daemonOnly bool // not measured for the embedded engine
	note       func(run PeerRun, self, peer PeerResult) string
}

func peerFigs() []peerFig {
	return []peerFig{
		{name: FigStart, unit: "ms", get: func(p PeerResult) Stat { return p.StartMs },
			note: func(run PeerRun, _, peer PeerResult) string {
				s := "shipote: a workspace and 200 Exec calls over the API, each answered once the process started; "
				switch peer.System {
				case SystemPM2:
					s += "pm2: `pm2 start` of a 200-app ecosystem file (warm daemon)"
				case SystemSupervd:
					s += "supervisord: `supervisorctl update` with 200 program files (warm daemon; it reports RUNNING only after startsecs=1)"
				}
				return s + "; until 200 /bin/sleep children exist and the command returned"
			}},
		{name: FigRSSIdle, unit: "MiB", get: func(p PeerResult) Stat { return p.RSSIdleMiB }, daemonOnly: true,
			note: func(run PeerRun, _, _ PeerResult) string {
				return fmt.Sprintf("VmRSS of the daemon pid, read %v after every daemon launched, before any process starts", run.Params.Settle)
			}},
		{name: FigRSSRunning, unit: "MiB", get: func(p PeerResult) Stat { return p.RSSRunningMiB }, daemonOnly: true,
			note: func(run PeerRun, _, peer PeerResult) string {
				s := fmt.Sprintf("VmRSS of the daemon pid at the end of one %v idle window shared by the daemons idling side by side, each with its %d processes",
					run.Params.Window, run.Params.N)
				if peer.System == SystemPM2 {
					s += "; pm2's God daemon moves with V8 GC"
				}
				return s
			}},
		{name: FigCPUIdle, unit: "%", get: func(p PeerResult) Stat { return p.CPUIdlePercent }, daemonOnly: true,
			note: func(run PeerRun, _, peer PeerResult) string {
				s := fmt.Sprintf("%% of one core: each daemon's own time on a CPU (its threads' /proc schedstat, in ns) over one %v window shared by the daemons idling side by side, each with its %d processes; shipote samples stats every 1 s",
					run.Params.Window, run.Params.N)
				switch peer.System {
				case SystemPM2:
					s += "; pm2's worker runs every 30 s"
				case SystemSupervd:
					s += "; supervisord wakes every 1 s"
				}
				return s
			}},
		{name: FigRestart, unit: "ms", get: func(p PeerResult) Stat { return p.RestartP50Ms },
			note: func(run PeerRun, self, peer PeerResult) string {
				return fmt.Sprintf("exit -> next start of `sh -c 'date; date; exit 1'`, p50 of %d restarts (p90: shipote %.1f, peer %.1f ms); "+
					"the probe's own share (os/exec relaunch loop) is %.1f ms; %s; %s",
					run.Params.Restarts, self.RestartP90Ms.Median, peer.RestartP90Ms.Median, run.ProbeFloorMs, self.Backoff, peer.Backoff)
			}},
		{name: FigStop, unit: "ms", get: func(p PeerResult) Stat { return p.StopMs },
			note: func(_ PeerRun, _, peer PeerResult) string {
				switch peer.System {
				case SystemPM2:
					return "shipote: remove the workspace; pm2: `pm2 delete all`; until no /bin/sleep child is left"
				case SystemSupervd:
					return "shipote: remove the workspace; supervisord: `supervisorctl stop all`; until no /bin/sleep child is left"
				}
				return ""
			}},
	}
}

// PeerRows turns the results into report rows: for each figure and each
// peer, Value is the shipote daemon's figure (the embedded engine's when
// the daemon could not be measured) and Base the peer's.
func PeerRows(run PeerRun) []Row {
	res, par := run.Systems, run.Params
	find := func(sys string) PeerResult {
		for _, r := range res {
			if r.System == sys {
				return r
			}
		}
		return PeerResult{System: sys, Missing: sys + " not measured"}
	}
	daemon, emb := find(SystemDaemon), find(SystemEmbedded)
	var rows []Row
	for _, f := range peerFigs() {
		self, selfNote := daemon, ""
		if daemon.Missing != "" || f.get(daemon).N == 0 {
			if f.daemonOnly {
				selfNote = "no shipote figure: " + daemon.Missing
			} else {
				self, selfNote = emb, "embedded engine ("+daemon.Missing+")"
			}
		} else if !f.daemonOnly && f.get(emb).N > 0 {
			selfNote = fmt.Sprintf("embedded engine %.3f %s", f.get(emb).Median, f.unit)
		}
		for _, sys := range []string{SystemPM2, SystemSupervd} {
			peer := find(sys)
			st := f.get(self)
			row := Row{Group: "peers", Name: f.name, Value: st.Median, Unit: f.unit,
				Baseline: peer.Label(), Base: f.get(peer).Median}
			if st.N > 1 {
				row.Min, row.Max = st.Min, st.Max
			}
			var notes []string
			if peer.Missing != "" {
				notes = append(notes, peer.Missing)
			} else {
				notes = append(notes, f.note(run, self, peer))
			}
			if selfNote != "" {
				notes = append(notes, selfNote)
			}
			if len(peer.Errors) > 0 && peer.Missing == "" {
				notes = append(notes, "peer failures: "+strings.Join(peer.Errors, "; "))
			}
			if len(self.Errors) > 0 {
				notes = append(notes, "shipote failures: "+strings.Join(self.Errors, "; "))
			}
			if par.Runs > 1 {
				notes = append(notes, fmt.Sprintf("median of %d runs", par.Runs))
			}
			row.Note = strings.Join(notes, "; ")
			rows = append(rows, row)
		}
	}
	return rows
}

// WritePeerTable writes dir/peers.json (the PeerRun) and dir/peers.md (one
// column per system).
func WritePeerTable(dir string, run PeerRun) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(run, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "peers.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "peers.md"))
	if err != nil {
		return err
	}
	if err := FormatPeerTable(f, run); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// FormatPeerTable writes the results as a Markdown table: one row per
// figure, one column per system, "median (min–max)".
func FormatPeerTable(w io.Writer, run PeerRun) error {
	res, par := run.Systems, run.Params
	var b strings.Builder
	fmt.Fprintf(&b, "%d x `%s`, median of %d run(s) (min–max); idle CPU and RSS with %d running over one %v window shared by the daemons idling side by side.\n\n",
		par.N, strings.Join(peers.SleeperArgv, " "), par.Runs, par.N, par.Window)
	b.WriteString("| figure |")
	for _, r := range res {
		fmt.Fprintf(&b, " %s |", r.Label())
	}
	b.WriteString("\n|---|")
	for range res {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, f := range append(peerFigs(), peerFig{name: "restart latency p90, crash loop", unit: "ms",
		get: func(p PeerResult) Stat { return p.RestartP90Ms }}) {
		fmt.Fprintf(&b, "| %s (%s) |", f.name, f.unit)
		for _, r := range res {
			st := f.get(r)
			switch {
			case r.Missing != "":
				b.WriteString(" – |")
			case st.N == 0:
				b.WriteString(" n/a |")
			case st.N == 1:
				fmt.Fprintf(&b, " %s |", fmtNum(st.Median))
			default:
				fmt.Fprintf(&b, " %s (%s–%s) |", fmtNum(st.Median), fmtNum(st.Min), fmtNum(st.Max))
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nRestart latency includes the probe's own %.1f ms (sh and date starting; p50 of a plain os/exec relaunch loop).\n\n", run.ProbeFloorMs)
	seen := map[string]bool{}
	for _, r := range res {
		switch {
		case r.Missing != "":
			fmt.Fprintf(&b, "- %s: %s\n", r.System, r.Missing)
		case r.Backoff != "" && !seen[r.Backoff]:
			seen[r.Backoff] = true
			fmt.Fprintf(&b, "- %s\n", r.Backoff)
		}
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "- %s failure: %s\n", r.System, e)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fmtNum prints a figure with three significant digits, without exponents.
func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
