// This file tests the dashboard's traffic with a fake daemon: what a poll
// asks and returns, the timeout on a silent daemon, the event and log
// feeds and their end, the actions, and the whole program run on a pipe.

package top

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/internal/cli/clitest"
	"github.com/shipote/shipote/messages"
)

// followClient is a fake daemon whose event and log streams stay open
// after their canned items, as the daemon's follow does, until ctx ends
// or streamErr is set.
type followClient struct {
	*clitest.FakeClient
	streamErr error
	// block makes Workspaces wait for its context (a silent daemon).
	block bool

	mu      sync.Mutex
	streams []string // the streams opened
}

func (c *followClient) opened(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.streams = append(c.streams, s)
}

func (c *followClient) Events(ctx context.Context, follow bool, fn func(messages.Event) error) error {
	c.opened("Events")
	if err := c.FakeClient.Events(ctx, follow, fn); err != nil {
		return err
	}
	if c.streamErr != nil {
		return c.streamErr
	}
	<-ctx.Done()
	return ctx.Err()
}

func (c *followClient) Logs(ctx context.Context, ws, cmd string, o api.LogOptions, fn func(messages.LogLine) error) error {
	c.opened(fmt.Sprintf("Logs %s/%s follow=%v tail=%d", ws, cmd, o.Follow, o.Tail))
	if err := c.FakeClient.Logs(ctx, ws, cmd, o, fn); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

func (c *followClient) Workspaces(ctx context.Context) ([]messages.WorkspaceInfo, error) {
	if c.block {
		<-ctx.Done()
		return nil, fmt.Errorf("GET /v1/workspaces: %w", ctx.Err())
	}
	return c.FakeClient.Workspaces(ctx)
}

func fakeDaemon() *clitest.FakeClient {
	snap := fixture{rates: [2]uint64{1024, 2048}, rss: 64 << 20}.snapshot()
	list := slices.Clone(snap.pipelines)
	ended := list[0]
	ended.ID, ended.Label, ended.State = "01ARZ3NDEKTSV4RRFFQ69G5FZZ", "old", messages.PipelineSucceeded
	return &clitest.FakeClient{
		WorkspaceList: snap.workspaces,
		PipelineList:  append(list, ended),
		CommandList:   snap.commands,
		Samples:       history(),
		EventList:     []messages.Event{{Time: t0, Kind: messages.EventCreated, Workspace: wsBuild, Label: "build"}},
		LogLines:      map[string][]messages.LogLine{cmdWeb: {{Time: t0, Stream: messages.Stdout, Line: "listening on :8080"}}},
	}
}

func TestPoll(t *testing.T) {
	fc := fakeDaemon()
	r := newRunner(context.Background(), fc)
	defer r.Close()
	msg := r.poll(pollRequest{history: map[string]bool{wsWeb: true}})().(snapshotMsg)
	if msg.err != nil {
		t.Fatal(msg.err)
	}
	if len(msg.workspaces) != 2 || len(msg.pipelines) != 2 || len(msg.commands) != 2 {
		t.Errorf("poll: %d workspaces, %d pipelines, %d commands", len(msg.workspaces), len(msg.pipelines), len(msg.commands))
	}
	if len(msg.stats) != 1 || len(msg.stats[wsWeb]) != len(history()) {
		t.Errorf("stats histories: %v", msg.stats)
	}
	// The running run is asked for its live counters, the ended one not.
	want := []string{"Workspaces", "Pipelines", "Pipeline", "Commands", "Stats"}
	if !slices.Equal(fc.Calls, want) {
		t.Errorf("calls %v, want %v", fc.Calls, want)
	}
	fc.Calls = nil
	msg = r.poll(pollRequest{allHistory: true})().(snapshotMsg)
	if len(msg.stats) != 2 {
		t.Errorf("allHistory: %d histories", len(msg.stats))
	}

	// A daemon that is gone.
	fc.Err = fmt.Errorf("%w at /tmp/x.sock: connection refused", api.ErrUnreachable)
	msg = r.poll(pollRequest{})().(snapshotMsg)
	if !errors.Is(msg.err, api.ErrUnreachable) || reachable(msg.err) {
		t.Errorf("unreachable: %v", msg.err)
	}
	// A daemon that answers with an error is reachable.
	fc.Err = &api.Error{Status: 500, Code: "internal", Message: "boom"}
	if msg = r.poll(pollRequest{})().(snapshotMsg); !reachable(msg.err) || msg.err == nil {
		t.Errorf("API error: %v", msg.err)
	}
}

// TestPollTimeout checks that a silent daemon does not hold a poll
// longer than callTimeout (and a bit).
func TestPollTimeout(t *testing.T) {
	r := newRunner(context.Background(), &followClient{FakeClient: fakeDaemon(), block: true})
	defer r.Close()
	start := time.Now()
	msg := r.poll(pollRequest{})().(snapshotMsg)
	took := time.Since(start)
	t.Logf("a silent daemon's poll ended after %s", took)
	if msg.err == nil || reachable(msg.err) || !strings.Contains(msg.err.Error(), "no answer within 1.5s") {
		t.Errorf("silent daemon: %v", msg.err)
	}
	if took > 30*time.Second {
		t.Errorf("the poll waited %s", took)
	}
}

func TestFeeds(t *testing.T) {
	fc := &followClient{FakeClient: fakeDaemon()}
	r := newRunner(context.Background(), fc)
	defer r.Close()

	f := r.eventFeed()
	msg := next(r, f)()
	fm, ok := msg.(feedMsg[messages.Event])
	if !ok || fm.feed != f || len(fm.items) != 1 || fm.items[0].Kind != messages.EventCreated {
		t.Fatalf("first event: %#v", msg)
	}
	f.Stop()
	if end, ok := next(r, f)().(feedEndedMsg[messages.Event]); !ok || end.err != nil {
		t.Errorf("after Stop: %#v", end)
	}

	// A broken stream ends with its error, after its items.
	fc.streamErr = errors.New("stream broken")
	f = r.eventFeed()
	var items int
	for {
		msg := next(r, f)()
		if end, ok := msg.(feedEndedMsg[messages.Event]); ok {
			if end.err == nil || end.err.Error() != "stream broken" {
				t.Errorf("end: %v", end.err)
			}
			break
		}
		items += len(msg.(feedMsg[messages.Event]).items)
	}
	if items != 1 {
		t.Errorf("%d events before the end", items)
	}

	lf := r.logFeed(wsBuild, cmdWeb)
	lm, ok := next(r, lf)().(feedMsg[messages.LogLine])
	if !ok || len(lm.items) != 1 || lm.items[0].Line != "listening on :8080" {
		t.Errorf("log feed: %#v", lm)
	}
	// Close ends the feeds still open, and a waiting next returns.
	waiting := make(chan tea.Msg)
	go func() { waiting <- next(r, lf)() }()
	r.Close()
	if msg := <-waiting; msg != nil {
		if _, ok := msg.(feedEndedMsg[messages.LogLine]); !ok {
			t.Errorf("after Close: %#v", msg)
		}
	}
}

func TestActions(t *testing.T) {
	fc := fakeDaemon()
	r := newRunner(context.Background(), fc)
	defer r.Close()
	done := r.do(action{kind: actStopPipeline, id: runFan, label: "build/fan"})().(actionDoneMsg)
	if done.err != nil || done.act.id != runFan {
		t.Errorf("stop: %+v", done)
	}
	done = r.do(action{kind: actRemoveWorkspace, id: wsBuild, label: "build"})().(actionDoneMsg)
	if done.err != nil {
		t.Errorf("remove: %+v", done)
	}
	if !slices.Contains(fc.Calls, "RemoveWorkspace") || !slices.Contains(fc.Calls, "Pipeline") {
		t.Errorf("calls %v", fc.Calls)
	}
	done = r.do(action{kind: actRemoveWorkspace, id: "nope", label: "nope"})().(actionDoneMsg)
	if done.err == nil || !strings.Contains(done.err.Error(), "not found") {
		t.Errorf("remove nope: %v", done.err)
	}
}

// syncBuffer is a bytes.Buffer safe for the program's writer and the
// test's reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return ansi.Strip(b.buf.String())
}

// TestInteractive runs `top` on a terminal-like stdout with keys from a
// pipe: the list, a workspace card, a log pane, then q.
func TestInteractive(t *testing.T) {
	fc := &followClient{FakeClient: fakeDaemon()}
	f, _, _ := clitest.Factory(fc, t0)
	out := &syncBuffer{}
	in, keysIn := io.Pipe()
	defer keysIn.Close()
	f.IO.Out, f.IO.In = out, in
	f.IO.SetStdoutTTY(true)
	done := make(chan error, 1)
	go func() { done <- clitest.Run(NewCmdTop(f, nil), "--interval", "50ms") }()
	waitFor := func(what string) {
		t.Helper()
		end := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), what) {
			if time.Now().After(end) {
				t.Fatalf("no %q on screen:\n%s", what, tail(out.String(), 3000))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	press := func(s string) {
		t.Helper()
		if _, err := keysIn.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("01ARZ3ND")
	waitFor("● live")
	press("\r")
	waitFor("COMMANDS (2)")
	press("l")
	waitFor("listening on :8080")
	press("\x1b")
	time.Sleep(100 * time.Millisecond) // a lone ESC is told from a sequence by a pause
	press("q")
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("top: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("top did not quit:\n%s", tail(out.String(), 3000))
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	want := []string{"Events", fmt.Sprintf("Logs %s/%s follow=true tail=%d", wsBuild, cmdWeb, logTail)}
	if !slices.Equal(fc.streams, want) {
		t.Errorf("streams %q, want %q", fc.streams, want)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
