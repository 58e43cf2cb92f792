package protocol

import "github.com/asynkron/protoactor-go/actor"

// Result is one answer: a value or an error. ID echoes the ID of the
// Reply that sent it.
type Result[T any] struct {
	Val T
	Err error
	ID  uint64
}

// ReplyID returns the ID of the Reply that sent r.
func (r *Result[T]) ReplyID() uint64 { return r.ID }

// Reply names where the answer to a request goes. The zero Reply is
// unset: the actor that takes the request binds it to the request's
// sender (see Bind).
type Reply[T any] struct {
	// To is the PID the answer goes to.
	To *actor.PID
	// System is the actor system To lives in (the one to send with).
	System *actor.ActorSystem
	// ID is echoed in Result.ID.
	ID uint64
	// Process, when set, is To's process: the answer is handed to it
	// directly, without a registry lookup or a sender context (a reply
	// process of the Engine API sets it).
	Process actor.Process
}

// ReplyTo returns a Reply that answers to pid with id.
func ReplyTo[T any](system *actor.ActorSystem, pid *actor.PID, id uint64) Reply[T] {
	return Reply[T]{To: pid, System: system, ID: id}
}

// IsSet reports whether r names a PID.
func (r Reply[T]) IsSet() bool { return r.To != nil && r.System != nil }

// Bind sets r to answer to sender when r is unset. A nil sender leaves r
// unset, and an unset Reply drops its answer.
func (r *Reply[T]) Bind(system *actor.ActorSystem, sender *actor.PID) {
	if r.IsSet() || sender == nil {
		return
	}
	r.To, r.System = sender, system
}

// OK answers v.
func (r Reply[T]) OK(v T) { r.send(&Result[T]{Val: v, ID: r.ID}) }

// Fail answers err.
func (r Reply[T]) Fail(err error) { r.send(&Result[T]{Err: err, ID: r.ID}) }

func (r Reply[T]) send(res *Result[T]) {
	if r.Process != nil {
		r.Process.SendUserMessage(r.To, res)
		return
	}
	if !r.IsSet() {
		return
	}
	r.System.Root.Send(r.To, res)
}

// Request is a request the engine or a workspace answers.
type Request interface {
	// Fail answers the request with err.
	Fail(err error)
	// BindSender binds an unset Reply to sender.
	BindSender(system *actor.ActorSystem, sender *actor.PID)
}

// Routed is a request the engine forwards to a workspace, found by ID or
// label.
type Routed interface {
	Request
	// Target is the workspace's ID or label.
	Target() string
}
