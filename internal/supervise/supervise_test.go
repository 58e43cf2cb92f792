package supervise

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

// run drives a Supervisor through a script of steps and returns, per step,
// what it said: each step is one observation, in the style of raft's
// interaction tests. Steps:
//
//	start | spawned | due | stop | shutdown | quota | restart-now | reset
//	exit code=N | exit sig=N | exit failed   (optionally ran=DURATION)
//	ended ok | ended fail                    (a pipeline run; ran=…)
//	tick DURATION                            (advances the clock)
func run(t *testing.T, s *Supervisor, clock *fakeClock, script []string) []string {
	t.Helper()
	var out []string
	for _, line := range script {
		f := strings.Fields(line)
		var res string
		switch f[0] {
		case "start":
			s.Start()
			res = s.State().String()
		case "spawned":
			s.Spawned()
			res = s.State().String()
		case "due":
			res = fmt.Sprintf("%t restarts=%d %s", s.RestartDue(), s.Restarts(), s.State())
		case "stop":
			res = []string{"nothing", "cancel", "signal"}[s.Stop()] + " " + s.State().String()
		case "shutdown":
			res = fmt.Sprintf("%t %s", s.Shutdown(), s.State())
		case "quota":
			res = strconv.FormatBool(s.QuotaKill())
		case "restart-now":
			s.RestartNow()
			res = fmt.Sprintf("restarts=%d %s", s.Restarts(), s.State())
		case "reset":
			s.ResetBackoff()
			res = "ok"
		case "resume":
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			s.Resume(n)
			res = fmt.Sprintf("restarts=%d %s", s.Restarts(), s.State())
		case "tick":
			d, err := time.ParseDuration(f[1])
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			clock.t = clock.t.Add(d)
			res = "ok"
		case "exit", "ended":
			var e Exit
			ok := false
			for _, a := range f[1:] {
				k, v, _ := strings.Cut(a, "=")
				var err error
				switch k {
				case "code":
					e.Code, err = strconv.Atoi(v)
				case "sig":
					e.Signal, err = strconv.Atoi(v)
					e.Code = -1
				case "failed":
					e.Failed, e.Code = true, -1
				case "ok":
					ok = true
				case "fail":
				case "ran":
					e.Ran, err = time.ParseDuration(v)
				default:
					t.Fatalf("%q: unknown argument %q", line, a)
				}
				if err != nil {
					t.Fatalf("%q: %v", line, err)
				}
			}
			var d Decision
			if f[0] == "exit" {
				quota := s.KilledByQuota(e.Signal)
				d = s.Exited(e)
				if quota {
					res = "quota-kill "
				}
			} else {
				d = s.RunEnded(ok, e.Ran)
			}
			res += fmt.Sprintf("%s success=%t", d.Action, d.Success)
			if d.Action == Restart {
				res += fmt.Sprintf(" after %s at +%s", d.Delay, d.At.Sub(clock.start))
			}
			res += " " + s.State().String()
		default:
			t.Fatalf("unknown step %q", line)
		}
		out = append(out, line+" -> "+res)
	}
	return out
}

type fakeClock struct{ start, t time.Time }

func newClock() *fakeClock {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &fakeClock{start: t0, t: t0}
}

func (c *fakeClock) now() time.Time { return c.t }

func TestSupervisor(t *testing.T) {
	onFailure := &messages.RestartPolicy{On: messages.RestartOnFailure, BackoffMs: 100, MaxBackoffMs: 400}
	always := &messages.RestartPolicy{On: messages.RestartAlways, BackoffMs: 100, MaxBackoffMs: 400}
	max2 := &messages.RestartPolicy{BackoffMs: 100, MaxBackoffMs: 400, Max: 2}
	tests := []struct {
		name   string
		policy Policy
		script []string
		want   []string
	}{
		{
			name:   "resumed after its owner died: the restart count carries on, max applies",
			policy: CommandPolicy(max2, nil),
			script: []string{"resume 1", "due", "spawned", "exit code=1", "due"},
			want: []string{"restarts=1 backoff", "true restarts=2 starting", "running",
				"give up success=false ended", "false restarts=2 ended"},
		},
		{
			name:   "resumed, then stopped while waiting",
			policy: CommandPolicy(onFailure, nil),
			script: []string{"resume 3", "stop", "due"},
			want:   []string{"restarts=3 backoff", "cancel ended", "false restarts=3 ended"},
		},
		{
			name:   "one-shot exits 0",
			policy: CommandPolicy(nil, nil),
			script: []string{"start", "spawned", "exit code=0"},
			want:   []string{"starting", "running", "done success=true ended"},
		},
		{
			name:   "one-shot fails: never restarted",
			policy: CommandPolicy(nil, nil),
			script: []string{"start", "spawned", "exit code=3", "due"},
			want:   []string{"starting", "running", "done success=false ended", "false restarts=0 ended"},
		},
		{
			name:   "on-failure: exit 0 is done, a code or a signal restarts",
			policy: CommandPolicy(onFailure, nil),
			script: []string{"start", "spawned", "exit code=1", "due", "spawned", "exit sig=15", "due", "spawned", "exit code=0"},
			want: []string{"starting", "running",
				"restart success=false after 100ms at +100ms backoff", "true restarts=1 starting", "running",
				"restart success=false after 200ms at +200ms backoff", "true restarts=2 starting", "running",
				"done success=true ended"},
		},
		{
			name:   "always: a success restarts too",
			policy: CommandPolicy(always, nil),
			script: []string{"start", "spawned", "exit code=0", "due", "spawned", "exit sig=9"},
			want: []string{"starting", "running",
				"restart success=true after 100ms at +100ms backoff", "true restarts=1 starting", "running",
				"restart success=false after 200ms at +200ms backoff"},
		},
		{
			name:   "success_exit_codes: a listed code and a listed signal (128+n) succeed",
			policy: CommandPolicy(onFailure, []int{0, 143}),
			script: []string{"start", "exit code=0", "start", "exit sig=15", "start", "exit code=143", "start", "exit sig=9"},
			want: []string{"starting", "done success=true ended", "starting", "done success=true ended",
				"starting", "done success=true ended",
				"starting", "restart success=false after 100ms at +100ms backoff"},
		},
		{
			name:   "success_exit_codes without 0: exit 0 fails",
			policy: CommandPolicy(onFailure, []int{2}),
			script: []string{"start", "exit code=0", "start", "exit code=2"},
			want:   []string{"starting", "restart success=false after 100ms at +100ms backoff", "starting", "done success=true ended"},
		},
		{
			name:   "a run that could not start fails even with exit 0 listed",
			policy: CommandPolicy(onFailure, []int{0}),
			script: []string{"start", "exit failed"},
			want:   []string{"starting", "restart success=false after 100ms at +100ms backoff"},
		},
		{
			name:   "backoff doubles up to the maximum",
			policy: CommandPolicy(onFailure, nil),
			script: []string{"start", "exit code=1", "due", "exit code=1", "due", "exit code=1", "due", "exit code=1", "due", "exit code=1"},
			want: []string{"starting",
				"restart success=false after 100ms at +100ms backoff", "true restarts=1 starting",
				"restart success=false after 200ms at +200ms backoff", "true restarts=2 starting",
				"restart success=false after 400ms at +400ms backoff", "true restarts=3 starting",
				"restart success=false after 400ms at +400ms backoff", "true restarts=4 starting",
				"restart success=false after 400ms at +400ms backoff"},
		},
		{
			name:   "backoff resets after a run longer than the maximum, not after one as long",
			policy: CommandPolicy(onFailure, nil),
			script: []string{"start", "exit code=1", "due", "exit code=1", "due", "exit code=1 ran=400ms", "due", "exit code=1 ran=401ms"},
			want: []string{"starting",
				"restart success=false after 100ms at +100ms backoff", "true restarts=1 starting",
				"restart success=false after 200ms at +200ms backoff", "true restarts=2 starting",
				"restart success=false after 400ms at +400ms backoff", "true restarts=3 starting",
				"restart success=false after 100ms at +100ms backoff"},
		},
		{
			name:   "max reached: gives up after max restarts",
			policy: CommandPolicy(max2, nil),
			script: []string{"start", "exit code=1", "due", "exit code=1", "due", "exit code=1", "due"},
			want: []string{"starting",
				"restart success=false after 100ms at +100ms backoff", "true restarts=1 starting",
				"restart success=false after 200ms at +200ms backoff", "true restarts=2 starting",
				"give up success=false ended", "false restarts=2 ended"},
		},
		{
			name:   "max reached: a success still ends as done",
			policy: CommandPolicy(max2, nil),
			script: []string{"start", "exit code=1", "due", "exit code=1", "due", "exit code=0"},
			want: []string{"starting",
				"restart success=false after 100ms at +100ms backoff", "true restarts=1 starting",
				"restart success=false after 200ms at +200ms backoff", "true restarts=2 starting",
				"done success=true ended"},
		},
		{
			name:   "the clock sets when a restart is due",
			policy: CommandPolicy(onFailure, nil),
			script: []string{"start", "tick 5s", "exit code=1"},
			want:   []string{"starting", "ok", "restart success=false after 100ms at +5.1s backoff"},
		},
		{
			name:   "stop requested during backoff: stopped at once, the timer is stale",
			policy: CommandPolicy(onFailure, nil),
			script: []string{"start", "spawned", "exit code=1", "stop", "due", "stop"},
			want: []string{"starting", "running", "restart success=false after 100ms at +100ms backoff",
				"cancel ended", "false restarts=0 ended", "nothing ended"},
		},
		{
			name:   "stop while running: the exit is stopped, not restarted",
			policy: CommandPolicy(always, nil),
			script: []string{"start", "spawned", "stop", "exit sig=15", "due"},
			want:   []string{"starting", "running", "signal running", "stopped success=false ended", "false restarts=0 ended"},
		},
		{
			name:   "stop while starting",
			policy: CommandPolicy(onFailure, nil),
			script: []string{"start", "stop", "spawned", "exit code=0"},
			want:   []string{"starting", "signal starting", "running", "stopped success=true ended"},
		},
		{
			name:   "started again after a stop: supervised again, backoff reset by hand",
			policy: CommandPolicy(onFailure, nil),
			script: []string{"start", "exit code=1", "due", "exit code=1", "stop", "reset", "start", "exit code=1"},
			want: []string{"starting", "restart success=false after 100ms at +100ms backoff", "true restarts=1 starting",
				"restart success=false after 200ms at +200ms backoff", "cancel ended", "ok", "starting",
				"restart success=false after 100ms at +100ms backoff"},
		},
		{
			name:   "shutdown during backoff: ends, nothing restarts",
			policy: CommandPolicy(onFailure, nil),
			script: []string{"start", "exit code=1", "shutdown", "due"},
			want:   []string{"starting", "restart success=false after 100ms at +100ms backoff", "true ended", "false restarts=0 ended"},
		},
		{
			name:   "shutdown while running: its exit is final",
			policy: CommandPolicy(always, nil),
			script: []string{"start", "spawned", "shutdown", "exit sig=9"},
			want:   []string{"starting", "running", "false running", "done success=false ended"},
		},
		{
			name:   "quota kill of a running command is told apart from another SIGKILL",
			policy: CommandPolicy(onFailure, nil),
			script: []string{"start", "spawned", "quota", "exit sig=9", "due", "spawned", "exit sig=9"},
			want: []string{"starting", "running", "true",
				"quota-kill restart success=false after 100ms at +100ms backoff", "true restarts=1 starting", "running",
				"restart success=false after 200ms at +200ms backoff"},
		},
		{
			name:   "quota kill during backoff: not hit, restarts when due",
			policy: CommandPolicy(onFailure, nil),
			script: []string{"start", "spawned", "exit code=1", "quota", "due", "spawned", "exit sig=9"},
			want: []string{"starting", "running", "restart success=false after 100ms at +100ms backoff",
				"false", "true restarts=1 starting", "running", "restart success=false after 200ms at +200ms backoff"},
		},
		{
			name:   "quota kill while starting: not hit",
			policy: CommandPolicy(onFailure, nil),
			script: []string{"start", "quota", "spawned", "exit sig=9"},
			want:   []string{"starting", "false", "running", "restart success=false after 100ms at +100ms backoff"},
		},
		{
			name:   "pipeline: success, failure restarted, stop, give up",
			policy: PipelinePolicy(&messages.PipelineSpec{RestartOnFailure: true, RestartBackoffMs: 50, RestartMaxBackoffMs: 60, RestartMax: 2}),
			script: []string{"start", "ended fail", "due", "ended fail ran=61ms", "due", "ended fail", "start", "ended ok"},
			want: []string{"starting", "restart success=false after 50ms at +50ms backoff", "true restarts=1 starting",
				"restart success=false after 50ms at +50ms backoff", "true restarts=2 starting",
				"give up success=false ended", "starting", "done success=true ended"},
		},
		{
			name:   "pipeline: restart on request resets the backoff and counts",
			policy: PipelinePolicy(&messages.PipelineSpec{RestartOnFailure: true, RestartBackoffMs: 50, RestartMaxBackoffMs: 1000}),
			script: []string{"start", "ended fail", "due", "ended fail", "restart-now", "ended fail", "due"},
			want: []string{"starting", "restart success=false after 50ms at +50ms backoff", "true restarts=1 starting",
				"restart success=false after 100ms at +100ms backoff", "restarts=2 starting",
				"restart success=false after 50ms at +50ms backoff", "true restarts=3 starting"},
		},
		{
			name:   "pipeline without restart_on_failure: a failure is final",
			policy: PipelinePolicy(&messages.PipelineSpec{}),
			script: []string{"start", "ended fail"},
			want:   []string{"starting", "done success=false ended"},
		},
		{
			name:   "pipeline stopped during backoff",
			policy: PipelinePolicy(&messages.PipelineSpec{RestartOnFailure: true}),
			script: []string{"start", "ended fail", "stop", "due"},
			want:   []string{"starting", "restart success=false after 200ms at +200ms backoff", "cancel ended", "false restarts=0 ended"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			got := run(t, New(tt.policy, clock.now), clock, tt.script)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d results, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if want := tt.script[i] + " -> " + tt.want[i]; got[i] != want {
					t.Errorf("step %d:\n got %s\nwant %s", i, got[i], want)
				}
			}
		})
	}
}

func TestNextBackoff(t *testing.T) {
	tests := []struct {
		name       string
		first, max int64
		streak     int
		ran        time.Duration
		want       time.Duration
		wantStreak int
	}{
		{name: "first", first: 200, max: 30000, want: 200 * time.Millisecond, wantStreak: 1},
		{name: "doubled", first: 200, max: 30000, streak: 3, want: 1600 * time.Millisecond, wantStreak: 4},
		{name: "capped", first: 200, max: 30000, streak: 20, want: 30 * time.Second, wantStreak: 21},
		{name: "reset by a long run", first: 200, max: 30000, streak: 5, ran: 31 * time.Second, want: 200 * time.Millisecond, wantStreak: 1},
		{name: "a run of exactly max is not long", first: 200, max: 1000, streak: 1, ran: time.Second, want: 400 * time.Millisecond, wantStreak: 2},
		{name: "first above max", first: 500, max: 100, want: 100 * time.Millisecond, wantStreak: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			streak := tt.streak
			if got := NextBackoff(tt.first, tt.max, &streak, tt.ran); got != tt.want || streak != tt.wantStreak {
				t.Errorf("NextBackoff = %v, streak %d; want %v, streak %d", got, streak, tt.want, tt.wantStreak)
			}
		})
	}
}
