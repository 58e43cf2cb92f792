// This file tests --metrics-addr: a real engine with a crashing command
// and a failing supervised pipeline, scraped over HTTP and parsed with the
// Prometheus text parser.

package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/messages"
)

// metricsDeadline bounds every wait of these tests: generous, for a busy
// 2-core machine.
const metricsDeadline = 60 * time.Second

// startTestEngine starts a persistent engine without kernel limits; it is
// stopped, with its actor system, at the end of the test.
func startTestEngine(t *testing.T) *shipote.Engine {
	t.Helper()
	system := shipote.NewActorSystem(nil)
	eng, err := shipote.Start(context.Background(), system, shipote.Config{
		Limits:         "none",
		StatePath:      filepath.Join(t.TempDir(), "state.json"),
		SampleInterval: 100 * time.Millisecond,
		Grace:          time.Second,
	})
	if err != nil {
		system.Shutdown()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := eng.Stop(ctx); err != nil {
			t.Errorf("stop engine: %v", err)
		}
		system.Shutdown()
	})
	return eng
}

// serveMetrics starts the metrics server on a free port, closed at the end
// of the test, and returns its /metrics URL.
func serveMetrics(t *testing.T, eng *shipote.Engine) string {
	t.Helper()
	m, err := startMetrics("127.0.0.1:0", eng, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close metrics: %v", err)
		}
	})
	return "http://" + m.Addr().String() + "/metrics"
}

// scrape GETs url and returns the body, failing unless the status is 200.
func scrape(t *testing.T, url string) string {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return string(body)
}

// parse parses a scrape with the Prometheus text parser.
func parse(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("text parser: %v\n%s", err, body)
	}
	return mfs
}

// family is a parsed scrape.
type family map[string]*dto.MetricFamily

// value returns the value of the series of name whose labels include want
// (label=value pairs), and whether there is one.
func (f family) value(name string, want ...string) (float64, bool) {
	mf := f[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		labels := make(map[string]string)
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				ok = false
			}
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// poll calls f until it returns true, failing after metricsDeadline.
func poll(t *testing.T, what string, f func() bool) {
	t.Helper()
	end := time.Now().Add(metricsDeadline)
	for !f() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func nativeCmd(label, exec string, argv ...string) messages.CommandRef {
	return messages.CommandRef{Label: label, Payload: messages.Payload{Native: &messages.NativePayload{Exec: exec, Argv: argv}}}
}

// seqBytes is the size of `seq 1 n`'s output.
func seqBytes(n int) float64 {
	var total int
	for i := 1; i <= n; i++ {
		total += len(fmt.Sprint(i)) + 1
	}
	return float64(total)
}

func TestMetricsScrape(t *testing.T) {
	eng := startTestEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), metricsDeadline)
	defer cancel()

	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "mx"})
	if err != nil {
		t.Fatal(err)
	}
	crash := nativeCmd("crash", "/bin/sh", "-c", "exit 3")
	crash.Supervision.Restart = &messages.RestartPolicy{On: messages.RestartOnFailure, BackoffMs: 20, MaxBackoffMs: 40, Max: 3}
	if _, err := eng.Exec(ctx, ws.ID, crash); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Exec(ctx, ws.ID, nativeCmd("sleeper", "sleep", "600")); err != nil {
		t.Fatal(err)
	}
	// gen writes 2000 lines, then fails: the pipeline is restarted twice,
	// then gives up.
	spec := messages.PipelineSpec{
		Label: "pipe",
		Nodes: []messages.Node{
			{Label: "gen", Payload: nativeCmd("", "/bin/sh", "-c", "seq 1 2000; exit 1").Payload},
			{Label: "cnt", Payload: nativeCmd("", "wc", "-l").Payload},
		},
		Edges:            []messages.Edge{{From: "gen", To: "cnt"}},
		RestartOnFailure: true, RestartBackoffMs: 20, RestartMaxBackoffMs: 40, RestartMax: 2,
	}
	if _, err := eng.RunPipeline(ctx, ws.ID, spec, false); err != nil {
		t.Fatal(err)
	}
	// Mutations are journal appends; a save writes the snapshot.
	if _, err := eng.SaveSnapshot(ctx); err != nil {
		t.Fatal(err)
	}
	url := serveMetrics(t, eng)

	var f family
	poll(t, "the crashing command and the pipeline to give up, leaving the sleeper alone, and a stats sample", func() bool {
		f = parse(t, scrape(t, url))
		cr, _ := f.value("shipote_command_restarts_total", "workspace", "mx", "command", "crash")
		pr, _ := f.value("shipote_pipeline_restarts_total", "workspace", "mx", "pipeline", "pipe")
		gaveUp, _ := f.value("shipote_pipelines", "state", string(messages.PipelineGaveUp))
		alive, _ := f.value("shipote_commands_alive", "workspace", "mx")
		// A sample taken while the sleeper was still starting may read no
		// RSS yet; the next one (1 s later) does.
		rss, _ := f.value("shipote_workspace_rss_bytes", "workspace", "mx")
		return cr == 3 && pr == 2 && gaveUp == 1 && alive == 1 && rss > 0
	})

	checks := []struct {
		name   string
		labels []string
		ok     func(float64) bool
		want   string
	}{
		{"shipote_info", []string{"version", shipote.Version, "limits_backend", eng.LimitsBackend()}, eq(1), "1"},
		{"shipote_workspaces", nil, eq(1), "1"},
		{"shipote_commands_alive", []string{"workspace", "mx"}, eq(1), "1 (sleeper)"},
		{"shipote_commands", []string{"workspace", "mx"}, func(v float64) bool { return v >= 2 }, ">= 2"},
		{"shipote_workspace_rss_bytes", []string{"workspace", "mx"}, gt(0), "> 0"},
		{"shipote_workspace_rss_peak_bytes", []string{"workspace", "mx"}, gt(0), "> 0"},
		{"shipote_workspace_cpu_seconds_total", []string{"workspace", "mx"}, ge(0), ">= 0"},
		{"shipote_workspace_cpu_percent", []string{"workspace", "mx"}, ge(0), ">= 0"},
		{"shipote_workspace_uptime_seconds", []string{"workspace", "mx"}, gt(0), "> 0"},
		{"shipote_command_restarts_total", []string{"workspace", "mx", "command", "crash"}, eq(3), "3"},
		{"shipote_command_restarts_total", []string{"workspace", "mx", "command", "sleeper"}, eq(0), "0"},
		{"shipote_pipeline_restarts_total", []string{"workspace", "mx", "pipeline", "pipe"}, eq(2), "2"},
		{"shipote_pipelines", []string{"state", "gave_up"}, eq(1), "1"},
		{"shipote_pipelines", []string{"state", "running"}, eq(0), "0"},
		{"shipote_flow_bytes_total", []string{"workspace", "mx", "pipeline", "pipe", "from", "gen", "to", "cnt"}, eq(seqBytes(2000)), "seq 1 2000's size"},
		{"shipote_flow_bytes_per_second", []string{"workspace", "mx", "pipeline", "pipe", "from", "gen", "to", "cnt"}, ge(0), ">= 0"},
		{"shipote_flow_dropped_bytes_total", []string{"workspace", "mx", "pipeline", "pipe", "from", "gen", "to", "cnt"}, eq(0), "0"},
		{"shipote_splitter_bytes_in_total", []string{"workspace", "mx", "pipeline", "pipe", "node", "gen"}, eq(seqBytes(2000)), "seq 1 2000's size"},
		{"shipote_splitter_throttled_seconds_total", []string{"workspace", "mx", "pipeline", "pipe", "node", "gen"}, eq(0), "0"},
		{"shipote_snapshot_writes_total", nil, gt(0), "> 0"},
		{"shipote_snapshot_failures_total", nil, eq(0), "0"},
		{"shipote_snapshot_build_seconds_total", nil, gt(0), "> 0"},
		{"shipote_snapshot_write_seconds_total", nil, gt(0), "> 0"},
		{"shipote_snapshot_last_bytes", nil, gt(0), "> 0"},
		{"shipote_snapshot_last_build_seconds", nil, gt(0), "> 0"},
		{"shipote_snapshot_last_write_seconds", nil, gt(0), "> 0"},
		{"go_goroutines", nil, gt(0), "> 0"},
		{"process_resident_memory_bytes", nil, gt(0), "> 0"},
	}
	for _, c := range checks {
		v, ok := f.value(c.name, c.labels...)
		switch {
		case !ok:
			t.Errorf("%s%v: no such series", c.name, c.labels)
		case !c.ok(v):
			t.Errorf("%s%v = %v, want %s", c.name, c.labels, v, c.want)
		}
	}
	for _, kind := range []string{shipote.MailboxKindEngine, shipote.MailboxKindWorkspace, shipote.MailboxKindPipeline, shipote.MailboxKindSplitter, shipote.MailboxKindSampler} {
		if v, ok := f.value("shipote_actor_mailbox_queued", "kind", kind); !ok || v < 0 {
			t.Errorf("shipote_actor_mailbox_queued{kind=%q} = %v (found %v), want >= 0", kind, v, ok)
		}
		if v, ok := f.value("shipote_actor_messages_total", "kind", kind); !ok || v <= 0 {
			t.Errorf("shipote_actor_messages_total{kind=%q} = %v (found %v), want > 0", kind, v, ok)
		}
	}
	wantTypes := map[string]dto.MetricType{
		"shipote_command_restarts_total": dto.MetricType_COUNTER, "shipote_pipeline_restarts_total": dto.MetricType_COUNTER,
		"shipote_snapshot_writes_total": dto.MetricType_COUNTER, "shipote_snapshot_last_bytes": dto.MetricType_GAUGE,
		"shipote_actor_mailbox_queued": dto.MetricType_GAUGE, "shipote_actor_messages_total": dto.MetricType_COUNTER,
		"shipote_flow_bytes_per_second": dto.MetricType_GAUGE, "shipote_info": dto.MetricType_GAUGE,
	}
	for name, typ := range wantTypes {
		if mf := f[name]; mf == nil || mf.GetType() != typ {
			t.Errorf("%s: type %v, want %v", name, mf.GetType(), typ)
		}
	}

	// The names and help texts follow Prometheus' conventions.
	problems, err := promlint.NewWithMetricFamilies(shipoteFamilies(f)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// shipoteFamilies returns the families of f named shipote_*.
func shipoteFamilies(f family) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for name, mf := range f {
		if strings.HasPrefix(name, "shipote_") {
			out = append(out, mf)
		}
	}
	return out
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
func gt(min float64) func(float64) bool  { return func(v float64) bool { return v > min } }
func ge(min float64) func(float64) bool  { return func(v float64) bool { return v >= min } }

// TestMetricsPartsFailAlone scrapes a stopped engine: the parts that need
// its actors fail, the others are still served, with status 200.
func TestMetricsPartsFailAlone(t *testing.T) {
	eng := startTestEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), metricsDeadline)
	defer cancel()
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "gone"}); err != nil {
		t.Fatal(err)
	}
	url := serveMetrics(t, eng)
	if err := eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	f := family(parse(t, scrape(t, url)))
	for _, name := range []string{"shipote_workspaces", "shipote_pipelines", "shipote_command_restarts_total"} {
		if f[name] != nil {
			t.Errorf("%s served by a stopped engine", name)
		}
	}
	for _, name := range []string{"shipote_info", "shipote_snapshot_writes_total", "shipote_actor_mailbox_queued",
		"shipote_actor_messages_total", "go_goroutines"} {
		if f[name] == nil {
			t.Errorf("%s: missing, although only the engine's actors failed", name)
		}
	}
	if v, _ := f.value("shipote_snapshot_writes_total"); v <= 0 {
		t.Errorf("shipote_snapshot_writes_total = %v, want > 0 (the workspace and the final snapshot)", v)
	}
	// promhttp counts what it left out, once the scrape is served.
	f = family(parse(t, scrape(t, url)))
	if v, _ := f.value("promhttp_metric_handler_errors_total", "cause", "gathering"); v < 1 {
		t.Errorf("promhttp_metric_handler_errors_total{cause=gathering} = %v, want >= 1", v)
	}
}

func TestStartMetricsBadAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name, addr, want string
	}{
		{"port out of range", "127.0.0.1:99999", "invalid port"},
		{"no port", "127.0.0.1", "missing port in address"},
		{"address in use", busy.Addr().String(), "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := startMetrics(tt.addr, nil, nil)
			if err == nil {
				m.Close()
				t.Fatalf("startMetrics(%q): no error", tt.addr)
			}
			if !strings.HasPrefix(err.Error(), "metrics: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("startMetrics(%q) = %q, want metrics: ...%s...", tt.addr, err, tt.want)
			}
		})
	}
}

// TestLiveFlowCounters: while a pipeline is still running, the pipeline
// listing (pipe ls, /v1/pipelines, top) and the shipote_flow_* series carry
// its flow counters, not only after it has ended.
func TestLiveFlowCounters(t *testing.T) {
	eng := startTestEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), metricsDeadline)
	defer cancel()
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "live"})
	if err != nil {
		t.Fatal(err)
	}
	spec := messages.PipelineSpec{
		Label: "flowing",
		Nodes: []messages.Node{
			{Label: "gen", Payload: nativeCmd("", "/bin/sh", "-c", "while :; do seq 1 1000; sleep 0.05; done").Payload},
			{Label: "sink", Payload: nativeCmd("", "cat").Payload},
		},
		Edges: []messages.Edge{{From: "gen", To: "sink"}},
	}
	run, err := eng.RunPipeline(ctx, ws.ID, spec, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = eng.StopPipeline(context.Background(), run.ID) })
	url := serveMetrics(t, eng)
	poll(t, "the running pipeline's listing to carry its flow counters", func() bool {
		runs, err := eng.Pipelines(ctx, ws.ID)
		if err != nil || len(runs) != 1 || runs[0].State != messages.PipelineRunning || len(runs[0].Splitters) != 1 {
			return false
		}
		s := runs[0].Splitters[0]
		return s.Node == "gen" && s.BytesIn > 0 && len(s.Channels) == 1 && s.Channels[0].To == "sink" && s.Channels[0].BytesTotal > 0
	})
	poll(t, "shipote_flow_bytes_total of the running pipeline", func() bool {
		f := family(parse(t, scrape(t, url)))
		v, ok := f.value("shipote_flow_bytes_total", "workspace", "live", "pipeline", "flowing", "from", "gen", "to", "sink")
		running, _ := f.value("shipote_pipelines", "state", string(messages.PipelineRunning))
		return ok && v > 0 && running == 1
	})
}
