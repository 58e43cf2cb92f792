package server

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

// TestWriteViewsMatchesWriteJSON holds the list of the views' own
// encodings to the bytes and headers writeJSON gives the same infos, for
// lists of 0, 1 and several views, written twice.
func TestWriteViewsMatchesWriteJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	info := func(i int) messages.WorkspaceInfo {
		w := messages.WorkspaceInfo{ID: messages.NewID(), CreatedAt: at, CommandsAlive: i, CommandsTotal: 2 * i,
			Spec: messages.WorkspaceSpec{Label: "w" + strconv.Itoa(i), TTLMs: 1000,
				Permissions: messages.Permissions{Env: map[string]string{"HTML": "<a>&amp;", "LS": "\u2028"}}}}
		if i%2 == 1 {
			w.Stats = &messages.Sample{TimestampMs: int64(i), RSSBytes: 1 << 20, CPUPercent: 12.5, Source: "procfs"}
			w.Deadline = at.Add(time.Second)
		}
		return w
	}
	for _, n := range []int{0, 1, 5} {
		infos := make([]messages.WorkspaceInfo, n)
		views := make([]*messages.WorkspaceView, n)
		for i := range n {
			infos[i] = info(i)
			views[i] = messages.NewWorkspaceView(infos[i])
		}
		want := httptest.NewRecorder()
		if err := writeJSON(want, 200, infos); err != nil {
			t.Fatal(err)
		}
		for pass := range 2 {
			got := httptest.NewRecorder()
			if err := writeViews(got, views); err != nil {
				t.Fatal(err)
			}
			if got.Body.String() != want.Body.String() {
				t.Errorf("%d views, pass %d: writeViews wrote\n%s\nwriteJSON writes\n%s", n, pass, got.Body, want.Body)
			}
			for _, h := range []string{"Content-Type", "Content-Length"} {
				if got.Header().Get(h) != want.Header().Get(h) {
					t.Errorf("%d views: %s %q, writeJSON %q", n, h, got.Header().Get(h), want.Header().Get(h))
				}
			}
			if got.Code != 200 {
				t.Errorf("%d views: status %d", n, got.Code)
			}
		}
	}
}
