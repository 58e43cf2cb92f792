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
		var cache listCache
		for pass := range 4 {
			// Passes 0 and 1 without a cache, 2 and 3 with one (made, then
			// taken from it).
			c := &cache
			if pass < 2 {
				c = nil
			}
			got := httptest.NewRecorder()
			if err := writeViews(got, views, c); err != nil {
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

// TestListCacheAnswersTheSameViewsOnly: the cached body answers only a
// list of the very same views; a view published again (even with the
// same bytes), one added or one removed makes a new body, the right one.
func TestListCacheAnswersTheSameViewsOnly(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	view := func(label string, alive int) *messages.WorkspaceView {
		return messages.NewWorkspaceView(messages.WorkspaceInfo{ID: messages.NewIDAt(at), CreatedAt: at, CommandsAlive: alive,
			Spec: messages.WorkspaceSpec{Label: label}})
	}
	a, b, c := view("a", 0), view("b", 0), view("c", 0)
	var cache listCache
	// answer checks the body against joinViews and returns it.
	answer := func(what string, views ...*messages.WorkspaceView) []byte {
		t.Helper()
		got, err := cache.body(views)
		if err != nil {
			t.Fatal(err)
		}
		want, err := joinViews(views)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: body\n%s\nwant\n%s", what, got, want)
		}
		return got
	}
	same := func(x, y []byte) bool { return &x[0] == &y[0] }

	first := answer("first", a, b)
	if again := answer("the same views", a, b); !same(again, first) {
		t.Error("the same views: the body was made again")
	}
	// Published again with the same figures: equal bytes, but the cache
	// goes by the views themselves.
	if again := answer("a view published again", a, messages.NewWorkspaceView(b.Info())); same(again, first) {
		t.Error("a view published again: the cached body was used")
	}
	changed := answer("a view changed", a, view("b", 1))
	if added := answer("a view added", a, view("b", 1), c); same(added, changed) {
		t.Error("a view added: the cached body was used")
	}
	answer("a view removed", a)
	if got := answer("empty"); string(got) != "[]\n" {
		t.Errorf("empty list: %q", got)
	}
}
