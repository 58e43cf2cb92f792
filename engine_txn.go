// This file holds the two-stage answer of a transaction's step: a step
// that stops something answers Prepared once it has joined the
// transaction, and its own Reply once the stop is over (after the
// commit), or with its failure.

package shipote

import (
	"context"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shipote/shipote/messages/protocol"
)

// stagedStep is the answer side of a step of a transaction.
type stagedStep interface {
	// waitPrepared returns nil once the step has joined the transaction,
	// or the error it failed with before joining.
	waitPrepared(ctx context.Context, e *Engine) error
	// waitFinal returns the step's own answer.
	waitFinal(ctx context.Context, e *Engine) error
}

// finished is a step with nothing left to wait for.
type finished struct{}

func (finished) waitPrepared(context.Context, *Engine) error { return nil }
func (finished) waitFinal(context.Context, *Engine) error    { return nil }

// The IDs of a staged step's two answers.
const (
	preparedID = 1
	finalID    = 2
)

// staged receives both answers of a step whose final answer is a T: it is
// the actor.Process its Replies deliver to, so no actor stands between.
type staged[T any] struct {
	ch    chan any
	final *protocol.Result[T]
}

func newStaged[T any]() *staged[T] { return &staged[T]{ch: make(chan any, 4)} }

var stagedPID = actor.NewPID("nonhost", "apply-step")

func (s *staged[T]) preparedReply(e *Engine) protocol.Reply[struct{}] {
	return protocol.Reply[struct{}]{To: stagedPID, System: e.system, ID: preparedID, Process: s}
}

func (s *staged[T]) finalReply(e *Engine) protocol.Reply[T] {
	return protocol.Reply[T]{To: stagedPID, System: e.system, ID: finalID, Process: s}
}

// SendUserMessage takes an answer; a surplus one is dropped.
func (s *staged[T]) SendUserMessage(_ *actor.PID, msg any) {
	if env, ok := msg.(*actor.MessageEnvelope); ok {
		msg = env.Message
	}
	select {
	case s.ch <- msg:
	default:
	}
}

// SendSystemMessage ignores system messages.
func (s *staged[T]) SendSystemMessage(*actor.PID, any) {}

// Stop does nothing: a staged step is not registered anywhere.
func (s *staged[T]) Stop(*actor.PID) {}

// next waits for the next answer; it reports whether it was the
// Prepared one (with its error) or stored the final one.
func (s *staged[T]) next(ctx context.Context, e *Engine) (prepared bool, err error) {
	select {
	case msg := <-s.ch:
		if r, ok := msg.(*protocol.Result[struct{}]); ok && r.ID == preparedID {
			return true, r.Err
		}
		if r, ok := msg.(*protocol.Result[T]); ok && r.ID == finalID {
			s.final = r
			return false, nil
		}
		return false, fmt.Errorf("shipote: an answer of type %T to a step of an apply", msg)
	case <-ctx.Done():
		return false, ctx.Err()
	case <-e.stopping:
		return false, errStopped
	}
}

func (s *staged[T]) waitPrepared(ctx context.Context, e *Engine) error {
	for s.final == nil {
		prepared, err := s.next(ctx, e)
		if prepared || err != nil {
			return err
		}
	}
	return s.final.Err
}

func (s *staged[T]) waitFinal(ctx context.Context, e *Engine) error {
	for s.final == nil {
		if prepared, err := s.next(ctx, e); err != nil && !prepared {
			return err
		}
	}
	return s.final.Err
}
