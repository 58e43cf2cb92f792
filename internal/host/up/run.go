// This file owns running an up file: the in-process engine, starting
// everything in order, the live view, deciding when everything has ended,
// and the final summary.

package up

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/internal/cli/dash"
	"github.com/shipote/shipote/internal/cli/events"
	"github.com/shipote/shipote/internal/cli/ps"
	"github.com/shipote/shipote/messages"
)

// pollInterval is how often up checks whether everything has ended.
const pollInterval = 200 * time.Millisecond

// tracked is what up started and waits for.
type tracked struct {
	workspaces []string // IDs, in file order
	commands   map[string]bool
	pipelines  map[string]bool
}

func upRun(ctx context.Context, o *Options) error {
	uf, err := cmdutil.LoadUpFile(o.IO, o.File)
	if err != nil {
		return err
	}
	log := newLogger(o.IO.ErrOut, o.LogLevel)
	defer log.Sync() //nolint:errcheck // stderr may not sync

	system := shipote.NewActorSystem(log)
	defer system.Shutdown()
	cgroupParent := "shipote-up-" + strconv.Itoa(os.Getpid())
	eng, err := shipote.Start(ctx, system, shipote.Config{
		Logger:    log,
		Grace:     o.Grace,
		Limits:    o.Limits,
		StatePath: o.StatePath,
		// Each up gets its own cgroup subtree: an engine sweeps its subtree
		// at start, and must not touch a daemon's or another up's.
		CgroupParent: cgroupParent,
	})
	if err != nil {
		cmdutil.RemoveCgroupParent(cgroupParent)
		return err
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		sctx, cancel := context.WithTimeout(context.Background(), o.Grace+30*time.Second)
		defer cancel()
		err := eng.Stop(sctx)
		cmdutil.RemoveCgroupParent(cgroupParent)
		if err != nil {
			return fmt.Errorf("stop engine: %w", err)
		}
		return nil
	}
	defer stop()

	sub := eng.Events(1024)
	defer sub.Cancel()

	tr, err := start(ctx, eng, uf, o)
	if err != nil {
		if ctx.Err() != nil {
			return errors.Join(cmdutil.ErrInterrupted, stop())
		}
		return errors.Join(err, stop())
	}

	tty := o.IO.IsStdoutTTY()
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	var lastDraw time.Time
	for {
		if tty && time.Since(lastDraw) >= o.Interval {
			lastDraw = time.Now()
			if err := draw(ctx, eng, tr, o); err != nil && ctx.Err() == nil {
				return errors.Join(err, stop())
			}
		}
		done, err := finished(ctx, eng, tr)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			return errors.Join(err, stop())
		case done:
			if tty {
				draw(ctx, eng, tr, o)
			}
			failed, sumErr := summary(ctx, eng, tr, o.IO.Out, o.Now(), nil)
			if err := stop(); err != nil {
				return err
			}
			if sumErr != nil {
				return sumErr
			}
			if len(failed) > 0 {
				return fmt.Errorf("did not succeed: %s", strings.Join(failed, ", "))
			}
			return nil
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(o.IO.ErrOut, "shipote: stopping everything")
			sctx, cancel := context.WithTimeout(context.Background(), o.Grace+10*time.Second)
			for id := range tr.pipelines {
				_, _ = eng.StopPipeline(sctx, id) // an ended run answers with its final view
			}
			// The commands are stopped with the engine, after the pipelines'
			// part of the summary (which reads their logs) and before the
			// commands' part, which says which ones were stopped.
			var stopErr error
			_, _ = summary(sctx, eng, tr, o.IO.Out, o.Now(), func() { stopErr = stop() })
			cancel()
			if stopErr != nil {
				return errors.Join(cmdutil.ErrInterrupted, stopErr)
			}
			return cmdutil.ErrInterrupted
		case ev, ok := <-sub.C:
			if ok && !tty {
				fmt.Fprintln(o.IO.Out, events.Format(ev))
			}
		case <-poll.C:
		}
	}
}

// start creates every workspace, starts its commands in order, then runs
// its pipelines. A workspace restored from --state is reused, and a
// pipeline already running there under the same label is not started twice.
//
// Workspaces start after those they depend on (depends_on), each once
// every command of its dependencies is ready (a one_shot one: exited
// with success); commands are started after their own depends_on, which
// the engine holds back until those are ready.
func start(ctx context.Context, eng *shipote.Engine, uf *messages.UpFile, o *Options) (*tracked, error) {
	tr := &tracked{commands: make(map[string]bool), pipelines: make(map[string]bool)}
	// Saved pipelines first: a `pipe start` (or a pipeline of the file)
	// may name them.
	for i, sp := range uf.SavedPipelines {
		if err := eng.SavePipeline(ctx, sp.Name, sp.Spec); err != nil {
			return tr, fmt.Errorf("saved_pipelines[%d] (%s): %w", i, sp.Name, err)
		}
	}
	ids := make(map[string]string) // workspace label → ID
	for _, i := range uf.Order() {
		w := uf.Workspaces[i]
		where := fmt.Sprintf("workspaces[%d] (%s)", i, w.Label)
		for _, dep := range w.DependsOn {
			if err := waitReady(ctx, eng, ids[dep], tr); err != nil {
				return tr, fmt.Errorf("%s: depends_on %s: %w", where, dep, err)
			}
		}
		info, err := eng.CreateWorkspace(ctx, w.WorkspaceSpec)
		if errors.Is(err, messages.ErrConflict) && o.StatePath != "" {
			info, err = eng.Workspace(ctx, w.Label)
		}
		if err != nil {
			return tr, fmt.Errorf("%s: create workspace: %w", where, err)
		}
		tr.workspaces = append(tr.workspaces, info.ID)
		ids[w.Label] = info.ID
		for _, j := range w.CommandOrder() {
			for _, x := range w.Commands[j].ExpandInstances() {
				ci, err := eng.Exec(ctx, info.ID, x)
				if err != nil {
					return tr, fmt.Errorf("%s.commands[%d]: %w", where, j, err)
				}
				tr.commands[ci.ID] = true
			}
		}
		running := make(map[string]string)
		if existing, err := eng.Pipelines(ctx, info.ID); err == nil {
			for _, p := range existing {
				if !p.State.Ended() {
					running[p.Label] = p.ID
				}
			}
		}
		for j, p := range w.Pipelines {
			if id, ok := running[p.Label]; ok {
				tr.pipelines[id] = true
				continue
			}
			pi, err := eng.RunPipeline(ctx, info.ID, p, false)
			if err != nil {
				return tr, fmt.Errorf("%s.pipelines[%d]: %w", where, j, err)
			}
			tr.pipelines[pi.ID] = true
		}
	}
	return tr, nil
}

// waitReady waits until every command up started in workspace ws is
// ready, or has exited with success if it is one_shot; a one_shot one
// that failed, or a workspace that is gone, is an error.
func waitReady(ctx context.Context, eng *shipote.Engine, ws string, tr *tracked) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		cmds, err := eng.Commands(ctx, ws)
		if err != nil {
			return err
		}
		ready := true
		for _, c := range cmds {
			if !tr.commands[c.ID] {
				continue
			}
			switch {
			case c.Spec.Supervision.OneShot() && c.Spec.Schedule == "":
				if c.State == messages.CommandFailed || c.State == messages.CommandStopped {
					return fmt.Errorf("command %s did not succeed (%s)", c.Label, ps.State(c))
				}
				ready = ready && c.State == messages.CommandExited
			case c.Spec.Schedule != "":
				// A schedule is ready once it waits for its time.
				ready = ready && !c.NextRunAt.IsZero()
			default:
				ready = ready && c.Readiness == messages.ReadyOK
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// view gathers what up started.
func view(ctx context.Context, eng *shipote.Engine, tr *tracked) (dash.Frame, error) {
	var f dash.Frame
	for _, id := range tr.workspaces {
		w, err := eng.Workspace(ctx, id)
		if errors.Is(err, messages.ErrNotFound) {
			continue // reaped or expired
		}
		if err != nil {
			return f, err
		}
		f.Workspaces = append(f.Workspaces, w)
		cmds, err := eng.Commands(ctx, id)
		if err != nil && !errors.Is(err, messages.ErrNotFound) {
			return f, err
		}
		f.Commands = append(f.Commands, cmds...)
		runs, err := eng.Pipelines(ctx, id)
		if err != nil && !errors.Is(err, messages.ErrNotFound) {
			return f, err
		}
		for _, p := range runs {
			if tr.pipelines[p.ID] {
				f.Pipelines = append(f.Pipelines, p)
			}
		}
	}
	return f, nil
}

// finished reports whether every pipeline up started has ended and every
// command it started has exited for good. A workspace that is gone
// (reaped, expired) has ended everything in it.
func finished(ctx context.Context, eng *shipote.Engine, tr *tracked) (bool, error) {
	f, err := view(ctx, eng, tr)
	if err != nil {
		return false, err
	}
	for _, c := range f.Commands {
		if tr.commands[c.ID] && !c.State.Ended() {
			return false, nil
		}
	}
	for _, p := range f.Pipelines {
		if !p.State.Ended() {
			return false, nil
		}
	}
	return true, nil
}

func draw(ctx context.Context, eng *shipote.Engine, tr *tracked, o *Options) error {
	f, err := view(ctx, eng, tr)
	if err != nil {
		return err
	}
	f.Title = "shipote up " + o.File
	f.ShowCommands = true
	var buf bytes.Buffer
	buf.WriteString(cmdutil.ClearScreen)
	dash.Render(&buf, f, o.Now())
	buf.WriteString("\nCtrl-C stops everything.\n")
	_, err = o.IO.Out.Write(buf.Bytes())
	return err
}

// summary prints each pipeline's state, its flow channels' totals and the
// last output lines of its sinks, and each command's end; it returns the
// pipelines that did not succeed.
//
// stopCommands, when not nil, stops every command (up was interrupted): it
// is called after the pipelines' lines, and a command that was still
// running or waiting to restart is then reported as stopped.
func summary(ctx context.Context, eng *shipote.Engine, tr *tracked, w io.Writer, now time.Time, stopCommands func()) ([]string, error) {
	f, err := view(ctx, eng, tr)
	interrupted := stopCommands != nil
	if stopCommands != nil {
		defer func() {
			if stopCommands != nil {
				stopCommands() // the summary failed before the commands' part
			}
		}()
	}
	if err != nil {
		return nil, err
	}
	labels := make(map[string]string)
	for _, ws := range f.Workspaces {
		labels[ws.ID] = ws.Spec.Label
	}
	var failed []string
	seen := make(map[string]bool)
	fmt.Fprintln(w, "\nsummary:")
	for _, p := range f.Pipelines {
		seen[p.ID] = true
		name := labels[p.Workspace] + "/" + p.Label
		if p.State != messages.PipelineSucceeded {
			failed = append(failed, fmt.Sprintf("pipeline %s (%s)", name, p.State))
		}
		took := ""
		if !p.StartedAt.IsZero() {
			end := p.EndedAt
			if end.IsZero() {
				end = now
			}
			took = " in " + cmdutil.FormatDuration(end.Sub(p.StartedAt))
		}
		fmt.Fprintf(w, "  pipeline %s: %s%s", name, p.State, took)
		if p.Restarts > 0 {
			fmt.Fprintf(w, " after %d restarts", p.Restarts)
		}
		if p.Error != "" {
			fmt.Fprintf(w, " (%s)", p.Error)
		}
		fmt.Fprintln(w)
		for _, s := range p.Splitters {
			for _, ch := range s.Channels {
				drop := ""
				if ch.DroppedBytes > 0 {
					drop = ", dropped " + strconv.FormatUint(ch.DroppedBytes, 10)
				}
				fmt.Fprintf(w, "    %s → %s: %d bytes%s\n", ch.From, ch.To, ch.BytesTotal, drop)
			}
		}
		sinkOutput(ctx, eng, w, p)
	}
	if missing := len(tr.pipelines) - len(seen); missing > 0 {
		failed = append(failed, fmt.Sprintf("%d pipeline(s) whose workspace is gone", missing))
		fmt.Fprintf(w, "  %d pipeline(s) no longer known (their workspace is gone)\n", missing)
	}
	if stopCommands != nil {
		stopCommands()
		stopCommands = nil
	}
	for _, c := range f.Commands {
		if !tr.commands[c.ID] {
			continue
		}
		state := ps.State(c)
		if interrupted && !c.State.Ended() {
			state = fmt.Sprintf("stopped (was %s; up was interrupted)", state)
		}
		fmt.Fprintf(w, "  command %s/%s: %s\n", labels[c.Workspace], c.Label, state)
	}
	return failed, nil
}

// sinkLines is how many last output lines of each sink the summary shows.
const sinkLines = 3

// sinkOutput prints the last output lines of each node that feeds no
// other node: what the pipeline computed.
func sinkOutput(ctx context.Context, eng *shipote.Engine, w io.Writer, p messages.PipelineInfo) {
	feeds := p.Spec.Consumers()
	for _, n := range p.Spec.Nodes {
		if len(feeds[n.Label]) > 0 {
			continue
		}
		lines, err := eng.Logs(ctx, p.Workspace, p.ID+"/"+n.Label, shipote.LogQuery{Tail: sinkLines})
		if err != nil {
			continue
		}
		for _, l := range lines {
			fmt.Fprintf(w, "    %s: %s\n", n.Label, l.Line)
		}
	}
}

func newLogger(w io.Writer, level string) *zap.Logger {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		lvl = zapcore.WarnLevel
	}
	cfg := zap.NewProductionEncoderConfig()
	cfg.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.EncodeLevel = zapcore.CapitalLevelEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(cfg), zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core)
}
