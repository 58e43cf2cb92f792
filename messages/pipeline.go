// This file defines the pipeline spec of SPEC §1.3 (a DAG of commands whose
// outputs fan out through splitters) and its validation.

package messages

import (
	"fmt"
	"strings"
)

// PipelineSpec declares a pipeline.
type PipelineSpec struct {
	Label string `json:"label"`
	// Workspace is implied where the pipeline is started; when set it must
	// name the workspace it is started into (label or ID).
	Workspace           string        `json:"workspace,omitempty"`
	Nodes               []Node        `json:"nodes"`
	Edges               []Edge        `json:"edges,omitempty"`
	Discern             DiscernPolicy `json:"discern,omitzero"`
	RestartOnFailure    bool          `json:"restart_on_failure,omitempty"`
	RestartBackoffMs    int64         `json:"restart_backoff_ms,omitempty"`
	RestartMaxBackoffMs int64         `json:"restart_max_backoff_ms,omitempty"`
	RestartMax          int64         `json:"restart_max,omitempty"`
	// Project is set on a saved pipeline that `shipote apply` saved: the
	// project whose file declares it. apply and down change and remove only
	// the saved pipelines of their own project.
	Project string `json:"project,omitempty"`
}

// Node is one command of a pipeline.
type Node struct {
	Label   string  `json:"label"`
	Payload Payload `json:"payload"`
	Soma    Soma    `json:"soma,omitzero"`
	// StopSignal is sent to the node's process group when its run is
	// stopped or restarted ("SIGTERM", "TERM", "15"); "" = SIGTERM.
	StopSignal string `json:"stop_signal,omitempty"`
	// StopTimeoutMs is how long a stop waits after StopSignal before
	// SIGKILL; 0 = the stop's grace (the daemon's --grace by default).
	StopTimeoutMs int64 `json:"stop_timeout_ms,omitempty"`
	// SuccessExitCodes are the node's exits that count as success for
	// its run (as CommandRef.SuccessExitCodes); nil = [0].
	SuccessExitCodes []int `json:"success_exit_codes,omitempty"`
}

// Edge sends the stdout of From to the stdin of To.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// DiscernPolicy configures every splitter of a pipeline.
type DiscernPolicy struct {
	// MaxBytesPerSec is a token bucket on each splitter's output; 0 = unlimited.
	MaxBytesPerSec int64 `json:"max_bytes_per_sec,omitempty"`
	// BurstBytes is the bucket's size; 0 = max(64 KiB, rate x 5 ms).
	BurstBytes int64 `json:"burst_bytes,omitempty"`
	// SlowConsumer is "block" (lossless, default) or "drop".
	SlowConsumer SlowConsumer `json:"slow_consumer,omitempty"`
	// BufferBytes is the buffer per consumer; 0 = 1 MiB.
	BufferBytes int64 `json:"buffer_bytes,omitempty"`
}

// SlowConsumer is the policy for a consumer that cannot keep up.
type SlowConsumer string

// Slow consumer policies.
const (
	SlowBlock SlowConsumer = "block"
	SlowDrop  SlowConsumer = "drop"
)

// DefaultBufferBytes is the per-consumer buffer when buffer_bytes is 0.
const DefaultBufferBytes = 1 << 20

// Backoffs returns the effective first and maximum restart backoff in ms.
func (p *PipelineSpec) Backoffs() (first, max int64) {
	r := RestartPolicy{BackoffMs: p.RestartBackoffMs, MaxBackoffMs: p.RestartMaxBackoffMs}
	return r.Backoffs()
}

// Validate checks the pipeline: labels, payloads, edges (existing ends, no
// self-edge, no fan-in, no cycle), and the discern and restart fields.
func (p *PipelineSpec) Validate() error {
	if err := checkLabel("label", p.Label); err != nil {
		return err
	}
	if p.Project != "" {
		if err := checkLabel("project", p.Project); err != nil {
			return err
		}
	}
	if len(p.Nodes) == 0 {
		return fieldErr("nodes", "must have at least one node")
	}
	index := make(map[string]int, len(p.Nodes))
	for i, n := range p.Nodes {
		f := fmt.Sprintf("nodes[%d]", i)
		if err := checkLabel(f+".label", n.Label); err != nil {
			return err
		}
		if j, dup := index[n.Label]; dup {
			return fieldErr(f+".label", "duplicate node %q (also nodes[%d])", n.Label, j)
		}
		index[n.Label] = i
		if err := n.Payload.validate(f + ".payload"); err != nil {
			return err
		}
		if err := n.Soma.validate(f + ".soma"); err != nil {
			return err
		}
		if err := validateStop(f, n.StopSignal, n.StopTimeoutMs, n.SuccessExitCodes); err != nil {
			return err
		}
	}
	input := make(map[string]string)
	out := make(map[string][]string)
	seen := make(map[Edge]int)
	for i, e := range p.Edges {
		f := fmt.Sprintf("edges[%d]", i)
		if _, ok := index[e.From]; !ok {
			return fieldErr(f+".from", "no node %q", e.From)
		}
		if _, ok := index[e.To]; !ok {
			return fieldErr(f+".to", "no node %q", e.To)
		}
		if e.From == e.To {
			return fieldErr(f, "self-edge on %q", e.From)
		}
		if j, dup := seen[e]; dup {
			return fieldErr(f, "duplicate of edges[%d] (%s -> %s)", j, e.From, e.To)
		}
		seen[e] = i
		if prev, ok := input[e.To]; ok {
			return fieldErr(f+".to", "node %q already has an input from %q; fan-in is not supported", e.To, prev)
		}
		input[e.To] = e.From
		out[e.From] = append(out[e.From], e.To)
	}
	if cyc := findCycle(p.Nodes, out); cyc != nil {
		return fieldErr("edges", "cycle %s", strings.Join(cyc, " -> "))
	}
	d := p.Discern
	switch {
	case d.MaxBytesPerSec < 0:
		return fieldErr("discern.max_bytes_per_sec", "must be >= 0")
	case d.BurstBytes < 0:
		return fieldErr("discern.burst_bytes", "must be >= 0")
	case d.BurstBytes > 0 && d.MaxBytesPerSec == 0:
		return fieldErr("discern.burst_bytes", "is set but max_bytes_per_sec is 0 (unlimited); set a rate or drop the burst")
	case d.BufferBytes < 0:
		return fieldErr("discern.buffer_bytes", "must be >= 0")
	}
	switch d.SlowConsumer {
	case "", SlowBlock, SlowDrop:
	default:
		return fieldErr("discern.slow_consumer", "%q is not one of block, drop", d.SlowConsumer)
	}
	switch {
	case p.RestartBackoffMs < 0:
		return fieldErr("restart_backoff_ms", "must be >= 0")
	case p.RestartMaxBackoffMs < 0:
		return fieldErr("restart_max_backoff_ms", "must be >= 0")
	case p.RestartMaxBackoffMs > 0 && p.RestartBackoffMs > p.RestartMaxBackoffMs:
		return fieldErr("restart_max_backoff_ms", "%d is below restart_backoff_ms %d", p.RestartMaxBackoffMs, p.RestartBackoffMs)
	case p.RestartMax < 0:
		return fieldErr("restart_max", "must be >= 0")
	}
	return nil
}

// findCycle returns the labels along a cycle, first label repeated at the
// end, or nil when the graph is acyclic. Nodes are visited in spec order so
// the answer is deterministic.
func findCycle(nodes []Node, out map[string][]string) []string {
	const (
		white = iota
		grey
		black
	)
	color := make(map[string]int, len(nodes))
	var stack []string
	var cycle []string
	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, m := range out[n] {
			switch color[m] {
			case grey:
				for i, s := range stack {
					if s == m {
						cycle = append(append([]string(nil), stack[i:]...), m)
						return true
					}
				}
			case white:
				if visit(m) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, n := range nodes {
		if color[n.Label] == white && visit(n.Label) {
			return cycle
		}
	}
	return nil
}

// Consumers returns, for each node label, the labels its stdout feeds, in
// edge order.
func (p *PipelineSpec) Consumers() map[string][]string {
	out := make(map[string][]string)
	for _, e := range p.Edges {
		out[e.From] = append(out[e.From], e.To)
	}
	return out
}

// Producer returns the node feeding label's stdin, or "".
func (p *PipelineSpec) Producer(label string) string {
	for _, e := range p.Edges {
		if e.To == label {
			return e.From
		}
	}
	return ""
}

// validateStop checks the graceful-stop fields of a pipeline node whose
// field path is f.
func validateStop(f, sig string, timeoutMs int64, codes []int) error {
	if sig != "" {
		if _, err := ParseSignal(sig); err != nil {
			return fieldErr(f+".stop_signal", "%v", err)
		}
	}
	if timeoutMs < 0 {
		return fieldErr(f+".stop_timeout_ms", "must be ≥ 0, got %d", timeoutMs)
	}
	for i, code := range codes {
		if code < 0 || code > 255 {
			return fieldErr(fmt.Sprintf("%s.success_exit_codes[%d]", f, i), "%d is not an exit code (0 to 255)", code)
		}
	}
	return nil
}
