package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/messages"
)

// collect runs a stream in a goroutine and hands its items to a channel;
// wait returns the stream's error.
type collected[T any] struct {
	items chan T
	done  chan error
}

func collect[T any](run func(fn func(T) error) error) *collected[T] {
	c := &collected[T]{items: make(chan T, 1024), done: make(chan error, 1)}
	go func() { c.done <- run(func(v T) error { c.items <- v; return nil }) }()
	return c
}

// next waits for an item matching ok, failing after 20 s.
func (c *collected[T]) next(t *testing.T, what string, ok func(T) bool) T {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case v := <-c.items:
			if ok(v) {
				return v
			}
		case err := <-c.done:
			t.Fatalf("stream ended (%v) before %s", err, what)
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (c *collected[T]) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the stream did not end")
		return nil
	}
}

func TestLogsFollow(t *testing.T) {
	d := startDaemon(t)
	ctx := testCtx(t)
	gate := filepath.Join(shortDir(t), "gate")
	if _, err := d.c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "w"}); err != nil {
		t.Fatal(err)
	}
	cmd := native("sh", "-c", `echo one; echo warn >&2; while [ ! -e "$0" ]; do sleep 0.05; done; echo two; exec sleep 1000`, gate)
	cmd.Label = "talker"
	if _, err := d.c.Exec(ctx, "w", cmd); err != nil {
		t.Fatal(err)
	}

	// A follower of stdout sees "one", then "two" once the gate opens:
	// lines arrive while the command runs.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := collect(func(fn func(messages.LogLine) error) error {
		return d.c.Logs(fctx, "w", "talker", api.LogOptions{Follow: true, Stream: messages.Stdout}, fn)
	})
	isLine := func(s string) func(messages.LogLine) bool {
		return func(l messages.LogLine) bool { return l.Line == s }
	}
	out.next(t, `"one"`, isLine("one"))
	// A second follower, with tail 1 over both streams, once both early
	// lines are in: it gets exactly one of them, then the new line.
	eventually(t, 10*time.Second, "both early lines", func() bool {
		n := 0
		err := d.c.Logs(ctx, "w", "talker", api.LogOptions{}, func(messages.LogLine) error { n++; return nil })
		return err == nil && n == 2
	})
	tail := collect(func(fn func(messages.LogLine) error) error {
		return d.c.Logs(ctx, "w", "talker", api.LogOptions{Follow: true, Tail: 1}, fn)
	})
	first := tail.next(t, "the tail line", func(messages.LogLine) bool { return true })
	if first.Line != "one" && first.Line != "warn" {
		t.Errorf("tail 1 starts with %+v", first)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out.next(t, `"two"`, isLine("two"))
	if l := tail.next(t, "the next line", func(messages.LogLine) bool { return true }); l.Line != "two" {
		t.Errorf("tail follower got %+v after its tail, want two", l)
	}

	// The client going ends the stream with its context's error.
	cancel()
	if err := out.wait(t); !errors.Is(err, context.Canceled) {
		t.Errorf("follow after cancel: %v, want context.Canceled", err)
	}
	// Removing the workspace closes the log: the stream ends cleanly.
	if _, err := d.c.RemoveWorkspace(ctx, "w", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := tail.wait(t); err != nil {
		t.Errorf("follow after removal: %v, want a clean end", err)
	}

	// An error from fn ends the stream and is returned.
	if _, err := d.c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "w2"}); err != nil {
		t.Fatal(err)
	}
	c2 := native("sh", "-c", "echo a; echo b; exec sleep 1000")
	c2.Label = "ab"
	if _, err := d.c.Exec(ctx, "w2", c2); err != nil {
		t.Fatal(err)
	}
	enough := errors.New("enough")
	var got []string
	err := d.c.Logs(ctx, "w2", "ab", api.LogOptions{Follow: true}, func(l messages.LogLine) error {
		got = append(got, l.Line)
		if len(got) == 2 {
			return enough
		}
		return nil
	})
	if !errors.Is(err, enough) || strings.Join(got, ",") != "a,b" {
		t.Errorf("fn error: %v after %q", err, got)
	}
}

func TestEventsFollow(t *testing.T) {
	d := startDaemon(t)
	ctx := testCtx(t)
	first, err := d.c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "first"})
	if err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evs := collect(func(fn func(messages.Event) error) error { return d.c.Events(fctx, true, fn) })
	created := func(id string) func(messages.Event) bool {
		return func(ev messages.Event) bool { return ev.Kind == messages.EventCreated && ev.Workspace == id }
	}
	// The recent event comes first, so the stream is open after it ...
	evs.next(t, "the recent created event", created(first.ID))
	// ... and a workspace created now comes by following.
	second, err := d.c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "second"})
	if err != nil {
		t.Fatal(err)
	}
	evs.next(t, "the followed created event", created(second.ID))
	// No event comes twice.
	if _, err := d.c.RemoveWorkspace(ctx, "second", time.Second); err != nil {
		t.Fatal(err)
	}
	evs.next(t, "the removed event", func(ev messages.Event) bool {
		if ev.Kind == messages.EventCreated {
			t.Errorf("a created event came again: %+v", ev)
		}
		return ev.Kind == messages.EventRemoved && ev.Workspace == second.ID
	})
	cancel()
	if err := evs.wait(t); !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: %v", err)
	}
}

// openTap opens a tap, waiting while the run is still starting (the
// engine answers conflict until the node's splitter is live).
func openTap(ctx context.Context, t *testing.T, c *api.Client, run, node string) io.ReadCloser {
	t.Helper()
	var tap io.ReadCloser
	eventually(t, 20*time.Second, "a live splitter to tap", func() bool {
		var err error
		tap, err = c.Tap(ctx, run, node)
		if err != nil && !errors.Is(err, messages.ErrConflict) {
			t.Fatalf("tap %s/%s: %v", run, node, err)
		}
		return err == nil
	})
	return tap
}

func TestTap(t *testing.T) {
	d := startDaemon(t)
	ctx := testCtx(t)
	if _, err := d.c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "pw"}); err != nil {
		t.Fatal(err)
	}
	run, err := d.c.RunPipeline(ctx, "pw", pipelineSpec("ticker"), false)
	if err != nil {
		t.Fatal(err)
	}
	readTick := func(r io.Reader) {
		t.Helper()
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil || !strings.Contains(line, "tick") {
			t.Fatalf("tap read %q, %v", line, err)
		}
	}
	// A tap the client closes early.
	early := openTap(ctx, t, d.c, run.ID, "src")
	readTick(early)
	early.Close()
	// A tap that ends with the run.
	tap := openTap(ctx, t, d.c, "ticker", "")
	defer tap.Close()
	br := bufio.NewReader(tap)
	readTick(br)
	if _, err := d.c.StopPipeline(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, br); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("tap after stop: %v, want a clean end", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the tap did not end with the run")
	}
	if _, err := d.c.Tap(ctx, run.ID, "nope"); !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("tap of an unknown node: %v, want not found", err)
	}
}

func TestStreamsEndOnShutdown(t *testing.T) {
	d := startDaemon(t)
	ctx := testCtx(t)
	if _, err := d.c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "s"}); err != nil {
		t.Fatal(err)
	}
	cmd := native("sh", "-c", "echo up; exec sleep 1000")
	cmd.Label = "up"
	if _, err := d.c.Exec(ctx, "s", cmd); err != nil {
		t.Fatal(err)
	}
	if _, err := d.c.RunPipeline(ctx, "s", pipelineSpec("ticker"), false); err != nil {
		t.Fatal(err)
	}
	logs := collect(func(fn func(messages.LogLine) error) error {
		return d.c.Logs(ctx, "s", "up", api.LogOptions{Follow: true}, fn)
	})
	logs.next(t, "the log line", func(l messages.LogLine) bool { return l.Line == "up" })
	evs := collect(func(fn func(messages.Event) error) error { return d.c.Events(ctx, true, fn) })
	evs.next(t, "an event", func(messages.Event) bool { return true })
	tap := openTap(ctx, t, d.c, "ticker", "src")
	defer tap.Close()
	if _, err := bufio.NewReader(tap).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	tapDone := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, tap); tapDone <- err }()

	if err := d.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// Each stream was ended by the server (a clean end, not a cut).
	if err := logs.wait(t); err != nil {
		t.Errorf("logs: %v", err)
	}
	if err := evs.wait(t); err != nil {
		t.Errorf("events: %v", err)
	}
	select {
	case err := <-tapDone:
		if err != nil {
			t.Errorf("tap: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the tap did not end")
	}
	for _, e := range d.logs.FilterMessage("graceful shutdown did not finish in time; closing the remaining connections").All() {
		t.Errorf("forced shutdown: %v", e.ContextMap())
	}
	// Nothing listens any more.
	if err := d.c.Health(ctx); !errors.Is(err, api.ErrUnreachable) {
		t.Errorf("health after shutdown: %v, want ErrUnreachable", err)
	}
}

// TestShutdownIsBounded stops serving while a removal waits out a long
// grace period: after ShutdownTimeout the connection is closed, the
// request's context ends, and Serve returns.
func TestShutdownIsBounded(t *testing.T) {
	eng := startEngine(t, shipote.Config{})
	d := serveWith(t, eng, shortDir(t), 200*time.Millisecond)
	ctx := testCtx(t)
	if _, err := d.c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "slow"}); err != nil {
		t.Fatal(err)
	}
	cmd := native("sh", "-c", `trap "echo term" TERM; echo ready; while :; do sleep 0.1; done`)
	cmd.Label = "stubborn"
	if _, err := d.c.Exec(ctx, "slow", cmd); err != nil {
		t.Fatal(err)
	}
	hasLine := func(s string) func() bool {
		return func() bool {
			lines, err := eng.Logs(ctx, "slow", "stubborn", shipote.LogQuery{})
			return err == nil && slices.ContainsFunc(lines, func(l messages.LogLine) bool { return l.Line == s })
		}
	}
	eventually(t, 10*time.Second, "the command to start", hasLine("ready"))
	removal := make(chan error, 1)
	go func() {
		_, err := d.c.RemoveWorkspace(ctx, "slow", 4*time.Second)
		removal <- err
	}()
	eventually(t, 10*time.Second, "the removal to send SIGTERM", hasLine("term"))
	if err := d.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if n := d.logs.FilterMessage("graceful shutdown did not finish in time; closing the remaining connections").Len(); n != 1 {
		t.Errorf("%d forced-shutdown log lines, want 1", n)
	}
	if n := d.logs.FilterMessage("some request handlers are still running after the shutdown").Len(); n != 0 {
		t.Errorf("handlers outlived the shutdown")
	}
	if err := <-removal; err == nil {
		t.Errorf("the cut removal request succeeded")
	}
}
