package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
)

func TestTimedCreatesCountsEveryCreate(t *testing.T) {
	var seen [200]atomic.Int32
	g, err := timedCreates(context.Background(), len(seen), 7, func(i int) error {
		seen[i].Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range seen {
		if n := seen[i].Load(); n != 1 {
			t.Errorf("create %d ran %d times", i, n)
		}
	}
	for name, v := range map[string]float64{"first": g.first, "last": g.last, "total": g.total.Seconds()} {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s = %v, want a positive finite figure", name, v)
		}
	}
	boom := errors.New("boom")
	if _, err := timedCreates(context.Background(), 50, 3, func(i int) error {
		if i == 20 {
			return fmt.Errorf("create %d: %w", i, boom)
		}
		return nil
	}); !errors.Is(err, boom) {
		t.Errorf("a failing create gave %v, want boom", err)
	}
}

// The growth rows come from a real daemon, created into through its API.
func TestJournalGrowthRows(t *testing.T) {
	r := NewReport(nil)
	if err := journalGrowth(context.Background(), r, 50, 4, 1); err != nil {
		t.Fatal(err)
	}
	rows := r.Rows()
	if len(rows) != 2 {
		t.Fatalf("got %d rows, want 2: %+v", len(rows), rows)
	}
	if !strings.Contains(rows[0].Name, "last 5 of 50") || rows[0].Value <= 0 || rows[0].Base <= 0 || rows[0].Met == nil {
		t.Errorf("rate row: %+v", rows[0])
	}
	if rows[1].Unit != "s" || rows[1].Value <= 0 || rows[1].Base <= 0 {
		t.Errorf("total row: %+v", rows[1])
	}
}
