// This file is the Engine API for workspaces and their commands: asking the
// engine and workspace actors (through reply processes of the engine's pool,
// ending at Stop), listing, exec, and logs.

package shipote

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/shipote/shipote/actors"
	"github.com/shipote/shipote/internal/askproc"
	"github.com/shipote/shipote/internal/logfile"
	"github.com/shipote/shipote/internal/logring"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
)

// errStopped is what every call returns once Stop has begun.
var errStopped = fmt.Errorf("shipote: %w", messages.ErrStopped)

// newCall starts a request of the Engine API: its Reply names a reply
// process of the engine's pool, which the caller waits on.
func newCall[T any](e *Engine) askproc.Call[T] { return askproc.Begin[T](e.rt.Asks) }

// wait waits for c's answer. It returns ctx's error when ctx ends first,
// and ErrStopped when Stop begins meanwhile: the actor that would answer
// may be gone.
func wait[T any](ctx context.Context, e *Engine, c askproc.Call[T]) (T, error) {
	return c.WaitOr(ctx, e.stopping, errStopped)
}

// ask sends msg (whose Reply is c.Reply) to the engine actor and waits for
// its reply.
func ask[T any](ctx context.Context, e *Engine, msg any, c askproc.Call[T]) (T, error) {
	return askPID(ctx, e, e.pid, msg, c)
}

// askPID sends msg (whose Reply is c.Reply) to pid and waits for its reply.
func askPID[T any](ctx context.Context, e *Engine, pid *actor.PID, msg any, c askproc.Call[T]) (T, error) {
	var zero T
	if err := e.live(); err != nil {
		c.Cancel()
		return zero, err
	}
	if err := ctx.Err(); err != nil {
		c.Cancel()
		return zero, err
	}
	if r, ok := msg.(protocol.Request); ok && pid != e.pid {
		// Straight to a workspace: should it stop with the request
		// unread, the request fails rather than wait for ctx.
		e.rt.SendRequest(pid, r, c.Sender())
	} else {
		e.system.Root.RequestWithCustomSender(pid, msg, c.Sender())
	}
	return wait(ctx, e, c)
}

// CreateWorkspace creates a workspace and returns its view.
func (e *Engine) CreateWorkspace(ctx context.Context, spec messages.WorkspaceSpec) (messages.WorkspaceInfo, error) {
	r := newCall[messages.WorkspaceInfo](e)
	return ask(ctx, e, &actors.CreateWorkspace{Spec: spec, Reply: r.Reply}, r)
}

// RestoreWorkspace creates a workspace with a known ID (from a snapshot).
func (e *Engine) RestoreWorkspace(ctx context.Context, id string, spec messages.WorkspaceSpec) (messages.WorkspaceInfo, error) {
	r := newCall[messages.WorkspaceInfo](e)
	return ask(ctx, e, &actors.CreateWorkspace{Spec: spec, ID: id, Reply: r.Reply}, r)
}

// Workspaces lists every workspace, in ID (creation) order.
func (e *Engine) Workspaces(ctx context.Context) ([]messages.WorkspaceInfo, error) {
	list, _, err := e.WorkspacePage(ctx, messages.ListQuery{})
	return list, err
}

// WorkspacePage lists the workspaces q selects, in ID (creation) order,
// and returns the cursor of the next page ("" when this one is the last).
// The views are copies of WorkspaceViews'.
func (e *Engine) WorkspacePage(ctx context.Context, q messages.ListQuery) ([]messages.WorkspaceInfo, string, error) {
	views, next, err := e.WorkspaceViews(ctx, q)
	if err != nil {
		return nil, "", err
	}
	out := make([]messages.WorkspaceInfo, len(views))
	for i, v := range views {
		out[i] = v.Info()
	}
	return out, next, nil
}

// WorkspaceViews returns the published views of the workspaces q selects,
// in ID (creation) order, and the cursor of the next page ("" when this
// one is the last). No actor is asked: each workspace publishes its view
// when its figures change, into an index the engine keeps. A workspace
// whose creation was answered is listed, one whose removal was answered
// is not. A page costs the same however many workspaces lie before its
// cursor.
func (e *Engine) WorkspaceViews(ctx context.Context, q messages.ListQuery) ([]*messages.WorkspaceView, string, error) {
	if err := q.Validate(); err != nil {
		return nil, "", err
	}
	if err := e.live(); err != nil {
		return nil, "", err
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	views, next := e.rt.Views.Page(q)
	return views, next, nil
}

// Workspace returns one workspace by ID or label.
func (e *Engine) Workspace(ctx context.Context, ref string) (messages.WorkspaceInfo, error) {
	r := newCall[messages.WorkspaceInfo](e)
	return askWorkspace(ctx, e, ref, &actors.GetWorkspace{Workspace: ref, Reply: r.Reply}, r)
}

// RemoveWorkspace stops every process of a workspace (SIGTERM, grace,
// SIGKILL; grace 0 = the engine's) and removes it.
func (e *Engine) RemoveWorkspace(ctx context.Context, ref string, grace time.Duration) (messages.WorkspaceInfo, error) {
	r := newCall[messages.WorkspaceInfo](e)
	return ask(ctx, e, &actors.RemoveWorkspace{Workspace: ref, Grace: grace, Reply: r.Reply}, r)
}

// Exec starts a command in a workspace; it returns once the process has
// started.
func (e *Engine) Exec(ctx context.Context, ws string, cmd messages.CommandRef) (messages.CommandInfo, error) {
	if err := cmd.CheckSingle(); err != nil {
		return messages.CommandInfo{}, err
	}
	r := newCall[messages.CommandInfo](e)
	return askWorkspace(ctx, e, ws, &actors.ExecCommand{Workspace: ws, Command: cmd, Reply: r.Reply}, r)
}

// askWorkspace sends msg straight to the workspace's actor when the
// directory knows it (one mailbox hop fewer), else through the engine
// actor, which resolves the reference or answers "not found".
func askWorkspace[T any](ctx context.Context, e *Engine, ws string, msg any, c askproc.Call[T]) (T, error) {
	pid, ok := e.rt.Directory.Lookup(ws)
	if !ok {
		pid = e.pid
	}
	return askPID(ctx, e, pid, msg, c)
}

// Commands lists a workspace's commands.
func (e *Engine) Commands(ctx context.Context, ws string) ([]messages.CommandInfo, error) {
	r := newCall[[]messages.CommandInfo](e)
	return askWorkspace(ctx, e, ws, &actors.ListCommands{Workspace: ws, Reply: r.Reply}, r)
}

// sendWorkspace sends msg straight to the workspace's actor when the
// directory knows it, else through the engine actor, which routes it (or
// answers that the workspace is gone).
func (e *Engine) sendWorkspace(id string, msg any) {
	if pid, ok := e.rt.Directory.Lookup(id); ok {
		e.system.Root.Send(pid, msg)
		return
	}
	e.system.Root.Send(e.pid, msg)
}

// AllCommands lists the commands of every workspace, in the order of
// Workspaces. The workspaces (taken from the index of views, with no
// round trip to the engine actor) are asked all at once, each through its
// own mailbox, so the answer takes about as long as the slowest of them;
// a workspace removed meanwhile is left out.
func (e *Engine) AllCommands(ctx context.Context) ([]messages.CommandInfo, error) {
	views, _, err := e.WorkspaceViews(ctx, messages.ListQuery{})
	if err != nil {
		return nil, err
	}
	replies := make([]askproc.Call[[]messages.CommandInfo], len(views))
	for i, v := range views {
		id := v.ID()
		replies[i] = newCall[[]messages.CommandInfo](e)
		e.sendWorkspace(id, &actors.ListCommands{Workspace: id, Reply: replies[i].Reply})
	}
	out := []messages.CommandInfo{}
	var first error
	for _, reply := range replies {
		cmds, err := wait(ctx, e, reply)
		if err == nil {
			out = append(out, cmds...)
		} else if !errors.Is(err, messages.ErrNotFound) && first == nil {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

// Command returns one command of a workspace by ID or label.
func (e *Engine) Command(ctx context.Context, ws, cmd string) (messages.CommandInfo, error) {
	h, err := e.openLogs(ctx, ws, cmd)
	if err != nil {
		return messages.CommandInfo{}, err
	}
	cmds, err := e.Commands(ctx, ws)
	if err != nil {
		return messages.CommandInfo{}, err
	}
	for _, c := range cmds {
		if c.ID == h.Command.ID {
			return c, nil
		}
	}
	return h.Command, nil
}

func (e *Engine) openLogs(ctx context.Context, ws, cmd string) (actors.LogHandle, error) {
	r := newCall[actors.LogHandle](e)
	return ask(ctx, e, &actors.OpenLogs{Workspace: ws, Command: cmd, Reply: r.Reply}, r)
}

// LogQuery selects log lines.
type LogQuery = logring.Query

// Logs returns a command's output lines (cmd is its ID or label, or
// "PIPELINE/NODE" for a pipeline node). With log files they come from the
// files, so they outlive the command, its workspace's removal (for the
// retention period) and engine restarts; without, from memory.
func (e *Engine) Logs(ctx context.Context, ws, cmd string, q LogQuery) ([]messages.LogLine, error) {
	h, err := e.logHandle(ctx, ws, cmd)
	if err != nil {
		return nil, err
	}
	if h.Path != "" {
		lines, err := logfile.Read(h.Path, fileQuery(q))
		if err == nil {
			return fromFile(lines), nil
		}
		if !errors.Is(err, fs.ErrNotExist) || h.Ring == nil {
			return nil, err
		}
	}
	lines, _ := h.Ring.Read(q)
	return lines, nil
}

// FollowLogs calls fn with the lines matching q (the last q.Tail first),
// then with each new batch, until ctx ends, fn returns an error, or the
// workspace is removed. With log files it follows the file across
// rotations, without losing or repeating a line.
func (e *Engine) FollowLogs(ctx context.Context, ws, cmd string, q LogQuery, fn func([]messages.LogLine) error) error {
	h, err := e.logHandle(ctx, ws, cmd)
	if err != nil {
		return err
	}
	if h.Path != "" {
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			// End the follow when the engine stops.
			select {
			case <-e.stopping:
				cancel()
			case <-fctx.Done():
			}
		}()
		if h.Ring != nil {
			// End the follow when the workspace goes (its rings close).
			go func() {
				select {
				case <-h.Ring.Done():
					cancel()
				case <-fctx.Done():
				}
			}()
		}
		err := logfile.Follow(fctx, h.Path, fileQuery(q), func(lines []logfile.Line) error { return fn(fromFile(lines)) })
		if errors.Is(err, context.Canceled) && ctx.Err() == nil {
			if e.live() != nil {
				return errStopped
			}
			return nil // the workspace was removed
		}
		return err
	}
	lines, cursor := h.Ring.Read(q)
	if len(lines) > 0 {
		if err := fn(lines); err != nil {
			return err
		}
	}
	follow := q
	follow.Tail = 0
	for {
		lines, next, wake, closed := h.Ring.Next(cursor, follow)
		cursor = next
		if len(lines) > 0 {
			if err := fn(lines); err != nil {
				return err
			}
		}
		if closed {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-e.stopping:
			return errStopped
		}
	}
}

// logHandle finds a command's output. When the workspace does not know
// the command (it ran before a restart) or is gone (removed within the
// retention period), it falls back to the log file named by the label.
func (e *Engine) logHandle(ctx context.Context, ws, cmd string) (actors.LogHandle, error) {
	h, err := e.openLogs(ctx, ws, cmd)
	if err == nil || !errors.Is(err, messages.ErrNotFound) || e.cfg.LogDir == "" {
		return h, err
	}
	wsID := ws
	if info, werr := e.Workspace(ctx, ws); werr == nil {
		wsID = info.ID
	} else if !messages.IsID(ws) {
		// A removed workspace's logs are kept for the retention period;
		// its label names the newest of them.
		id, ok, lerr := logfile.RemovedByLabel(e.cfg.LogDir, ws)
		if lerr != nil || !ok {
			return h, err
		}
		wsID = id
	}
	parts := strings.Split(cmd, "/")
	for _, p := range parts {
		if messages.ValidateLabel(p) != nil || len(parts) > 2 {
			return h, err
		}
	}
	path := filepath.Join(append([]string{e.cfg.LogDir, strings.ToUpper(wsID)}, parts...)...) + ".log"
	if _, serr := os.Stat(path); serr != nil {
		if _, rerr := os.Stat(path + ".1"); rerr != nil {
			return h, err
		}
	}
	return actors.LogHandle{Command: messages.CommandInfo{Workspace: wsID, Label: cmd}, Path: path}, nil
}

func fileQuery(q LogQuery) logfile.Query {
	return logfile.Query{Tail: q.Tail, Since: q.Since, Stream: string(q.Stream)}
}

func fromFile(lines []logfile.Line) []messages.LogLine {
	out := make([]messages.LogLine, len(lines))
	for i, l := range lines {
		out[i] = messages.LogLine{Time: l.Time, Stream: messages.Stream(l.Stream), Line: l.Text}
	}
	return out
}

// ReopenLogs reopens every open log file (on SIGHUP, for an external
// logrotate).
func (e *Engine) ReopenLogs() error {
	if err := e.live(); err != nil {
		return err
	}
	return e.rt.ReopenLogs()
}

// sweepLogs deletes the logs of workspaces removed longer ago than the
// retention, at start and then every ten minutes.
func (e *Engine) sweepLogs() {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		if gone, err := logfile.Sweep(e.cfg.LogDir, e.cfg.LogRetention, time.Now()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			e.log.Warn("sweeping old logs", zap.Error(err))
		} else if len(gone) > 0 {
			e.log.Info("deleted the logs of removed workspaces", zap.Strings("workspaces", gone))
		}
		select {
		case <-t.C:
		case <-e.sweeper:
			return
		}
	}
}
