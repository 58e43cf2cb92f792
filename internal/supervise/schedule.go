package supervise

import (
	"time"

	"github.com/shipote/shipote/messages"
)

// Next is the part of a cron schedule a Scheduler uses.
type Next interface {
	Next(time.Time) time.Time
}

// RunAction is what a due run does.
type RunAction int

// Actions of a due run.
const (
	// RunStart: nothing runs; start the run.
	RunStart RunAction = iota
	// RunSkip: the last run still runs and concurrency is forbid.
	RunSkip
	// RunReplace: stop the last run (still running), then start.
	RunReplace
	// RunBeside: the last run still runs; start another beside it
	// (concurrency allow).
	RunBeside
)

func (a RunAction) String() string {
	switch a {
	case RunStart:
		return "start"
	case RunSkip:
		return "skip"
	case RunReplace:
		return "replace"
	case RunBeside:
		return "beside"
	}
	return "unknown"
}

// Scheduler decides the runs of a scheduled command. Times come from the
// caller's clock; there is no backfill: a Scheduler armed after a
// downtime waits for the first time after now, never for runs missed.
type Scheduler struct {
	sched       Next
	concurrency messages.Concurrency
	due         time.Time // the armed run; zero when disarmed
	last        time.Time // the last run that came due
}

// NewScheduler returns a disarmed Scheduler.
func NewScheduler(s Next, c messages.Concurrency) *Scheduler {
	if c == "" {
		c = messages.ConcurrencyAllow
	}
	return &Scheduler{sched: s, concurrency: c}
}

// Arm sets the next run: the first schedule time after now and after the
// last run that came due (a timer that fires early does not run twice).
func (s *Scheduler) Arm(now time.Time) time.Time {
	from := now
	if s.last.After(from) {
		from = s.last
	}
	s.due = s.sched.Next(from)
	return s.due
}

// Due returns the armed run's time; zero when disarmed.
func (s *Scheduler) Due() time.Time { return s.due }

// Disarm cancels the armed run (the command is stopped).
func (s *Scheduler) Disarm() { s.due = time.Time{} }

// Fire is the timer of the run due at due: it reports whether it is the
// armed one (not stale), and what to do given whether the last run still
// runs. The caller arms the next run.
func (s *Scheduler) Fire(due time.Time, running bool) (RunAction, bool) {
	if s.due.IsZero() || !due.Equal(s.due) {
		return 0, false
	}
	s.last, s.due = due, time.Time{}
	if !running {
		return RunStart, true
	}
	switch s.concurrency {
	case messages.ConcurrencyForbid:
		return RunSkip, true
	case messages.ConcurrencyReplace:
		return RunReplace, true
	}
	return RunBeside, true
}
