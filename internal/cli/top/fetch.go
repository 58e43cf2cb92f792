// This file owns the dashboard's traffic with the daemon: the periodic
// poll, the event and log feeds and the stop/remove actions, each as a
// tea.Cmd with a timeout so that a slow or absent daemon never blocks the
// screen. The runner owns every goroutine a feed starts; Close ends them.

package top

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
)

// Timeouts of the calls to the daemon.
const (
	// callTimeout bounds each request of a poll.
	callTimeout = 1500 * time.Millisecond
	// actionTimeout bounds a stop or a removal (the daemon may wait for
	// the processes' grace period).
	actionTimeout = 30 * time.Second
	// feedBuffer is how many items a feed holds before its reader drains
	// them.
	feedBuffer = 512
	// logTail is how many past lines a log pane starts with.
	logTail = 200
)

// runner makes the tea.Cmds that talk to the daemon.
type runner struct {
	client cmdutil.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// newRunner returns a runner whose feeds end when parent ends or Close is
// called.
func newRunner(parent context.Context, c cmdutil.Client) *runner {
	ctx, cancel := context.WithCancel(parent)
	return &runner{client: c, ctx: ctx, cancel: cancel}
}

// Close ends every feed and waits for their goroutines.
func (r *runner) Close() {
	r.cancel()
	r.wg.Wait()
}

// pollRequest says what a poll fetches besides the lists.
type pollRequest struct {
	// history names the workspaces whose whole stats history is wanted.
	history map[string]bool
	// allHistory asks for every workspace's history (after a reconnect).
	allHistory bool
}

// snapshotMsg is the answer of one poll.
type snapshotMsg struct {
	at         time.Time
	workspaces []messages.WorkspaceInfo
	pipelines  []messages.PipelineInfo
	commands   []messages.CommandInfo
	stats      map[string][]messages.Sample
	err        error
}

// poll returns a Cmd that fetches the workspaces, the pipelines (each
// running one with its live flow counters), the commands and the asked
// stats histories.
func (r *runner) poll(req pollRequest) tea.Cmd {
	return func() tea.Msg {
		msg := snapshotMsg{at: time.Now()}
		var err error
		if msg.workspaces, err = call(r.ctx, r.client.Workspaces); err != nil {
			msg.err = err
			return msg
		}
		if msg.pipelines, err = call(r.ctx, func(ctx context.Context) ([]messages.PipelineInfo, error) {
			return r.client.Pipelines(ctx, "")
		}); err != nil {
			msg.err = err
			return msg
		}
		// The list holds no live flow counters: ask each running run.
		msg.pipelines = slices.Clone(msg.pipelines)
		for i, p := range msg.pipelines {
			if p.State.Ended() {
				continue
			}
			full, err := call(r.ctx, func(ctx context.Context) (messages.PipelineInfo, error) {
				return r.client.Pipeline(ctx, p.ID)
			})
			if err != nil {
				if !reachable(err) {
					msg.err = err
					return msg
				}
				continue // ended and gone meanwhile
			}
			msg.pipelines[i] = full
		}
		if msg.commands, err = call(r.ctx, func(ctx context.Context) ([]messages.CommandInfo, error) {
			return r.client.Commands(ctx, "")
		}); err != nil {
			msg.err = err
			return msg
		}
		msg.stats = make(map[string][]messages.Sample)
		for _, w := range msg.workspaces {
			if !req.allHistory && !req.history[w.ID] {
				continue
			}
			hist, err := call(r.ctx, func(ctx context.Context) ([]messages.Sample, error) {
				return r.client.Stats(ctx, w.ID)
			})
			if err != nil {
				if !reachable(err) {
					msg.err = err
					return msg
				}
				continue // removed meanwhile
			}
			msg.stats[w.ID] = hist
		}
		return msg
	}
}

// call runs one request under callTimeout.
func call[T any](parent context.Context, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(parent, callTimeout)
	defer cancel()
	v, err := f(ctx)
	if err != nil && ctx.Err() == context.DeadlineExceeded && parent.Err() == nil {
		err = fmt.Errorf("no answer within %s: %w", callTimeout, err)
	}
	return v, err
}

// reachable reports whether err came from a daemon that answered (an API
// error) rather than from a daemon that is gone or silent.
func reachable(err error) bool {
	var ae *api.Error
	return err == nil || errors.As(err, &ae)
}

// feed is a stream read by a goroutine into a channel; the model reads it
// one batch per Cmd.
type feed[T any] struct {
	ch     chan T
	done   chan struct{}
	err    error // set before done is closed
	cancel context.CancelFunc
}

// Stop ends the feed; its goroutine is waited for by the runner's Close.
func (f *feed[T]) Stop() { f.cancel() }

// startFeed starts run in a goroutine owned by r, sending each item into
// the feed.
func startFeed[T any](r *runner, run func(ctx context.Context, fn func(T) error) error) *feed[T] {
	ctx, cancel := context.WithCancel(r.ctx)
	f := &feed[T]{ch: make(chan T, feedBuffer), done: make(chan struct{}), cancel: cancel}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel()
		f.err = run(ctx, func(v T) error {
			select {
			case f.ch <- v:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if ctx.Err() != nil {
			f.err = nil // stopped on purpose
		}
		close(f.done)
	}()
	return f
}

// feedMsg carries the items a feed had ready.
type feedMsg[T any] struct {
	feed  *feed[T]
	items []T
}

// feedEndedMsg says a feed ended; err is nil when it ended cleanly.
type feedEndedMsg[T any] struct {
	feed *feed[T]
	err  error
}

// next returns a Cmd that waits for the feed's next items (up to
// feedBuffer at once) or its end.
func next[T any](r *runner, f *feed[T]) tea.Cmd {
	return func() tea.Msg {
		var items []T
		select {
		case v := <-f.ch:
			items = append(items, v)
		case <-f.done:
			select {
			case v := <-f.ch:
				items = append(items, v)
			default:
				return feedEndedMsg[T]{feed: f, err: f.err}
			}
		case <-r.ctx.Done():
			return nil
		}
		for len(items) < feedBuffer {
			select {
			case v := <-f.ch:
				items = append(items, v)
			default:
				return feedMsg[T]{feed: f, items: items}
			}
		}
		return feedMsg[T]{feed: f, items: items}
	}
}

// eventFeed starts following the daemon's events.
func (r *runner) eventFeed() *feed[messages.Event] {
	return startFeed(r, func(ctx context.Context, fn func(messages.Event) error) error {
		return r.client.Events(ctx, true, fn)
	})
}

// logFeed starts following a command's log (the last logTail lines
// first).
func (r *runner) logFeed(ws, cmd string) *feed[messages.LogLine] {
	return startFeed(r, func(ctx context.Context, fn func(messages.LogLine) error) error {
		return r.client.Logs(ctx, ws, cmd, api.LogOptions{Follow: true, Tail: logTail}, fn)
	})
}

// actionKind names what x does.
type actionKind int

const (
	actStopPipeline actionKind = iota + 1
	actRemoveWorkspace
	actStopCommand
	actRestartCommand
	actSignalCommand
)

// action is a confirmed stop, restart, signal or removal.
type action struct {
	kind  actionKind
	id    string
	label string
	ws    string // the command's workspace ID (command actions)
	sig   string // actSignalCommand: the signal's name ("HUP")
}

// prompt is the confirmation question of a.
func (a action) prompt() string {
	switch a.kind {
	case actStopPipeline:
		return fmt.Sprintf("Stop pipeline %s (%s)? y/n", a.label, shortID(a.id))
	case actStopCommand:
		return fmt.Sprintf("Stop command %s (%s)? y/n", a.label, shortID(a.id))
	case actRestartCommand:
		return fmt.Sprintf("Restart command %s (%s)? y/n", a.label, shortID(a.id))
	case actSignalCommand:
		return fmt.Sprintf("Send SIG%s to command %s (%s)? y/n", a.sig, a.label, shortID(a.id))
	default:
		return fmt.Sprintf("Remove workspace %s (%s) and stop its processes? y/n", a.label, shortID(a.id))
	}
}

// actionDoneMsg is the outcome of an action.
type actionDoneMsg struct {
	act action
	err error
	// cmd is the command's view after a command action.
	cmd messages.CommandInfo
}

// do returns a Cmd that performs a.
func (r *runner) do(a action) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(r.ctx, actionTimeout)
		defer cancel()
		var (
			err error
			ci  messages.CommandInfo
		)
		switch a.kind {
		case actStopPipeline:
			_, err = r.client.StopPipeline(ctx, a.id)
		case actRemoveWorkspace:
			_, err = r.client.RemoveWorkspace(ctx, a.id, 0)
		case actStopCommand:
			ci, err = r.client.StopCommand(ctx, a.ws, a.id)
		case actRestartCommand:
			ci, err = r.client.RestartCommand(ctx, a.ws, a.id)
		case actSignalCommand:
			ci, err = r.client.SignalCommand(ctx, a.ws, a.id, a.sig)
		}
		return actionDoneMsg{act: a, err: err, cmd: ci}
	}
}
