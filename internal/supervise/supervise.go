// Package supervise holds shipote's supervision decisions as plain state
// machines: whether and when a command or a pipeline run restarts, when it
// gives up, when a workspace is reaped or expires, what a quota excursion
// does, and which ended runs are forgotten.
//
// Nothing here makes a syscall, starts a goroutine, reads a clock of its own
// or knows about actors. A caller feeds observations (an exit status, the
// time a run lasted, a stop request, a sample) and carries out the decision
// it gets back: arming a timer, spawning, signalling, publishing events.
// The types are not safe for concurrent use; each belongs to one actor.
package supervise

import (
	"time"

	"github.com/shipote/shipote/messages"
)

// Policy is how a supervised unit restarts.
type Policy struct {
	// Restart: a run that fails is restarted.
	Restart bool
	// Always: a run that succeeds is restarted too (needs Restart).
	Always bool
	// BackoffMs is the first delay before a restart; MaxBackoffMs caps
	// the doubling, and a run longer than it resets the backoff.
	BackoffMs, MaxBackoffMs int64
	// Max is how many restarts are made before giving up; 0 = no limit.
	Max int64
	// SuccessCodes are the exits that count as success (empty = exit 0).
	SuccessCodes []int
}

// CommandPolicy is the policy of a command: its supervision and its
// success_exit_codes.
func CommandPolicy(r *messages.RestartPolicy, successCodes []int) Policy {
	p := Policy{SuccessCodes: successCodes}
	if r == nil {
		return p
	}
	p.Restart = true
	p.Always = r.On == messages.RestartAlways
	p.BackoffMs, p.MaxBackoffMs = r.Backoffs()
	p.Max = r.Max
	return p
}

// PipelinePolicy is the policy of a pipeline run: restarted whole on
// failure when restart_on_failure is set.
func PipelinePolicy(s *messages.PipelineSpec) Policy {
	p := Policy{Restart: s.RestartOnFailure, Max: s.RestartMax}
	p.BackoffMs, p.MaxBackoffMs = s.Backoffs()
	return p
}

// State is where a supervised unit is.
type State int

// States of a Supervisor.
const (
	// Idle: created, not started yet.
	Idle State = iota
	// Starting: a run was asked for and has not been seen running.
	Starting
	// Running: the run's processes are up.
	Running
	// Backoff: waiting to restart.
	Backoff
	// Ended: done for now; only a new Start runs it again.
	Ended
)

func (s State) String() string {
	switch s {
	case Idle:
		return "idle"
	case Starting:
		return "starting"
	case Running:
		return "running"
	case Backoff:
		return "backoff"
	case Ended:
		return "ended"
	}
	return "unknown"
}

// Action is what the caller does after a run ended.
type Action int

// Actions of a Decision.
const (
	// Done: the unit ended; Decision.Success says how.
	Done Action = iota
	// Restart: start it again after Decision.Delay.
	Restart
	// GiveUp: it failed after Policy.Max restarts; it stays ended.
	GiveUp
	// Stopped: it ended because a stop was asked.
	Stopped
)

func (a Action) String() string {
	switch a {
	case Done:
		return "done"
	case Restart:
		return "restart"
	case GiveUp:
		return "give up"
	case Stopped:
		return "stopped"
	}
	return "unknown"
}

// Decision is the outcome of a run's end.
type Decision struct {
	Action Action
	// Success: the run counts as a success (by the success codes).
	Success bool
	// Delay and At: when a Restart is due (At = now + Delay).
	Delay time.Duration
	At    time.Time
}

// Exit is how a command's run ended.
type Exit struct {
	Code   int // exit code, when no signal killed it
	Signal int // the signal that killed it; 0 if none
	// Failed: the run could not start or could not be waited for, or it
	// was killed for failing its health probe; it never counts as a
	// success.
	Failed bool
	// Ran is how long the run lasted.
	Ran time.Duration
}

// sigkill is SIGKILL's number on Linux, the signal of a quota kill.
const sigkill = 9

// Supervisor decides the restarts of one command or pipeline run, in the
// style of a raft RawNode: methods take what happened and return what to
// do; the caller owns timers and processes.
type Supervisor struct {
	policy      Policy
	now         func() time.Time
	state       State
	streak      int // consecutive restarts since the last long run
	restarts    int
	stopping    bool // a stop was asked for the current run
	shutdown    bool // the owner is going away: nothing restarts
	quotaKilled bool // a quota kill hit the current run
}

// New returns a Supervisor in state Idle; now is its clock.
func New(p Policy, now func() time.Time) *Supervisor {
	if now == nil {
		now = time.Now
	}
	return &Supervisor{policy: p, now: now}
}

// State returns the current state.
func (s *Supervisor) State() State { return s.state }

// Restarts returns how many restarts were made (on failure, or asked).
func (s *Supervisor) Restarts() int { return s.restarts }

// Stopping reports whether a stop was asked for the current run.
func (s *Supervisor) Stopping() bool { return s.stopping }

// Start records that a run is being started (the first one, or again on
// request after it ended): any earlier stop is over.
func (s *Supervisor) Start() {
	s.state = Starting
	s.stopping = false
	s.quotaKilled = false
}

// Spawned records that the run's processes are up.
func (s *Supervisor) Spawned() {
	if s.state == Starting {
		s.state = Running
	}
}

// Exited decides what follows a command's run: its success is judged by
// the policy's success codes.
func (s *Supervisor) Exited(e Exit) Decision {
	ok := !e.Failed && messages.IsSuccess(s.policy.SuccessCodes, e.Code, e.Signal)
	return s.decide(ok, e.Ran)
}

// RunEnded decides what follows a run whose success the caller judged
// (a pipeline run: every node succeeded).
func (s *Supervisor) RunEnded(success bool, ran time.Duration) Decision {
	return s.decide(success, ran)
}

func (s *Supervisor) decide(ok bool, ran time.Duration) Decision {
	d := Decision{Success: ok}
	switch {
	case s.stopping:
		s.state = Ended
		d.Action = Stopped
	case !s.policy.Restart || s.shutdown || (ok && !s.policy.Always):
		s.state = Ended
		d.Action = Done
	case s.policy.Max > 0 && int64(s.restarts) >= s.policy.Max:
		s.state = Ended
		d.Action = GiveUp
	default:
		s.state = Backoff
		d.Action = Restart
		d.Delay = NextBackoff(s.policy.BackoffMs, s.policy.MaxBackoffMs, &s.streak, ran)
		d.At = s.now().Add(d.Delay)
	}
	return d
}

// RestartDue is the backoff timer firing. It reports whether to start the
// run now, and if so counts the restart; a timer that fires after a stop,
// a shutdown or a restart on request is stale.
func (s *Supervisor) RestartDue() bool {
	if s.state != Backoff || s.stopping || s.shutdown {
		return false
	}
	s.restarts++
	s.Start()
	return true
}

// Resume makes a new Supervisor carry on for one that is gone with its
// owner (a pipeline's actor relaunched after it panicked): it has made
// restarts restarts so far and now waits, in Backoff, for the restart
// whose timer the caller set.
func (s *Supervisor) Resume(restarts int) {
	s.restarts = restarts
	s.state = Backoff
}

// RestartNow is a restart asked by the user: counted, with the backoff
// reset. The caller starts the run (after ending the current one).
func (s *Supervisor) RestartNow() {
	s.streak = 0
	s.restarts++
	s.Start()
}

// ResetBackoff forgets the streak of failures: the next restart waits the
// first backoff again (a command started again by hand).
func (s *Supervisor) ResetBackoff() { s.streak = 0 }

// StopResult is what a stop asks of the caller.
type StopResult int

// Results of Stop.
const (
	// StopNothing: it has already ended; nothing to do.
	StopNothing StopResult = iota
	// StopCancel: it was waiting to restart; cancel the timer, it is
	// stopped now.
	StopCancel
	// StopSignal: a run is starting or running; signal it, and its exit
	// will decide Stopped.
	StopSignal
)

// Stop asks the unit to stop for good.
func (s *Supervisor) Stop() StopResult {
	switch s.state {
	case Backoff:
		s.state = Ended
		s.stopping = true
		return StopCancel
	case Starting, Running:
		s.stopping = true
		return StopSignal
	}
	return StopNothing
}

// Shutdown is the owner going away (its workspace being removed): no more
// restarts. It reports whether the unit was waiting to restart (the
// caller cancels that timer; the unit counts as exited).
func (s *Supervisor) Shutdown() bool {
	s.shutdown = true
	if s.state == Backoff {
		s.state = Ended
		return true
	}
	return false
}

// QuotaKill records that quota enforcement kills the workspace's
// processes. It reports whether the current run is hit: only a running
// one is; a unit waiting to restart is not, and restarts when due.
func (s *Supervisor) QuotaKill() bool {
	if s.state != Running {
		return false
	}
	s.quotaKilled = true
	return true
}

// KilledByQuota reports whether a run that ended by signal sig was the
// quota's kill.
func (s *Supervisor) KilledByQuota(sig int) bool {
	return s.quotaKilled && sig == sigkill
}

// NextBackoff returns the delay before the next restart and advances
// streak: firstMs<<streak capped at maxMs, with streak reset after a run
// longer than maxMs.
func NextBackoff(firstMs, maxMs int64, streak *int, ran time.Duration) time.Duration {
	if ran > time.Duration(maxMs)*time.Millisecond {
		*streak = 0
	}
	d := firstMs
	for i := 0; i < *streak && d < maxMs; i++ {
		d *= 2
	}
	d = min(d, maxMs)
	*streak++
	return time.Duration(d) * time.Millisecond
}
