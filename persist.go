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
	"github.com/shipote/shipote/internal/askproc"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/persistence"
)

// RestoreReport says what Start restored from the state file.
type RestoreReport struct {
	Path           string
	Workspaces     int
	SavedPipelines int
	LivePipelines  int
	LiveCommands   int
	// Expired lists "label (id)" of workspaces whose TTL passed while the
	// engine was down; they are not restored.
	Expired []string
	// Skipped lists entries that could not be restored, with the reason.
	// Each of them is kept in the state file (see Kept), not dropped.
	Skipped []string
	// Kept counts the entries not in effect that the state file keeps,
	// byte for byte, until they restore at a later start or the user
	// drops them.
	Kept int
	// Original is set when the file was written by the original daemon
	// (its format is read, and a copy is kept before the first write).
	Original bool
	// CorruptMovedTo is set when the file did not parse and was moved
	// aside; the engine then started empty.
	CorruptMovedTo string
	// CorruptJournalMovedTo is set when the journal was moved aside: with
	// a corrupt state file, or because a record in its middle is damaged
	// (then the state file was moved aside with it).
	CorruptJournalMovedTo string
}

type persistState struct {
	store   *persistence.Store
	pid     *actor.PID
	enabled atomic.Bool
	report  RestoreReport
	// degraded holds the error of the failing writes while the state file
	// cannot be written; nil when it can.
	degraded atomic.Pointer[error]
	// kept counts the entries kept but not in effect.
	kept atomic.Int64
	// snapshotFirst says the restore changed what the files declare
	// (expired workspaces dropped, run IDs given): the first write is a
	// whole snapshot.
	snapshotFirst bool

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
	// JournalAppends counts the journal appends (each one group of
	// mutations, one fdatasync), JournalRecords their records and
	// JournalBytes their bytes; Compactions the snapshots written in the
	// background, after which the journal was trimmed.
	JournalAppends uint64
	JournalRecords uint64
	JournalBytes   uint64
	Compactions    uint64
}

func (ps *persistState) record(w persistence.WriteStats) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if w.Err != nil {
		ps.stats.Failures++
		return
	}
	if w.Journal {
		ps.stats.JournalAppends++
		ps.stats.JournalRecords += uint64(w.Records)
		ps.stats.JournalBytes += uint64(w.Bytes)
		return
	}
	if w.Compaction {
		ps.stats.Compactions++
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
func (e *Engine) MailboxStats() []MailboxStats { return e.rt.Mailboxes.Read() }

// MailboxStats is a reading of one kind of actor's mailboxes.
type MailboxStats = actors.MailboxStats

// The kinds of actors MailboxStats reports.
const (
	MailboxKindEngine    = actors.KindEngine
	MailboxKindWorkspace = actors.KindWorkspace
	MailboxKindPipeline  = actors.KindPipeline
	MailboxKindSplitter  = actors.KindSplitter
	MailboxKindSampler   = actors.KindSampler
)

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
		rep.CorruptJournalMovedTo = corrupt.JournalMovedTo
		log.Error("state file is corrupt; moved aside, starting empty",
			zap.String("path", path), zap.String("moved_to", corrupt.MovedTo),
			zap.String("journal_moved_to", corrupt.JournalMovedTo), zap.Error(corrupt.Err))
	}
	for _, p := range problems {
		rep.Skipped = append(rep.Skipped, p.Error())
		log.Warn("skipping a state entry", zap.Error(p))
	}
	return store, st, rep, nil
}

// restore recreates what st declares: workspaces with their IDs (expired
// ones dropped), their stats history, saved pipelines, then supervised
// pipelines relaunched with their run IDs. An entry that cannot be
// restored is not dropped: it moves from st's entries to st.Kept, with the
// reason, and the state file keeps it byte for byte. st is left holding
// exactly what is in effect plus what is kept.
func (e *Engine) restore(ctx context.Context, st *persistence.State, rep *RestoreReport) {
	live := make(map[string]bool)
	expired := make(map[string]bool)
	kept := make(map[string]bool) // workspace IDs kept
	keep := func(section string, pos int, what string, err error) {
		reason := err.Error()
		if k, ok := st.KeepEntry(section, pos, reason); ok {
			st.Kept = append(st.Kept, k)
		}
		rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: %s (kept in the state file)", what, reason))
		e.log.Warn("keeping an entry that could not be restored", zap.String("entry", what), zap.String("reason", reason))
	}
	var workspaces []persistence.WorkspaceEntry
	for _, w := range st.Workspaces {
		info, err := e.RestoreWorkspace(ctx, w.ID, w.Spec)
		switch {
		case errors.Is(err, messages.ErrExpired):
			expired[w.ID] = true
			rep.Expired = append(rep.Expired, fmt.Sprintf("%s (%s)", w.Spec.Label, w.ID))
			e.log.Warn("not restoring an expired workspace", zap.String("id", w.ID), zap.String("label", w.Spec.Label))
			e.rt.Events.Publish(messages.Event{Time: time.Now(), Kind: messages.EventExpired, Workspace: w.ID, Label: w.Spec.Label,
				Message: "expired while the engine was down"})
			continue
		case err != nil:
			kept[w.ID] = true
			keep("workspaces", w.Pos, fmt.Sprintf("workspace %s (%s)", w.Spec.Label, w.ID), err)
			continue
		}
		live[info.ID] = true
		workspaces = append(workspaces, w)
		rep.Workspaces++
		if len(w.StatsHistory) > 0 {
			samples := make([]messages.Sample, len(w.StatsHistory))
			for i, s := range w.StatsHistory {
				s.Source = messages.SourcePersisted
				samples[i] = s
			}
			e.system.Root.Send(e.pid, &actors.SeedHistory{Workspace: info.ID, Samples: samples})
		}
	}
	st.Workspaces = workspaces
	var saved []persistence.SavedPipeline
	for _, sp := range st.SavedPipelines {
		r := newCall[actors.SavedPipeline](e)
		if _, err := ask(ctx, e, &actors.SavePipeline{Name: sp.Name, Spec: sp.Spec, Restore: true, Reply: r.Reply}, r); err != nil {
			keep("saved_pipelines", sp.Pos, "saved pipeline "+sp.Name, err)
			continue
		}
		saved = append(saved, sp)
		rep.SavedPipelines++
	}
	st.SavedPipelines = saved
	var pipes []persistence.LivePipeline
	for _, lp := range st.LivePipelines {
		what := fmt.Sprintf("live pipeline %s (%s)", lp.Spec.Label, lp.ID)
		switch {
		case expired[lp.Workspace]:
			continue // it goes with its workspace
		case !live[lp.Workspace]:
			why := fmt.Errorf("workspace %s %w", lp.Workspace, errNotRestored(kept[lp.Workspace]))
			keep("live_pipelines", lp.Pos, what, why)
			continue
		}
		id := lp.ID
		if id == "" {
			id = messages.NewID()
			lp.ID = id
			e.persist.snapshotFirst = true // the files do not hold the new ID yet
		}
		if _, err := e.RestorePipeline(ctx, lp.Workspace, id, lp.Spec, lp.Tap); err != nil {
			keep("live_pipelines", lp.Pos, what, err)
			continue
		}
		pipes = append(pipes, lp)
		rep.LivePipelines++
	}
	st.LivePipelines = pipes
	var cmds []persistence.LiveCommand
	for _, lc := range st.LiveCommands {
		what := fmt.Sprintf("live command %s (%s)", lc.Spec.Label, lc.ID)
		switch {
		case expired[lc.Workspace]:
			continue // it goes with its workspace
		case !live[lc.Workspace]:
			keep("live_commands", lc.Pos, what, fmt.Errorf("workspace %s %w", lc.Workspace, errNotRestored(kept[lc.Workspace])))
			continue
		}
		r := newCall[messages.CommandInfo](e)
		if _, err := askWorkspace(ctx, e, lc.Workspace, &actors.ExecCommand{Workspace: lc.Workspace, Command: lc.Spec, ID: lc.ID, Reply: r.Reply}, r); err != nil {
			keep("live_commands", lc.Pos, what, err)
			continue
		}
		cmds = append(cmds, lc)
		rep.LiveCommands++
	}
	st.LiveCommands = cmds
	rep.Kept = len(st.Kept)
	if len(expired) > 0 {
		e.persist.snapshotFirst = true // the files still hold them
	}
	rep.Original = st.Original
}

// errNotRestored says why a live pipeline's workspace is not there.
func errNotRestored(kept bool) error {
	if kept {
		return errors.New("is not restored (it is kept in the state file too)")
	}
	return errors.New("is not in the state file")
}

// Degraded returns the error of the failing writes while the state file
// cannot be written (mutations are refused then), and nil when it can or
// the engine has no state file.
func (e *Engine) Degraded() error {
	if e.persist == nil {
		return nil
	}
	if p := e.persist.degraded.Load(); p != nil {
		return *p
	}
	return nil
}

// KeptCount returns how many entries of the state file are kept but not
// in effect (0 without a state file).
func (e *Engine) KeptCount() int {
	if e.persist == nil {
		return 0
	}
	return int(e.persist.kept.Load())
}

// KeptEntries returns the state file's entries that are kept but not in
// effect: they could not be restored, and are written back on every save
// until they restore at a later start or are dropped.
func (e *Engine) KeptEntries(ctx context.Context) ([]persistence.KeptEntry, error) {
	if err := e.live(); err != nil {
		return nil, err
	}
	if e.persist == nil {
		return nil, nil
	}
	c := newCall[[]persistence.KeptEntry](e)
	return askPersist(ctx, e, &persistence.GetKept{Reply: c.Reply}, c)
}

// askPersist sends msg (whose Reply is c.Reply) to the persistence actor
// and waits for its answer, or for Stop to begin.
func askPersist[T any](ctx context.Context, e *Engine, msg any, c askproc.Call[T]) (T, error) {
	e.system.Root.RequestWithCustomSender(e.persist.pid, msg, c.Sender())
	return wait(ctx, e, c)
}

// DropKept removes the kept entry ref names (ID, label, saved pipeline
// name, or SECTION[N]) from the state file, durably, and returns it.
// Unknown references wrap messages.ErrNotFound, ambiguous ones
// messages.ErrConflict.
func (e *Engine) DropKept(ctx context.Context, ref string) (persistence.KeptEntry, error) {
	if err := e.live(); err != nil {
		return persistence.KeptEntry{}, err
	}
	if e.persist == nil {
		return persistence.KeptEntry{}, fmt.Errorf("shipote: the engine has no state file: %w", messages.ErrNotFound)
	}
	c := newCall[persistence.KeptEntry](e)
	k, err := askPersist(ctx, e, &persistence.DropKept{Ref: ref, Reply: c.Reply}, c)
	switch {
	case errors.Is(err, errStopped) || (ctx.Err() != nil && err != nil):
		return persistence.KeptEntry{}, err
	case errors.Is(err, persistence.ErrKeptNotFound):
		return k, fmt.Errorf("%w: %w", messages.ErrNotFound, err)
	case errors.Is(err, persistence.ErrKeptAmbiguous):
		return k, fmt.Errorf("%w: %w", messages.ErrConflict, err)
	case err != nil:
		return k, err
	}
	e.rt.Events.Publish(messages.Event{Time: time.Now(), Kind: messages.EventStateDropped,
		Message: fmt.Sprintf("dropped kept %s entry %s", k.Section, firstNonEmpty(k.ID, k.Label))})
	return k, nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
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
	if err := e.live(); err != nil {
		return false, err
	}
	c, err := e.requestSave()
	if err != nil {
		return false, err
	}
	return wait(ctx, e, c)
}

// requestSave asks the persistence actor for a snapshot; the caller waits
// on the call for the outcome.
func (e *Engine) requestSave() (askproc.Call[bool], error) {
	if e.persist == nil {
		return askproc.Call[bool]{}, errors.New("shipote: the engine has no state file")
	}
	c := newCall[bool](e)
	e.system.Root.RequestWithCustomSender(e.persist.pid, &persistence.SaveNow{Reply: c.Reply}, c.Sender())
	return c, nil
}

// Snapshot returns the last snapshot written or restored.
func (e *Engine) Snapshot(ctx context.Context) (*persistence.State, error) {
	if err := e.live(); err != nil {
		return nil, err
	}
	if e.persist == nil {
		return nil, errors.New("shipote: the engine has no state file")
	}
	c := newCall[*persistence.State](e)
	s, err := askPersist(ctx, e, &persistence.GetLast{Reply: c.Reply}, c)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return &persistence.State{Version: persistence.CurrentVersion}, nil
	}
	return s, nil
}
