package messages

import (
	"bytes"
	"sync"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"
)

// A view is encoded once, by whichever caller of JSON comes first, and
// every caller gets the same bytes: those of its info.
func TestWorkspaceViewJSONOnceForAll(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	info := WorkspaceInfo{ID: NewIDAt(at), Spec: WorkspaceSpec{Label: "a<b>"},
		CreatedAt: at, Deadline: at.Add(time.Hour), CommandsAlive: 2, CommandsTotal: 3, PipelinesTotal: 1,
		LimitsBackend: "cgroup1", Stats: &Sample{TimestampMs: at.UnixMilli(), RSSBytes: 4096, CPUPercent: 1.5}}
	want, err := gojson.MarshalWithOption(&info, gojson.DisableHTMLEscape())
	if err != nil {
		t.Fatal(err)
	}
	v := NewWorkspaceView(info)
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Go(func() {
			b, err := v.JSON()
			if err != nil {
				t.Error(err)
			}
			got[i] = b
		})
	}
	wg.Wait()
	for i, b := range got {
		if !bytes.Equal(b, want) {
			t.Fatalf("caller %d got %s, want %s", i, b, want)
		}
		if &b[0] != &got[0][0] {
			t.Fatalf("caller %d got its own encoding, not the shared one", i)
		}
	}
}
