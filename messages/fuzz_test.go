// This file fuzzes the spec decoders (JSON and YAML) and the up-file decoder:
// any bytes decode or fail with ErrMalformed, without a panic, and what
// decodes is a fixed point of encoding and decoding again.

package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func readSeed(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", name))
}

// addSpecSeeds adds the testdata specs and a few small documents.
func addSpecSeeds(f *testing.F, files ...string) {
	f.Helper()
	for _, name := range files {
		data, err := readSeed(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		`{"label":"a","label":"b"}`,
		"label: a\nlabel: b\n",
		`{"label":"a","soma":{"cpu_max":1e400}}`,
		"label: &x a\nflow_dirs: [*x, *x]\n",
		"---\nlabel: a\n---\nlabel: b\n",
		`{"label":"a"} x`,
		`{"supervision":{"restart":{"on":"always"}},"payload":{"native":{"exec":"/bin/true"}}}`,
		"supervision: one_shot\npayload: {native: {exec: sh}}\n",
	} {
		f.Add([]byte(s))
	}
}

// checkSpecFixedPoint decodes data into v; when it decodes, validating does
// not panic and decoding the JSON encoding of v gives a value that encodes
// the same.
func checkSpecFixedPoint[T any](t *testing.T, data []byte, validate func(*T) error) {
	var v T
	if err := DecodeSpec(data, &v); err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
		return
	}
	_ = validate(&v)
	enc, err := json.Marshal(&v)
	if err != nil {
		t.Fatalf("a decoded spec does not encode: %v", err)
	}
	var again T
	if err := DecodeJSON(enc, &again); err != nil {
		t.Fatalf("the encoding of a decoded spec does not decode: %v\n%s", err, enc)
	}
	enc2, err := json.Marshal(&again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, enc2) {
		t.Fatalf("encode, decode, encode differs:\n%s\n%s", enc, enc2)
	}
}

func FuzzDecodeWorkspaceSpec(f *testing.F) {
	addSpecSeeds(f, "workspace.json", "workspace.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSpecFixedPoint(t, data, (*WorkspaceSpec).Validate)
	})
}

func FuzzDecodePipelineSpec(f *testing.F) {
	addSpecSeeds(f, "pipeline.json", "pipeline.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSpecFixedPoint(t, data, (*PipelineSpec).Validate)
	})
}

func FuzzDecodeCommandRef(f *testing.F) {
	addSpecSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSpecFixedPoint(t, data, (*CommandRef).Validate)
	})
}

func FuzzDecodeUpFile(f *testing.F) {
	addSpecSeeds(f, "up.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSpecFixedPoint(t, data, (*UpFile).Validate)
	})
}

// FuzzKeepUnknown checks the state file's lenient decoding of a pipeline:
// decode keeping unknown members, merge them back into the encoding, and
// decoding that gives the same value and the same members.
func FuzzKeepUnknown(f *testing.F) {
	addSpecSeeds(f, "pipeline.json")
	f.Add([]byte(`{"label":"p","x":1,"nodes":[null,{"label":"a","flows":{"y":[1]},"soma":{"z":2}}],"discern":{"w":3}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var v PipelineSpec
		extra, err := DecodeJSONKeepUnknown(data, &v)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		enc, err := json.Marshal(&v)
		if err != nil {
			t.Fatal(err)
		}
		merged, err := MergeUnknown(enc, extra, &v)
		if err != nil {
			t.Fatalf("merge: %v (extra %s)", err, extra)
		}
		var again PipelineSpec
		extra2, err := DecodeJSONKeepUnknown(merged, &again)
		if err != nil {
			t.Fatalf("merged output does not decode: %v\n%s", err, merged)
		}
		enc2, err := json.Marshal(&again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("known part differs:\n%s\n%s", enc, enc2)
		}
		if !sameJSON(extra, extra2) {
			t.Fatalf("unknown members differ:\n%s\n%s\nmerged %s", extra, extra2, merged)
		}
	})
}

// sameJSON reports whether a and b hold the same JSON value (both empty
// counts as the same).
func sameJSON(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	decode := func(data []byte, v *any) error {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber() // 1e400 is a valid JSON number
		return dec.Decode(v)
	}
	if decode(a, &x) != nil || decode(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
