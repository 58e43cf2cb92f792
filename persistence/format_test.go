// This file tests the state format: fixtures of every version, round trips,
// bad documents and bad entries, and that Encode writes what encoding/json
// would.

package persistence_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/persistence"
)

const (
	ws1 = "01JA2Q7X9K3M5N8P4R6T0V2W1Y"
	ws2 = "01JA2QBC4D5E6F7G8H9J0K1M2N"
	run = "01JA2R0S1T2V3W4X5Y6Z7A8B9C"
)

func ptr[T any](v T) *T { return &v }

// fullWorkspace returns a workspace spec with every field set.
func fullWorkspace(label string) messages.WorkspaceSpec {
	return messages.WorkspaceSpec{
		Label: label,
		Soma:  messages.Soma{MemoryMaxBytes: 512 << 20, CPUMax: 1.5, PidsMax: 64, NofileMax: 1024},
		Permissions: messages.Permissions{
			AllowExec: []string{"/usr/bin/", "/bin/sh"},
			Workdir:   "/srv/" + label,
			Env:       map[string]string{"LANG": "C.UTF-8", "Z": "<&>\u2028\"é"},
			UID:       ptr(int64(1000)),
			GID:       ptr(int64(1001)),
		},
		TTLMs:        600000,
		FlowDirs:     []string{"/run/user/1000/" + label + "-flows"},
		OnExit:       messages.ExitReap,
		QuotaEnforce: messages.QuotaKill,
		LogMaxBytes:  1 << 20,
		LogMaxFiles:  3,
		Project:      "shop",
	}
}

// fullPipeline returns a pipeline spec with every field set.
func fullPipeline(label, workspace string) messages.PipelineSpec {
	return messages.PipelineSpec{
		Label:     label,
		Workspace: workspace,
		Project:   "stack",
		Nodes: []messages.Node{
			{Label: "gen", Payload: messages.Payload{Native: &messages.NativePayload{
				Exec: "/usr/bin/seq", Argv: []string{"1", "1000000"}, Envp: []string{"LC_ALL=C"}}},
				Soma:       messages.Soma{MemoryMaxBytes: 1 << 26, CPUMax: 0.25, PidsMax: 4, NofileMax: 64},
				StopSignal: "INT", StopTimeoutMs: 1500, SuccessExitCodes: []int{141}},
			{Label: "count", Payload: messages.Payload{Native: &messages.NativePayload{Exec: "wc", Argv: []string{"-l"}}}},
		},
		Edges: []messages.Edge{{From: "gen", To: "count"}},
		Discern: messages.DiscernPolicy{MaxBytesPerSec: 10 << 20, BurstBytes: 65536,
			SlowConsumer: messages.SlowDrop, BufferBytes: 1 << 20},
		RestartOnFailure:    true,
		RestartBackoffMs:    200,
		RestartMaxBackoffMs: 30000,
		RestartMax:          5,
	}
}

func samples(n int, base int64) []messages.Sample {
	out := make([]messages.Sample, n)
	for i := range out {
		out[i] = messages.Sample{
			TimestampMs: base + int64(i)*1000, CommandsAlive: 2, CommandsTotal: 3 + i,
			RSSBytes: 100<<20 + uint64(i)*4096, RSSPeakBytes: 120 << 20, CPUUsec: 1_250_000 + uint64(i)*310_000,
			CPUPercent: 31.25 + float64(i)/3, CPUCores: 1.5, UptimeMs: 60000 + int64(i)*1000, Source: "cgroup1",
		}
	}
	return out
}

// fullState returns a state in which every field of every type is set.
func fullState() *persistence.State {
	return &persistence.State{
		Version:     persistence.CurrentVersion,
		TimestampMs: 1728990000123,
		Workspaces: []persistence.WorkspaceEntry{
			{ID: ws1, Spec: fullWorkspace("build"), StatsHistory: samples(16, 1728989985000)},
			{ID: ws2, Spec: fullWorkspace("web"), StatsHistory: samples(16, 1728989986000), Pos: 1},
		},
		SavedPipelines: []persistence.SavedPipeline{
			{Name: "fanout", Spec: fullPipeline("fanout", "build")},
		},
		LivePipelines: []persistence.LivePipeline{
			{ID: run, Workspace: ws1, Spec: fullPipeline("fanout", ws1), Tap: true},
		},
		LiveCommands: []persistence.LiveCommand{
			{ID: cmdID, Workspace: ws1, Spec: fullCommand("web")},
		},
		JournalSeq: 42,
	}
}

const cmdID = "01JA2R5Q1T2V3W4X5Y6Z7A8B9D"

// fullCommand is a command with every field set.
func fullCommand(label string) messages.CommandRef {
	return messages.CommandRef{
		Label:   label,
		Payload: messages.Payload{Native: &messages.NativePayload{Exec: "/usr/bin/python3", Argv: []string{"-m", "http.server"}, Envp: []string{"PORT=8000"}}},
		Soma:    messages.Soma{MemoryMaxBytes: 1 << 20, CPUMax: 0.5, PidsMax: 8, NofileMax: 128},
		Supervision: messages.Supervision{Restart: &messages.RestartPolicy{On: messages.RestartAlways,
			BackoffMs: 100, MaxBackoffMs: 1000, Max: 3}},
		StopSignal:       "SIGINT",
		StopTimeoutMs:    2500,
		SuccessExitCodes: []int{143, 0},
		Ready:            &messages.Probe{Exec: []string{"test", "-f", "/run/ready"}, TCP: "127.0.0.1:8000", HTTP: "http://127.0.0.1:8000/", IntervalMs: 500, TimeoutMs: 1000, FailureThreshold: 3},
		Health:           &messages.Probe{Exec: []string{"true"}, TCP: "127.0.0.1:8001", HTTP: "http://127.0.0.1:8000/healthz", IntervalMs: 5000, TimeoutMs: 900, FailureThreshold: 2},
		DependsOn:        []string{"db", "cache"},
		Schedule:         "0 3 * * *",
		Concurrency:      messages.ConcurrencyForbid,
		Instances:        2,
		EnvFile:          []string{"/etc/app.env"},
		InstanceOf:       "webs",
	}
}

// checkAllSet fails the test when any field reachable from v is its zero
// value, so that a field added to a spec later is covered by the round trip.
// Fields that are not written as JSON members (json:"-", unexported) are
// not looked at.
func checkAllSet(t *testing.T, path string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			t.Errorf("%s is nil: fill it in fullState", path)
			return
		}
		checkAllSet(t, path, v.Elem())
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Tag.Get("json") == "-" {
				continue
			}
			checkAllSet(t, path+"."+f.Name, v.Field(i))
		}
	case reflect.Slice:
		if v.Len() == 0 {
			t.Errorf("%s is empty: fill it in fullState", path)
		}
		if v.Len() > 0 { // the first element carries every field
			checkAllSet(t, path+"[0]", v.Index(0))
		}
	case reflect.Map:
		if v.Len() == 0 {
			t.Errorf("%s is empty: fill it in fullState", path)
		}
	default:
		if v.IsZero() {
			t.Errorf("%s is zero: fill it in fullState", path)
		}
	}
}

func TestRoundTripKeepsEverything(t *testing.T) {
	want := fullState()
	checkAllSet(t, "State", reflect.ValueOf(want))
	data, err := persistence.Encode(want)
	if err != nil {
		t.Fatal(err)
	}
	got, problems, err := persistence.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	if !reflect.DeepEqual(persistence.Comparable(got), want) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, want)
	}
	if len(got.Workspaces[0].StatsHistory) != 16 {
		t.Fatalf("stats history has %d samples, want 16", len(got.Workspaces[0].StatsHistory))
	}
}

func TestEncodeWritesCurrentVersionWithoutModifyingInput(t *testing.T) {
	st := &persistence.State{Version: 2}
	data, err := persistence.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":4,"timestamp_ms":0,"workspaces":[],"saved_pipelines":[],"live_pipelines":[]}`
	if string(data) != want {
		t.Fatalf("Encode(empty) = %s, want %s", data, want)
	}
	if st.Version != 2 || st.Workspaces != nil {
		t.Fatalf("Encode modified its input: %+v", st)
	}
	if data, err := persistence.Encode(nil); err != nil || string(data) != want {
		t.Fatalf("Encode(nil) = %s, %v", data, err)
	}
}

// TestEncodeMatchesStdlib checks that the faster encoder writes exactly the
// bytes encoding/json writes, including escapes, floats, map order, omitzero
// and invalid UTF-8.
func TestEncodeMatchesStdlib(t *testing.T) {
	st := fullState()
	tricky := []string{"<script>&amp;</script>", "\u2028\u2029", "\x00\x01\x1f\x7f", "tab\tnl\n\"q\"\\",
		"invalid \xff\xfe utf-8", "日本語 ✓ 😀", "\ufffd", ""}
	ws := fullWorkspace("tricky")
	ws.Permissions.Env = map[string]string{}
	for i, s := range tricky {
		ws.Permissions.Env[fmt.Sprintf("K%02d%s", 20-i, s)] = s
		ws.Permissions.AllowExec = append(ws.Permissions.AllowExec, "/"+s)
	}
	floats := []float64{0, math.Copysign(0, -1), 0.1, 1.0 / 3, 1e20, 1e21, 1e-6, 1e-7, 123456789.125,
		math.MaxFloat64, math.SmallestNonzeroFloat64, -2.5e-300, 99.99999999999999}
	var hist []messages.Sample
	for _, f := range floats {
		hist = append(hist, messages.Sample{CPUPercent: f, CPUCores: -f, RSSBytes: math.MaxUint64,
			TimestampMs: math.MinInt64, UptimeMs: math.MaxInt64, Source: "procfs"})
	}
	ws.Soma = messages.Soma{CPUMax: 1e-9}
	st.Workspaces = append(st.Workspaces,
		persistence.WorkspaceEntry{ID: "x", Spec: ws, StatsHistory: hist},
		persistence.WorkspaceEntry{ID: "minimal", Spec: messages.WorkspaceSpec{Label: "m"}},
		persistence.WorkspaceEntry{ID: "empty-perm", Spec: messages.WorkspaceSpec{Label: "e",
			Permissions: messages.Permissions{AllowExec: []string{}, Env: map[string]string{}}},
			StatsHistory: []messages.Sample{}})
	st.SavedPipelines = append(st.SavedPipelines, persistence.SavedPipeline{Name: "bare",
		Spec: messages.PipelineSpec{Label: "bare", Nodes: []messages.Node{{Label: "n",
			Payload: messages.Payload{Native: &messages.NativePayload{Exec: "true"}}}}}})
	st.LivePipelines = append(st.LivePipelines, persistence.LivePipeline{Workspace: ws2,
		Spec: messages.PipelineSpec{Label: "nil-nodes"}})

	got, err := persistence.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		lo := max(0, i-80)
		t.Fatalf("Encode differs from encoding/json at byte %d:\n got …%s\nwant …%s",
			i, got[lo:min(len(got), i+80)], want[lo:min(len(want), i+80)])
	}
}

func TestEncodeNonFiniteSamplesWrittenAsZero(t *testing.T) {
	st := fullState()
	st.Workspaces[1].StatsHistory[3].CPUPercent = math.NaN()
	st.Workspaces[1].StatsHistory[4].CPUCores = math.Inf(1)
	data, err := persistence.Encode(st)
	if err != nil {
		t.Fatalf("Encode with NaN: %v", err)
	}
	got, _, err := persistence.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	h := got.Workspaces[1].StatsHistory
	if h[3].CPUPercent != 0 || h[4].CPUCores != 0 || h[5].CPUPercent != st.Workspaces[1].StatsHistory[5].CPUPercent {
		t.Fatalf("samples after encode: %+v %+v %+v", h[3], h[4], h[5])
	}
	if !math.IsNaN(st.Workspaces[1].StatsHistory[3].CPUPercent) {
		t.Fatal("Encode modified the caller's samples")
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fixtureBuild is the "build" workspace spec of the fixtures.
func fixtureBuild() messages.WorkspaceSpec {
	return messages.WorkspaceSpec{
		Label: "build",
		Soma:  messages.Soma{MemoryMaxBytes: 536870912, CPUMax: 1.5, PidsMax: 64, NofileMax: 1024},
		Permissions: messages.Permissions{
			AllowExec: []string{"/usr/bin/", "/bin/sh"},
			Workdir:   "/srv/build",
			Env:       map[string]string{"LANG": "C.UTF-8", "PATH": "/usr/local/bin:/usr/bin:/bin"},
			UID:       ptr(int64(1000)), GID: ptr(int64(1000)),
		},
		TTLMs: 600000, FlowDirs: []string{"/run/user/1000/build-flows"},
		OnExit: messages.ExitKeep, QuotaEnforce: messages.QuotaWarn,
	}
}

func fixtureWeb() messages.WorkspaceSpec {
	return messages.WorkspaceSpec{
		Label: "web",
		Soma:  messages.Soma{MemoryMaxBytes: 268435456, CPUMax: 0.5},
		Permissions: messages.Permissions{
			AllowExec: []string{"/usr/bin/python3"},
			Env:       map[string]string{"PORT": "8000"},
		},
		OnExit: messages.ExitReap, QuotaEnforce: messages.QuotaKill,
	}
}

func fixtureFanout() messages.PipelineSpec {
	native := func(exec string, argv ...string) messages.Payload {
		return messages.Payload{Native: &messages.NativePayload{Exec: exec, Argv: argv}}
	}
	return messages.PipelineSpec{
		Label: "fanout",
		Nodes: []messages.Node{
			{Label: "gen", Payload: native("/usr/bin/seq", "1", "1000000")},
			{Label: "count", Payload: native("/usr/bin/wc", "-l")},
			{Label: "hash", Payload: native("/usr/bin/sha256sum"), Soma: messages.Soma{MemoryMaxBytes: 67108864}},
		},
		Edges: []messages.Edge{{From: "gen", To: "count"}, {From: "gen", To: "hash"}},
		Discern: messages.DiscernPolicy{MaxBytesPerSec: 10485760, BurstBytes: 65536,
			SlowConsumer: messages.SlowBlock, BufferBytes: 1048576},
		RestartOnFailure: true, RestartBackoffMs: 200, RestartMaxBackoffMs: 30000, RestartMax: 5,
	}
}

func TestFixtures(t *testing.T) {
	tests := []struct {
		file        string
		version     int
		saved, live int
		liveIDs     []string
		samples     []int // per workspace
	}{
		{"state-v1.json", 1, 0, 0, nil, []int{0, 0}},
		{"state-v2.json", 2, 2, 0, nil, []int{0, 0}},
		{"state-v3.json", 3, 2, 1, []string{""}, []int{0, 0}},
		{"state-v4.json", 4, 2, 2, []string{run, ""}, []int{3, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			st, problems, err := persistence.Decode(readFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) != 0 {
				t.Fatalf("problems: %v", problems)
			}
			if st.Version != tt.version || st.TimestampMs != 1728990000000 {
				t.Fatalf("version %d timestamp %d", st.Version, st.TimestampMs)
			}
			if len(st.Workspaces) != 2 {
				t.Fatalf("%d workspaces, want 2", len(st.Workspaces))
			}
			if st.Workspaces[0].ID != ws1 || st.Workspaces[1].ID != ws2 {
				t.Fatalf("workspace IDs %q %q", st.Workspaces[0].ID, st.Workspaces[1].ID)
			}
			if !reflect.DeepEqual(st.Workspaces[0].Spec, fixtureBuild()) {
				t.Fatalf("workspace 0 spec:\n got %+v\nwant %+v", st.Workspaces[0].Spec, fixtureBuild())
			}
			if !reflect.DeepEqual(st.Workspaces[1].Spec, fixtureWeb()) {
				t.Fatalf("workspace 1 spec:\n got %+v\nwant %+v", st.Workspaces[1].Spec, fixtureWeb())
			}
			for i, n := range tt.samples {
				if got := len(st.Workspaces[i].StatsHistory); got != n {
					t.Fatalf("workspace %d has %d samples, want %d", i, got, n)
				}
			}
			if tt.version == 4 {
				s := st.Workspaces[0].StatsHistory[2]
				want := messages.Sample{TimestampMs: 1728989999000, CommandsAlive: 2, CommandsTotal: 3,
					RSSBytes: 104857600 + 2*4096, RSSPeakBytes: 104857600 + 2*4096, CPUUsec: 1250000 + 2*310000,
					CPUPercent: 31.25, CPUCores: 1.5, UptimeMs: 62000, Source: "cgroup1"}
				if s != want {
					t.Fatalf("sample:\n got %+v\nwant %+v", s, want)
				}
			}
			if len(st.SavedPipelines) != tt.saved {
				t.Fatalf("%d saved pipelines, want %d", len(st.SavedPipelines), tt.saved)
			}
			if tt.saved > 0 {
				if st.SavedPipelines[0].Name != "fanout" || !reflect.DeepEqual(st.SavedPipelines[0].Spec, fixtureFanout()) {
					t.Fatalf("saved pipeline 0: %+v", st.SavedPipelines[0])
				}
				if st.SavedPipelines[1].Name != "tail-logs" || st.SavedPipelines[1].Spec.Discern.SlowConsumer != messages.SlowDrop {
					t.Fatalf("saved pipeline 1: %+v", st.SavedPipelines[1])
				}
			}
			if len(st.LivePipelines) != tt.live {
				t.Fatalf("%d live pipelines, want %d", len(st.LivePipelines), tt.live)
			}
			for i, id := range tt.liveIDs {
				if st.LivePipelines[i].ID != id {
					t.Fatalf("live pipeline %d ID %q, want %q", i, st.LivePipelines[i].ID, id)
				}
			}
			if tt.live > 0 {
				lp := st.LivePipelines[0]
				want := fixtureFanout()
				want.Workspace = ws1
				if lp.Workspace != ws1 || !lp.Tap || !reflect.DeepEqual(lp.Spec, want) {
					t.Fatalf("live pipeline 0: %+v", lp)
				}
			}
			// Every entry of the fixtures is valid.
			for i := range st.Workspaces {
				spec := st.Workspaces[i].Spec
				spec.Permissions.Workdir = "" // may not exist here
				if err := spec.Validate(); err != nil {
					t.Errorf("workspaces[%d]: %v", i, err)
				}
			}
			for i := range st.SavedPipelines {
				if err := st.SavedPipelines[i].Spec.Validate(); err != nil {
					t.Errorf("saved_pipelines[%d]: %v", i, err)
				}
			}
			// Re-encoding writes the current version and keeps everything.
			data, err := persistence.Encode(st)
			if err != nil {
				t.Fatal(err)
			}
			again, _, err := persistence.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			st.Version = persistence.CurrentVersion
			if !reflect.DeepEqual(normalize(again), normalize(st)) {
				t.Fatalf("re-encoded state differs:\n got %+v\nwant %+v", again, st)
			}
		})
	}
}

// normalize makes nil and empty top-level sections compare equal.
func normalize(s *persistence.State) *persistence.State {
	c := *persistence.Comparable(s)
	if len(c.Workspaces) == 0 {
		c.Workspaces = nil
	}
	if len(c.SavedPipelines) == 0 {
		c.SavedPipelines = nil
	}
	if len(c.LivePipelines) == 0 {
		c.LivePipelines = nil
	}
	if len(c.LiveCommands) == 0 {
		c.LiveCommands = nil
	}
	return &c
}

func TestOldVersionCarryingNewerFieldsKeepsThem(t *testing.T) {
	data := []byte(`{"version":1,"workspaces":[{"id":"` + ws1 + `","spec":{"label":"a"},"stats_history":[{"timestamp_ms":5,"source":"procfs"}]}],
		"saved_pipelines":[{"name":"p","spec":{"label":"p","nodes":[]}}],
		"live_pipelines":[{"workspace":"` + ws1 + `","spec":{"label":"p","nodes":[]},"tap":false}]}`)
	st, problems, err := persistence.Decode(data)
	if err != nil || len(problems) != 0 {
		t.Fatalf("err %v problems %v", err, problems)
	}
	if st.Version != 1 || len(st.Workspaces[0].StatsHistory) != 1 || len(st.SavedPipelines) != 1 || len(st.LivePipelines) != 1 {
		t.Fatalf("decoded %+v", st)
	}
}

func TestDecodeBadDocuments(t *testing.T) {
	tests := []struct {
		name, data string
		is         error
		contains   []string
	}{
		{"empty", "", persistence.ErrCorrupt, []string{"truncated"}},
		{"blank", " \n", persistence.ErrCorrupt, []string{"truncated"}},
		{"truncated", `{"version":4,"workspaces":[{"id":"x"`, persistence.ErrCorrupt, []string{"truncated"}},
		{"garbage", "\x00\x00\x00\x00", persistence.ErrCorrupt, []string{"invalid JSON at byte 1"}},
		{"null", "null", persistence.ErrCorrupt, []string{"null"}},
		{"array", "[]", persistence.ErrCorrupt, []string{"expected a JSON object, got array"}},
		{"no version", `{"workspaces":[]}`, persistence.ErrCorrupt, []string{"no version"}},
		{"version zero", `{"version":0}`, persistence.ErrCorrupt, []string{"version 0"}},
		{"version negative", `{"version":-3}`, persistence.ErrCorrupt, []string{"version -3"}},
		{"version string", `{"version":"4"}`, persistence.ErrCorrupt, []string{`version "4" is not an integer`}},
		{"version float", `{"version":4.5}`, persistence.ErrCorrupt, []string{"version 4.5 is not an integer"}},
		{"trailing data", `{"version":4}{"version":4}`, persistence.ErrCorrupt, []string{"invalid JSON"}},
		{"workspaces not an array", `{"version":4,"workspaces":{"a":1}}`, persistence.ErrCorrupt,
			[]string{"workspaces is not an array"}},
		{"saved not an array", `{"version":2,"saved_pipelines":"x"}`, persistence.ErrCorrupt,
			[]string{"saved_pipelines is not an array"}},
		{"live not an array", `{"version":3,"live_pipelines":7}`, persistence.ErrCorrupt,
			[]string{"live_pipelines is not an array"}},
		{"too new", `{"version":5}`, persistence.ErrTooNew, []string{"version 5", "versions 1 to 4"}},
		{"too new other shape", `{"version":99,"workspaces":"elsewhere","x":[1]}`, persistence.ErrTooNew,
			[]string{"version 99"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, problems, err := persistence.Decode([]byte(tt.data))
			if err == nil {
				t.Fatalf("Decode succeeded: %+v %v", st, problems)
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("error %v does not wrap %v", err, tt.is)
			}
			for _, c := range tt.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error %q does not contain %q", err, c)
				}
			}
			if st != nil {
				t.Fatalf("state returned with an error: %+v", st)
			}
		})
	}
}

func TestDecodeFixturesOfErrors(t *testing.T) {
	_, _, err := persistence.Decode(readFixture(t, "state-v5.json"))
	if !errors.Is(err, persistence.ErrTooNew) || !strings.Contains(err.Error(), "version 5") {
		t.Fatalf("state-v5.json: %v", err)
	}
	_, _, err = persistence.Decode(readFixture(t, "corrupt.json"))
	if !errors.Is(err, persistence.ErrCorrupt) {
		t.Fatalf("corrupt.json: %v", err)
	}
}

func TestDecodeEmptyCurrentDocument(t *testing.T) {
	for _, data := range []string{`{"version":4}`, `{"version":4,"workspaces":null,"saved_pipelines":[],"live_pipelines":null}`} {
		st, problems, err := persistence.Decode([]byte(data))
		if err != nil || len(problems) != 0 {
			t.Fatalf("%s: %v %v", data, err, problems)
		}
		if st.Version != 4 || len(st.Workspaces)+len(st.SavedPipelines)+len(st.LivePipelines) != 0 {
			t.Fatalf("%s: %+v", data, st)
		}
	}
}

func TestDecodeBadEntriesAreKeptWithProblems(t *testing.T) {
	data := readFixture(t, "state-bad-entry.json")
	st, problems, err := persistence.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, w := range st.Workspaces {
		ids = append(ids, w.ID+":"+w.Spec.Label)
	}
	// web-2 misspells a member: the known part is in effect, the
	// misspelled member is carried in Extra.
	wantIDs := []string{ws1 + ":build", "01JA2QE0CD5E6F7G8H9J0K1M2N:web-2", "01JA2QF00D5E6F7G8H9J0K1M2P:cache"}
	if !reflect.DeepEqual(ids, wantIDs) {
		t.Fatalf("workspaces in effect %v, want %v", ids, wantIDs)
	}
	if got := string(st.Workspaces[1].Extra); got != `{"spec":{"soma":{"memroy_max_bytes":1}}}` {
		t.Errorf("web-2 Extra = %s", got)
	}
	if st.Workspaces[1].Spec.Soma.MemoryMaxBytes != 0 || st.Workspaces[1].Spec.Permissions.Env["PORT"] != "8000" {
		t.Errorf("web-2 spec = %+v", st.Workspaces[1].Spec)
	}
	if len(st.Workspaces[0].StatsHistory) != 3 || st.Workspaces[2].StatsHistory != nil {
		t.Fatalf("stats histories: %d and %v", len(st.Workspaces[0].StatsHistory), st.Workspaces[2].StatsHistory)
	}
	for i, w := range st.Workspaces {
		if w.Pos != i {
			t.Errorf("workspaces[%d].Pos = %d", i, w.Pos)
		}
	}
	if len(st.SavedPipelines) != 2 || st.SavedPipelines[1].Name != "tail-logs" || st.SavedPipelines[1].Pos != 1 {
		t.Fatalf("saved pipelines in effect: %+v", st.SavedPipelines)
	}
	if len(st.LivePipelines) != 2 || st.LivePipelines[0].ID != run || string(st.LivePipelines[1].Extra) != `{"pid":4242}` {
		t.Fatalf("live pipelines in effect: %+v", st.LivePipelines)
	}
	want := []struct{ path, id, contains string }{
		{"workspaces[2].stats_history", "01JA2QF00D5E6F7G8H9J0K1M2P", "rss_bytes"},
		{"saved_pipelines[2]", "broken", "spec.nodes"},
		{"comment", "", "unknown field; ignored"},
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.Error())
	}
	if len(problems) != len(want) {
		t.Fatalf("problems:\n%s", strings.Join(got, "\n"))
	}
	byPath := map[string]persistence.Problem{}
	for _, p := range problems {
		byPath[p.Path] = p
	}
	for _, w := range want {
		p, ok := byPath[w.path]
		if !ok {
			t.Errorf("no problem for %s; got:\n%s", w.path, strings.Join(got, "\n"))
			continue
		}
		if p.ID != w.id {
			t.Errorf("%s: ID %q, want %q", w.path, p.ID, w.id)
		}
		if !strings.Contains(p.Error(), w.contains) || !strings.HasPrefix(p.Error(), w.path) {
			t.Errorf("%s: problem %q does not start with the path and contain %q", w.path, p.Error(), w.contains)
		}
	}
	if !errors.Is(byPath["saved_pipelines[2]"], messages.ErrMalformed) {
		t.Errorf("entry problem does not wrap messages.ErrMalformed: %v", byPath["saved_pipelines[2]"])
	}

	// The entry that cannot be decoded is kept, byte for byte.
	if len(st.Kept) != 1 {
		t.Fatalf("kept: %+v", st.Kept)
	}
	k := st.Kept[0]
	wantRaw := sectionEntry(t, data, "saved_pipelines", 2)
	if k.Section != persistence.SectionSavedPipelines || k.ID != "broken" || k.Label != "broken" ||
		!bytes.Equal(k.Raw, wantRaw) || !strings.Contains(k.Reason, "spec.nodes") {
		t.Fatalf("kept entry %+v (raw %s)", k, k.Raw)
	}
	if !bytes.Contains(k.Raw, []byte("\n        \"nodes\": \"gen\"")) {
		t.Fatalf("kept entry is not the bytes as read: %s", k.Raw)
	}

	// Written back after the entries in effect, and read back the same.
	out, err := persistence.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(out) {
		t.Fatalf("Encode wrote invalid JSON: %s", out)
	}
	if !bytes.Contains(out, wantRaw) {
		t.Fatal("the kept entry's bytes are not in the output")
	}
	again, problems2, err := persistence.Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Kept) != 1 || !reflect.DeepEqual(again.Kept[0], k) {
		t.Fatalf("kept after a round trip: %+v, want %+v", again.Kept, k)
	}
	if len(problems2) != 1 || problems2[0].Path != "saved_pipelines[2]" {
		t.Fatalf("problems after a round trip: %v", problems2)
	}
	if string(again.Workspaces[1].Extra) != string(st.Workspaces[1].Extra) ||
		string(again.LivePipelines[1].Extra) != `{"pid":4242}` {
		t.Fatalf("extras after a round trip: %s %s", again.Workspaces[1].Extra, again.LivePipelines[1].Extra)
	}
	if again.Workspaces[2].StatsHistory != nil {
		t.Fatal("a dropped history came back")
	}
}

// sectionEntry returns the raw bytes of entry i of section in the document
// data, as encoding/json splits them.
func sectionEntry(t *testing.T, data []byte, section string, i int) json.RawMessage {
	t.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(doc[section], &list); err != nil {
		t.Fatal(err)
	}
	return list[i]
}

func TestKeepEntry(t *testing.T) {
	data := readFixture(t, "state-v4.json")
	st, problems, err := persistence.Decode(data)
	if err != nil || len(problems) != 0 {
		t.Fatalf("%v %v", err, problems)
	}
	for _, sec := range []string{persistence.SectionWorkspaces, persistence.SectionSavedPipelines, persistence.SectionLivePipelines} {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		var list []json.RawMessage
		if err := json.Unmarshal(doc[sec], &list); err != nil || len(list) == 0 {
			t.Fatalf("fixture has no %s: %v", sec, err)
		}
		for i, raw := range list {
			k, ok := st.KeepEntry(sec, i, "workdir /srv/x is missing")
			if !ok {
				t.Fatalf("KeepEntry(%s, %d) not ok", sec, i)
			}
			if k.Section != sec || !bytes.Equal(k.Raw, raw) || k.Reason != "workdir /srv/x is missing" {
				t.Fatalf("KeepEntry(%s, %d) = %+v", sec, i, k)
			}
			switch sec {
			case persistence.SectionWorkspaces:
				w := st.Workspaces[i]
				if w.Pos != i || k.ID != w.ID || k.Label != w.Spec.Label || k.Workspace != "" {
					t.Errorf("workspace %d: %+v", i, k)
				}
			case persistence.SectionSavedPipelines:
				p := st.SavedPipelines[i]
				if p.Pos != i || k.ID != p.Name || k.Label != p.Spec.Label {
					t.Errorf("saved pipeline %d: %+v", i, k)
				}
			case persistence.SectionLivePipelines:
				p := st.LivePipelines[i]
				if p.Pos != i || k.ID != p.ID || k.Label != p.Spec.Label || k.Workspace != p.Workspace || k.Workspace == "" {
					t.Errorf("live pipeline %d: %+v", i, k)
				}
			}
		}
		if _, ok := st.KeepEntry(sec, len(list), "x"); ok {
			t.Errorf("KeepEntry(%s, past the end) ok", sec)
		}
		if _, ok := st.KeepEntry(sec, -1, "x"); ok {
			t.Errorf("KeepEntry(%s, -1) ok", sec)
		}
	}
	if _, ok := st.KeepEntry("live_processes", 0, "x"); ok {
		t.Error("KeepEntry of an unknown section ok")
	}
	if _, ok := fullState().KeepEntry(persistence.SectionWorkspaces, 0, "x"); ok {
		t.Error("KeepEntry on a state built in memory ok")
	}
	var nilState *persistence.State
	if _, ok := nilState.KeepEntry(persistence.SectionWorkspaces, 0, "x"); ok {
		t.Error("KeepEntry on nil ok")
	}
}

func TestKeptEntryIsWrittenBackAndReadsBack(t *testing.T) {
	// A workspace the engine could not restore: moved from the entries in
	// effect to Kept, it is written back as read and, decoding fine, is in
	// effect again on the next load.
	data := readFixture(t, "state-v4.json")
	st, _, err := persistence.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	k, ok := st.KeepEntry(persistence.SectionWorkspaces, 0, "workdir missing")
	if !ok {
		t.Fatal("KeepEntry not ok")
	}
	first := st.Workspaces[0]
	st.Workspaces = st.Workspaces[1:]
	st.Kept = append(st.Kept, k)
	out, err := persistence.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, k.Raw) || !json.Valid(out) {
		t.Fatalf("output lacks the kept bytes or is invalid:\n%s", out)
	}
	again, problems, err := persistence.Decode(out)
	if err != nil || len(problems) != 0 {
		t.Fatalf("%v %v", err, problems)
	}
	last := again.Workspaces[len(again.Workspaces)-1]
	if last.ID != first.ID || !reflect.DeepEqual(last.Spec, first.Spec) || last.Pos != len(again.Workspaces)-1 {
		t.Fatalf("kept workspace read back as %+v", last)
	}
}

func TestEncodeKeptEdgeCases(t *testing.T) {
	in := &persistence.State{
		Kept: []persistence.KeptEntry{
			{Section: persistence.SectionLivePipelines, Raw: json.RawMessage("{\n  \"workspace\": 7\n}")},
			{Section: persistence.SectionLivePipelines, Raw: json.RawMessage(`"not an object"`)},
		},
	}
	out, err := persistence.Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":4,"timestamp_ms":0,"workspaces":[],"saved_pipelines":[],"live_pipelines":[{` + "\n" +
		`  "workspace": 7` + "\n" + `},"not an object"]}`
	if string(out) != want {
		t.Fatalf("Encode = %s\nwant    %s", out, want)
	}
	st, problems, err := persistence.Decode(out)
	if err != nil || len(problems) != 2 || len(st.Kept) != 2 {
		t.Fatalf("%v %v %+v", err, problems, st)
	}
	for i := range in.Kept {
		if !bytes.Equal(st.Kept[i].Raw, in.Kept[i].Raw) {
			t.Fatalf("kept %d read back as %s", i, st.Kept[i].Raw)
		}
	}

	for _, tt := range []struct {
		name string
		kept persistence.KeptEntry
		want string
	}{
		{"unknown section", persistence.KeptEntry{Section: "live_processes", Raw: json.RawMessage(`{}`)}, `unknown section "live_processes"`},
		{"empty section", persistence.KeptEntry{Raw: json.RawMessage(`{}`)}, `unknown section ""`},
		{"invalid bytes", persistence.KeptEntry{Section: persistence.SectionWorkspaces, ID: "w", Raw: json.RawMessage(`{"id":`)}, "not valid JSON"},
		{"no bytes", persistence.KeptEntry{Section: persistence.SectionWorkspaces}, "not valid JSON"},
		{"two values", persistence.KeptEntry{Section: persistence.SectionWorkspaces, Raw: json.RawMessage(`{} {}`)}, "not valid JSON"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := persistence.Encode(&persistence.State{Kept: []persistence.KeptEntry{tt.kept}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Encode error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestEncodeWithKeptMatchesPlainEncodeOtherwise(t *testing.T) {
	// The entries in effect are written the same whether or not a kept
	// entry makes Encode write entry by entry.
	st := fullState()
	plain, err := persistence.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	st.Kept = []persistence.KeptEntry{{Section: persistence.SectionWorkspaces, Raw: json.RawMessage(`{"id":"x"}`)}}
	spliced, err := persistence.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(plain, []byte(`],"saved_pipelines"`))
	want := string(plain[:i]) + `,{"id":"x"}` + string(plain[i:])
	if string(spliced) != want {
		t.Fatalf("spliced encoding differs:\n got %s\nwant %s", spliced, want)
	}
}
