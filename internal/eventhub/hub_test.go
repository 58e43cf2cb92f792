package eventhub

import (
	"testing"

	"github.com/shipote/shipote/messages"
)

func TestPublishSubscribeRecent(t *testing.T) {
	h := New(3)
	s := h.Subscribe(2)
	for _, k := range []messages.EventKind{"a", "b", "c", "d"} {
		h.Publish(messages.Event{Kind: k})
	}
	if got := h.Recent(); len(got) != 3 || got[0].Kind != "b" || got[2].Kind != "d" {
		t.Fatalf("recent %v", got)
	}
	if e := <-s.C; e.Kind != "a" {
		t.Fatalf("first %v", e)
	}
	if e := <-s.C; e.Kind != "b" {
		t.Fatalf("second %v", e)
	}
	if s.Dropped() != 2 {
		t.Fatalf("dropped %d, want 2 (a slow subscriber loses events, never blocks)", s.Dropped())
	}
	s.Cancel()
	s.Cancel()
	if _, ok := <-s.C; ok {
		t.Fatal("channel open after Cancel")
	}
	s2 := h.Subscribe(1)
	h.Close()
	if _, ok := <-s2.C; ok {
		t.Fatal("channel open after Close")
	}
	h.Publish(messages.Event{Kind: "late"})
	if s3 := h.Subscribe(1); s3 != nil {
		if _, ok := <-s3.C; ok {
			t.Fatal("subscription to a closed hub is open")
		}
	}
}
