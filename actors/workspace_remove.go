// This file is how a workspace ends: reaping when every command has ended,
// removal (SIGTERM, grace, SIGKILL, then the cgroup), and what its actor
// does when it stops.

package actors

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/logfile"
	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/messages"
)

// maybeReap removes the workspace under on_exit: reap once at least one
// command has run and nothing is left running or waiting to restart.
func (w *workspace) maybeReap() {
	if !w.reaper.ShouldReap(w.anyAlive) {
		return
	}
	w.logger().Info("every command ended; reaping workspace")
	w.rt.send(w.self, &RemoveWorkspace{Workspace: w.id, Reason: messages.EventRemoved})
}

// anyAlive reports whether a command or pipeline run is running or waiting
// to restart.
func (w *workspace) anyAlive() bool {
	for _, c := range w.cmds {
		if !c.info.State.Ended() {
			return true
		}
	}
	for _, p := range w.pipes {
		if !p.info.State.Ended() {
			return true
		}
	}
	return false
}

// remove starts the removal: pipelines stopped, every process group sent
// SIGTERM, then SIGKILL after the grace period, the limits group removed.
func (w *workspace) remove(ctx actor.Context, grace time.Duration, reason messages.EventKind, reply Reply[messages.WorkspaceInfo]) {
	if w.removing != nil {
		if reply.IsSet() {
			w.removing.replies = append(w.removing.replies, reply)
		}
		return
	}
	if grace <= 0 {
		grace = w.rt.Grace
	}
	if reason == "" {
		reason = messages.EventRemoved
	}
	w.reaper.Remove()
	w.removing = &removal{reason: reason, info: w.info()}
	if reply.IsSet() {
		w.removing.replies = append(w.removing.replies, reply)
	}
	if t := w.timers; t != nil && t.cancelTTL != nil {
		t.cancelTTL()
	}
	var pgids []int
	for pg := range w.pgids {
		pgids = append(pgids, pg)
	}
	for _, c := range w.cmds {
		if c.cancel != nil {
			c.cancel()
			c.cancel = nil
		}
		if c.sup.Shutdown() {
			c.info.State = messages.CommandExited
		}
		w.declaredShutdown(c)
	}
	pipes := w.stopPipelines(ctx, grace)
	group, rt, self, label := w.group, w.rt, w.self, w.spec.Label
	logDir := ""
	if rt.LogDir != "" && reason != reasonShutdown {
		logDir = filepath.Join(rt.LogDir, w.id)
	}
	rt.Go(func() {
		tctx, cancel := context.WithTimeout(context.Background(), grace+10*time.Second)
		defer cancel()
		err := proc.Terminate(tctx, pgids, grace)
		for _, r := range pipes {
			_, _ = r.Wait(tctx) // the stop's outcome is in the run's view
		}
		if group != nil {
			if gerr := group.Remove(tctx); gerr != nil {
				err = errors.Join(err, gerr)
			}
		}
		if logDir != "" {
			// The logs stay readable for the retention period.
			if merr := logfile.MarkRemovedLabel(logDir, label); merr != nil && !errors.Is(merr, os.ErrNotExist) {
				err = errors.Join(err, merr)
			}
		}
		rt.send(self, &terminated{err: err})
	})
}

func (w *workspace) onTerminated(ctx actor.Context, m *terminated) {
	if m.err != nil {
		w.logger().Warn("workspace cleanup", zap.Error(m.err))
	}
	r := w.removing
	if r.reason != reasonShutdown && r.reason != reasonUndo {
		w.rt.publish(messages.Event{Kind: r.reason, Workspace: w.id, Label: w.spec.Label})
		w.rt.dirty()
	}
	ctx.Send(w.engine, &workspaceGone{id: w.id, replies: r.replies, info: r.info, undo: r.reason == reasonUndo})
	ctx.Stop(w.self)
}

func (w *workspace) stopping() {
	w.cancelTimers()
	if w.cancelRoots != nil {
		w.cancelRoots()
	}
	// Stopped without a removal: no grace left.
	w.rt.killGroups(slices.Collect(maps.Keys(w.pgids))...)
	for _, c := range w.cmds {
		if c.cancel != nil {
			c.cancel()
		}
		if c.pending.IsSet() {
			c.pending.Fail(fmt.Errorf("workspace %s stopped: %w", w.spec.Label, messages.ErrStopped))
		}
		c.ring.Close()
	}
	if group := w.group; w.removing == nil && group != nil {
		w.rt.Go(func() { _ = group.Kill(unix.SIGKILL) })
	}
	// Whatever escaped the kill must not keep our readers waiting.
	w.readers.closeAll(w.rt)
	for name, lw := range w.logs {
		w.rt.closeLog(lw)
		delete(w.logs, name)
	}
}
