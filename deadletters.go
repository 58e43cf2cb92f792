// This file answers requests that reach a stopped actor, so that no caller
// waits for a reply that cannot come.

package shipote

import (
	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"

	"github.com/shipote/shipote/actors"
)

type eventStreamSub struct {
	system *actor.ActorSystem
	sub    *eventstream.Subscription
}

func subscribeDeadLetters(system *actor.ActorSystem, rt *actors.Runtime) *eventStreamSub {
	sub := system.EventStream.Subscribe(func(evt any) {
		if dl, ok := evt.(*actor.DeadLetterEvent); ok {
			rt.DeadLetter(dl.PID, dl.Message)
			actors.FailDeadLetter(system, dl.Message, dl.Sender)
		}
	})
	return &eventStreamSub{system: system, sub: sub}
}

func (s *eventStreamSub) cancel() { s.system.EventStream.Unsubscribe(s.sub) }
