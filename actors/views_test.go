package actors

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

// TestViewsPage checks the index's pages against ListQuery.Select over the
// same workspaces, for cursors on, between, before and after the IDs held,
// with limits and label prefixes; and that removing a replaced slot
// leaves its successor alone.
func TestViewsPage(t *testing.T) {
	var x Views
	if got, next := x.Page(messages.ListQuery{}); len(got) != 0 || next != "" {
		t.Fatalf("empty index: %v %q", got, next)
	}
	var ids, labels []string
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	slots := map[string]*viewSlot{}
	// Added out of order: the index keeps ID order.
	for _, i := range []int{3, 0, 5, 1, 4, 2, 6} {
		id := messages.NewIDAt(base.Add(time.Duration(i) * time.Millisecond))
		label := []string{"web-", "db-", "job-"}[i%3] + string(rune('a'+i))
		s := &viewSlot{id: id, label: label}
		s.publish(messages.WorkspaceInfo{ID: id, Spec: messages.WorkspaceSpec{Label: label}})
		x.add(s)
		slots[id] = s
	}
	for _, v := range mustPage(t, &x, messages.ListQuery{}) {
		ids = append(ids, v.Info().ID)
		labels = append(labels, v.Info().Spec.Label)
	}
	if len(ids) != 7 || !slices.IsSorted(ids) {
		t.Fatalf("ids %v", ids)
	}
	between := ids[2][:25] + "Z" // after ids[2], before ids[3]
	for _, q := range []messages.ListQuery{
		{}, {Limit: 1}, {Limit: 3}, {Limit: 7}, {Limit: 8},
		{After: ids[0]}, {After: strings.ToLower(ids[3]), Limit: 2}, {After: ids[6]}, {After: between},
		{After: "00000000000000000000000000"}, {After: "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"},
		{LabelPrefix: "web-"}, {LabelPrefix: "web-", Limit: 1}, {LabelPrefix: "db-", After: ids[1], Limit: 1}, {LabelPrefix: "none"},
	} {
		keep, wantNext := q.Select(len(ids), func(i int) string { return ids[i] }, func(i int) string { return labels[i] })
		var want []string
		for _, k := range keep {
			want = append(want, ids[k])
		}
		views, next := x.Page(q)
		var got []string
		for _, v := range views {
			got = append(got, v.Info().ID)
		}
		if !slices.Equal(got, want) || next != wantNext {
			t.Errorf("%+v: got %v next %q, want %v next %q", q, got, next, want, wantNext)
		}
	}

	// A slot replaced under the same ID: removing the old one is a no-op.
	old := slots[ids[4]]
	repl := &viewSlot{id: old.id, label: "new"}
	repl.publish(messages.WorkspaceInfo{ID: old.id, Spec: messages.WorkspaceSpec{Label: "new"}})
	x.add(repl)
	x.remove(old)
	if x.Len() != 7 {
		t.Fatalf("after replacing: %d views", x.Len())
	}
	if got := mustPage(t, &x, messages.ListQuery{LabelPrefix: "new"}); len(got) != 1 || got[0].Info().ID != ids[4] {
		t.Errorf("replacement: %v", got)
	}
	x.remove(repl)
	x.remove(slots[ids[0]])
	if x.Len() != 5 {
		t.Errorf("after two removals: %d views", x.Len())
	}
	// Removed and added again (with and without a rebuild between), and
	// added twice: listed once, in its place.
	x.remove(slots[ids[1]])
	x.add(slots[ids[1]])
	x.add(slots[ids[1]])
	x.remove(slots[ids[2]])
	_ = x.Len()
	x.add(slots[ids[2]])
	var got []string
	for _, v := range mustPage(t, &x, messages.ListQuery{}) {
		got = append(got, v.Info().ID)
	}
	if want := []string{ids[1], ids[2], ids[3], ids[5], ids[6]}; !slices.Equal(got, want) {
		t.Errorf("after removals and re-adds: %v, want %v", got, want)
	}
}

func mustPage(t *testing.T, x *Views, q messages.ListQuery) []*messages.WorkspaceView {
	t.Helper()
	views, _ := x.Page(q)
	return views
}

// TestViewSlotPublishCopies checks that a published view keeps none of
// the caller's stats: a later change to the sample it was given, or to
// the copy Info returns, does not show in the view.
func TestViewSlotPublishCopies(t *testing.T) {
	var s viewSlot
	sample := messages.Sample{RSSBytes: 1}
	s.publish(messages.WorkspaceInfo{ID: "x", Stats: &sample})
	sample.RSSBytes = 2
	got := s.view.Load().Info()
	got.Stats.RSSBytes = 3
	if rss := s.view.Load().Info().Stats.RSSBytes; rss != 1 {
		t.Errorf("view's RSS %d, want 1", rss)
	}
	if !s.view.Load().SameCounts(0, 0, 0, &messages.Sample{RSSBytes: 1}) || s.view.Load().SameCounts(0, 0, 0, nil) {
		t.Error("SameCounts")
	}
}

// TestViewsChurnWithoutLists checks that workspaces coming and going while
// nothing lists do not pile up in the index: what was added is folded in,
// and the removed slots are let go.
func TestViewsChurnWithoutLists(t *testing.T) {
	var x Views
	var kept []string
	for i := range 5000 {
		s := &viewSlot{id: messages.NewID(), label: "churn"}
		s.publish(messages.WorkspaceInfo{ID: s.id})
		x.add(s)
		if i%1000 == 0 {
			kept = append(kept, s.id)
			continue
		}
		x.remove(s)
	}
	x.mu.Lock()
	added, last := len(x.added), len(x.last)
	x.mu.Unlock()
	if added > 1025 || last > 1025 {
		t.Errorf("after churn: %d slots added and %d in the last snapshot, for %d workspaces", added, last, len(kept))
	}
	var got []string
	for _, v := range mustPage(t, &x, messages.ListQuery{}) {
		got = append(got, v.ID())
	}
	if !slices.Equal(got, kept) {
		t.Errorf("listed %v, want %v", got, kept)
	}
}
