package main

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// protoactor's dead-letter throttle parks a goroutine for one period
	// (1 s) after a dead letter; it ends by itself.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// TestHostActorDrivesTheEngine runs the example: every step is a request
// of the host actor answered in its Receive.
func TestHostActorDrivesTheEngine(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatalf("%v\noutput so far:\n%s", err, out.String())
	}
	for _, want := range []string{
		"workspace host-demo created",
		"command hello started",
		"command hello exited",
		"log [out] hello from a host actor",
		"pipeline upper started",
		"pipeline upper succeeded",
		"workspace host-demo removed",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
