package messages

import (
	"errors"
	"testing"
)

func TestTypeErrorsNameTheIndexedPath(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"exec in the second pipeline of the second workspace", `workspaces:
  - label: w0
  - label: w1
    pipelines:
      - label: p0
        nodes: [{label: a, payload: {native: {exec: cat}}}]
      - label: p1
        nodes:
          - {label: a, payload: {native: {exec: cat}}}
          - {label: b, payload: {native: {exec: 42}}}
`, "workspaces[1].pipelines[1].nodes[1].payload.native.exec: expected string, got number"},
		{"an argv element", `workspaces:
  - label: w0
    commands:
      - {label: c, payload: {native: {exec: echo, argv: [a, b, true]}}}
`, "workspaces[0].commands[0].payload.native.argv[2]: expected string, got bool"},
		{"a map value", `workspaces:
  - label: w0
    permissions: {env: {A: x, B: [1]}}
`, "workspaces[0].permissions.env.B: expected string, got array"},
		{"an object for a list", `workspaces: {label: w0}`, "workspaces: expected []messages.UpWorkspace, got object"},
		{"json", `{"workspaces":[{"label":"w0","ttl_ms":"soon"}]}`, `workspaces[0].ttl_ms: expected int64, got string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var u UpFile
			err := DecodeSpec([]byte(tc.doc), &u)
			if !errors.Is(err, ErrMalformed) || err.Error() != "malformed spec: "+tc.want {
				t.Fatalf("err = %v\nwant malformed spec: %s", err, tc.want)
			}
		})
	}
}
