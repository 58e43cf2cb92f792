// This file defines Runtime, what every actor of one engine shares: the
// actor system, the process spawner, the limits backend, the event hub, the
// logger and the goroutines the actors own.

package actors

import (
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/shipote/shipote/internal/eventhub"
	"github.com/shipote/shipote/internal/limits"
	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/messages"
)

// Runtime is shared by the actors of one engine. Its fields are set before
// the engine actor starts and not changed after.
type Runtime struct {
	System  *actor.ActorSystem
	Spawner *proc.Spawner
	// Limits creates a group per workspace; nil means no kernel limits and
	// no cgroup (process groups and rlimits only).
	Limits limits.Backend
	Events *eventhub.Hub
	Log    *zap.Logger
	// Grace is the default time between SIGTERM and SIGKILL.
	Grace time.Duration
	// LogRingBytes bounds each command's in-memory log (0 = 1 MiB).
	LogRingBytes int
	// Now returns the time; nil = time.Now.
	Now func() time.Time
	// Dirty, when set, is told that declared state changed. The engine
	// routes it to the persistence actor.
	Dirty func()
	// StatsChanged, when set, is told after each sampling pass.
	StatsChanged func()
	// Sampler is the sampler actor; nil = no stats sampling.
	Sampler *actor.PID

	wg sync.WaitGroup
}

// Go runs f in a goroutine the engine waits for when it stops.
func (rt *Runtime) Go(f func()) {
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		f()
	}()
}

// WaitGoroutines waits up to timeout for every goroutine started with Go;
// it reports whether they all ended.
func (rt *Runtime) WaitGoroutines(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() {
		rt.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (rt *Runtime) now() time.Time {
	if rt.Now != nil {
		return rt.Now()
	}
	return time.Now()
}

func (rt *Runtime) publish(ev messages.Event) {
	if ev.Time.IsZero() {
		ev.Time = rt.now()
	}
	if rt.Events != nil {
		rt.Events.Publish(ev)
	}
}

func (rt *Runtime) dirty() {
	if rt.Dirty != nil {
		rt.Dirty()
	}
}

// send delivers msg to pid from any goroutine.
func (rt *Runtime) send(pid *actor.PID, msg any) {
	rt.System.Root.Send(pid, msg)
}

// after sends msg to pid after d, from a timer; the returned function
// cancels it.
func (rt *Runtime) after(d time.Duration, pid *actor.PID, msg any) func() {
	t := time.AfterFunc(d, func() { rt.send(pid, msg) })
	return func() { t.Stop() }
}
