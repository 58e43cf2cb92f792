// This file owns --metrics-addr: Prometheus /metrics with the Go and
// process collectors and gauges read from the engine at scrape time.

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

// metricsServer serves /metrics until Close.
type metricsServer struct {
	srv  *http.Server
	done chan error
}

func startMetrics(addr string, eng *shipote.Engine, log *zap.Logger) (*metricsServer, error) {
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
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	m := &metricsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan error, 1),
	}
	go func() { m.done <- m.srv.Serve(ln) }()
	log.Info("serving metrics", zap.String("addr", ln.Addr().String()))
	return m, nil
}

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
	descWorkspaces = prometheus.NewDesc("shipote_workspaces", "Workspaces alive.", nil, nil)
	descAlive      = prometheus.NewDesc("shipote_commands_alive", "Commands running, per workspace.",
		[]string{"workspace"}, nil)
	descRSS = prometheus.NewDesc("shipote_workspace_rss_bytes", "Resident memory of a workspace's processes.",
		[]string{"workspace"}, nil)
	descCPU = prometheus.NewDesc("shipote_workspace_cpu_seconds_total", "CPU time used by a workspace's processes.",
		[]string{"workspace"}, nil)
	descPipelines = prometheus.NewDesc("shipote_pipelines", "Pipeline runs by state.", []string{"state"}, nil)
	descFlow      = prometheus.NewDesc("shipote_flow_bytes_total", "Bytes through a pipeline's flow channel.",
		[]string{"workspace", "pipeline", "from", "to"}, nil)
	descDropped = prometheus.NewDesc("shipote_flow_dropped_bytes_total", "Bytes a flow channel dropped.",
		[]string{"workspace", "pipeline", "from", "to"}, nil)
)

// engineCollector reads the engine at scrape time.
type engineCollector struct{ eng *shipote.Engine }

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWorkspaces, descAlive, descRSS, descCPU, descPipelines, descFlow, descDropped} {
		ch <- d
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	wss, err := c.eng.Workspaces(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descWorkspaces, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(descWorkspaces, prometheus.GaugeValue, float64(len(wss)))
	labels := make(map[string]string, len(wss))
	for _, w := range wss {
		labels[w.ID] = w.Spec.Label
		ch <- prometheus.MustNewConstMetric(descAlive, prometheus.GaugeValue, float64(w.CommandsAlive), w.Spec.Label)
		if s := w.Stats; s != nil {
			ch <- prometheus.MustNewConstMetric(descRSS, prometheus.GaugeValue, float64(s.RSSBytes), w.Spec.Label)
			ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, float64(s.CPUUsec)/1e6, w.Spec.Label)
		}
	}
	runs, err := c.eng.Pipelines(ctx, "")
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descPipelines, err)
		return
	}
	states := map[messages.PipelineState]int{
		messages.PipelineRunning: 0, messages.PipelineBackoff: 0, messages.PipelineSucceeded: 0,
		messages.PipelineFailed: 0, messages.PipelineGaveUp: 0, messages.PipelineStopped: 0,
	}
	type flowKey struct{ ws, pipe, from, to string }
	seen := make(map[flowKey]bool)
	for _, p := range runs {
		states[p.State]++
		for _, s := range p.Splitters {
			for _, f := range s.Channels {
				to := f.To
				if f.Tap {
					to = "tap:" + to
				}
				k := flowKey{labels[p.Workspace], p.Label, f.From, to}
				if seen[k] { // an older run of the same label: keep the first
					continue
				}
				seen[k] = true
				ch <- prometheus.MustNewConstMetric(descFlow, prometheus.CounterValue, float64(f.BytesTotal), k.ws, k.pipe, k.from, k.to)
				ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(f.DroppedBytes), k.ws, k.pipe, k.from, k.to)
			}
		}
	}
	for st, n := range states {
		ch <- prometheus.MustNewConstMetric(descPipelines, prometheus.GaugeValue, float64(n), string(st))
	}
}
