// This file tests that duplicate JSON keys are refused in specs, with the
// path of the key, and the fast scan the state file uses.

package messages

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeSpecDuplicateKeys(t *testing.T) {
	for _, tt := range []struct {
		name string
		into func() any
		data string
		want string // the error, after "malformed spec: "
	}{
		{"top level", ws, `{"label":"a","label":"b"}`, "label: duplicate key"},
		{"nested", ws, `{"label":"a","soma":{"pids_max":1,"pids_max":2}}`, "soma.pids_max: duplicate key"},
		{"map key", ws, `{"label":"a","permissions":{"env":{"A":"1","A":"2"}}}`, "permissions.env.A: duplicate key"},
		{"escaped spelling", ws, `{"label":"a","l\u0061bel":"b"}`, "label: duplicate key"},
		{"in an array", pipe, `{"label":"p","nodes":[{"label":"a"},{"label":"b","label":"c"}]}`, "nodes[1].label: duplicate key"},
		{"deep", pipe, `{"label":"p","nodes":[{"label":"a","payload":{"native":{"exec":"x","exec":"y"}}}]}`,
			"nodes[0].payload.native.exec: duplicate key"},
		{"in supervision", cmd, `{"payload":{"native":{"exec":"x"}},"supervision":{"restart":{"max":1,"max":2}}}`,
			"supervision.restart.max: duplicate key"},
		{"up file", up, `{"workspaces":[{"label":"a","commands":[{"payload":{"native":{"exec":"x"}}}],"commands":[]}]}`,
			"workspaces[0].commands: duplicate key"},
		{"unknown key twice", ws, `{"label":"a","x":1,"x":2}`, "x: duplicate key"},
		{"value of another type", ws, `{"label":"a","label":5}`, "label: duplicate key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := DecodeSpec([]byte(tt.data), tt.into())
			if err == nil {
				t.Fatal("DecodeSpec accepted a duplicate key")
			}
			if !errors.Is(err, ErrMalformed) || err.Error() != "malformed spec: "+tt.want {
				t.Fatalf("error %q, want %q wrapping ErrMalformed", err, "malformed spec: "+tt.want)
			}
		})
	}
}

func TestDecodeSpecSameKeyInDifferentObjects(t *testing.T) {
	data := `{"label":"p","nodes":[{"label":"a","payload":{"native":{"exec":"x"}}},{"label":"b","payload":{"native":{"exec":"x"}}}],
		"discern":{"buffer_bytes":1}, "edges":[{"from":"a","to":"b"}]}`
	var p PipelineSpec
	if err := DecodeSpec([]byte(data), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Nodes) != 2 || p.Nodes[1].Label != "b" {
		t.Fatalf("decoded %+v", p)
	}
}

func TestHasDuplicateKey(t *testing.T) {
	for _, tt := range []struct {
		data string
		want bool
	}{
		{`{}`, false},
		{`[]`, false},
		{`"a"`, false},
		{`{"a":1,"b":2}`, false},
		{`{"a":1,"a":2}`, true},
		{`{"a":{"b":1},"c":{"b":1}}`, false},
		{`{"a":[{"b":1},{"b":1}]}`, false},
		{`{"a":[{"b":1,"b":1}]}`, true},
		{`{"a":{"x":1},"a":2}`, true},
		{`{"a":{"x":{"y":1}},"b":1,"b":2}`, true},
		{`{"a":"b","b":"a"}`, false},
		{`{"a\"":1,"a":2}`, false},
		{`{"a\\":1,"a":2}`, false},
		{`{"\u0061":1,"a":2}`, true},
		{`{"k":"value with \"a\":1, \"a\":2 inside"}`, false},
		{`{"a":["a","a"]}`, false},
		{" {\n  \"a\": 1,\n  \"a\": 2\n}\n", true},
		{`[{"a":1},{"a":1,"b":[{"c":1}],"c":2}]`, false},
		{`[{"a":1},{"a":1,"b":[{"c":1}],"a":2}]`, true},
	} {
		if got := HasDuplicateKey([]byte(tt.data)); got != tt.want {
			t.Errorf("HasDuplicateKey(%s) = %v, want %v", tt.data, got, tt.want)
		}
	}
	// Any bytes: no panic.
	for _, junk := range []string{"", `"`, `{"a`, `{"a":`, `}}]]`, `{"a\`, `{"a":"\"}`, `[{"a":1,"a"`} {
		HasDuplicateKey([]byte(junk))
	}
}

func TestDuplicateKeysInYAMLStillRefused(t *testing.T) {
	err := DecodeSpec([]byte("label: a\nlabel: b\n"), new(WorkspaceSpec))
	if err == nil || !strings.Contains(err.Error(), "already defined") {
		t.Fatalf("error %v", err)
	}
}
