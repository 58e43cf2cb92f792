// This file tests ID generation and parsing.

package messages

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewID(t *testing.T) {
	prev := NewID()
	if len(prev) != 26 {
		t.Fatalf("NewID() = %q, %d chars, want 26", prev, len(prev))
	}
	for i := range 1000 {
		id := NewID()
		if len(id) != 26 || !IsID(id) {
			t.Fatalf("NewID() = %q is not a 26-char ULID", id)
		}
		if id <= prev {
			t.Fatalf("ID %d: %q is not after %q", i, id, prev)
		}
		prev = id
	}
}

func TestNewIDAtSameTimeIsMonotonic(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 6e6, time.UTC)
	prev := NewIDAt(at)
	for range 1000 {
		id := NewIDAt(at)
		if id <= prev {
			t.Fatalf("%q is not after %q", id, prev)
		}
		got, err := IDTime(id)
		if err != nil || !got.Equal(at) {
			t.Fatalf("IDTime(%q) = %v, %v; want %v", id, got, err, at)
		}
		prev = id
	}
}

func TestNewIDConcurrent(t *testing.T) {
	const workers, each = 4, 500
	ids := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				ids[w] = append(ids[w], NewID())
			}
		}()
	}
	wg.Wait()
	seen := make(map[string]bool, workers*each)
	for _, list := range ids {
		for i, id := range list {
			if seen[id] {
				t.Fatalf("duplicate ID %q", id)
			}
			seen[id] = true
			if i > 0 && id <= list[i-1] {
				t.Fatalf("IDs of one goroutine out of order: %q after %q", id, list[i-1])
			}
		}
	}
}

func TestParseIDRoundTrip(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123)
	id := NewIDAt(at)
	got, err := ParseID(id)
	if err != nil || got != id {
		t.Fatalf("ParseID(%q) = %q, %v", id, got, err)
	}
	got, err = ParseID(strings.ToLower(id))
	if err != nil || got != id {
		t.Fatalf("ParseID(lower case) = %q, %v; want %q", got, err, id)
	}
	if !IsID(id) || !IsID(strings.ToLower(id)) {
		t.Error("IsID() = false for a fresh ID")
	}
	tm, err := IDTime(id)
	if err != nil || !tm.Equal(at) {
		t.Fatalf("IDTime(%q) = %v, %v; want %v", id, tm, err, at)
	}
	now := time.Now()
	tm, err = IDTime(NewID())
	if err != nil || tm.Sub(now) > time.Minute || now.Sub(tm) > time.Minute {
		t.Errorf("IDTime(NewID()) = %v, %v; want about %v", tm, err, now)
	}
}

func TestParseIDInvalid(t *testing.T) {
	valid := NewID()
	tests := []struct {
		name string
		id   string
	}{
		{"empty", ""},
		{"short", valid[:25]},
		{"long", valid + "0"},
		{"label", "build"},
		{"letter I", "I" + valid[1:]},
		{"letter L", valid[:25] + "L"},
		{"letter O", valid[:10] + "O" + valid[11:]},
		{"letter U", valid[:25] + "U"},
		{"punctuation", valid[:25] + "-"},
		{"space", " " + valid[1:]},
		{"overflow", "8" + valid[1:]},
		{"unicode", "é" + valid[2:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if IsID(tt.id) {
				t.Errorf("IsID(%q) = true", tt.id)
			}
			got, err := ParseID(tt.id)
			if err == nil {
				t.Fatalf("ParseID(%q) = %q, want an error", tt.id, got)
			}
			wantErrContains(t, err, "is not a ULID")
			if _, err := IDTime(tt.id); err == nil {
				t.Errorf("IDTime(%q) gave no error", tt.id)
			}
		})
	}
}

func TestNewIDAtClamps(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
		want time.Time
	}{
		{"before the epoch", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), time.UnixMilli(0)},
		{"epoch", time.UnixMilli(0), time.UnixMilli(0)},
		{"beyond a ULID's range", time.Date(20000, 1, 1, 0, 0, 0, 0, time.UTC), time.UnixMilli(1<<48 - 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := NewIDAt(tt.at)
			got, err := IDTime(id)
			if err != nil || !got.Equal(tt.want) {
				t.Fatalf("IDTime(NewIDAt(%v)) = %v, %v; want %v", tt.at, got, err, tt.want)
			}
		})
	}
}

func TestNewIDUnaffectedByNewIDAt(t *testing.T) {
	prev := NewID()
	for i := range 200 {
		NewIDAt(time.Now().Add(-time.Duration(i%3) * time.Hour))
		id := NewID()
		if id <= prev {
			t.Fatalf("NewID() = %q after %q", id, prev)
		}
		prev = id
	}
}
