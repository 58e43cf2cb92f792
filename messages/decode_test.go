// This file tests strict decoding of specs written as JSON or YAML, using the
// SPEC examples in testdata/.

package messages

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeSpecWorkspace(t *testing.T) {
	want := specWorkspace("/srv/build")
	for _, name := range []string{"workspace.yaml", "workspace.json"} {
		t.Run(name, func(t *testing.T) {
			var got WorkspaceSpec
			if err := DecodeSpec(readTestdata(t, name), &got); err != nil {
				t.Fatalf("DecodeSpec() = %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %+v\nwant    %+v", got, want)
			}
			// /srv/build does not exist here; everything else is valid.
			wantFieldErr(t, got.Validate(), "permissions.workdir", "does not exist")
			got.Permissions.Workdir = t.TempDir()
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
		})
	}
}

func TestDecodeSpecPipeline(t *testing.T) {
	want := specPipeline()
	for _, name := range []string{"pipeline.yaml", "pipeline.json"} {
		t.Run(name, func(t *testing.T) {
			var got PipelineSpec
			if err := DecodeSpec(readTestdata(t, name), &got); err != nil {
				t.Fatalf("DecodeSpec() = %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %+v\nwant    %+v", got, want)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
		})
	}
}

func TestDecodeSpecUpFile(t *testing.T) {
	var u UpFile
	if err := DecodeSpec(readTestdata(t, "up.yaml"), &u); err != nil {
		t.Fatalf("DecodeSpec() = %v", err)
	}
	if err := u.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	if len(u.Workspaces) != 2 {
		t.Fatalf("got %d workspaces, want 2", len(u.Workspaces))
	}
	demo := u.Workspaces[0]
	if demo.Label != "demo" || demo.TTLMs != 600000 || demo.OnExit != ExitReap || demo.QuotaEnforce != QuotaOff {
		t.Errorf("workspace fields: %+v", demo.WorkspaceSpec)
	}
	if demo.Permissions.Workdir != "/tmp" || demo.Permissions.Env["LANG"] != "C.UTF-8" {
		t.Errorf("permissions: %+v", demo.Permissions)
	}
	if len(demo.Commands) != 3 {
		t.Fatalf("got %d commands, want 3", len(demo.Commands))
	}
	clock := demo.Commands[0]
	if clock.Label != "clock" || clock.Payload.Native.Exec != "/bin/sh" ||
		!reflect.DeepEqual(clock.Payload.Native.Argv, []string{"-c", "while :; do date; sleep 1; done"}) || !clock.Supervision.OneShot() {
		t.Errorf("clock: %+v %+v", clock, clock.Payload.Native)
	}
	web := demo.Commands[1]
	wantRestart := &RestartPolicy{On: RestartOnFailure, BackoffMs: 200, MaxBackoffMs: 30000, Max: 5}
	if !reflect.DeepEqual(web.Supervision.Restart, wantRestart) {
		t.Errorf("web restart = %+v, want %+v", web.Supervision.Restart, wantRestart)
	}
	if web.Payload.Native.Exec != "python3" || !reflect.DeepEqual(web.Payload.Native.Envp, []string{"PORT=8000"}) ||
		web.Soma.MemoryMaxBytes != 134217728 {
		t.Errorf("web: %+v %+v", web, web.Payload.Native)
	}
	if !demo.Commands[2].Supervision.OneShot() {
		t.Errorf("once is not one_shot: %+v", demo.Commands[2].Supervision)
	}
	if len(demo.Pipelines) != 1 {
		t.Fatalf("got %d pipelines, want 1", len(demo.Pipelines))
	}
	fan := demo.Pipelines[0]
	if fan.Label != "fan" || len(fan.Nodes) != 3 || len(fan.Edges) != 2 || !fan.RestartOnFailure ||
		fan.Discern != (DiscernPolicy{SlowConsumer: SlowDrop, BufferBytes: 65536}) {
		t.Errorf("fan: %+v", fan)
	}
	second := u.Workspaces[1]
	if second.Label != "second" || len(second.Commands) != 1 || second.Commands[0].Label != "" ||
		!reflect.DeepEqual(second.Commands[0].Payload.Native.Argv, []string{"hello"}) {
		t.Errorf("second: %+v", second)
	}
}

// TestDecodeSpecYAMLWords checks that YAML 1.1 words such as on, off, yes and
// no stay strings: SPEC values `quota_enforce: off` and the restart key `on`
// must decode.
func TestDecodeSpecYAMLWords(t *testing.T) {
	var w WorkspaceSpec
	if err := DecodeSpec([]byte("label: yes\nquota_enforce: off\non_exit: reap\n"), &w); err != nil {
		t.Fatalf("DecodeSpec() = %v", err)
	}
	if w.Label != "yes" || w.QuotaEnforce != QuotaOff {
		t.Errorf("got label %q quota_enforce %q, want yes, off", w.Label, w.QuotaEnforce)
	}
	var c CommandRef
	doc := "payload: {native: {exec: /bin/true, argv: [on, off, y, n, '1', 2]}}\nsupervision: {restart: {on: always}}\n"
	if err := DecodeSpec([]byte(doc), &c); err == nil {
		t.Fatalf("argv with a bare number 2 decoded: %+v", c.Payload.Native.Argv)
	}
	doc = "payload: {native: {exec: /bin/true, argv: [on, off, y, n, '1', 2001-12-14]}}\nsupervision: {restart: {on: always}}\n"
	if err := DecodeSpec([]byte(doc), &c); err != nil {
		t.Fatalf("DecodeSpec() = %v", err)
	}
	if got, want := c.Payload.Native.Argv, []string{"on", "off", "y", "n", "1", "2001-12-14"}; !reflect.DeepEqual(got, want) {
		t.Errorf("argv = %q, want %q", got, want)
	}
	if c.Supervision.Restart == nil || c.Supervision.Restart.On != RestartAlways {
		t.Errorf("supervision = %+v, want restart on always", c.Supervision.Restart)
	}
}

func TestDecodeSpecYAMLFeatures(t *testing.T) {
	// Anchors, aliases and merge keys are resolved; block scalars keep text.
	doc := `
base: &native {exec: /bin/sh}
label: p
nodes:
  - label: a
    payload: {native: {<<: *native, argv: ["-c", "echo a"]}}
  - label: b
    payload:
      native:
        exec: /bin/sh
        argv:
          - -c
          - |
            read x
            echo "$x"
edges: [{from: a, to: b}]
`
	var p PipelineSpec
	err := DecodeSpec([]byte(doc), &p)
	wantErrContains(t, err, `"base"`) // base is not a pipeline field
	doc = strings.Replace(doc, "base: &native {exec: /bin/sh}\nlabel: p\n", "label: &native p\n", 1)
	doc = strings.Replace(doc, "{<<: *native, argv", "{exec: /bin/sh, argv", 1)
	if err := DecodeSpec([]byte(doc), &p); err != nil {
		t.Fatalf("DecodeSpec() = %v", err)
	}
	if got := p.Nodes[1].Payload.Native.Argv[1]; got != "read x\necho \"$x\"\n" {
		t.Errorf("block scalar = %q", got)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestDecodeSpecBigNumbers(t *testing.T) {
	for _, doc := range []string{
		"label: x\nsoma: {memory_max_bytes: 9223372036854775807}\n",
		`{"label":"x","soma":{"memory_max_bytes":9223372036854775807}}`,
	} {
		var w WorkspaceSpec
		if err := DecodeSpec([]byte(doc), &w); err != nil {
			t.Fatalf("DecodeSpec(%q) = %v", doc, err)
		}
		if w.Soma.MemoryMaxBytes != 1<<63-1 {
			t.Errorf("memory_max_bytes = %d, want %d", w.Soma.MemoryMaxBytes, int64(1<<63-1))
		}
	}
}

func TestDecodeSpecErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		into func() any
		subs []string
	}{
		// Unknown fields.
		{"json unknown top", `{"label":"x","lable":"y"}`, ws, []string{`"lable"`}},
		{"yaml unknown top", "label: x\nlable: y\n", ws, []string{`"lable"`}},
		{"json unknown nested", `{"label":"x","soma":{"memroy_max_bytes":1}}`, ws, []string{`unknown field "soma.memroy_max_bytes"`}},
		{"yaml unknown nested", "label: x\nsoma:\n  memroy_max_bytes: 1\n", ws, []string{`unknown field "soma.memroy_max_bytes"`}},
		{"yaml unknown in permissions", "label: x\npermissions: {workdirr: /}\n", ws, []string{`unknown field "permissions.workdirr"`}},
		{"yaml unknown in node payload", "label: p\nnodes: [{label: a, payload: {native: {exce: /bin/true}}}]\n", pipe, []string{`unknown field "nodes[0].payload.native.exce"`}},
		{"yaml unknown in discern", "label: p\nnodes: [{label: a, payload: {native: {exec: cat}}}]\ndiscern: {slow: drop}\n", pipe, []string{`unknown field "discern.slow"`}},
		{"yaml unknown in edge", "label: p\nnodes: [{label: a, payload: {native: {exec: cat}}}]\nedges: [{from: a, too: a}]\n", pipe, []string{`unknown field "edges[0].too"`}},
		{"yaml unknown payload kind", "payload: {wasm: {module: x}}\n", cmd, []string{`unknown field "payload.wasm"`}},
		{"yaml unknown in restart", "payload: {native: {exec: cat}}\nsupervision: {restart: {on: failure, tries: 3}}\n", cmd, []string{`unknown field "supervision.restart.tries"`}},
		{"yaml unknown in up workspace", "workspaces:\n  - label: a\n    comands: []\n", up, []string{`unknown field "workspaces[0].comands"`}},
		{"yaml unknown in up command", "workspaces:\n  - label: a\n    commands: [{labl: c}]\n", up, []string{`unknown field "workspaces[0].commands[0].labl"`}},
		{"yaml wrong case", "Label: x\n", ws, []string{`unknown field "Label"`, `did you mean "label"`}},
		{"json wrong case", `{"LABEL":"x"}`, ws, []string{`unknown field "LABEL"`, `did you mean "label"`}},
		{"json wrong case nested", `{"label":"x","soma":{"Pids_Max":1}}`, ws, []string{`unknown field "soma.Pids_Max"`, `did you mean "pids_max"`}},
		{"json case duplicate", `{"label":"x","Label":"y"}`, ws, []string{`unknown field "Label"`}},
		// Malformed documents.
		{"json syntax", `{"label": }`, ws, []string{"invalid character"}},
		{"json truncated", `{"label": "x"`, ws, []string{"unexpected EOF"}},
		{"yaml unclosed flow", "label: [x\n", ws, []string{"yaml"}},
		{"yaml bad indentation", "label: x\n  soma: 1\n", ws, []string{"yaml"}},
		{"yaml tab indentation", "soma:\n\tpids_max: 1\n", ws, []string{"yaml"}},
		{"yaml duplicate key", "label: x\nlabel: y\n", ws, []string{"label"}},
		{"yaml unknown alias", "label: *nothing\n", ws, []string{"nothing"}},
		// Trailing data.
		{"json trailing object", `{"label":"a"} {"label":"b"}`, ws, []string{"trailing data"}},
		{"json trailing garbage", `{"label":"a"} x`, ws, []string{"trailing data"}},
		{"json trailing brace", `{"label":"a"}}`, ws, []string{"trailing data"}},
		{"yaml second document", "label: a\n---\nlabel: b\n", ws, []string{"more than one"}},
		// Empty documents.
		{"empty", "", ws, []string{"empty document"}},
		{"blank", " \n\t\n", ws, []string{"empty document"}},
		{"comment only", "# nothing here\n", ws, []string{"empty document"}},
		{"document marker only", "---\n", ws, []string{"empty document"}},
		{"null", "null", ws, []string{"empty document"}},
		{"tilde", "~\n", ws, []string{"empty document"}},
		// Type errors name the field.
		{"json string for number", `{"label":"x","soma":{"memory_max_bytes":"512M"}}`, ws,
			[]string{"soma.memory_max_bytes", "int64", "string"}},
		{"yaml string for number", "label: x\nsoma: {memory_max_bytes: 512M}\n", ws,
			[]string{"soma.memory_max_bytes", "int64", "string"}},
		{"yaml float for int", "label: x\nttl_ms: 1.5\n", ws, []string{"ttl_ms", "int64"}},
		{"yaml negative for uint-like", "label: x\npermissions: {uid: root}\n", ws, []string{"permissions.uid", "string"}},
		{"yaml number for string", "label: 123\n", ws, []string{"label", "string", "number"}},
		{"yaml list for string", "label: [a]\n", ws, []string{"label", "string"}},
		{"yaml string for list", "label: x\nflow_dirs: /run/x\n", ws, []string{"flow_dirs", "[]string"}},
		{"yaml string for bool", "label: p\nnodes: []\nrestart_on_failure: yes\n", pipe, []string{"restart_on_failure", "bool"}},
		{"yaml map for string", "label: x\non_exit: {a: b}\n", ws, []string{"on_exit"}},
		{"yaml nested type", "label: p\nnodes: [{label: a, payload: {native: {exec: cat, argv: x}}}]\n", pipe,
			[]string{"nodes[0].payload.native.argv", "[]string"}},
		{"yaml top-level list", "- label: x\n", ws, []string{"WorkspaceSpec"}},
		{"yaml top-level scalar", "hello\n", ws, []string{"WorkspaceSpec"}},
		{"json top-level array", `[{"label":"x"}]`, ws, []string{"WorkspaceSpec"}},
		{"yaml infinity", "label: x\nsoma: {cpu_max: .inf}\n", ws, []string{"cpu_max"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.into()
			err := DecodeSpec([]byte(tt.doc), v)
			wantErrContains(t, err, tt.subs...)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("errors.Is(%v, ErrMalformed) = false", err)
			}
			if strings.Count(err.Error(), ErrMalformed.Error()) != 1 {
				t.Errorf("error %q should say %q exactly once", err, ErrMalformed)
			}
		})
	}
}

func ws() any   { return new(WorkspaceSpec) }
func pipe() any { return new(PipelineSpec) }
func cmd() any  { return new(CommandRef) }
func up() any   { return new(UpFile) }

func TestDecodeJSON(t *testing.T) {
	var w WorkspaceSpec
	if err := DecodeJSON([]byte(`{"label":"x"}`+"\n"), &w); err != nil || w.Label != "x" {
		t.Fatalf("DecodeJSON() = %v, label %q", err, w.Label)
	}
	for _, doc := range []string{`{"label":"x","nope":1}`, `{"label":"x"} 1`, `label: x`, ``} {
		err := DecodeJSON([]byte(doc), &w)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeJSON(%q) = %v, want ErrMalformed", doc, err)
		}
	}
}

func TestDecodeSpecYAMLForms(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want WorkspaceSpec
	}{
		{"flow mapping at top level", "{label: x, ttl_ms: 5}", WorkspaceSpec{Label: "x", TTLMs: 5}},
		{"json with leading space", "  \n {\"label\": \"x\"}\n", WorkspaceSpec{Label: "x"}},
		{"quoted first key is read as JSON", "{ \"label\" : \"x\", soma: {pids_max: 2} }", WorkspaceSpec{}}, // not JSON: YAML rules apply
		{"document marker", "---\nlabel: x\n", WorkspaceSpec{Label: "x"}},
		{"document end marker", "label: x\n...\n", WorkspaceSpec{Label: "x"}},
		{"null sections", "label: x\nsoma:\npermissions: ~\n", WorkspaceSpec{Label: "x"}},
		{"quoted numbers as labels", "label: '123'\n", WorkspaceSpec{Label: "123"}},
		{"date-like label", "label: 2001-12-14\n", WorkspaceSpec{Label: "2001-12-14"}},
		{"hex and underscores", "label: x\nsoma: {memory_max_bytes: 0x100, pids_max: 1_000}\n",
			WorkspaceSpec{Label: "x", Soma: Soma{MemoryMaxBytes: 256, PidsMax: 1000}}},
		{"utf-8 env", "label: x\npermissions: {env: {GREETING: héllo}}\n",
			WorkspaceSpec{Label: "x", Permissions: Permissions{Env: map[string]string{"GREETING": "héllo"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got WorkspaceSpec
			err := DecodeSpec([]byte(tt.doc), &got)
			if tt.name == "quoted first key is read as JSON" {
				// A JSON-looking object is read as JSON, so the bare key is a
				// syntax error rather than silently accepted.
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("DecodeSpec() = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeSpec() = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeSpecNullSupervision(t *testing.T) {
	for _, doc := range []string{
		"payload: {native: {exec: cat}}\nsupervision:\n",
		`{"payload":{"native":{"exec":"cat"}},"supervision":null}`,
	} {
		var c CommandRef
		if err := DecodeSpec([]byte(doc), &c); err != nil {
			t.Fatalf("DecodeSpec(%q) = %v", doc, err)
		}
		if !c.Supervision.OneShot() {
			t.Errorf("DecodeSpec(%q): supervision %+v, want one_shot", doc, c.Supervision)
		}
	}
}

func TestDecodeSpecYAMLNonStringKeys(t *testing.T) {
	var w WorkspaceSpec
	if err := DecodeSpec([]byte("label: x\npermissions: {env: {1: one, true: yes, 2.5: f}}\n"), &w); err != nil {
		t.Fatalf("DecodeSpec() = %v", err)
	}
	want := map[string]string{"1": "one", "true": "yes", "2.5": "f"}
	if !reflect.DeepEqual(w.Permissions.Env, want) {
		t.Errorf("env = %v, want %v", w.Permissions.Env, want)
	}
	if err := w.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

// fieldsProbe exercises the field rules of strict decoding: ignored,
// unexported, untagged and embedded fields.
type fieldsProbe struct {
	*ProbeInner
	probeOuter
	Plain   int
	Renamed int `json:"renamed"`
	Skipped int `json:"-"`
	hidden  int
	Shadow  int `json:"shadow"`
}

// ProbeInner is embedded by pointer; encoding/json needs it exported.
type ProbeInner struct {
	Inner  int `json:"inner"`
	Shadow int `json:"shadow"`
}

type probeOuter struct {
	Outer int `json:"outer,omitempty"`
}

func TestDecodeJSONFieldRules(t *testing.T) {
	var p fieldsProbe
	if err := DecodeJSON([]byte(`{"Plain":1,"renamed":2,"inner":3,"outer":4,"shadow":5}`), &p); err != nil {
		t.Fatalf("DecodeJSON() = %v", err)
	}
	if p.Plain != 1 || p.Renamed != 2 || p.ProbeInner == nil || p.Inner != 3 || p.Outer != 4 || p.Shadow != 5 || p.hidden != 0 {
		t.Errorf("decoded %+v", p)
	}
	for doc, want := range map[string]string{
		`{"Skipped":1}`: `unknown field "Skipped"`,
		`{"hidden":1}`:  `unknown field "hidden"`,
		`{"plain":1}`:   `did you mean "Plain"`,
		`{"Renamed":1}`: `did you mean "renamed"`,
		`{"Inner":1}`:   `did you mean "inner"`,
	} {
		err := DecodeJSON([]byte(doc), &p)
		wantErrContains(t, err, want)
	}
}
