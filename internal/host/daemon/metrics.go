// This file owns --metrics-addr: Prometheus /metrics with the Go and
// process collectors and the engine's figures, read at scrape time.

package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/messages"
)

// scrapeTimeout bounds what one scrape waits for the engine's actors.
const scrapeTimeout = 2 * time.Second

// metricsServer serves /metrics until Close.
type metricsServer struct {
	srv  *http.Server
	addr net.Addr
	done chan error
}

// startMetrics listens on addr and serves /metrics in a goroutine that
// Close stops and waits for.
func startMetrics(addr string, eng *shipote.Engine, log *zap.Logger) (*metricsServer, error) {
	if log == nil {
		log = zap.NewNop()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&engineCollector{eng: eng},
	)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// A part of the engine that did not answer is left out (and
		// logged, and counted in promhttp_metric_handler_errors_total);
		// the rest is still served.
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      zap.NewStdLog(log.Named("metrics")),
		Registry:      reg,
		Timeout:       2 * scrapeTimeout,
	}))
	m := &metricsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		addr: ln.Addr(),
		done: make(chan error, 1),
	}
	go func() { m.done <- m.srv.Serve(ln) }()
	log.Info("serving metrics", zap.String("addr", m.addr.String()))
	return m, nil
}

// Addr is the address the server listens on (the port chosen when the
// address given had port 0).
func (m *metricsServer) Addr() net.Addr { return m.addr }

// Close stops the server and waits for it.
func (m *metricsServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	if serr := <-m.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

var (
	descInfo = prometheus.NewDesc("shipote_info", "Always 1: the daemon's version and resource-limit backend.",
		[]string{"version", "limits_backend"}, nil)

	descWorkspaces = prometheus.NewDesc("shipote_workspaces", "Workspaces alive.", nil, nil)
	descAlive      = prometheus.NewDesc("shipote_commands_alive", "Commands running, per workspace.",
		[]string{"workspace"}, nil)
	descCommands = prometheus.NewDesc("shipote_commands",
		"Commands of a workspace, running or not, with the nodes of its pipelines' current runs.",
		[]string{"workspace"}, nil)
	descRSS = prometheus.NewDesc("shipote_workspace_rss_bytes", "Resident memory of a workspace's processes.",
		[]string{"workspace"}, nil)
	descRSSPeak = prometheus.NewDesc("shipote_workspace_rss_peak_bytes", "Peak resident memory of a workspace's processes.",
		[]string{"workspace"}, nil)
	descCPU = prometheus.NewDesc("shipote_workspace_cpu_seconds_total", "CPU time used by a workspace's processes.",
		[]string{"workspace"}, nil)
	descCPUPercent = prometheus.NewDesc("shipote_workspace_cpu_percent",
		"CPU use of a workspace's processes over the last sampling period, in percent of one core (may exceed 100).",
		[]string{"workspace"}, nil)
	descUptime = prometheus.NewDesc("shipote_workspace_uptime_seconds", "Time since the workspace was created.",
		[]string{"workspace"}, nil)
	descCmdRestarts = prometheus.NewDesc("shipote_command_restarts_total", "Restarts of a command (its latest one of that label).",
		[]string{"workspace", "command"}, nil)

	descPipelines    = prometheus.NewDesc("shipote_pipelines", "Pipeline runs by state.", []string{"state"}, nil)
	descPipeRestarts = prometheus.NewDesc("shipote_pipeline_restarts_total", "Restarts of a pipeline (its latest run of that label).",
		[]string{"workspace", "pipeline"}, nil)
	descFlow = prometheus.NewDesc("shipote_flow_bytes_total", "Bytes through a pipeline's flow channel.",
		[]string{"workspace", "pipeline", "from", "to"}, nil)
	descFlowRate = prometheus.NewDesc("shipote_flow_bytes_per_second", "Recent throughput of a pipeline's flow channel.",
		[]string{"workspace", "pipeline", "from", "to"}, nil)
	descDropped = prometheus.NewDesc("shipote_flow_dropped_bytes_total", "Bytes a flow channel dropped.",
		[]string{"workspace", "pipeline", "from", "to"}, nil)
	descSplitIn = prometheus.NewDesc("shipote_splitter_bytes_in_total", "Bytes a producer node wrote into its splitter.",
		[]string{"workspace", "pipeline", "node"}, nil)
	descSplitThrottled = prometheus.NewDesc("shipote_splitter_throttled_seconds_total",
		"Time a splitter waited on its max_bytes_per_sec token bucket.",
		[]string{"workspace", "pipeline", "node"}, nil)

	descSnapWrites   = prometheus.NewDesc("shipote_snapshot_writes_total", "State snapshots written.", nil, nil)
	descSnapFailures = prometheus.NewDesc("shipote_snapshot_failures_total", "State snapshot writes that failed.", nil, nil)
	descSnapBuild    = prometheus.NewDesc("shipote_snapshot_build_seconds_total",
		"Time spent gathering and encoding the snapshots written.", nil, nil)
	descSnapWrite = prometheus.NewDesc("shipote_snapshot_write_seconds_total",
		"Time spent writing the snapshots (write, fsync, rename, directory fsync).", nil, nil)
	descSnapLastBytes = prometheus.NewDesc("shipote_snapshot_last_bytes", "Size of the last snapshot written.", nil, nil)
	descSnapLastBuild = prometheus.NewDesc("shipote_snapshot_last_build_seconds",
		"Time spent gathering and encoding the last snapshot written.", nil, nil)
	descSnapLastWrite = prometheus.NewDesc("shipote_snapshot_last_write_seconds",
		"Time spent writing the last snapshot.", nil, nil)

	descStateDegraded = prometheus.NewDesc("shipote_state_degraded",
		"1 while the state file cannot be written (mutations are refused), else 0.", nil, nil)
	descStateKept = prometheus.NewDesc("shipote_state_unrestored_entries",
		"Entries of the state file kept but not restored (shipote state ls).", nil, nil)

	descMailboxQueued = prometheus.NewDesc("shipote_actor_mailbox_queued",
		"Messages waiting in the mailboxes of every actor of a kind.", []string{"kind"}, nil)
	descMailboxPosted = prometheus.NewDesc("shipote_actor_messages_total",
		"Messages posted to the actors of a kind.", []string{"kind"}, nil)
)

var allDescs = []*prometheus.Desc{
	descInfo,
	descWorkspaces, descAlive, descCommands, descRSS, descRSSPeak, descCPU, descCPUPercent, descUptime, descCmdRestarts,
	descPipelines, descPipeRestarts, descFlow, descFlowRate, descDropped, descSplitIn, descSplitThrottled,
	descSnapWrites, descSnapFailures, descSnapBuild, descSnapWrite, descSnapLastBytes, descSnapLastBuild, descSnapLastWrite,
	descStateDegraded, descStateKept,
	descMailboxQueued, descMailboxPosted,
}

// engineCollector reads the engine at scrape time. Each part is read on
// its own: a part that fails (or does not answer within scrapeTimeout) is
// reported as an invalid metric of that part only.
type engineCollector struct{ eng *shipote.Engine }

// Describe sends every descriptor the collector may emit.
func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect reads the engine. The parts that need no actor come first, so a
// busy engine delays only the others.
func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, shipote.Version, c.eng.LimitsBackend())
	c.collectSnapshots(ch)
	c.collectMailboxes(ch)
	c.collectWorkspaces(ctx, ch)
	c.collectPipelines(ctx, ch)
}

func (c *engineCollector) collectSnapshots(ch chan<- prometheus.Metric) {
	s := c.eng.SnapshotStats()
	for _, m := range []struct {
		d *prometheus.Desc
		t prometheus.ValueType
		v float64
	}{
		{descSnapWrites, prometheus.CounterValue, float64(s.Writes)},
		{descSnapFailures, prometheus.CounterValue, float64(s.Failures)},
		{descSnapBuild, prometheus.CounterValue, s.TotalBuild.Seconds()},
		{descSnapWrite, prometheus.CounterValue, s.TotalWrite.Seconds()},
		{descSnapLastBytes, prometheus.GaugeValue, float64(s.LastBytes)},
		{descSnapLastBuild, prometheus.GaugeValue, s.LastBuild.Seconds()},
		{descSnapLastWrite, prometheus.GaugeValue, s.LastWrite.Seconds()},
		{descStateDegraded, prometheus.GaugeValue, boolGauge(c.eng.Degraded() != nil)},
		{descStateKept, prometheus.GaugeValue, float64(c.eng.KeptCount())},
	} {
		ch <- prometheus.MustNewConstMetric(m.d, m.t, m.v)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *engineCollector) collectMailboxes(ch chan<- prometheus.Metric) {
	for _, m := range c.eng.MailboxStats() {
		ch <- prometheus.MustNewConstMetric(descMailboxQueued, prometheus.GaugeValue, float64(m.Queued), m.Kind)
		ch <- prometheus.MustNewConstMetric(descMailboxPosted, prometheus.CounterValue, float64(m.Posted), m.Kind)
	}
}

// collectWorkspaces sends each workspace's figures, then its commands'
// restarts.
func (c *engineCollector) collectWorkspaces(ctx context.Context, ch chan<- prometheus.Metric) {
	wss, err := c.eng.Workspaces(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descWorkspaces, fmt.Errorf("list workspaces: %w", err))
		return
	}
	ch <- prometheus.MustNewConstMetric(descWorkspaces, prometheus.GaugeValue, float64(len(wss)))
	now := time.Now()
	for _, w := range wss {
		ws := w.Spec.Label
		ch <- prometheus.MustNewConstMetric(descAlive, prometheus.GaugeValue, float64(w.CommandsAlive), ws)
		ch <- prometheus.MustNewConstMetric(descCommands, prometheus.GaugeValue, float64(w.CommandsTotal), ws)
		if !w.CreatedAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(descUptime, prometheus.GaugeValue, max(now.Sub(w.CreatedAt).Seconds(), 0), ws)
		}
		if s := w.Stats; s != nil {
			ch <- prometheus.MustNewConstMetric(descRSS, prometheus.GaugeValue, float64(s.RSSBytes), ws)
			ch <- prometheus.MustNewConstMetric(descRSSPeak, prometheus.GaugeValue, float64(s.RSSPeakBytes), ws)
			ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, float64(s.CPUUsec)/1e6, ws)
			ch <- prometheus.MustNewConstMetric(descCPUPercent, prometheus.GaugeValue, s.CPUPercent, ws)
		}
	}
	for _, w := range wss {
		cmds, err := c.eng.Commands(ctx, w.ID)
		switch {
		case errors.Is(err, messages.ErrNotFound): // removed meanwhile
			continue
		case err != nil:
			ch <- prometheus.NewInvalidMetric(descCmdRestarts, fmt.Errorf("list the commands of workspace %s: %w", w.Spec.Label, err))
			if ctx.Err() != nil {
				return
			}
			continue
		}
		// A label reused by a later command: the latest one (listed last) wins.
		restarts := make(map[string]int, len(cmds))
		order := make([]string, 0, len(cmds))
		for _, cmd := range cmds {
			if _, ok := restarts[cmd.Label]; !ok {
				order = append(order, cmd.Label)
			}
			restarts[cmd.Label] = cmd.Restarts
		}
		for _, label := range order {
			ch <- prometheus.MustNewConstMetric(descCmdRestarts, prometheus.CounterValue, float64(restarts[label]), w.Spec.Label, label)
		}
	}
}

// collectPipelines sends the pipeline runs by state and, for the latest
// run of each label, its restarts and flow counters.
func (c *engineCollector) collectPipelines(ctx context.Context, ch chan<- prometheus.Metric) {
	runs, err := c.eng.Pipelines(ctx, "")
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descPipelines, fmt.Errorf("list pipelines: %w", err))
		return
	}
	states := map[messages.PipelineState]int{
		messages.PipelineRunning: 0, messages.PipelineBackoff: 0, messages.PipelineSucceeded: 0,
		messages.PipelineFailed: 0, messages.PipelineGaveUp: 0, messages.PipelineStopped: 0,
	}
	type pipeKey struct{ ws, pipe string }
	latest := make(map[pipeKey]int, len(runs)) // index in runs; runs are listed oldest first
	var order []pipeKey
	for i, p := range runs {
		states[p.State]++
		k := pipeKey{p.WorkspaceLabel, p.Label}
		if _, ok := latest[k]; !ok {
			order = append(order, k)
		}
		latest[k] = i
	}
	for st, n := range states {
		ch <- prometheus.MustNewConstMetric(descPipelines, prometheus.GaugeValue, float64(n), string(st))
	}
	for _, k := range order {
		p := runs[latest[k]]
		ch <- prometheus.MustNewConstMetric(descPipeRestarts, prometheus.CounterValue, float64(p.Restarts), k.ws, k.pipe)
		for _, s := range p.Splitters {
			ch <- prometheus.MustNewConstMetric(descSplitIn, prometheus.CounterValue, float64(s.BytesIn), k.ws, k.pipe, s.Node)
			ch <- prometheus.MustNewConstMetric(descSplitThrottled, prometheus.CounterValue, float64(s.ThrottledMs)/1e3, k.ws, k.pipe, s.Node)
			for _, f := range s.Channels {
				to := f.To
				if f.Tap {
					to = "tap:" + to
				}
				ch <- prometheus.MustNewConstMetric(descFlow, prometheus.CounterValue, float64(f.BytesTotal), k.ws, k.pipe, f.From, to)
				ch <- prometheus.MustNewConstMetric(descFlowRate, prometheus.GaugeValue, float64(f.BytesPerSec), k.ws, k.pipe, f.From, to)
				ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(f.DroppedBytes), k.ws, k.pipe, f.From, to)
			}
		}
	}
}
