package supervise

import "github.com/shipote/shipote/messages"

// ProbeKind names which probe a result is of.
type ProbeKind int

// Probe kinds.
const (
	ReadyProbe ProbeKind = iota
	HealthProbe
)

func (k ProbeKind) String() string {
	if k == ReadyProbe {
		return "ready"
	}
	return "health"
}

// Change is what a probe result changed.
type Change int

// Changes a probe result makes.
const (
	// NoChange: the readiness stays as it was.
	NoChange Change = iota
	// BecameReady: the ready probe passed; dependents may start, and
	// health probing begins.
	BecameReady
	// BecameNotReady: a ready command's ready probe failed
	// failure_threshold times in a row; it keeps running.
	BecameNotReady
	// BecameUnhealthy: the health probe failed failure_threshold times
	// in a row; the caller kills the run, and its supervision decides the
	// restart.
	BecameUnhealthy
)

func (c Change) String() string {
	switch c {
	case BecameReady:
		return "ready"
	case BecameNotReady:
		return "not ready"
	case BecameUnhealthy:
		return "unhealthy"
	}
	return "no change"
}

// Probes decides a command's readiness from its probes' results, one run
// at a time. A command without a ready probe is ready once it runs; the
// health probe counts only once the command is ready, and only until it
// is found unhealthy (the run is then being killed).
type Probes struct {
	ready, health    *messages.Probe
	running          bool
	state            messages.Readiness
	readyFails       int
	healthFails      int
	everReadyThisRun bool
}

// NewProbes returns the readiness machine of a command with the given
// probes (nil = none).
func NewProbes(ready, health *messages.Probe) *Probes {
	return &Probes{ready: ready, health: health}
}

// Readiness is the current readiness; "" when no run is up.
func (p *Probes) Readiness() messages.Readiness {
	if !p.running {
		return ""
	}
	return p.state
}

// State is the command state of the run that is up: starting until its
// ready probe passes (and again while a ready run's probe fails), then
// ready; running for a command without a ready probe, which is ready as
// soon as it runs; unhealthy once its health probe has failed
// failure_threshold times in a row. "" when no run is up (the
// Supervisor's decision says what the command is then).
func (p *Probes) State() messages.CommandState {
	if !p.running {
		return ""
	}
	switch p.state {
	case messages.ReadyUnhealthy:
		return messages.CommandUnhealthy
	case messages.ReadyOK:
		if p.ready == nil {
			return messages.CommandRunning
		}
		return messages.CommandReady
	}
	return messages.CommandStarting
}

// Ready reports whether a run is up and ready.
func (p *Probes) Ready() bool { return p.running && p.state == messages.ReadyOK }

// Spawned starts a run: ready at once without a ready probe, else
// starting. It reports whether the run is ready already.
func (p *Probes) Spawned() bool {
	p.running = true
	p.readyFails, p.healthFails = 0, 0
	p.everReadyThisRun = p.ready == nil
	p.state = messages.ReadyStarting
	if p.ready == nil {
		p.state = messages.ReadyOK
	}
	return p.state == messages.ReadyOK
}

// Ended ends the run: no probe counts until the next Spawned.
func (p *Probes) Ended() { p.running = false }

// Wants reports whether a probe of kind k is to run now: the ready probe
// while a run is up and not unhealthy, the health probe while it is
// ready.
func (p *Probes) Wants(k ProbeKind) bool {
	if !p.running || p.state == messages.ReadyUnhealthy {
		return false
	}
	if k == ReadyProbe {
		return p.ready != nil
	}
	return p.health != nil && p.everReadyThisRun
}

// Result feeds the outcome of a probe of kind k and returns what it
// changed.
func (p *Probes) Result(k ProbeKind, ok bool) Change {
	if !p.Wants(k) {
		return NoChange
	}
	if k == ReadyProbe {
		if ok {
			p.readyFails = 0
			if p.state == messages.ReadyStarting {
				p.state = messages.ReadyOK
				p.everReadyThisRun = true
				return BecameReady
			}
			return NoChange
		}
		p.readyFails++
		if p.state == messages.ReadyOK && p.readyFails >= p.ready.Threshold() {
			p.state = messages.ReadyStarting
			return BecameNotReady
		}
		return NoChange
	}
	if ok {
		p.healthFails = 0
		return NoChange
	}
	p.healthFails++
	if p.healthFails >= p.health.Threshold() {
		p.state = messages.ReadyUnhealthy
		return BecameUnhealthy
	}
	return NoChange
}

// DepState is what a dependent sees of a dependency.
type DepState struct {
	// Exists: a command has this label.
	Exists bool
	// OneShot: it is never restarted (no restart policy, no schedule).
	OneShot bool
	// Ready: it runs and is ready.
	Ready bool
	// Succeeded: it has ended with a success.
	Succeeded bool
}

// DepMet reports whether a dependency lets its dependents start: a
// one-shot one must have exited with success, any other must be ready.
func DepMet(d DepState) bool {
	if !d.Exists {
		return false
	}
	if d.OneShot {
		return d.Succeeded
	}
	return d.Ready
}

// Waiting returns the dependencies in deps that are not met, in order;
// state looks one up by label.
func Waiting(deps []string, state func(label string) DepState) []string {
	var out []string
	for _, d := range deps {
		if !DepMet(state(d)) {
			out = append(out, d)
		}
	}
	return out
}
