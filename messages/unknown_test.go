// This file tests keeping the members a type does not know and merging them
// back into its encoding.

package messages

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeJSONKeepUnknown(t *testing.T) {
	for _, tt := range []struct {
		name  string
		into  func() any
		data  string
		want  any
		extra string
	}{
		{"none", ws, `{"label":"a","ttl_ms":5}`, &WorkspaceSpec{Label: "a", TTLMs: 5}, ""},
		{"top", ws, `{"label":"a","ttl_extra":{"x":[1,2]},"zz":null}`, &WorkspaceSpec{Label: "a"},
			`{"ttl_extra":{"x":[1,2]},"zz":null}`},
		{"nested", ws, `{"label":"a","soma":{"pids_max":3,"gpu":1}}`, &WorkspaceSpec{Label: "a", Soma: Soma{PidsMax: 3}},
			`{"soma":{"gpu":1}}`},
		{"another case is unknown", ws, `{"label":"a","Label":"b"}`, &WorkspaceSpec{Label: "a"}, `{"Label":"b"}`},
		{"map values are not looked into", ws, `{"label":"a","permissions":{"env":{"A":"1"}}}`,
			&WorkspaceSpec{Label: "a", Permissions: Permissions{Env: map[string]string{"A": "1"}}}, ""},
		{"array elements", pipe,
			`{"label":"p","nodes":[{"label":"a","payload":{"native":{"exec":"x"}}},{"label":"b","flows":{"in":1},"payload":{"native":{"exec":"y","cwd":"/"}}}]}`,
			&PipelineSpec{Label: "p", Nodes: []Node{
				{Label: "a", Payload: Payload{Native: &NativePayload{Exec: "x"}}},
				{Label: "b", Payload: Payload{Native: &NativePayload{Exec: "y"}}},
			}},
			`{"nodes":[null,{"flows":{"in":1},"payload":{"native":{"cwd":"/"}}}]}`},
		{"shaped type", cmd, `{"payload":{"native":{"exec":"x"}},"supervision":{"restart":{"max":2,"jitter":true}}}`,
			&CommandRef{Payload: Payload{Native: &NativePayload{Exec: "x"}}, Supervision: Supervision{Restart: &RestartPolicy{Max: 2}}},
			`{"supervision":{"restart":{"jitter":true}}}`},
		{"pretty values are compacted", ws, "{\"label\": \"a\",\n  \"x\": {\n    \"y\": [ 1, 2 ]\n  }\n}", &WorkspaceSpec{Label: "a"},
			`{"x":{"y":[1,2]}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.into()
			extra, err := DecodeJSONKeepUnknown([]byte(tt.data), v)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v, tt.want) {
				t.Fatalf("decoded %+v, want %+v", v, tt.want)
			}
			if string(extra) != tt.extra {
				t.Fatalf("extra %s, want %s", extra, tt.extra)
			}
			// Merged back into the encoding, every member is there again.
			enc, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			merged, err := MergeUnknown(enc, extra, v)
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			if err := json.Unmarshal(merged, &got); err != nil {
				t.Fatalf("merged %s: %v", merged, err)
			}
			if err := json.Unmarshal([]byte(tt.data), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, stripZero(want, got)) {
				t.Fatalf("merged %s\nfrom   %s", merged, tt.data)
			}
		})
	}
}

// stripZero returns want without the members absent from got whose value is
// a zero one the encoder leaves out (such as "ttl_ms": 0), so that the input
// and the merged output compare.
func stripZero(want, got any) any {
	w, ok := want.(map[string]any)
	g, ok2 := got.(map[string]any)
	if !ok || !ok2 {
		wl, ok := want.([]any)
		gl, ok2 := got.([]any)
		if ok && ok2 && len(wl) == len(gl) {
			for i := range wl {
				wl[i] = stripZero(wl[i], gl[i])
			}
		}
		return want
	}
	for k, v := range w {
		if _, has := g[k]; !has && (v == 0.0 || v == "" || v == false) {
			delete(w, k)
			continue
		}
		w[k] = stripZero(v, g[k])
	}
	return w
}

func TestDecodeJSONKeepUnknownErrors(t *testing.T) {
	for _, tt := range []struct {
		name, data, want string
	}{
		{"duplicate known", `{"label":"a","label":"b"}`, "label: duplicate key"},
		{"duplicate unknown", `{"label":"a","x":1,"x":2}`, "x: duplicate key"},
		{"duplicate inside an unknown value", `{"label":"a","x":{"y":1,"y":2}}`, "x.y: duplicate key"},
		{"wrong type", `{"label":5}`, "label: expected string"},
		{"not JSON", `{"label":`, "unexpected EOF"},
		{"trailing data", `{"label":"a"} {}`, "trailing data"},
		{"null", `null`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var w WorkspaceSpec
			_, err := DecodeJSONKeepUnknown([]byte(tt.data), &w)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q wrapping ErrMalformed", err, tt.want)
			}
		})
	}
	if _, err := DecodeJSONKeepUnknown([]byte(`{}`), nil); err == nil {
		t.Fatal("decode into nil accepted")
	}
}

func TestMergeUnknown(t *testing.T) {
	w := &WorkspaceSpec{Label: "a", Permissions: Permissions{Workdir: "/w"}}
	enc, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, extra, want string
	}{
		{"empty", ``, `{"label":"a","permissions":{"workdir":"/w"}}`},
		{"null", `null`, `{"label":"a","permissions":{"workdir":"/w"}}`},
		{"appended after the known members", `{"x":1}`, `{"label":"a","permissions":{"workdir":"/w"},"x":1}`},
		{"into a present object", `{"permissions":{"x":1}}`, `{"label":"a","permissions":{"workdir":"/w","x":1}}`},
		{"a zero struct is written back", `{"soma":{"gpu":1}}`, `{"label":"a","permissions":{"workdir":"/w"},"soma":{"gpu":1}}`},
		{"a name already there is not doubled", `{"label":"b"}`, `{"label":"a","permissions":{"workdir":"/w"}}`},
		{"under a member left out that is not a struct", `{"flow_dirs":[{"x":1}]}`, `{"label":"a","permissions":{"workdir":"/w"}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MergeUnknown(enc, json.RawMessage(tt.extra), w)
			if tt.extra == "" {
				got, err = MergeUnknown(enc, nil, w)
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("merged %s, want %s", got, tt.want)
			}
		})
	}
	for _, bad := range []string{`{"x":`, `[1]`, `{"permissions":[1]}`, `"s"`} {
		if _, err := MergeUnknown(enc, json.RawMessage(bad), w); err == nil {
			t.Errorf("MergeUnknown accepted the overlay %s", bad)
		}
	}
	if _, err := MergeUnknown(enc, json.RawMessage(`{}`), nil); err == nil {
		t.Error("MergeUnknown accepted a nil value")
	}
}
