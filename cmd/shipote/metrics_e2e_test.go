// This file owns the end-to-end test of `shipote daemon --metrics-addr`:
// the binary serves /metrics on a TCP port while a crashing command and a
// failing supervised pipeline run, and each scrape is parsed with the
// Prometheus text parser.

package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// freePort returns a TCP address on 127.0.0.1 that nothing listens on
// right now, below the ephemeral range (freePortPair).
func freePort(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", freePortPair(t))
}

// metricFamilies is one parsed scrape.
type metricFamilies map[string]*dto.MetricFamily

// scrapeMetrics GETs http://addr/metrics and parses it with the text
// parser; it returns an error instead of failing, for polling.
func scrapeMetrics(addr string) (metricFamilies, error) {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s\n%s", resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("GET /metrics: Content-Type %q, want text/plain", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return nil, fmt.Errorf("text parser: %w\n%s", err, body)
	}
	return mfs, nil
}

// get returns the value of the series of name whose labels include the
// label=value pairs of want, and whether there is one.
func (f metricFamilies) get(name string, want ...string) (float64, bool) {
	for _, m := range f[name].GetMetric() {
		labels := make(map[string]string)
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(want); i += 2 {
			match = match && labels[want[i]] == want[i+1]
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// failingYAML writes 1000 lines then fails: it is restarted twice, then
// gives up.
const failingYAML = `label: flaky
nodes:
  - {label: gen, payload: {native: {exec: /bin/sh, argv: ["-c", "seq 1 1000; exit 1"]}}}
  - {label: cnt, payload: {native: {exec: wc, argv: ["-l"]}}}
edges:
  - {from: gen, to: cnt}
restart_on_failure: true
restart_backoff_ms: 50
restart_max: 2
`

// TestE2EMetrics runs the daemon with --metrics-addr and checks a scrape:
// restarts, flow bytes, snapshot and mailbox figures, the info metric.
func TestE2EMetrics(t *testing.T) {
	dir := shortDir(t)
	addr := freePort(t)
	d := startDaemon(t, filepath.Join(dir, "s.sock"), filepath.Join(t.TempDir(), "state.json"), newParent(t),
		"--metrics-addr", addr, "--limits", "none")
	// The daemon's stderr reaches the test through a pipe copied by
	// another goroutine: the line may land after /healthz answers.
	poll(t, "the \"serving metrics\" log line with "+addr, func() bool {
		s := d.stderr.String()
		return strings.Contains(s, `"serving metrics"`) && strings.Contains(s, addr)
	})

	d.id(t, "ws", "create", "--label", "mx", "--ttl", "10m")
	d.id(t, "exec", "mx", "--label", "crash", "--restart", "on-failure", "--backoff", "50ms", "--max-restarts", "3",
		"--", "/bin/sh", "-c", "exit 3")
	d.id(t, "exec", "mx", "--label", "sleeper", "--", "sleep", "600")
	d.id(t, "pipe", "run", "mx", "-f", writeFile(t, t.TempDir(), "flaky.yaml", failingYAML))
	d.ok(t, "snapshot", "save") // mutations are journal appends; a save writes the snapshot

	var f metricFamilies
	var lastErr error
	poll(t, "the restarts, the sleeper alone alive and a stats sample in /metrics", func() bool {
		f, lastErr = scrapeMetrics(addr)
		if lastErr != nil {
			return false
		}
		cr, _ := f.get("shipote_command_restarts_total", "workspace", "mx", "command", "crash")
		pr, _ := f.get("shipote_pipeline_restarts_total", "workspace", "mx", "pipeline", "flaky")
		gaveUp, _ := f.get("shipote_pipelines", "state", "gave_up")
		alive, _ := f.get("shipote_commands_alive", "workspace", "mx")
		_, rss := f.get("shipote_workspace_rss_bytes", "workspace", "mx")
		return cr == 3 && pr == 2 && gaveUp == 1 && alive == 1 && rss
	})
	if lastErr != nil {
		t.Fatal(lastErr)
	}

	flow := []string{"workspace", "mx", "pipeline", "flaky", "from", "gen", "to", "cnt"}
	checks := []struct {
		name   string
		labels []string
		ok     func(float64) bool
		want   string
	}{
		{"shipote_info", []string{"limits_backend", "none"}, func(v float64) bool { return v == 1 }, "1"},
		{"shipote_workspaces", nil, func(v float64) bool { return v == 1 }, "1"},
		{"shipote_commands_alive", []string{"workspace", "mx"}, func(v float64) bool { return v == 1 }, "1"},
		{"shipote_workspace_rss_peak_bytes", []string{"workspace", "mx"}, func(v float64) bool { return v > 0 }, "> 0"},
		{"shipote_workspace_cpu_percent", []string{"workspace", "mx"}, func(v float64) bool { return v >= 0 }, ">= 0"},
		{"shipote_workspace_uptime_seconds", []string{"workspace", "mx"}, func(v float64) bool { return v > 0 }, "> 0"},
		{"shipote_flow_bytes_total", flow, func(v float64) bool { return v == float64(seqBytes(1000)) }, "seq 1 1000's size"},
		{"shipote_flow_bytes_per_second", flow, func(v float64) bool { return v >= 0 }, ">= 0"},
		{"shipote_flow_dropped_bytes_total", flow, func(v float64) bool { return v == 0 }, "0"},
		{"shipote_splitter_bytes_in_total", []string{"node", "gen"}, func(v float64) bool { return v == float64(seqBytes(1000)) }, "seq 1 1000's size"},
		{"shipote_splitter_throttled_seconds_total", []string{"node", "gen"}, func(v float64) bool { return v == 0 }, "0"},
		{"shipote_snapshot_writes_total", nil, func(v float64) bool { return v > 0 }, "> 0"},
		{"shipote_snapshot_failures_total", nil, func(v float64) bool { return v == 0 }, "0"},
		{"shipote_snapshot_last_bytes", nil, func(v float64) bool { return v > 0 }, "> 0"},
		{"shipote_snapshot_write_seconds_total", nil, func(v float64) bool { return v > 0 }, "> 0"},
		{"shipote_actor_messages_total", []string{"kind", "engine"}, func(v float64) bool { return v > 0 }, "> 0"},
		{"shipote_actor_messages_total", []string{"kind", "splitter"}, func(v float64) bool { return v > 0 }, "> 0"},
		{"shipote_actor_mailbox_queued", []string{"kind", "workspace"}, func(v float64) bool { return v >= 0 }, ">= 0"},
		{"process_open_fds", nil, func(v float64) bool { return v > 0 }, "> 0"},
	}
	for _, c := range checks {
		v, ok := f.get(c.name, c.labels...)
		switch {
		case !ok:
			t.Errorf("%s%v: no such series", c.name, c.labels)
		case !c.ok(v):
			t.Errorf("%s%v = %v, want %s", c.name, c.labels, v, c.want)
		}
	}
	if n := len(f["shipote_actor_mailbox_queued"].GetMetric()); n != 5 {
		t.Errorf("shipote_actor_mailbox_queued: %d series, want one per actor kind (5)", n)
	}

	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("daemon exit %d after SIGTERM\n%s", code, tail(d.stderr.String(), 3000))
	}
	if _, err := scrapeMetrics(addr); err == nil {
		t.Error("/metrics still served after the daemon exited")
	}
}
