package supervise

import (
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestSchedulerFires(t *testing.T) {
	sched, err := messages.ParseSchedule("*/10 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 3, 0, 0, time.UTC)
	clk := &fakeClock{start: t0, t: t0}
	s := NewScheduler(sched, messages.ConcurrencyForbid)
	due := s.Arm(clk.now())
	if want := time.Date(2026, 3, 1, 12, 10, 0, 0, time.UTC); !due.Equal(want) || !s.Due().Equal(want) {
		t.Fatalf("Arm() = %v, want %v", due, want)
	}
	clk.advance(due.Sub(clk.now()))
	act, ok := s.Fire(due, false)
	if !ok || act != RunStart {
		t.Fatalf("Fire() = %v %v, want start", act, ok)
	}
	if act, ok := s.Fire(due, false); ok {
		t.Fatalf("a second Fire of the same run = %v, want stale", act)
	}
	// A timer that fired a little early does not run the same time twice.
	next := s.Arm(due.Add(-time.Millisecond))
	if want := time.Date(2026, 3, 1, 12, 20, 0, 0, time.UTC); !next.Equal(want) {
		t.Fatalf("Arm() after an early fire = %v, want %v", next, want)
	}
	// Downtime: the runs of the next three hours are not made up.
	clk.advance(3 * time.Hour)
	next = s.Arm(clk.now())
	if want := time.Date(2026, 3, 1, 15, 20, 0, 0, time.UTC); !next.Equal(want) {
		t.Fatalf("Arm() after downtime = %v, want %v (no backfill)", next, want)
	}
	if _, ok := s.Fire(next.Add(-10*time.Minute), false); ok {
		t.Fatal("a stale timer fired")
	}
	s.Disarm()
	if _, ok := s.Fire(next, false); ok || !s.Due().IsZero() {
		t.Fatal("a disarmed scheduler fired")
	}
}

func TestSchedulerConcurrency(t *testing.T) {
	sched, err := messages.ParseSchedule("@every 1s")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		c       messages.Concurrency
		running bool
		want    RunAction
	}{
		{"", false, RunStart},
		{"", true, RunBeside},
		{messages.ConcurrencyAllow, true, RunBeside},
		{messages.ConcurrencyForbid, false, RunStart},
		{messages.ConcurrencyForbid, true, RunSkip},
		{messages.ConcurrencyReplace, false, RunStart},
		{messages.ConcurrencyReplace, true, RunReplace},
	}
	for _, tt := range tests {
		s := NewScheduler(sched, tt.c)
		due := s.Arm(start)
		if !due.Equal(start.Add(time.Second)) {
			t.Fatalf("Arm() = %v", due)
		}
		if got, ok := s.Fire(due, tt.running); !ok || got != tt.want {
			t.Errorf("%q running=%v: %v %v, want %v", tt.c, tt.running, got, ok, tt.want)
		}
	}
}
