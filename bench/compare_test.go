package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/bench/peers"
	"github.com/shipote/shipote/messages"
)

func st(v float64) Stat { return Stat{Median: v, Min: v, Max: v, N: 1} }

func syntheticRun() PeerRun {
	return PeerRun{
		Params:       PeerParams{N: 200, Runs: 1, Settle: time.Second, Window: 5 * time.Second, Restarts: 10},
		ProbeFloorMs: 1.2,
		Systems: []PeerResult{
			{System: SystemDaemon, Version: "0.1.0", StartMs: st(800), RSSIdleMiB: st(12), RSSRunningMiB: st(20),
				CPUIdlePercent: st(0.2), RestartP50Ms: st(3), RestartP90Ms: st(4), StopMs: st(150), Backoff: "shipote backoff"},
			{System: SystemEmbedded, Version: "0.1.0", StartMs: st(700), RestartP50Ms: st(2.5), RestartP90Ms: st(3), StopMs: st(120)},
			{System: SystemPM2, Missing: "pm2 not installed: no pm2 on PATH"},
			{System: SystemSupervd, Version: "4.2.5", StartMs: st(2500), RSSIdleMiB: st(25), RSSRunningMiB: st(30),
				CPUIdlePercent: st(0.2), RestartP50Ms: st(1018), RestartP90Ms: st(2019), StopMs: st(358), Backoff: "sv backoff"},
		},
	}
}

func TestPeerRows(t *testing.T) {
	rows := PeerRows(syntheticRun())
	if len(rows) != 12 {
		t.Fatalf("%d rows, want 12", len(rows))
	}
	byKey := map[string]Row{}
	for _, r := range rows {
		if r.Group != "peers" {
			t.Errorf("group %q", r.Group)
		}
		byKey[r.Name+"|"+r.Baseline] = r
	}
	sv := byKey[FigStart+"|supervisord 4.2.5"]
	if sv.Value != 800 || sv.Base != 2500 || sv.Unit != "ms" || !strings.Contains(sv.Note, "embedded engine 700") {
		t.Errorf("start vs supervisord: %+v", sv)
	}
	pm := byKey[FigStart+"|pm2"]
	if pm.Value != 800 || pm.Base != 0 || !strings.Contains(pm.Note, "pm2 not installed: no pm2 on PATH") {
		t.Errorf("start vs missing pm2: %+v", pm)
	}
	rs := byKey[FigRestart+"|supervisord 4.2.5"]
	for _, want := range []string{"shipote backoff", "sv backoff", "1.2 ms", "p90: shipote 4.0, peer 2019.0"} {
		if !strings.Contains(rs.Note, want) {
			t.Errorf("restart note %q lacks %q", rs.Note, want)
		}
	}
	if r := byKey[FigRSSRunning+"|supervisord 4.2.5"]; r.Value != 20 || r.Base != 30 || strings.Contains(r.Note, "embedded") {
		t.Errorf("rss: %+v", r)
	}
}

func TestPeerRowsWithoutDaemon(t *testing.T) {
	run := syntheticRun()
	run.Systems[0] = PeerResult{System: SystemDaemon, Missing: "shipote daemon not built: boom"}
	rows := PeerRows(run)
	if len(rows) != 12 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		switch r.Name {
		case FigStart:
			if r.Value != 700 || !strings.Contains(r.Note, "embedded engine (shipote daemon not built: boom)") {
				t.Errorf("start falls back to the embedded engine: %+v", r)
			}
		case FigRSSRunning:
			if r.Value != 0 || !strings.Contains(r.Note, "no shipote figure") {
				t.Errorf("rss without a daemon: %+v", r)
			}
		}
	}
}

func TestWritePeerTable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	run := syntheticRun()
	run.Systems[3].Errors = []string{"run 2: timeout"}
	if err := WritePeerTable(dir, run); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "peers.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back PeerRun
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Systems) != 4 || back.Systems[3].RestartP50Ms.Median != 1018 || back.Params.Window != 5*time.Second {
		t.Fatalf("json round trip: %+v", back)
	}
	md, err := os.ReadFile(filepath.Join(dir, "peers.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| figure | shipote daemon 0.1.0 | shipote embedded 0.1.0 | pm2 | supervisord 4.2.5 |",
		"| restart latency p50, crash loop (ms) | 3.00 | 2.50 | – | 1018 |",
		"| daemon RSS, 200 running (MiB) | 20.0 | n/a | – | 30.0 |",
		"- pm2: pm2 not installed",
		"- supervisord failure: run 2: timeout",
	} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("peers.md lacks %q:\n%s", want, md)
		}
	}
}

func TestPct(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		var d []time.Duration
		for _, x := range xs {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		d    []time.Duration
		p    int
		want float64
	}{
		{nil, 50, 0},
		{ms(5), 50, 5},
		{ms(5), 90, 5},
		{ms(3, 1, 2), 50, 2},
		{ms(4, 3, 2, 1), 50, 2},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 100, 10},
	}
	for _, tt := range tests {
		if got := pct(tt.d, tt.p); got != tt.want {
			t.Errorf("pct(%v, %d) = %v, want %v", tt.d, tt.p, got, tt.want)
		}
	}
}

func TestFmtNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.0667: "0.0667", 4.185: "4.18", 47.58: "47.6", 1235.6: "1236", -3: "-3.00"} {
		if got := fmtNum(v); got != want {
			t.Errorf("fmtNum(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestStatOf(t *testing.T) {
	if s := statOf(nil); s != (Stat{}) {
		t.Errorf("statOf(nil) = %+v", s)
	}
	if s := statOf([]float64{3, 1, 2}); s != (Stat{Median: 2, Min: 1, Max: 3, N: 3}) {
		t.Errorf("statOf = %+v", s)
	}
}

// sleepersAnywhere counts processes running peers.SleeperArgv on the
// machine.
func sleepersAnywhere() int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	n := 0
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && string(b) == strings.Join(peers.SleeperArgv, "\x00")+"\x00" {
			n++
		}
	}
	return n
}

// TestRunPeersQuick runs the peer comparison in its quick form, and under
// -short (make test) on 20 processes with short windows: every figure and
// every row still comes out.
func TestRunPeersQuick(t *testing.T) {
	before := sleepersAnywhere()
	r := NewReport(nil)
	p := &Peers{TableDir: t.TempDir()}
	if testing.Short() {
		p.Params = PeerParams{N: 20, Runs: 1, Settle: 200 * time.Millisecond, Window: time.Second, Restarts: 3}
	}
	if err := p.Run(context.Background(), r, true); err != nil {
		t.Fatal(err)
	}
	rows := r.Rows()
	if len(rows) != 12 {
		t.Fatalf("%d rows, want 12", len(rows))
	}
	for _, row := range rows {
		t.Log(FormatRow(row))
		if row.Value <= 0 && row.Name != FigCPUIdle {
			t.Errorf("no shipote figure: %+v", row)
		}
		if row.Base <= 0 && row.Name != FigCPUIdle && !strings.Contains(row.Note, "not installed") {
			t.Errorf("no baseline and no reason: %+v", row)
		}
	}
	for _, s := range p.Last().Systems {
		t.Logf("%s: missing %q errors %q", s.Label(), s.Missing, s.Errors)
		if len(s.Errors) > 0 {
			t.Errorf("%s failed: %v", s.System, s.Errors)
		}
	}
	paths, err := WriteCharts(rows, t.TempDir())
	if err != nil || len(paths) != 1 {
		t.Fatalf("charts %v %v", paths, err)
	}
	// Every process the run started is gone (the reaper may lag).
	deadline := time.Now().Add(30 * time.Second)
	for sleepersAnywhere() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d sleepers left behind", sleepersAnywhere()-before)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// benchEngine starts an embedded engine with the default config.
func benchEngine(b *testing.B) *shipote.Engine {
	eng, err := shipote.Start(context.Background(), shipote.NewActorSystem(nil), shipote.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = eng.Stop(context.Background()) })
	return eng
}

func waitChildren(b *testing.B, want int) {
	deadline := time.Now().Add(time.Minute)
	for {
		n, err := peers.CountChildren(os.Getpid(), peers.SleeperArgv)
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d sleepers, want %d (%v)", n, want, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func start200(b *testing.B, eng *shipote.Engine, i int) string {
	ctx := context.Background()
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("b%d", i)})
	if err != nil {
		b.Fatal(err)
	}
	ref := messages.CommandRef{
		Payload:     messages.Payload{Native: &messages.NativePayload{Exec: peers.SleeperArgv[0], Argv: peers.SleeperArgv[1:]}},
		Supervision: messages.Supervision{Restart: &messages.RestartPolicy{On: messages.RestartAlways}},
	}
	for j := range 200 {
		ref.Label = fmt.Sprintf("s%03d", j)
		if _, err := eng.Exec(ctx, ws.ID, ref); err != nil {
			b.Fatal(err)
		}
	}
	waitChildren(b, 200)
	return ws.ID
}

// BenchmarkStart200 times a workspace and 200 supervised sleepers through the
// embedding API, until all 200 run.
func BenchmarkStart200(b *testing.B) {
	eng := benchEngine(b)
	for i := 0; b.Loop(); i++ {
		ws := start200(b, eng, i)
		b.StopTimer()
		if _, err := eng.RemoveWorkspace(context.Background(), ws, 0); err != nil {
			b.Fatal(err)
		}
		waitChildren(b, 0)
		b.StartTimer()
	}
}

// BenchmarkStop200 times removing a workspace of 200 sleepers until none is
// left.
func BenchmarkStop200(b *testing.B) {
	eng := benchEngine(b)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		ws := start200(b, eng, i)
		b.StartTimer()
		if _, err := eng.RemoveWorkspace(context.Background(), ws, 0); err != nil {
			b.Fatal(err)
		}
		waitChildren(b, 0)
	}
}

// BenchmarkCrashLoopRestart runs the peer benchmark's crash probe under the
// embedded engine with the minimum backoff; one op is one restart, and
// p50-ms is the exit -> next start gap.
func BenchmarkCrashLoopRestart(b *testing.B) {
	eng := benchEngine(b)
	ctx := context.Background()
	file := filepath.Join(b.TempDir(), "crash")
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "crash"})
	if err != nil {
		b.Fatal(err)
	}
	ref := messages.CommandRef{
		Label:   "crash",
		Payload: messages.Payload{Native: &messages.NativePayload{Exec: "/bin/sh", Argv: []string{"-c", peers.CrashScript(file)}}},
		Supervision: messages.Supervision{Restart: &messages.RestartPolicy{
			On: messages.RestartAlways, BackoffMs: 1, MaxBackoffMs: 1, Max: int64(b.N) + 1,
		}},
	}
	b.ResetTimer()
	cmd, err := eng.Exec(ctx, ws.ID, ref)
	if err != nil {
		b.Fatal(err)
	}
	gaps, err := waitRestarts(ctx, file, b.N, time.Duration(b.N)*time.Second+time.Minute)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	// Removed once it gave up: never while the engine forks into it.
	for {
		info, err := eng.Command(ctx, ws.ID, cmd.ID)
		if err != nil {
			b.Fatal(err)
		}
		if info.GaveUp {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := eng.RemoveWorkspace(ctx, ws.ID, 0); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(pct(gaps, 50), "p50-ms")
}

var errFake = errors.New("fake failure")

// fakeManager is a peers.Manager whose daemon is a real /bin/sh that starts
// and stops real sleepers on request (read from its stdin); its crash loop
// relaunches the real probe. failAt names the step that fails.
type fakeManager struct {
	name, failAt string
	log          *[]string
	cmd          *exec.Cmd
	in           io.WriteCloser
	n, restarts  int
	file         string
	crashDone    chan struct{}
}

const fakeDaemon = `pids=
while read c n; do
	case $c in
	start) i=0; while [ $i -lt $n ]; do /bin/sleep 100000 & pids="$pids $!"; i=$((i+1)); done ;;
	stop) kill $pids; wait; pids= ;;
	esac
done
if [ -n "$pids" ]; then kill $pids; fi
wait`

func (f *fakeManager) step(s string) error {
	*f.log = append(*f.log, f.name+":"+s)
	if f.failAt == s {
		return fmt.Errorf("%s: %w", s, errFake)
	}
	return nil
}

func (f *fakeManager) Name() string    { return f.name }
func (f *fakeManager) Version() string { return "1.0" }
func (f *fakeManager) Backoff() string { return f.name + " backoff" }
func (f *fakeManager) PID() int        { return f.cmd.Process.Pid }

func (f *fakeManager) Launch(context.Context) error {
	if err := f.step("Launch"); err != nil {
		return err
	}
	f.cmd = exec.Command("/bin/sh", "-c", fakeDaemon)
	in, err := f.cmd.StdinPipe()
	if err != nil {
		return err
	}
	f.in = in
	return f.cmd.Start()
}

func (f *fakeManager) PrepareSleepers(_ context.Context, n int) error {
	f.n = n
	return f.step("PrepareSleepers")
}

func (f *fakeManager) StartSleepers(context.Context) error {
	if err := f.step("StartSleepers"); err != nil {
		return err
	}
	_, err := fmt.Fprintf(f.in, "start %d\n", f.n)
	return err
}

func (f *fakeManager) StopSleepers(context.Context) error {
	if err := f.step("StopSleepers"); err != nil {
		return err
	}
	_, err := fmt.Fprintf(f.in, "stop\n")
	return err
}

func (f *fakeManager) PrepareCrasher(_ context.Context, file string, restarts int) error {
	f.file, f.restarts = file, restarts
	return f.step("PrepareCrasher")
}

func (f *fakeManager) StartCrasher(context.Context) error {
	if err := f.step("StartCrasher"); err != nil {
		return err
	}
	f.crashDone = make(chan struct{})
	go func() {
		defer close(f.crashDone)
		for range f.restarts + 1 {
			_ = exec.Command("/bin/sh", "-c", peers.CrashScript(f.file)).Run()
		}
	}()
	return nil
}

func (f *fakeManager) StopCrasher(context.Context) error {
	if err := f.step("StopCrasher"); err != nil {
		return err
	}
	<-f.crashDone
	return nil
}

func (f *fakeManager) Close() error {
	serr := f.step("Close")
	if f.crashDone != nil {
		<-f.crashDone
	}
	if f.cmd == nil || f.cmd.Process == nil {
		return serr
	}
	f.in.Close()
	return errors.Join(serr, f.cmd.Wait())
}

// fakeSystems returns one peerSys per failAt ("" = never fails), and the
// managers newManager hands out for them.
func fakeSystems(t *testing.T, log *[]string, failAt ...string) ([]*peerSys, []*fakeManager, func(int, string) (peers.Manager, error)) {
	var systems []*peerSys
	var fakes []*fakeManager
	for i, f := range failAt {
		systems = append(systems, &peerSys{i: i, dir: t.TempDir(), daemon: true})
		fakes = append(fakes, &fakeManager{name: fmt.Sprintf("m%d", i), failAt: f, log: log})
	}
	return systems, fakes, func(i int, _ string) (peers.Manager, error) { return fakes[i], nil }
}

// waitNoFakeSleepers checks that every fake daemon was waited for and left
// no sleeper.
func waitNoFakeSleepers(t *testing.T, fakes []*fakeManager) {
	t.Helper()
	for _, f := range fakes {
		if f.cmd == nil || f.cmd.Process == nil {
			continue
		}
		if f.cmd.ProcessState == nil {
			t.Errorf("%s: daemon not waited for", f.name)
		}
		if n, _ := peers.CountChildren(f.cmd.Process.Pid, peers.SleeperArgv); n != 0 {
			t.Errorf("%s: %d sleepers left", f.name, n)
		}
	}
}

// TestPeerMeasureRun runs the phases of one run against real fake daemons:
// a failing system is taken out and the others are measured, every manager
// is closed, and a run whose only failure is Close still counts.
func TestPeerMeasureRun(t *testing.T) {
	var log []string
	systems, fakes, newManager := fakeSystems(t, &log, "", "StartSleepers", "Close", "Launch")
	par := PeerParams{N: 5, Runs: 1, Settle: 10 * time.Millisecond, Window: 300 * time.Millisecond, Restarts: 3}
	if err := measureRun(context.Background(), par, systems, newManager); err != nil {
		t.Fatal(err)
	}
	waitNoFakeSleepers(t, fakes)

	ok, startFail, closeFail, launchFail := systems[0], systems[1], systems[2], systems[3]
	for _, p := range []*peerSys{ok, closeFail} {
		s := p.s
		for name, v := range map[string]float64{"start": s.startMs, "rssIdle": s.rssIdleMiB, "rssRun": s.rssRunMiB,
			"cpu": s.cpuPct, "p50": s.p50Ms, "p90": s.p90Ms, "stop": s.stopMs} {
			if v < 0 || (v == 0 && name != "cpu") {
				t.Errorf("system %d: %s = %v", p.i, name, v)
			}
		}
	}
	if ok.err != nil {
		t.Errorf("ok system: %v", ok.err)
	}
	if !errors.Is(closeFail.err, errFake) || !strings.Contains(closeFail.err.Error(), "Close") {
		t.Errorf("close failure: %v", closeFail.err)
	}
	if !errors.Is(startFail.err, errFake) || !strings.HasPrefix(startFail.err.Error(), "start 5: ") {
		t.Errorf("start failure: %v", startFail.err)
	}
	if s := startFail.s; s.rssIdleMiB <= 0 || s.startMs >= 0 || s.cpuPct >= 0 || s.p50Ms >= 0 {
		t.Errorf("start failure sample: %+v", s)
	}
	if !errors.Is(launchFail.err, errFake) || !strings.HasPrefix(launchFail.err.Error(), "launch: ") {
		t.Errorf("launch failure: %v", launchFail.err)
	}

	// Phase by phase: every launch, then every start, ..., then every close.
	phase := map[string]int{"Launch": 1, "PrepareSleepers": 2, "StartSleepers": 2, "StopSleepers": 3,
		"PrepareCrasher": 4, "StartCrasher": 4, "StopCrasher": 4, "Close": 5}
	last := 0
	for _, e := range log {
		ph := phase[e[strings.Index(e, ":")+1:]]
		if ph < last {
			t.Errorf("%s out of phase order: %q", e, log)
		}
		last = ph
	}
	for _, want := range []string{"m0:Close", "m1:Close", "m2:Close", "m3:Close", "m0:StopCrasher", "m2:StopCrasher"} {
		if !slices.Contains(log, want) {
			t.Errorf("no %s: %q", want, log)
		}
	}
	for _, never := range []string{"m1:StopSleepers", "m3:PrepareSleepers"} {
		if slices.Contains(log, never) {
			t.Errorf("%s after its system failed: %q", never, log)
		}
	}
}

// TestPeerMeasureRunCancel ends ctx inside the shared idle window: the run
// returns at once with ctx's error and closes every manager.
func TestPeerMeasureRunCancel(t *testing.T) {
	var log []string
	systems, fakes, newManager := fakeSystems(t, &log, "", "")
	par := PeerParams{N: 5, Runs: 1, Settle: 10 * time.Millisecond, Window: time.Minute, Restarts: 3}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	t0 := time.Now()
	err := measureRun(ctx, par, systems, newManager)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > 20*time.Second {
		t.Fatalf("measureRun = %v after %v", err, time.Since(t0))
	}
	waitNoFakeSleepers(t, fakes)
	for _, p := range systems {
		if p.s.startMs <= 0 || p.s.cpuPct >= 0 {
			t.Errorf("system %d: %+v", p.i, p.s)
		}
	}
	if !slices.Contains(log, "m0:Close") || !slices.Contains(log, "m1:Close") || slices.Contains(log, "m0:StopSleepers") {
		t.Errorf("log %q", log)
	}
}
