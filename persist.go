// This file wires persistence into the engine: opening and locking the
// state file, restoring what it declares, the persistence actor, and the
// snapshot API.

package shipote

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/shipote/shipote/actors"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/persistence"
)

// RestoreReport says what Start restored from the state file.
type RestoreReport struct {
	Path           string
	Workspaces     int
	SavedPipelines int
	LivePipelines  int
	// Expired lists "label (id)" of workspaces whose TTL passed while the
	// engine was down; they are not restored.
	Expired []string
	// Skipped lists entries that could not be restored, with the reason.
	Skipped []string
	// CorruptMovedTo is set when the file did not parse and was moved
	// aside; the engine then started empty.
	CorruptMovedTo string
}

type persistState struct {
	store   *persistence.Store
	pid     *actor.PID
	enabled atomic.Bool
	report  RestoreReport

	mu    sync.Mutex // guards stats
	stats SnapshotStats
}

// SnapshotStats describes the snapshots written since start.
type SnapshotStats struct {
	Writes         uint64        // snapshots written
	Failures       uint64        // writes that failed
	LastBytes      int           // size of the last snapshot
	LastBuild      time.Duration // gathering + encoding of the last one
	LastWrite      time.Duration // write, fsync, rename, directory fsync of the last one
	TotalBuild     time.Duration
	TotalWrite     time.Duration
	LastWorkspaces int
}

func (ps *persistState) record(w persistence.WriteStats) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if w.Err != nil {
		ps.stats.Failures++
		return
	}
	ps.stats.Writes++
	ps.stats.LastBytes, ps.stats.LastBuild, ps.stats.LastWrite, ps.stats.LastWorkspaces = w.Bytes, w.Build, w.Write, w.Workspaces
	ps.stats.TotalBuild += w.Build
	ps.stats.TotalWrite += w.Write
}

// SnapshotStats returns the figures of the snapshots written since start
// (zero for an in-memory engine).
func (e *Engine) SnapshotStats() SnapshotStats {
	if e.persist == nil {
		return SnapshotStats{}
	}
	e.persist.mu.Lock()
	defer e.persist.mu.Unlock()
	return e.persist.stats
}

// MailboxStats returns the messages queued and posted per actor kind.
func (e *Engine) MailboxStats() []actors.MailboxStats { return e.rt.Mailboxes.Read() }

// openState opens and locks the state file and loads it. A file that does
// not parse is moved aside; a newer version is refused.
func openState(path string, log *zap.Logger) (*persistence.Store, *persistence.State, *RestoreReport, error) {
	store, err := persistence.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	st, problems, corrupt, err := store.Load()
	if err != nil {
		store.Close()
		return nil, nil, nil, err
	}
	rep := &RestoreReport{Path: path}
	if corrupt != nil {
		rep.CorruptMovedTo = corrupt.MovedTo
		log.Error("state file is corrupt; moved aside, starting empty",
			zap.String("path", path), zap.String("moved_to", corrupt.MovedTo), zap.Error(corrupt.Err))
	}
	for _, p := range problems {
		rep.Skipped = append(rep.Skipped, p.Error())
		log.Warn("skipping a state entry", zap.Error(p))
	}
	return store, st, rep, nil
}

// restore recreates what st declares: workspaces with their IDs (expired
// ones skipped), their stats history, saved pipelines, then supervised
// pipelines relaunched with their run IDs.
func (e *Engine) restore(ctx context.Context, st *persistence.State, rep *RestoreReport) {
	live := make(map[string]bool)
	for _, w := range st.Workspaces {
		info, err := e.RestoreWorkspace(ctx, w.ID, w.Spec)
		switch {
		case errors.Is(err, messages.ErrExpired):
			rep.Expired = append(rep.Expired, fmt.Sprintf("%s (%s)", w.Spec.Label, w.ID))
			e.log.Warn("not restoring an expired workspace", zap.String("id", w.ID), zap.String("label", w.Spec.Label))
			e.rt.Events.Publish(messages.Event{Time: time.Now(), Kind: messages.EventExpired, Workspace: w.ID, Label: w.Spec.Label,
				Message: "expired while the engine was down"})
			continue
		case err != nil:
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("workspace %s (%s): %v", w.Spec.Label, w.ID, err))
			e.log.Warn("skipping a workspace", zap.String("id", w.ID), zap.Error(err))
			continue
		}
		live[info.ID] = true
		rep.Workspaces++
		if len(w.StatsHistory) > 0 {
			e.system.Root.Send(e.pid, &actors.SeedHistory{Workspace: info.ID, Samples: w.StatsHistory})
		}
	}
	for _, sp := range st.SavedPipelines {
		r := actors.NewReply[actors.SavedPipeline]()
		if _, err := ask(ctx, e, &actors.SavePipeline{Name: sp.Name, Spec: sp.Spec, Restore: true, Reply: r}, r); err != nil {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("saved pipeline %s: %v", sp.Name, err))
			continue
		}
		rep.SavedPipelines++
	}
	for _, lp := range st.LivePipelines {
		if !live[lp.Workspace] {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("live pipeline %s: workspace %s was not restored", lp.Spec.Label, lp.Workspace))
			continue
		}
		id := lp.ID
		if id == "" {
			id = messages.NewID()
		}
		if _, err := e.RestorePipeline(ctx, lp.Workspace, id, lp.Spec, lp.Tap); err != nil {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("live pipeline %s: %v", lp.Spec.Label, err))
			e.log.Warn("skipping a live pipeline", zap.String("pipeline", lp.Spec.Label), zap.Error(err))
			continue
		}
		rep.LivePipelines++
	}
}

// RestoreReport returns what Start restored (zero without a state path).
func (e *Engine) RestoreReport() RestoreReport {
	if e.persist == nil {
		return RestoreReport{}
	}
	return e.persist.report
}

// StatePath returns the state file's path, or "" for an in-memory engine.
func (e *Engine) StatePath() string {
	if e.persist == nil {
		return ""
	}
	return e.persist.store.Path()
}

// SaveSnapshot writes a snapshot if anything changed since the last one;
// it reports whether it wrote.
func (e *Engine) SaveSnapshot(ctx context.Context) (bool, error) {
	if e.persist == nil {
		return false, errors.New("shipote: the engine has no state file")
	}
	type res struct {
		saved bool
		err   error
	}
	ch := make(chan res, 1)
	e.system.Root.Send(e.persist.pid, &persistence.SaveNow{Done: func(saved bool, err error) { ch <- res{saved, err} }})
	select {
	case r := <-ch:
		return r.saved, r.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// Snapshot returns the last snapshot written or restored.
func (e *Engine) Snapshot(ctx context.Context) (*persistence.State, error) {
	if e.persist == nil {
		return nil, errors.New("shipote: the engine has no state file")
	}
	ch := make(chan *persistence.State, 1)
	e.system.Root.Send(e.persist.pid, &persistence.GetLast{Done: func(s *persistence.State) { ch <- s }})
	select {
	case s := <-ch:
		if s == nil {
			return &persistence.State{Version: persistence.CurrentVersion}, nil
		}
		return s, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
