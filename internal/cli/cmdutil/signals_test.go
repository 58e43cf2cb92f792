package cmdutil

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

func TestSignalContextNamesTheSignal(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		ctx, stop := SignalContext(context.Background())
		if SignalOf(ctx) != nil {
			t.Fatal("SignalOf a live context is not nil")
		}
		if err := syscall.Kill(syscall.Getpid(), tc.sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("%v did not cancel the context", tc.sig)
		}
		se := SignalOf(ctx)
		if se == nil || se.Signal != tc.sig || se.ExitCode() != tc.code || !errors.Is(context.Cause(ctx), context.Canceled) {
			t.Errorf("%v: cause %v, exit code %v", tc.sig, context.Cause(ctx), se)
		}
		stop()
	}
	ctx, stop := SignalContext(context.Background())
	stop()
	if ctx.Err() == nil || SignalOf(ctx) != nil {
		t.Errorf("after stop: err %v, signal %v", ctx.Err(), SignalOf(ctx))
	}
}
