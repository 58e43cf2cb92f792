// Package askproc lets code outside the actor world (the Engine API, and
// goroutines the actors start) ask an actor and wait for its answer
// without a future: a Waiter is a process registered once in the actor
// system's registry whose SendUserMessage puts the answer on a Go channel.
// Waiters are reused, so a request costs no registry add and remove and no
// timer. An answer carries the ID of the request it answers (Result.ID),
// and a Waiter drops answers that are not for its current request, so a
// late or second answer never reaches the next caller.
package askproc

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shipote/shipote/messages/protocol"
)

// idleWaiters bounds how many idle Waiters a Pool keeps registered.
const idleWaiters = 256

// Pool hands out Waiters of one actor system.
type Pool struct {
	system *actor.ActorSystem
	seq    atomic.Uint64
	// idle is a free list. A sync.Pool would drop Waiters at a GC while
	// they stay in the registry; a bounded list unregisters the ones it
	// cannot keep.
	idle chan *Waiter
}

// New returns a Pool for system.
func New(system *actor.ActorSystem) *Pool {
	return &Pool{system: system, idle: make(chan *Waiter, idleWaiters)}
}

// Waiter is a process that takes one answer at a time.
type Waiter struct {
	pool *Pool
	pid  *actor.PID
	want atomic.Uint64 // ID of the answer awaited; 0 = none
	ch   chan any
}

type correlated interface{ ReplyID() uint64 }

// SendUserMessage takes an answer for the current request and drops any
// other message (a late answer, protoactor's DeadLetterResponse: a
// request that reached a stopped actor is failed by the engine's
// dead-letter hook through its Reply).
func (w *Waiter) SendUserMessage(_ *actor.PID, msg any) {
	if env, ok := msg.(*actor.MessageEnvelope); ok {
		msg = env.Message
	}
	c, ok := msg.(correlated)
	if !ok {
		return
	}
	if id := c.ReplyID(); id == 0 || id != w.want.Load() {
		return
	}
	select {
	case w.ch <- msg:
	default: // a second answer to the same request
	}
}

// SendSystemMessage drops the message: a Waiter watches nothing.
func (w *Waiter) SendSystemMessage(*actor.PID, any) {}

// Stop does nothing: a Waiter is unregistered by its Pool.
func (w *Waiter) Stop(*actor.PID) {}

func (p *Pool) get() *Waiter {
	select {
	case w := <-p.idle:
		return w
	default:
	}
	w := &Waiter{pool: p, ch: make(chan any, 1)}
	pid, _ := p.system.ProcessRegistry.Add(w, "ask$"+p.system.ProcessRegistry.NextId())
	w.pid = pid
	return w
}

func (p *Pool) put(w *Waiter) {
	w.want.Store(0)
	select {
	case <-w.ch: // an answer that raced the reset
	default:
	}
	select {
	case p.idle <- w:
	default:
		p.system.ProcessRegistry.Remove(w.pid)
	}
}

// discard unregisters a Waiter whose caller gave up: an answer that comes
// later goes to dead letters, never to another caller.
func (p *Pool) discard(w *Waiter) {
	w.want.Store(0)
	p.system.ProcessRegistry.Remove(w.pid)
}

// Call is one request in flight.
type Call[T any] struct {
	w     *Waiter
	id    uint64
	Reply protocol.Reply[T]
}

// Begin starts a request: put c.Reply in the request and send it (with
// c.Sender() as the sender, so that a request whose Reply the receiver
// does not look at still has its sender set), then Wait.
func Begin[T any](p *Pool) Call[T] {
	w := p.get()
	id := p.seq.Add(1)
	w.want.Store(id)
	return Call[T]{w: w, id: id, Reply: protocol.Reply[T]{To: w.pid, System: p.system, ID: id, Process: w}}
}

// Sender is the PID the answer goes to.
func (c Call[T]) Sender() *actor.PID { return c.w.pid }

// Wait returns the answer, or ctx's error when ctx ends first. Wait is
// called once.
func (c Call[T]) Wait(ctx context.Context) (T, error) {
	return c.WaitOr(ctx, nil, nil)
}

// WaitOr is Wait that also gives up, with stopErr, once stop is closed
// (the actor that would answer may be gone).
func (c Call[T]) WaitOr(ctx context.Context, stop <-chan struct{}, stopErr error) (T, error) {
	var zero T
	for {
		select {
		case msg := <-c.w.ch:
			res, ok := msg.(*protocol.Result[T])
			if !ok {
				if cr, ok := msg.(correlated); ok && cr.ReplyID() != c.id {
					continue
				}
				c.w.pool.put(c.w)
				return zero, fmt.Errorf("answer of type %T, want %T", msg, res)
			}
			if res.ID != c.id {
				continue
			}
			c.w.pool.put(c.w)
			return res.Val, res.Err
		case <-ctx.Done():
			c.w.pool.discard(c.w)
			return zero, ctx.Err()
		case <-stop:
			c.w.pool.discard(c.w)
			return zero, stopErr
		}
	}
}

// Cancel gives the request up without waiting (its message could not be
// sent).
func (c Call[T]) Cancel() { c.w.pool.put(c.w) }
