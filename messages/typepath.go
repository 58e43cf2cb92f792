// typepath.go puts array indices into the path of a JSON type error:
// encoding/json names the field of a wrong-typed value by its struct fields
// alone ("workspaces.pipelines.nodes.payload.native.exec"), which does not
// say which workspace or node; the document itself does.

package messages

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// typeErrAt is jsonErr with the field of a type error given with indices
// ("workspaces[0].pipelines[1].nodes[0].payload.native.exec"), found by
// walking raw, the document decoded into any.
func typeErrAt(raw any, err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field == "" {
		return jsonErr(err)
	}
	got, _, _ := strings.Cut(te.Value, " ") // "number", "number -1", "string", ...
	if p, ok := findTyped(raw, strings.Split(te.Field, "."), got, ""); ok {
		return fmt.Errorf("%s: expected %s, got %s", p, te.Type, te.Value)
	}
	return jsonErr(err)
}

// findTyped returns the first path, in document order, that follows the
// object keys of fields (through any arrays on the way) to a value of JSON
// kind got.
func findTyped(v any, fields []string, got, path string) (string, bool) {
	if l, ok := v.([]any); ok && !(len(fields) == 0 && got == "array") {
		for i, e := range l {
			if p, ok := findTyped(e, fields, got, fmt.Sprintf("%s[%d]", path, i)); ok {
				return p, true
			}
		}
		return "", false
	}
	m, isMap := v.(map[string]any)
	if len(fields) == 0 {
		if isMap && got != "object" {
			// A map's value: encoding/json names the map, not the key.
			for _, k := range sortedAnyKeys(m) {
				if jsonKind(m[k]) == got {
					return path + "." + k, true
				}
			}
		}
		return path, jsonKind(v) == got
	}
	if !isMap {
		return "", false
	}
	e, ok := m[fields[0]]
	if !ok {
		if f := fields[0]; f != "" && f[0] >= 'A' && f[0] <= 'Z' {
			// An embedded struct's type name (UpWorkspace's WorkspaceSpec):
			// its fields are the object's own.
			return findTyped(v, fields[1:], got, path)
		}
		return "", false
	}
	return findTyped(e, fields[1:], got, join(path, fields[0]))
}

// jsonKind names v's JSON kind as encoding/json's type errors do.
func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "null"
}
