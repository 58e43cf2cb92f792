package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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

func TestRunPeersQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the peer comparison (about two minutes)")
	}
	before := sleepersAnywhere()
	r := NewReport(nil)
	p := &Peers{TableDir: t.TempDir()}
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
	eng, err := shipote.Start(shipote.NewActorSystem(nil), shipote.Config{})
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
