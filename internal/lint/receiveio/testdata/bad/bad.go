// Package bad is a small actor package with planted blocking calls, for
// the receiveio checker's own test. Each call that must be reported is
// marked "// want" on its line; each that must not, "// ok".
package bad

import (
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/limits"
)

type rt struct{ wg sync.WaitGroup }

// Go runs f in a goroutine, as the runtime's helper does.
func (r *rt) Go(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

type config struct {
	// Go runs f in a goroutine its owner waits for.
	Go func(func())
}

type actor struct {
	rt    *rt
	cfg   config
	ch    chan int
	out   chan int
	group limits.Group
}

func (a *actor) Receive(msg any) {
	switch msg.(type) {
	case int:
		time.Sleep(time.Millisecond) // want
	case string:
		a.open()
	case bool:
		a.rt.Go(func() {
			time.Sleep(time.Millisecond) // ok
			_, _ = exec.LookPath("sh")   // ok
		})
		go func() { a.rt.wg.Wait() }() // ok
	case float64:
		<-a.ch // want
	case []byte:
		select {
		case a.out <- 1: // ok
		default:
		}
	case error:
		a.deep()
		a.signal(7)
	case uint:
		a.cfg.Go(func() { time.Sleep(time.Millisecond) }) // ok
		_ = a.group.Kill(syscall.SIGKILL)                 // want
	case int8:
		for range a.ch { // want
		}
	}
}

func (a *actor) open() {
	f, err := os.Open("/dev/null") // want
	if err == nil {
		f.Close() // want
	}
}

func (a *actor) deep() { a.deeper() }

func (a *actor) deeper() {
	_, _ = exec.LookPath("sh") // want
	a.rt.wg.Wait()             // want
}

// notReached blocks, but no Receive calls it.
func notReached() { time.Sleep(time.Second) } // ok

func (a *actor) signal(pgid int) {
	_ = unix.Kill(-pgid, 0)                      // want
	a.cfg.Go(func() { _ = unix.Kill(-pgid, 9) }) // ok
}
