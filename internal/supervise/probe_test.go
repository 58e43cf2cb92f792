package supervise

import (
	"reflect"
	"testing"

	"github.com/shipote/shipote/messages"
)

type probeStep struct {
	kind   ProbeKind
	ok     bool
	change Change
	state  messages.Readiness
	cmd    messages.CommandState // the command's state after the step
}

func TestProbes(t *testing.T) {
	ready := &messages.Probe{TCP: "a:1", FailureThreshold: 2}
	health := &messages.Probe{TCP: "a:1", FailureThreshold: 3}
	tests := []struct {
		name          string
		ready, health *messages.Probe
		readyAtSpawn  bool
		spawnState    messages.CommandState
		steps         []probeStep
	}{
		{"no probes: ready on start", nil, nil, true, messages.CommandRunning, []probeStep{
			{ReadyProbe, true, NoChange, messages.ReadyOK, messages.CommandRunning},
			{HealthProbe, false, NoChange, messages.ReadyOK, messages.CommandRunning},
		}},
		{"ready probe: starting until it passes", ready, nil, false, messages.CommandStarting, []probeStep{
			{ReadyProbe, false, NoChange, messages.ReadyStarting, messages.CommandStarting},
			{ReadyProbe, false, NoChange, messages.ReadyStarting, messages.CommandStarting},
			{ReadyProbe, false, NoChange, messages.ReadyStarting, messages.CommandStarting},
			{ReadyProbe, true, BecameReady, messages.ReadyOK, messages.CommandReady},
			{ReadyProbe, true, NoChange, messages.ReadyOK, messages.CommandReady},
			{ReadyProbe, false, NoChange, messages.ReadyOK, messages.CommandReady},
			{ReadyProbe, true, NoChange, messages.ReadyOK, messages.CommandReady}, // the streak resets
			{ReadyProbe, false, NoChange, messages.ReadyOK, messages.CommandReady},
			{ReadyProbe, false, BecameNotReady, messages.ReadyStarting, messages.CommandStarting},
			{ReadyProbe, true, BecameReady, messages.ReadyOK, messages.CommandReady},
		}},
		{"health ignored before ready", ready, health, false, messages.CommandStarting, []probeStep{
			{HealthProbe, false, NoChange, messages.ReadyStarting, messages.CommandStarting},
			{HealthProbe, false, NoChange, messages.ReadyStarting, messages.CommandStarting},
			{HealthProbe, false, NoChange, messages.ReadyStarting, messages.CommandStarting},
			{HealthProbe, false, NoChange, messages.ReadyStarting, messages.CommandStarting},
			{ReadyProbe, true, BecameReady, messages.ReadyOK, messages.CommandReady},
			{HealthProbe, false, NoChange, messages.ReadyOK, messages.CommandReady},
			{HealthProbe, false, NoChange, messages.ReadyOK, messages.CommandReady},
			{HealthProbe, false, BecameUnhealthy, messages.ReadyUnhealthy, messages.CommandUnhealthy},
			{HealthProbe, false, NoChange, messages.ReadyUnhealthy, messages.CommandUnhealthy}, // no more probing
			{ReadyProbe, true, NoChange, messages.ReadyUnhealthy, messages.CommandUnhealthy},
		}},
		{"health counts after readiness is lost", ready, health, false, messages.CommandStarting, []probeStep{
			{ReadyProbe, true, BecameReady, messages.ReadyOK, messages.CommandReady},
			{ReadyProbe, false, NoChange, messages.ReadyOK, messages.CommandReady},
			{ReadyProbe, false, BecameNotReady, messages.ReadyStarting, messages.CommandStarting},
			{HealthProbe, false, NoChange, messages.ReadyStarting, messages.CommandStarting},
			{HealthProbe, false, NoChange, messages.ReadyStarting, messages.CommandStarting},
			{HealthProbe, false, BecameUnhealthy, messages.ReadyUnhealthy, messages.CommandUnhealthy},
			{ReadyProbe, true, NoChange, messages.ReadyUnhealthy, messages.CommandUnhealthy},
		}},
		{"health without ready probe", nil, health, true, messages.CommandRunning, []probeStep{
			{HealthProbe, false, NoChange, messages.ReadyOK, messages.CommandRunning},
			{HealthProbe, true, NoChange, messages.ReadyOK, messages.CommandRunning},
			{HealthProbe, false, NoChange, messages.ReadyOK, messages.CommandRunning},
			{HealthProbe, false, NoChange, messages.ReadyOK, messages.CommandRunning},
			{HealthProbe, false, BecameUnhealthy, messages.ReadyUnhealthy, messages.CommandUnhealthy},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProbes(tt.ready, tt.health)
			if p.Readiness() != "" || p.Ready() || p.State() != "" {
				t.Fatalf("before a run: %q %q", p.Readiness(), p.State())
			}
			if got := p.Spawned(); got != tt.readyAtSpawn {
				t.Fatalf("Spawned() = %v, want %v", got, tt.readyAtSpawn)
			}
			if got := p.State(); got != tt.spawnState {
				t.Fatalf("state at spawn %q, want %q", got, tt.spawnState)
			}
			for i, s := range tt.steps {
				if got := p.Result(s.kind, s.ok); got != s.change {
					t.Fatalf("step %d (%v %v): change %v, want %v", i, s.kind, s.ok, got, s.change)
				}
				if got := p.Readiness(); got != s.state {
					t.Fatalf("step %d: readiness %q, want %q", i, got, s.state)
				}
				if got := p.State(); got != s.cmd {
					t.Fatalf("step %d: state %q, want %q", i, got, s.cmd)
				}
			}
			p.Ended()
			if p.Readiness() != "" || p.State() != "" || p.Wants(ReadyProbe) || p.Wants(HealthProbe) {
				t.Errorf("after the run: %q %q, wants probes", p.Readiness(), p.State())
			}
			// A new run starts over.
			if p.Spawned() != tt.readyAtSpawn || p.State() != tt.spawnState {
				t.Errorf("second run: %q at spawn, want %q", p.State(), tt.spawnState)
			}
		})
	}
}

func TestDepMet(t *testing.T) {
	tests := []struct {
		d    DepState
		want bool
	}{
		{DepState{}, false},
		{DepState{Exists: true}, false},
		{DepState{Exists: true, Ready: true}, true},
		{DepState{Exists: true, Succeeded: true}, false}, // a service that ended is not ready
		{DepState{Exists: true, OneShot: true, Ready: true}, false},
		{DepState{Exists: true, OneShot: true, Succeeded: true}, true},
	}
	for _, tt := range tests {
		if got := DepMet(tt.d); got != tt.want {
			t.Errorf("DepMet(%+v) = %v, want %v", tt.d, got, tt.want)
		}
	}
	states := map[string]DepState{"db": {Exists: true, Ready: true}, "migrate": {Exists: true, OneShot: true}}
	got := Waiting([]string{"db", "migrate", "cache"}, func(l string) DepState { return states[l] })
	if want := []string{"migrate", "cache"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Waiting() = %v, want %v", got, want)
	}
}
