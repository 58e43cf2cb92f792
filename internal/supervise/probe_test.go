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
}

func TestProbes(t *testing.T) {
	ready := &messages.Probe{TCP: "a:1", FailureThreshold: 2}
	health := &messages.Probe{TCP: "a:1", FailureThreshold: 3}
	tests := []struct {
		name          string
		ready, health *messages.Probe
		readyAtSpawn  bool
		steps         []probeStep
	}{
		{"no probes: ready on start", nil, nil, true, []probeStep{
			{ReadyProbe, true, NoChange, messages.ReadyOK},
			{HealthProbe, false, NoChange, messages.ReadyOK},
		}},
		{"ready probe: starting until it passes", ready, nil, false, []probeStep{
			{ReadyProbe, false, NoChange, messages.ReadyStarting},
			{ReadyProbe, false, NoChange, messages.ReadyStarting},
			{ReadyProbe, false, NoChange, messages.ReadyStarting},
			{ReadyProbe, true, BecameReady, messages.ReadyOK},
			{ReadyProbe, true, NoChange, messages.ReadyOK},
			{ReadyProbe, false, NoChange, messages.ReadyOK},
			{ReadyProbe, true, NoChange, messages.ReadyOK}, // the streak resets
			{ReadyProbe, false, NoChange, messages.ReadyOK},
			{ReadyProbe, false, BecameNotReady, messages.ReadyStarting},
			{ReadyProbe, true, BecameReady, messages.ReadyOK},
		}},
		{"health ignored before ready", ready, health, false, []probeStep{
			{HealthProbe, false, NoChange, messages.ReadyStarting},
			{HealthProbe, false, NoChange, messages.ReadyStarting},
			{HealthProbe, false, NoChange, messages.ReadyStarting},
			{HealthProbe, false, NoChange, messages.ReadyStarting},
			{ReadyProbe, true, BecameReady, messages.ReadyOK},
			{HealthProbe, false, NoChange, messages.ReadyOK},
			{HealthProbe, false, NoChange, messages.ReadyOK},
			{HealthProbe, false, BecameUnhealthy, messages.ReadyUnhealthy},
			{HealthProbe, false, NoChange, messages.ReadyUnhealthy}, // no more probing
			{ReadyProbe, true, NoChange, messages.ReadyUnhealthy},
		}},
		{"health without ready probe", nil, health, true, []probeStep{
			{HealthProbe, false, NoChange, messages.ReadyOK},
			{HealthProbe, true, NoChange, messages.ReadyOK},
			{HealthProbe, false, NoChange, messages.ReadyOK},
			{HealthProbe, false, NoChange, messages.ReadyOK},
			{HealthProbe, false, BecameUnhealthy, messages.ReadyUnhealthy},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProbes(tt.ready, tt.health)
			if p.Readiness() != "" || p.Ready() {
				t.Fatalf("before a run: %q", p.Readiness())
			}
			if got := p.Spawned(); got != tt.readyAtSpawn {
				t.Fatalf("Spawned() = %v, want %v", got, tt.readyAtSpawn)
			}
			for i, s := range tt.steps {
				if got := p.Result(s.kind, s.ok); got != s.change {
					t.Fatalf("step %d (%v %v): change %v, want %v", i, s.kind, s.ok, got, s.change)
				}
				if got := p.Readiness(); got != s.state {
					t.Fatalf("step %d: readiness %q, want %q", i, got, s.state)
				}
			}
			p.Ended()
			if p.Readiness() != "" || p.Wants(ReadyProbe) || p.Wants(HealthProbe) {
				t.Errorf("after the run: %q, wants probes", p.Readiness())
			}
			// A new run starts over.
			if p.Spawned() != tt.readyAtSpawn {
				t.Errorf("second run: ready at spawn differs")
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
