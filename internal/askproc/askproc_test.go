package askproc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"

	"github.com/shipote/shipote/messages/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// echo answers every *ask it gets with its N, through the Reply.
type ask struct {
	N     int
	Reply protocol.Reply[int]
}

func echo(ctx actor.Context) {
	if m, ok := ctx.Message().(*ask); ok {
		m.Reply.OK(m.N)
	}
}

func newSystem(t *testing.T) (*actor.ActorSystem, *actor.PID) {
	t.Helper()
	system := actor.NewActorSystem()
	pid := system.Root.Spawn(actor.PropsFromFunc(echo))
	t.Cleanup(func() { _ = system.Root.StopFuture(pid).Wait() })
	return system, pid
}

func TestAnswersComeBackAndWaitersAreReused(t *testing.T) {
	system, pid := newSystem(t)
	p := New(system)
	var first *actor.PID
	for i := 1; i <= 100; i++ {
		c := Begin[int](p)
		if first == nil {
			first = c.Sender()
		} else if !c.Sender().Equal(first) {
			t.Fatalf("request %d got a new reply process %s, want %s reused", i, c.Sender(), first)
		}
		system.Root.RequestWithCustomSender(pid, &ask{N: i, Reply: c.Reply}, c.Sender())
		got, err := c.Wait(context.Background())
		if err != nil || got != i {
			t.Fatalf("answer %d, %v; want %d", got, err, i)
		}
	}
}

func TestStaleAnswerIsDropped(t *testing.T) {
	system, _ := newSystem(t)
	p := New(system)
	c1 := Begin[int](p)
	stale := c1.Reply
	c1.Reply.OK(1)
	if v, err := c1.Wait(context.Background()); err != nil || v != 1 {
		t.Fatalf("first answer %d, %v", v, err)
	}
	c2 := Begin[int](p)
	if !c2.Sender().Equal(c1.Sender()) {
		t.Fatal("the reply process was not reused")
	}
	stale.OK(99) // a second answer to the first request
	stale.Fail(errors.New("late"))
	c2.Reply.OK(2)
	if v, err := c2.Wait(context.Background()); err != nil || v != 2 {
		t.Fatalf("second answer %d, %v; want 2 (the stale answers dropped)", v, err)
	}
}

func TestGivenUpWaiterIsNotReused(t *testing.T) {
	system, _ := newSystem(t)
	p := New(system)
	c := Begin[int](p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait: %v, want deadline exceeded", err)
	}
	if proc, _ := system.ProcessRegistry.Get(c.Sender()); proc == actor.Process(c.w) {
		t.Fatal("a given-up reply process is still registered")
	}
	c2 := Begin[int](p)
	if c2.Sender().Equal(c.Sender()) {
		t.Fatal("a given-up reply process was reused")
	}
	c.Reply.OK(5) // late: goes to dead letters, not to c2
	c2.Reply.OK(6)
	if v, err := c2.Wait(context.Background()); err != nil || v != 6 {
		t.Fatalf("answer %d, %v; want 6", v, err)
	}
}

func TestWrongAnswerTypeIsAnError(t *testing.T) {
	system, _ := newSystem(t)
	p := New(system)
	c := Begin[int](p)
	protocol.Reply[string]{To: c.Reply.To, System: system, ID: c.Reply.ID}.OK("x")
	if _, err := c.Wait(context.Background()); err == nil {
		t.Fatal("an answer of the wrong type was taken")
	}
}
