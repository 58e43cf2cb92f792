// This file tests reading the state files of the original daemon: one
// fixture per version and one with every optional field, written by hand in
// the shapes its serde derives produce.

package persistence_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/persistence"
)

const (
	origWS1 = "01HZX3K8M2Q4R6T8V0W2Y4A6C8"
	origWS2 = "01HZX3M1D3F5H7K9N1Q3S5V7X9"
	origWS3 = "01HZX3P4G6J8K0N2R4T6W8Y0B2"
)

func readOriginal(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "original", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// origBuild and origWeb are the workspaces of the version fixtures.
func origBuild() messages.WorkspaceSpec {
	return messages.WorkspaceSpec{Label: "build", OnExit: messages.ExitReap, QuotaEnforce: messages.QuotaWarn}
}

func origWeb() messages.WorkspaceSpec {
	return messages.WorkspaceSpec{
		Label:        "web",
		Soma:         messages.Soma{MemoryMaxBytes: 268435456, PidsMax: 32},
		Permissions:  messages.Permissions{AllowExec: []string{"/usr/bin/"}, Env: map[string]string{"LANG": "C.UTF-8"}},
		TTLMs:        600000,
		OnExit:       messages.ExitKeep,
		QuotaEnforce: messages.QuotaOff,
	}
}

func origEcho() messages.PipelineSpec {
	return messages.PipelineSpec{
		Label: "echo-cat", Workspace: origWS1,
		Nodes:            []messages.Node{{Label: "n1", Payload: native("/bin/echo", "hi")}},
		Discern:          messages.DiscernPolicy{SlowConsumer: messages.SlowBlock, BufferBytes: 1048576},
		RestartBackoffMs: 200, RestartMaxBackoffMs: 30000,
	}
}

func origFanout() messages.PipelineSpec {
	return messages.PipelineSpec{
		Label: "fanout", Workspace: origWS2,
		Nodes: []messages.Node{
			{Label: "gen", Payload: native("/usr/bin/seq", "1", "1000")},
			{Label: "count", Payload: native("/usr/bin/wc", "-l")},
		},
		Edges:            []messages.Edge{{From: "gen", To: "count"}},
		Discern:          messages.DiscernPolicy{SlowConsumer: messages.SlowBlock, BufferBytes: 1048576},
		RestartOnFailure: true, RestartBackoffMs: 200, RestartMaxBackoffMs: 30000,
	}
}

func origHashes() messages.PipelineSpec {
	gen := native("/usr/bin/seq", "1", "1000000")
	gen.Native.Envp = []string{"LC_ALL=C"}
	return messages.PipelineSpec{
		Label: "hashes", Workspace: origWS3,
		Nodes: []messages.Node{
			{Label: "gen", Payload: gen, Soma: messages.Soma{MemoryMaxBytes: 67108864, CPUMax: 0.25, PidsMax: 4, NofileMax: 64}},
			{Label: "hash", Payload: native("sha256sum")},
		},
		Edges: []messages.Edge{{From: "gen", To: "hash"}},
		Discern: messages.DiscernPolicy{MaxBytesPerSec: 10485760, BurstBytes: 65536,
			SlowConsumer: messages.SlowDrop, BufferBytes: 2097152},
		RestartOnFailure: true, RestartBackoffMs: 250, RestartMaxBackoffMs: 60000, RestartMax: 5,
	}
}

// origHashesExtra is what the hashes pipeline's nodes carry that a shipote
// node does not hold: the flows, and a per-node restart policy.
const origHashesExtra = `{"spec":{"nodes":[{"flows":{"stdout":{"buffer_bytes":65536,"tap":true}}},` +
	`{"flows":[],"supervision":{"restart":{"backoff_ms":100,"max":3,"max_backoff_ms":5000,"on":"always"}}}]}}`

func native(exec string, argv ...string) messages.Payload {
	return messages.Payload{Native: &messages.NativePayload{Exec: exec, Argv: argv}}
}

func persisted(alive, total int, rss, peak, cpu uint64, pct, cores float64, up int64) messages.Sample {
	return messages.Sample{CommandsAlive: alive, CommandsTotal: total, RSSBytes: rss, RSSPeakBytes: peak,
		CPUUsec: cpu, CPUPercent: pct, CPUCores: cores, UptimeMs: up, Source: "persisted"}
}

func TestDecodeOriginalFiles(t *testing.T) {
	flowsOnly := func(n int) string { // Extra of a pipeline whose n nodes have empty flows
		parts := make([]string, n)
		for i := range parts {
			parts[i] = `{"flows":{}}`
		}
		return `{"spec":{"nodes":[` + strings.Join(parts, ",") + `]}}`
	}
	full := messages.WorkspaceSpec{
		Label: "full",
		Soma:  messages.Soma{MemoryMaxBytes: 536870912, CPUMax: 1.5, PidsMax: 64, NofileMax: 1024},
		Permissions: messages.Permissions{
			AllowExec: []string{"/usr/bin/", "/bin/sh"}, Workdir: "/tmp",
			Env: map[string]string{"LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"},
			UID: ptr(int64(1000)), GID: ptr(int64(1000)),
		},
		TTLMs:        3600001, // 3600 s 500000 ns, rounded up to whole ms
		FlowDirs:     []string{"/run/user/1000/full-flows"},
		OnExit:       messages.ExitKeep,
		QuotaEnforce: messages.QuotaKill,
	}
	for _, tt := range []struct {
		file        string
		version     int
		timestampMs int64
		workspaces  []persistence.WorkspaceEntry
		saved       []persistence.SavedPipeline
		live        []persistence.LivePipeline
	}{
		{
			file: "v1.json", version: 1, timestampMs: 1717000000000,
			workspaces: []persistence.WorkspaceEntry{
				{ID: origWS1, Spec: origBuild()},
				{ID: origWS2, Spec: origWeb(), Pos: 1},
			},
		},
		{
			file: "v2.json", version: 2, timestampMs: 1717000100000,
			workspaces: []persistence.WorkspaceEntry{{ID: origWS1, Spec: origBuild()}},
			saved:      []persistence.SavedPipeline{{Name: "daily", Spec: origEcho(), Extra: json.RawMessage(flowsOnly(1))}},
		},
		{
			file: "v3.json", version: 3, timestampMs: 1717000200000,
			workspaces: []persistence.WorkspaceEntry{{ID: origWS1, Spec: origBuild()}, {ID: origWS2, Spec: origWeb(), Pos: 1}},
			saved:      []persistence.SavedPipeline{{Name: "daily", Spec: origEcho(), Extra: json.RawMessage(flowsOnly(1))}},
			live:       []persistence.LivePipeline{{Workspace: origWS2, Spec: origFanout(), Extra: json.RawMessage(flowsOnly(2))}},
		},
		{
			file: "v4.json", version: 4, timestampMs: 1717000300000,
			workspaces: []persistence.WorkspaceEntry{
				{ID: origWS1, Spec: origBuild(), StatsHistory: []messages.Sample{}},
				{ID: origWS2, Spec: origWeb(), Pos: 1, StatsHistory: []messages.Sample{
					persisted(1, 2, 0, 0, 0, 0, 2, 1000),
					persisted(1, 2, 10485760, 12582912, 250000, 12.5, 2, 2000),
				}},
			},
			saved: []persistence.SavedPipeline{{Name: "daily", Spec: origEcho(), Extra: json.RawMessage(flowsOnly(1))}},
			live:  []persistence.LivePipeline{{Workspace: origWS2, Spec: origFanout(), Tap: true, Extra: json.RawMessage(flowsOnly(2))}},
		},
		{
			file: "full.json", version: 4, timestampMs: 1717000400000,
			workspaces: []persistence.WorkspaceEntry{{ID: origWS3, Spec: full, StatsHistory: []messages.Sample{
				persisted(3, 5, 104857600, 125829120, 1250000, 31.25, 4, 60000),
				persisted(0, 5, 0, 125829120, 0, 0, 4, 61000),
			}}},
			saved: []persistence.SavedPipeline{{Name: "hashes", Spec: origHashes(), Extra: json.RawMessage(origHashesExtra)}},
			live:  []persistence.LivePipeline{{Workspace: origWS3, Spec: origHashes(), Tap: true, Extra: json.RawMessage(origHashesExtra)}},
		},
	} {
		t.Run(tt.file, func(t *testing.T) {
			data := readOriginal(t, tt.file)
			st, problems, err := persistence.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != 0 || len(st.Kept) != 0 {
				t.Fatalf("problems %v, kept %+v", problems, st.Kept)
			}
			if !st.Original {
				t.Error("Original is false")
			}
			want := &persistence.State{Version: tt.version, TimestampMs: tt.timestampMs, Workspaces: tt.workspaces,
				SavedPipelines: tt.saved, LivePipelines: tt.live, Original: true}
			if got := persistence.Comparable(st); !reflect.DeepEqual(got, want) {
				g, _ := json.MarshalIndent(got, "", " ")
				w, _ := json.MarshalIndent(want, "", " ")
				t.Fatalf("decoded state differs:\n got %s\nwant %s", g, w)
				for i := range got.SavedPipelines {
					t.Logf("saved %d extra %s", i, got.SavedPipelines[i].Extra)
				}
			}
			// What is restored is valid as shipote reads it.
			for i := range st.Workspaces {
				if err := st.Workspaces[i].Spec.Validate(); err != nil {
					t.Errorf("workspaces[%d]: %v", i, err)
				}
			}
			for i := range st.SavedPipelines {
				if err := st.SavedPipelines[i].Spec.Validate(); err != nil {
					t.Errorf("saved_pipelines[%d]: %v", i, err)
				}
			}
			for i := range st.LivePipelines {
				if err := st.LivePipelines[i].Spec.Validate(); err != nil {
					t.Errorf("live_pipelines[%d]: %v", i, err)
				}
			}
			// Saved in shipote's format, it reads back the same, with what
			// shipote does not hold still there.
			out, err := persistence.Encode(st)
			if err != nil {
				t.Fatal(err)
			}
			again, problems, err := persistence.Decode(out)
			if err != nil || len(problems) != 0 {
				t.Fatalf("re-read: %v %v", err, problems)
			}
			st.Version = persistence.CurrentVersion
			if !sameState(again, st) {
				t.Fatalf("re-read state differs:\n got %+v\nwant %+v", again, st)
			}
			if !strings.Contains(string(out), `"ttl_ms"`) && tt.file != "v2.json" {
				t.Errorf("no ttl_ms written: %s", out)
			}
		})
	}
}

// sameState compares two decoded states: Pos, Original and the member order
// inside Extra may differ; everything else must not.
func sameState(a, b *persistence.State) bool {
	norm := func(s *persistence.State) (*persistence.State, []any) {
		c := normalize(s)
		c.Original = false
		var extras []any
		ws := append([]persistence.WorkspaceEntry(nil), c.Workspaces...)
		for i := range ws {
			ws[i].Pos = 0
			extras = append(extras, genericJSON(ws[i].Extra))
			ws[i].Extra = nil
		}
		sp := append([]persistence.SavedPipeline(nil), c.SavedPipelines...)
		for i := range sp {
			sp[i].Pos = 0
			extras = append(extras, genericJSON(sp[i].Extra))
			sp[i].Extra = nil
		}
		lp := append([]persistence.LivePipeline(nil), c.LivePipelines...)
		for i := range lp {
			lp[i].Pos = 0
			extras = append(extras, genericJSON(lp[i].Extra))
			lp[i].Extra = nil
		}
		c.Workspaces, c.SavedPipelines, c.LivePipelines = ws, sp, lp
		if len(c.Kept) == 0 {
			c.Kept = nil
		}
		return c, extras
	}
	na, ea := norm(a)
	nb, eb := norm(b)
	return reflect.DeepEqual(na, nb) && reflect.DeepEqual(ea, eb)
}

// genericJSON decodes raw into any (nil for no bytes).
func genericJSON(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // 1e400 is a valid JSON number
	var v any
	if err := dec.Decode(&v); err != nil {
		return "invalid: " + string(raw)
	}
	return v
}

func TestOriginalEntryAmongShipoteEntries(t *testing.T) {
	// Detection is per entry: a shipote file with one entry in the
	// original's shapes reads both, and only that one is translated.
	data := []byte(`{"version":4,"timestamp_ms":1,"workspaces":[
		{"id":"` + ws1 + `","spec":{"label":"new","on_exit":"keep"},"stats_history":[{"timestamp_ms":5,"source":"cgroup1","cpu_cores":1}]},
		{"id":"` + origWS1 + `","spec":{"label":"old","on_exit":"Keep","quota_enforce":"Kill"}}
	]}`)
	st, problems, err := persistence.Decode(data)
	if err != nil || len(problems) != 0 {
		t.Fatalf("%v %v", err, problems)
	}
	if !st.Original || len(st.Workspaces) != 2 {
		t.Fatalf("decoded %+v", st)
	}
	if s := st.Workspaces[1].Spec; s.OnExit != messages.ExitKeep || s.QuotaEnforce != messages.QuotaKill {
		t.Fatalf("original entry read as %+v", s)
	}
	if h := st.Workspaces[0].StatsHistory; len(h) != 1 || h[0].Source != "cgroup1" {
		t.Fatalf("shipote entry's history changed: %+v", h)
	}
	// An entry kept is kept as read, in the original's shapes.
	k, ok := st.KeepEntry(persistence.SectionWorkspaces, 1, "x")
	if !ok || !strings.Contains(string(k.Raw), `"Keep"`) || k.ID != origWS1 || k.Label != "old" {
		t.Fatalf("KeepEntry = %+v %v", k, ok)
	}
}

func TestShipoteFilesAreNotOriginal(t *testing.T) {
	for _, f := range []string{"state-v1.json", "state-v2.json", "state-v3.json", "state-v4.json", "state-bad-entry.json"} {
		st, _, err := persistence.Decode(readFixture(t, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Original {
			t.Errorf("%s: Original is true", f)
		}
	}
}

func TestOriginalShapesNotUnderstoodAreKept(t *testing.T) {
	for _, tt := range []struct {
		name, spec string
		check      func(t *testing.T, st *persistence.State)
	}{
		{
			name: "ttl of another shape stays as an unknown member",
			spec: `{"label":"a","ttl":"10m","on_exit":"Keep"}`,
			check: func(t *testing.T, st *persistence.State) {
				w := st.Workspaces[0]
				if w.Spec.TTLMs != 0 || string(w.Extra) != `{"spec":{"ttl":"10m"}}` {
					t.Fatalf("%+v %s", w.Spec, w.Extra)
				}
			},
		},
		{
			name: "a zero ttl is an expired one",
			spec: `{"label":"a","ttl":{"secs":0,"nanos":0}}`,
			check: func(t *testing.T, st *persistence.State) {
				if st.Workspaces[0].Spec.TTLMs != 1 {
					t.Fatalf("ttl_ms %d", st.Workspaces[0].Spec.TTLMs)
				}
			},
		},
		{
			name: "a huge ttl saturates",
			spec: `{"label":"a","ttl":{"secs":18446744073709551615,"nanos":999999999}}`,
			check: func(t *testing.T, st *persistence.State) {
				if st.Workspaces[0].Spec.TTLMs != 1<<63-1 {
					t.Fatalf("ttl_ms %d", st.Workspaces[0].Spec.TTLMs)
				}
			},
		},
		{
			name: "an unknown variant fails where shipote validates it",
			spec: `{"label":"a","ttl":null,"on_exit":"Linger"}`,
			check: func(t *testing.T, st *persistence.State) {
				s := st.Workspaces[0].Spec
				if s.OnExit != "Linger" || s.Validate() == nil {
					t.Fatalf("%+v", s)
				}
			},
		},
		{
			name: "env as a list of pairs",
			spec: `{"label":"a","ttl":null,"permissions":{"allow_exec":[],"workdir":null,"env":[["A","1"],["B","2"]],"uid":null,"gid":null}}`,
			check: func(t *testing.T, st *persistence.State) {
				p := st.Workspaces[0].Spec.Permissions
				if !reflect.DeepEqual(p.Env, map[string]string{"A": "1", "B": "2"}) || p.UID != nil {
					t.Fatalf("%+v", p)
				}
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(`{"version":1,"timestamp_ms":0,"workspaces":[{"id":"` + origWS1 + `","spec":` + tt.spec + `}]}`)
			st, problems, err := persistence.Decode(data)
			if err != nil || len(problems) != 0 || len(st.Workspaces) != 1 {
				t.Fatalf("%v %v %+v", err, problems, st)
			}
			if !st.Original {
				t.Error("Original is false")
			}
			tt.check(t, st)
		})
	}
}

func TestOriginalPipelineShapes(t *testing.T) {
	spec := `{"label":"p","workspace":"` + origWS1 + `","nodes":[
		{"label":"a","payload":{"Native":{"exec":"/bin/echo","argv":["x"],"envp":[["K","V"]]}},"soma":{"memory_max_bytes":null,"cpu_max":null,"pids_max":null,"nofile_max":null},"flows":{},"supervision":"OneShot"},
		{"label":"b","payload":{"Wasm":{"module":"/x.wasm"}},"soma":{},"flows":{},"supervision":"OneShot"}],
		"edges":[["a","b"]],"discern":{"max_bytes_per_sec":null,"burst_bytes":null,"slow_consumer":"Drop","buffer_bytes":null},
		"restart_on_failure":false,"restart_backoff_ms":200,"restart_max_backoff_ms":30000,"restart_max":0}`
	data := []byte(`{"version":3,"timestamp_ms":0,"workspaces":[],"saved_pipelines":[{"name":"p","spec":` + spec + `}]}`)
	st, problems, err := persistence.Decode(data)
	if err != nil || len(problems) != 0 || len(st.SavedPipelines) != 1 {
		t.Fatalf("%v %v %+v", err, problems, st)
	}
	p := st.SavedPipelines[0]
	if n := p.Spec.Nodes[0].Payload.Native; n == nil || n.Exec != "/bin/echo" || !reflect.DeepEqual(n.Envp, []string{"K=V"}) {
		t.Fatalf("node a payload %+v", p.Spec.Nodes[0].Payload)
	}
	if p.Spec.Nodes[1].Payload.Native != nil {
		t.Fatal("a payload variant shipote does not run became native")
	}
	if !reflect.DeepEqual(p.Spec.Edges, []messages.Edge{{From: "a", To: "b"}}) || p.Spec.Discern.SlowConsumer != messages.SlowDrop {
		t.Fatalf("edges %+v discern %+v", p.Spec.Edges, p.Spec.Discern)
	}
	// The unknown payload variant is carried, and the pipeline does not
	// validate: the engine keeps it rather than run it wrong.
	if string(p.Extra) != `{"spec":{"nodes":[{"flows":{}},{"flows":{},"payload":{"Wasm":{"module":"/x.wasm"}}}]}}` {
		t.Fatalf("extra %s", p.Extra)
	}
	if err := p.Spec.Validate(); err == nil || !strings.Contains(err.Error(), "nodes[1].payload.native") {
		t.Fatalf("Validate: %v", err)
	}
}
