// This file tests pipeline validation: labels, edges, cycles, discern and
// restart fields.

package messages

import (
	"reflect"
	"testing"
)

func node(label, exec string, argv ...string) Node {
	return Node{Label: label, Payload: Payload{Native: &NativePayload{Exec: exec, Argv: argv}}}
}

// specPipeline returns the SPEC §1.3 example.
func specPipeline() PipelineSpec {
	return PipelineSpec{
		Label: "fanout",
		Nodes: []Node{
			node("gen", "/usr/bin/seq", "1", "1000000"),
			node("count", "/usr/bin/wc", "-l"),
			node("hash", "/usr/bin/sha256sum"),
		},
		Edges:               []Edge{{From: "gen", To: "count"}, {From: "gen", To: "hash"}},
		Discern:             DiscernPolicy{SlowConsumer: SlowBlock, BufferBytes: 1048576},
		RestartOnFailure:    true,
		RestartBackoffMs:    200,
		RestartMaxBackoffMs: 30000,
	}
}

// ring returns a pipeline whose nodes are labels, joined by edges.
func ring(labels []string, edges ...Edge) PipelineSpec {
	p := PipelineSpec{Label: "p", Edges: edges}
	for _, l := range labels {
		p.Nodes = append(p.Nodes, node(l, "cat"))
	}
	return p
}

func TestPipelineValid(t *testing.T) {
	tests := []struct {
		name string
		p    PipelineSpec
	}{
		{"spec example", specPipeline()},
		{"single node", ring([]string{"only"})},
		{"disconnected nodes", ring([]string{"a", "b", "c"})},
		{"chain", ring([]string{"a", "b", "c"}, Edge{"a", "b"}, Edge{"b", "c"})},
		{"chain listed backwards", ring([]string{"c", "b", "a"}, Edge{"b", "c"}, Edge{"a", "b"})},
		{"tree", ring([]string{"a", "b", "c", "d", "e"}, Edge{"a", "b"}, Edge{"a", "c"}, Edge{"b", "d"}, Edge{"b", "e"})},
		{"drop policy", func() PipelineSpec {
			p := specPipeline()
			p.Discern = DiscernPolicy{MaxBytesPerSec: 1 << 20, BurstBytes: 1 << 16, SlowConsumer: SlowDrop, BufferBytes: 4096}
			return p
		}()},
		{"workspace named", func() PipelineSpec { p := specPipeline(); p.Workspace = "build"; return p }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestPipelineInvalid(t *testing.T) {
	tests := []struct {
		name   string
		p      PipelineSpec
		field  string
		exact  string // full error text when not ""
		subs   []string
		mutate func(*PipelineSpec)
	}{
		{name: "bad label", mutate: func(p *PipelineSpec) { p.Label = "" }, field: "label", subs: []string{"must not be empty"}},
		{name: "no nodes", mutate: func(p *PipelineSpec) { p.Nodes, p.Edges = nil, nil },
			field: "nodes", subs: []string{"at least one node"}},
		{name: "bad node label", mutate: func(p *PipelineSpec) { p.Nodes[1].Label = "c/d" },
			field: "nodes[1].label", subs: []string{`"c/d"`, "characters outside"}},
		{name: "empty node label", mutate: func(p *PipelineSpec) { p.Nodes[0].Label = "" },
			field: "nodes[0].label", subs: []string{"must not be empty"}},
		{name: "duplicate node label", mutate: func(p *PipelineSpec) { p.Nodes[2].Label = "gen" },
			field: "nodes[2].label", subs: []string{`duplicate node "gen"`, "nodes[0]"}},
		{name: "missing native", mutate: func(p *PipelineSpec) { p.Nodes[1].Payload.Native = nil },
			field: "nodes[1].payload.native", subs: []string{"is required"}},
		{name: "relative exec", mutate: func(p *PipelineSpec) { p.Nodes[2].Payload.Native.Exec = "./sha" },
			field: "nodes[2].payload.native.exec", subs: []string{"relative path"}},
		{name: "empty exec", mutate: func(p *PipelineSpec) { p.Nodes[0].Payload.Native.Exec = "" },
			field: "nodes[0].payload.native.exec", subs: []string{"is required"}},
		{name: "bad envp", mutate: func(p *PipelineSpec) { p.Nodes[0].Payload.Native.Envp = []string{"X"} },
			field: "nodes[0].payload.native.envp[0]", subs: []string{"KEY=VALUE"}},
		{name: "negative node soma", mutate: func(p *PipelineSpec) { p.Nodes[1].Soma.PidsMax = -1 },
			field: "nodes[1].soma.pids_max", subs: []string{">= 0"}},
		{name: "bad node stop signal", mutate: func(p *PipelineSpec) { p.Nodes[1].StopSignal = "TERMINATE" },
			field: "nodes[1].stop_signal", subs: []string{`"TERMINATE" is not a signal name or number`}},
		{name: "node stop signal out of range", mutate: func(p *PipelineSpec) { p.Nodes[0].StopSignal = "70" },
			field: "nodes[0].stop_signal", subs: []string{"out of range"}},
		{name: "negative node stop timeout", mutate: func(p *PipelineSpec) { p.Nodes[2].StopTimeoutMs = -5 },
			field: "nodes[2].stop_timeout_ms", subs: []string{"≥ 0", "-5"}},
		{name: "node success code too big", mutate: func(p *PipelineSpec) { p.Nodes[1].SuccessExitCodes = []int{0, 300} },
			field: "nodes[1].success_exit_codes[1]", subs: []string{"300 is not an exit code"}},
		{name: "node success code negative", mutate: func(p *PipelineSpec) { p.Nodes[0].SuccessExitCodes = []int{-1} },
			field: "nodes[0].success_exit_codes[0]", subs: []string{"-1 is not an exit code"}},
		{name: "unknown edge end", mutate: func(p *PipelineSpec) { p.Edges = append(p.Edges, Edge{"gen", "hsah"}) },
			field: "edges[2].to", exact: `edges[2].to: no node "hsah"`},
		{name: "unknown edge start", mutate: func(p *PipelineSpec) { p.Edges[0].From = "gne" },
			field: "edges[0].from", exact: `edges[0].from: no node "gne"`},
		{name: "empty edge end", mutate: func(p *PipelineSpec) { p.Edges[1].To = "" },
			field: "edges[1].to", exact: `edges[1].to: no node ""`},
		{name: "self edge", mutate: func(p *PipelineSpec) { p.Edges = append(p.Edges, Edge{"hash", "hash"}) },
			field: "edges[2]", subs: []string{`self-edge on "hash"`}},
		{name: "duplicate edge", mutate: func(p *PipelineSpec) { p.Edges = append(p.Edges, Edge{"gen", "count"}) },
			field: "edges[2]", subs: []string{"duplicate of edges[0]", "gen -> count"}},
		{name: "negative rate", mutate: func(p *PipelineSpec) { p.Discern.MaxBytesPerSec = -1 },
			field: "discern.max_bytes_per_sec", subs: []string{">= 0"}},
		{name: "negative burst", mutate: func(p *PipelineSpec) { p.Discern.BurstBytes = -1 },
			field: "discern.burst_bytes", subs: []string{">= 0"}},
		{name: "negative buffer", mutate: func(p *PipelineSpec) { p.Discern.BufferBytes = -1 },
			field: "discern.buffer_bytes", subs: []string{">= 0"}},
		{name: "bad slow consumer", mutate: func(p *PipelineSpec) { p.Discern.SlowConsumer = "lossy" },
			field: "discern.slow_consumer", subs: []string{`"lossy" is not one of block, drop`}},
		{name: "negative restart backoff", mutate: func(p *PipelineSpec) { p.RestartBackoffMs = -1 },
			field: "restart_backoff_ms", subs: []string{">= 0"}},
		{name: "negative restart max backoff", mutate: func(p *PipelineSpec) { p.RestartMaxBackoffMs = -1 },
			field: "restart_max_backoff_ms", subs: []string{">= 0"}},
		{name: "restart max backoff below backoff", mutate: func(p *PipelineSpec) { p.RestartBackoffMs, p.RestartMaxBackoffMs = 1000, 10 },
			field: "restart_max_backoff_ms", subs: []string{"10 is below restart_backoff_ms 1000"}},
		{name: "negative restart max", mutate: func(p *PipelineSpec) { p.RestartMax = -1 },
			field: "restart_max", subs: []string{">= 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := specPipeline()
			tt.mutate(&p)
			err := p.Validate()
			wantFieldErr(t, err, tt.field, tt.subs...)
			if tt.exact != "" && err.Error() != tt.exact {
				t.Errorf("error = %q, want exactly %q", err.Error(), tt.exact)
			}
		})
	}
}

func TestPipelineGraphErrors(t *testing.T) {
	abc := []string{"a", "b", "c"}
	tests := []struct {
		name  string
		p     PipelineSpec
		field string
		exact string
	}{
		{"fan-in", ring(abc, Edge{"a", "c"}, Edge{"b", "c"}),
			"edges[1].to", `edges[1].to: node "c" already has an input from "a"; fan-in is not supported`},
		{"cycle of three", ring(abc, Edge{"a", "b"}, Edge{"b", "c"}, Edge{"c", "a"}),
			"edges", "edges: cycle a -> b -> c -> a"},
		{"cycle of two", ring([]string{"x", "y"}, Edge{"x", "y"}, Edge{"y", "x"}),
			"edges", "edges: cycle x -> y -> x"},
		{"cycle found from its first node in spec order", ring(abc, Edge{"c", "b"}, Edge{"b", "a"}, Edge{"a", "c"}),
			"edges", "edges: cycle a -> c -> b -> a"},
		{"cycle beside a chain", ring([]string{"s", "t", "a", "b", "c"},
			Edge{"s", "t"}, Edge{"a", "b"}, Edge{"b", "c"}, Edge{"c", "a"}),
			"edges", "edges: cycle a -> b -> c -> a"},
		{"cycle fed from outside is fan-in first", ring([]string{"s", "a", "b"},
			Edge{"a", "b"}, Edge{"b", "a"}, Edge{"s", "a"}),
			"edges[2].to", `edges[2].to: node "a" already has an input from "b"; fan-in is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			wantFieldErr(t, err, tt.field)
			if err.Error() != tt.exact {
				t.Errorf("error = %q, want exactly %q", err.Error(), tt.exact)
			}
		})
	}
}

func TestPipelineHelpers(t *testing.T) {
	p := specPipeline()
	if got, want := p.Consumers(), map[string][]string{"gen": {"count", "hash"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Consumers() = %v, want %v", got, want)
	}
	for label, want := range map[string]string{"gen": "", "count": "gen", "hash": "gen", "nope": ""} {
		if got := p.Producer(label); got != want {
			t.Errorf("Producer(%q) = %q, want %q", label, got, want)
		}
	}
	if first, max := p.Backoffs(); first != 200 || max != 30000 {
		t.Errorf("Backoffs() = %d, %d; want 200, 30000", first, max)
	}
	var zero PipelineSpec
	if first, max := zero.Backoffs(); first != DefaultBackoffMs || max != DefaultMaxBackoffMs {
		t.Errorf("zero Backoffs() = %d, %d; want defaults", first, max)
	}
}
