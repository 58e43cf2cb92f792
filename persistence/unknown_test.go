// This file tests that members of an entry this version does not know are
// carried through a load and a save, and how duplicate keys are handled.

package persistence_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/shipote/shipote/persistence"
)

// at follows a path of object keys (string) and array indexes (int) in a
// value decoded into any.
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: %v is not an object", path, v)
			}
			v, ok = m[k]
			if !ok {
				t.Fatalf("at %v: no member %q in %v", path, k, m)
			}
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at %v: %v is not an array of more than %d", path, v, k)
			}
			v = l[k]
		}
	}
	return v
}

func TestUnknownMembersSurviveASave(t *testing.T) {
	doc := `{"version":4,"timestamp_ms":1,
	"workspaces":[
		{"id":"` + ws1 + `","spec":{"label":"plain"}},
		{"id":"` + ws2 + `","zone":"eu","spec":{"label":"b","ttl_ms":60000,"ttl_extra":{"grace_ms":5},
			"soma":{"pids_max":8,"gpu":{"count":1}},"permissions":{"env":{"A":"1"},"caps":["NET_ADMIN"]}},
		 "stats_history":[{"timestamp_ms":5,"source":"procfs","psi":0.5},{"timestamp_ms":6,"source":"procfs"}]}],
	"saved_pipelines":[{"name":"s","owner":"ops","spec":{"label":"s","nodes":[
		{"label":"a","payload":{"native":{"exec":"/bin/echo"}}},
		{"label":"b","flows":{"stdout":"x"},"payload":{"native":{"exec":"/bin/cat","chroot":"/"}},"soma":{"pids_max":1,"io_weight":10}}],
		"edges":[{"from":"a","to":"b","weight":3}],"discern":{"slow_consumer":"drop","window_ms":20}}}],
	"live_pipelines":[{"id":"` + run + `","workspace":"` + ws2 + `","tap":true,"started_ms":77,
		"spec":{"label":"s","nodes":[{"label":"a","payload":{"native":{"exec":"/bin/echo"}},"supervision":"one_shot"}]}}]}`
	st, problems, err := persistence.Decode([]byte(doc))
	if err != nil || len(problems) != 0 || len(st.Kept) != 0 {
		t.Fatalf("%v %v %+v", err, problems, st.Kept)
	}
	// The known parts are in effect.
	w := st.Workspaces[1]
	if w.Spec.Label != "b" || w.Spec.TTLMs != 60000 || w.Spec.Soma.PidsMax != 8 || w.Spec.Permissions.Env["A"] != "1" ||
		len(w.StatsHistory) != 2 || w.StatsHistory[0].Source != "procfs" {
		t.Fatalf("workspace %+v", w)
	}
	if st.Workspaces[0].Extra != nil {
		t.Fatalf("plain entry has Extra %s", st.Workspaces[0].Extra)
	}
	if n := st.SavedPipelines[0].Spec.Nodes[1]; n.Payload.Native.Exec != "/bin/cat" || n.Soma.PidsMax != 1 {
		t.Fatalf("node %+v", n)
	}

	out, err := persistence.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, tt := range []struct {
		path []any
		want string
	}{
		{[]any{"workspaces", 1, "zone"}, `"eu"`},
		{[]any{"workspaces", 1, "spec", "ttl_extra"}, `{"grace_ms":5}`},
		{[]any{"workspaces", 1, "spec", "ttl_ms"}, `60000`},
		{[]any{"workspaces", 1, "spec", "soma", "gpu"}, `{"count":1}`},
		{[]any{"workspaces", 1, "spec", "soma", "pids_max"}, `8`},
		{[]any{"workspaces", 1, "spec", "permissions", "caps"}, `["NET_ADMIN"]`},
		{[]any{"workspaces", 1, "stats_history", 0, "psi"}, `0.5`},
		{[]any{"saved_pipelines", 0, "owner"}, `"ops"`},
		{[]any{"saved_pipelines", 0, "spec", "nodes", 1, "flows"}, `{"stdout":"x"}`},
		{[]any{"saved_pipelines", 0, "spec", "nodes", 1, "payload", "native", "chroot"}, `"/"`},
		{[]any{"saved_pipelines", 0, "spec", "nodes", 1, "payload", "native", "exec"}, `"/bin/cat"`},
		{[]any{"saved_pipelines", 0, "spec", "nodes", 1, "soma", "io_weight"}, `10`},
		{[]any{"saved_pipelines", 0, "spec", "edges", 0, "weight"}, `3`},
		{[]any{"saved_pipelines", 0, "spec", "discern", "window_ms"}, `20`},
		{[]any{"live_pipelines", 0, "started_ms"}, `77`},
	} {
		v := at(t, got, tt.path...)
		var want any
		if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v, want) {
			t.Errorf("%v = %v, want %s", tt.path, v, tt.want)
		}
	}
	if n := at(t, got, "saved_pipelines", 0, "spec", "nodes", 0).(map[string]any); len(n) != 2 {
		t.Errorf("node without unknown members gained some: %v", n)
	}
	if h := at(t, got, "workspaces", 1, "stats_history", 1).(map[string]any); h["psi"] != nil {
		t.Errorf("an unknown member moved to another sample: %v", h)
	}

	// And again: a second load and save keeps the same.
	again, problems, err := persistence.Decode(out)
	if err != nil || len(problems) != 0 {
		t.Fatalf("%v %v", err, problems)
	}
	if !sameState(again, st) {
		t.Fatalf("second load differs:\n got %+v\nwant %+v", again, st)
	}
	out2, err := persistence.Encode(again)
	if err != nil {
		t.Fatal(err)
	}
	if string(out2) != string(out) {
		t.Fatalf("second save differs:\n%s\n%s", out2, out)
	}
}

func TestDuplicateKeysInStateFiles(t *testing.T) {
	entry := `{"id":"` + ws1 + `","spec":{"label":"a","label":"b"}}`
	doc := `{"version":4,"workspaces":[{"id":"` + ws2 + `","spec":{"label":"ok"}},` + entry + `]}`
	st, problems, err := persistence.Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Workspaces) != 1 || st.Workspaces[0].ID != ws2 {
		t.Fatalf("workspaces %+v", st.Workspaces)
	}
	if len(problems) != 1 || problems[0].Path != "workspaces[1]" || !strings.Contains(problems[0].Error(), "spec.label: duplicate key") {
		t.Fatalf("problems %v", problems)
	}
	if len(st.Kept) != 1 || string(st.Kept[0].Raw) != entry || !strings.Contains(st.Kept[0].Reason, "spec.label: duplicate key") ||
		st.Kept[0].ID != ws1 {
		t.Fatalf("kept %+v", st.Kept)
	}
	// A duplicate inside an unknown member is one too.
	doc = `{"version":4,"workspaces":[{"id":"` + ws1 + `","spec":{"label":"a"},"x":{"y":1,"y":2}}]}`
	st, problems, err = persistence.Decode([]byte(doc))
	if err != nil || len(st.Kept) != 1 || len(problems) != 1 || !strings.Contains(problems[0].Error(), "x.y: duplicate key") {
		t.Fatalf("%v %v %+v", err, problems, st)
	}

	for _, doc := range []string{
		`{"version":4,"workspaces":[],"workspaces":[]}`,
		`{"version":4,"version":4}`,
		`{"version":4,"comment":1,"comment":2}`,
	} {
		_, _, err := persistence.Decode([]byte(doc))
		if !errors.Is(err, persistence.ErrCorrupt) || !strings.Contains(err.Error(), "appears twice at the top level") {
			t.Errorf("%s: error %v", doc, err)
		}
	}
}

func TestLargeFileNamesAreScannedToo(t *testing.T) {
	// From 256 KiB the names are scanned beside the one-pass decode; a
	// name that matches a field only ignoring case, at the very end, still
	// sends the file to the exact per-entry path.
	st := &persistence.State{}
	for i := range 400 {
		w := persistence.WorkspaceEntry{ID: fmt.Sprintf("w%04d", i), Spec: fullWorkspace(fmt.Sprintf("ws-%04d", i)),
			StatsHistory: samples(16, 1728989985000)}
		st.Workspaces = append(st.Workspaces, w)
	}
	data, err := persistence.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 256<<10 {
		t.Fatalf("only %d bytes", len(data))
	}
	got, problems, err := persistence.Decode(data)
	if err != nil || len(problems) != 0 || len(got.Workspaces) != 400 {
		t.Fatalf("%v %v", err, problems)
	}
	if !reflect.DeepEqual(persistence.Comparable(got).Workspaces[399].Spec, st.Workspaces[399].Spec) {
		t.Fatal("last workspace differs")
	}

	i := bytes.LastIndex(data, []byte(`"label":"ws-0399"`))
	variant := append(append(append([]byte(nil), data[:i]...), `"Label":"other",`...), data[i:]...)
	got, problems, err = persistence.Decode(variant)
	if err != nil || len(problems) != 0 || len(got.Workspaces) != 400 {
		t.Fatalf("%v %v", err, problems)
	}
	last := got.Workspaces[399]
	if last.Spec.Label != "ws-0399" || string(last.Extra) != `{"spec":{"Label":"other"}}` {
		t.Fatalf("label %q extra %s", last.Spec.Label, last.Extra)
	}
}
