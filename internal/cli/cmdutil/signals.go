// This file owns how commands end on Ctrl-C or SIGTERM.

package cmdutil

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// SignalError is the cause (context.Cause) of a context cancelled by
// SignalContext. It matches context.Canceled.
type SignalError struct {
	Signal syscall.Signal
}

func (e *SignalError) Error() string { return e.Signal.String() + " signal received" }

// Is reports whether target is context.Canceled.
func (e *SignalError) Is(target error) bool { return target == context.Canceled }

// ExitCode is 128 plus the signal's number, as a shell reports a process
// killed by that signal: 130 for SIGINT, 143 for SIGTERM.
func (e *SignalError) ExitCode() int { return 128 + int(e.Signal) }

// SignalOf returns the signal that cancelled ctx (nil when ctx is not done
// or was not cancelled by SignalContext).
func SignalOf(ctx context.Context) *SignalError {
	var se *SignalError
	if errors.As(context.Cause(ctx), &se) {
		return se
	}
	return nil
}

// SignalContext returns a context cancelled on SIGINT or SIGTERM, with a
// *SignalError naming the signal as its cause. Call stop when done to
// restore default signal handling (after the first signal, a second one then
// gets the default behavior).
func SignalContext(parent context.Context) (ctx context.Context, stop context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	if ctx.Err() == nil {
		go func() {
			select {
			case s := <-ch:
				sig, _ := s.(syscall.Signal)
				cancel(&SignalError{Signal: sig})
			case <-ctx.Done():
			}
		}()
	}
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}
