package supervise

import (
	"reflect"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

func TestDeadline(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if d := Deadline(t0, 0); !d.IsZero() {
		t.Errorf("Deadline without a TTL = %v; want zero", d)
	}
	if d := Deadline(t0, -5); !d.IsZero() {
		t.Errorf("Deadline with a negative TTL = %v; want zero", d)
	}
	if d, want := Deadline(t0, 1500), t0.Add(1500*time.Millisecond); !d.Equal(want) {
		t.Errorf("Deadline = %v; want %v", d, want)
	}
}

func TestReaperTTL(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name     string
		deadline time.Time
		now      time.Time
		want     time.Duration
		wantOK   bool
	}{
		{name: "no TTL", now: t0},
		{name: "ahead", deadline: t0.Add(time.Minute), now: t0, want: time.Minute, wantOK: true},
		{name: "passed while the daemon was down", deadline: t0, now: t0.Add(time.Hour), want: 0, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReaper(messages.ExitKeep, tt.deadline)
			d, ok := r.TTLTimer(tt.now)
			if d != tt.want || ok != tt.wantOK {
				t.Errorf("TTLTimer = %v, %t; want %v, %t", d, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestReaperTransitions: TTL expiry and removal requests in every order.
func TestReaperTransitions(t *testing.T) {
	t.Run("TTL expires: removed once", func(t *testing.T) {
		r := NewReaper(messages.ExitKeep, time.Unix(1, 0))
		if !r.TTLExpired() {
			t.Fatal("TTLExpired of an idle workspace = false; want a removal")
		}
		if !r.Remove() || !r.Removing() {
			t.Fatal("the first Remove was refused")
		}
	})
	t.Run("TTL expiring while stopping changes nothing", func(t *testing.T) {
		r := NewReaper(messages.ExitKeep, time.Unix(1, 0))
		if !r.Remove() {
			t.Fatal("the first Remove was refused")
		}
		if r.TTLExpired() {
			t.Error("TTLExpired during a removal = true; want nothing")
		}
		if r.Remove() {
			t.Error("a second Remove = true; want it joined to the first")
		}
	})
}

func TestReaperShouldReap(t *testing.T) {
	tests := []struct {
		name     string
		policy   messages.ExitPolicy
		ran      bool
		removing bool
		alive    bool
		want     bool
		asked    bool // whether anyAlive is consulted
	}{
		{name: "reap: everything ended", policy: messages.ExitReap, ran: true, want: true, asked: true},
		{name: "reap: something alive", policy: messages.ExitReap, ran: true, alive: true, asked: true},
		{name: "reap: nothing ran yet", policy: messages.ExitReap},
		{name: "reap: already being removed", policy: messages.ExitReap, ran: true, removing: true},
		{name: "keep: everything ended", policy: messages.ExitKeep, ran: true},
		{name: "empty policy is keep", ran: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReaper(tt.policy, time.Time{})
			if tt.ran {
				r.Ran()
			}
			if tt.removing {
				r.Remove()
			}
			asked := false
			got := r.ShouldReap(func() bool { asked = true; return tt.alive })
			if got != tt.want || asked != tt.asked {
				t.Errorf("ShouldReap = %t (alive asked: %t); want %t (asked: %t)", got, asked, tt.want, tt.asked)
			}
		})
	}
}

func TestQuota(t *testing.T) {
	soma := messages.Soma{MemoryMaxBytes: 1000, PidsMax: 4, CPUMax: 1}
	mem := Excess{Resource: Memory, Used: 2000, Limit: 1000}
	pids := Excess{Resource: Pids, Used: 5, Limit: 4}
	cpu := Excess{Resource: CPU, Used: 1.2, Limit: 1}
	type obs struct {
		u        Usage
		removing bool
		want     QuotaDecision
	}
	tests := []struct {
		name string
		mode messages.QuotaEnforce
		soma messages.Soma
		obs  []obs
	}{
		{name: "off never acts", mode: messages.QuotaOff, soma: soma, obs: []obs{
			{u: Usage{RSSBytes: 2000, Pids: 5, CPUCores: 2}},
		}},
		{name: "warn: once per excursion, again after it ends", mode: messages.QuotaWarn, soma: soma, obs: []obs{
			{u: Usage{RSSBytes: 500}},
			{u: Usage{RSSBytes: 2000}, want: QuotaDecision{Action: QuotaWarn, Over: []Excess{mem}}},
			{u: Usage{RSSBytes: 2000, Pids: 5}, want: QuotaDecision{Over: []Excess{mem, pids}}},
			{u: Usage{RSSBytes: 1000}},
			{u: Usage{Pids: 5}, want: QuotaDecision{Action: QuotaWarn, Over: []Excess{pids}}},
		}},
		{name: "cpu has a 5% slack", mode: messages.QuotaWarn, soma: soma, obs: []obs{
			{u: Usage{CPUCores: 1.05}},
			{u: Usage{CPUCores: 1.2}, want: QuotaDecision{Action: QuotaWarn, Over: []Excess{cpu}}},
		}},
		{name: "kill: memory over kills every time, memory first", mode: messages.QuotaKill, soma: soma, obs: []obs{
			{u: Usage{RSSBytes: 2000, Pids: 5}, want: QuotaDecision{Action: QuotaKill, Over: []Excess{mem, pids}}},
			{u: Usage{RSSBytes: 2000}, want: QuotaDecision{Action: QuotaKill, Over: []Excess{mem}}},
		}},
		{name: "kill: other limits only warn", mode: messages.QuotaKill, soma: soma, obs: []obs{
			{u: Usage{Pids: 5}, want: QuotaDecision{Action: QuotaWarn, Over: []Excess{pids}}},
			{u: Usage{Pids: 5}, want: QuotaDecision{Over: []Excess{pids}}},
			{u: Usage{RSSBytes: 2000, Pids: 5}, want: QuotaDecision{Action: QuotaKill, Over: []Excess{mem, pids}}},
		}},
		{name: "nothing while the workspace is removed", mode: messages.QuotaKill, soma: soma, obs: []obs{
			{u: Usage{RSSBytes: 2000}, removing: true},
		}},
		{name: "no limits set", mode: messages.QuotaKill, obs: []obs{
			{u: Usage{RSSBytes: 1 << 40, Pids: 1000, CPUCores: 64}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NewQuota(tt.mode, tt.soma)
			for i, o := range tt.obs {
				if got := q.Observe(o.u, o.removing); !reflect.DeepEqual(got, o.want) {
					t.Errorf("sample %d %+v: got %+v; want %+v", i, o.u, got, o.want)
				}
			}
		})
	}
}

// TestRetention: beyond Keep the oldest are dropped; past For every one
// is; next says when the oldest kept one ages out.
func TestRetention(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	ended := []Gone{{ID: "c", At: at(30)}, {ID: "a", At: at(10)}, {ID: "b", At: at(20)}, {ID: "d", At: at(40)}}
	tests := []struct {
		name     string
		r        Retention
		ended    []Gone
		now      time.Time
		wantDrop []string
		wantNext time.Time
	}{
		{name: "nothing ended", r: Retention{Keep: 2, For: time.Minute}, now: at(0)},
		{name: "within both limits", r: Retention{Keep: 10, For: time.Minute}, ended: ended, now: at(40),
			wantNext: at(70)},
		{name: "beyond Keep: the oldest ended go first, not the first listed", r: Retention{Keep: 2, For: time.Minute},
			ended: ended, now: at(40), wantDrop: []string{"a", "b"}, wantNext: at(90)},
		{name: "past For", r: Retention{Keep: 10, For: 25 * time.Second}, ended: ended, now: at(50),
			wantDrop: []string{"a", "b"}, wantNext: at(55)},
		{name: "exactly For old is dropped", r: Retention{Keep: 10, For: 20 * time.Second}, ended: ended, now: at(50),
			wantDrop: []string{"a", "b", "c"}, wantNext: at(60)},
		{name: "both limits", r: Retention{Keep: 1, For: 25 * time.Second}, ended: ended, now: at(50),
			wantDrop: []string{"a", "b", "c"}, wantNext: at(65)},
		{name: "every one too old", r: Retention{Keep: 10, For: time.Second}, ended: ended, now: at(100),
			wantDrop: []string{"a", "b", "c", "d"}},
		{name: "no age limit", r: Retention{Keep: 3}, ended: ended, now: at(1e6), wantDrop: []string{"a"}},
		{name: "keep none", r: Retention{For: time.Hour}, ended: ended, now: at(40), wantDrop: []string{"a", "b", "c", "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]Gone(nil), tt.ended...)
			drop, next := tt.r.Drop(in, tt.now)
			if !reflect.DeepEqual(drop, tt.wantDrop) || !next.Equal(tt.wantNext) {
				t.Errorf("Drop = %v, next %v; want %v, next %v", drop, next, tt.wantDrop, tt.wantNext)
			}
			if !reflect.DeepEqual(in, tt.ended) {
				t.Errorf("Drop changed its input: %v", in)
			}
		})
	}
}

// TestRetentionOverTime replays a periodic job with a fake clock: what is
// kept never exceeds Keep, and nothing older than For survives a sweep.
func TestRetentionOverTime(t *testing.T) {
	r := Retention{Keep: 5, For: 10 * time.Second}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var kept []Gone
	for i := range 1000 {
		now = now.Add(time.Duration(1+i%7) * time.Second)
		kept = append(kept, Gone{ID: string(rune('A' + i%26)), At: now})
		drop, next := r.Drop(kept, now)
		kept = kept[len(drop):] // in end order, the dropped are the oldest
		if len(kept) > r.Keep {
			t.Fatalf("step %d: %d kept; want at most %d", i, len(kept), r.Keep)
		}
		for _, g := range kept {
			if now.Sub(g.At) >= r.For {
				t.Fatalf("step %d: kept one ended %v ago", i, now.Sub(g.At))
			}
		}
		if want := kept[0].At.Add(r.For); !next.Equal(want) {
			t.Fatalf("step %d: next = %v; want %v", i, next, want)
		}
	}
}
