// This file is the persistence actor. A commit that carries its change
// (protocol.Change) is applied to the actor's view of the entries and
// written as exactly the journal records of the entries it touched, asking
// only the workspaces it names as changed. Otherwise (stats, explicit
// saves, retries) it keeps the dirty flag and builds each snapshot by
// request-reply: it asks the engine for the registry and the saved
// pipelines, then every workspace for its entry; a workspace that does not
// answer in time keeps the entry of the previous snapshot. Writes
// run in a goroutine it owns. Mutations that arrive while a snapshot is
// being built or written share the next write (group commit). It receives
// MarkDirty, StatsChanged, Commit, SaveNow and its own gather and write
// messages.
//
// A write that fails leaves the state "degraded": every mutation that rode
// on it (or on a snapshot gathered while it was in flight) is refused,
// newest first, so the engine undoes them in reverse order; the actor
// retries with backoff until a write succeeds. It also checks the file
// after every interval and rewrites one that was deleted or replaced, and
// it keeps the entries that could not be restored, writing them back on
// every save until the user drops them.

package persistence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
)

// ActorConfig configures the persistence actor.
type ActorConfig struct {
	System *actor.ActorSystem
	Store  *Store
	Engine *actor.PID
	// Timeout is how long a snapshot waits for an actor's answer; 0 = 2 s.
	Timeout time.Duration
	// Interval is how often stats-only changes are saved; 0 = 60 s.
	Interval time.Duration
	Log      *zap.Logger
	// Initial is the state restored at start: its entries stand in for
	// actors that do not answer the first snapshots.
	Initial *State
	// Go runs a goroutine the engine waits for at shutdown.
	Go func(func())
	// Stats receives the figures of every write (may be nil).
	Stats func(WriteStats)
	// CheckInterval is how often the file is checked for deletion or
	// replacement; 0 = 1 s.
	CheckInterval time.Duration
	// Degraded, when set, is told each time the state turns degraded
	// (a non-nil error: writes fail) or writable again (nil). It is called
	// from the actor's Receive and must not block.
	Degraded func(error)
	// KeptChanged, when set, is told how many kept entries there are, at
	// start and after each change. It is called from the actor's Receive
	// and must not block.
	KeptChanged func(n int)
	// RetryMin and RetryMax bound the backoff between retries while
	// degraded; 0 = 250 ms and 30 s.
	RetryMin, RetryMax time.Duration
	// JournalMaxBytes, JournalMaxRecords and JournalMaxAge are the
	// journal's size, record count and age past which the snapshot is
	// rewritten in the background and the journal trimmed; 0 = 64 MiB,
	// 250,000 records and 10 minutes.
	JournalMaxBytes   int64
	JournalMaxRecords int
	JournalMaxAge     time.Duration
	// SnapshotFirst makes the first write a snapshot rather than a journal
	// append: the restore changed what the files say (expired workspaces
	// dropped, run IDs given).
	SnapshotFirst bool
}

// WriteStats describes one snapshot write, journal append, or background
// compaction (a snapshot written while appends go on).
type WriteStats struct {
	// Journal says the write was a journal append of Records records.
	Journal bool
	Records int
	// Compaction says the snapshot was written in the background.
	Compaction bool
	Bytes      int
	Workspaces int
	Build      time.Duration // gathering and encoding
	Write      time.Duration // write, fsync, rename, directory fsync
	Err        error
}

// Messages of the persistence actor.
type (
	// MarkDirty says declared state changed.
	MarkDirty struct{}
	// StatsChanged says stats changed; they are saved at the next
	// interval or at shutdown.
	StatsChanged struct{}
	// Commit asks for a snapshot containing every mutation made before
	// it; Reply is answered once it is durable, or with the error that
	// prevented it. Workspaces names the workspaces whose own entries the
	// mutation changed: they are asked again; the others keep the entry of
	// the previous snapshot (their specs never change; their stats ride
	// along with the periodic full snapshot).
	//
	// Change, when set, says exactly what the mutation changed: the
	// actor then appends the records of those entries and asks only the
	// workspaces it names as changed, without asking the engine for the
	// registry. A Commit without it is gathered from the engine.
	Commit struct {
		Workspaces []string
		Change     *protocol.Change
		Reply      protocol.Reply[struct{}]
	}
	// SaveNow saves if anything changed (declared state or stats), asking
	// every workspace, and answers whether it wrote; false with no error
	// means nothing had changed.
	//
	// Gathered, when set, is answered as soon as the snapshot holds every
	// workspace's answer, before it is encoded and written: a stopping
	// engine stops its workspaces meanwhile, and waits for Reply last.
	SaveNow struct {
		Reply    protocol.Reply[bool]
		Gathered protocol.Reply[struct{}]
	}
	// GetLast returns the last snapshot written (or restored).
	GetLast struct{ Reply protocol.Reply[*State] }
	// GetKept returns the entries kept but not in effect.
	GetKept struct{ Reply protocol.Reply[[]KeptEntry] }
	// DropKept removes the kept entry that Ref names (its ID, label or
	// saved pipeline name) durably: the answer is the entry once a
	// snapshot without it is on disk, or the error (then it is kept
	// still).
	DropKept struct {
		Ref   string
		Reply protocol.Reply[KeptEntry]
	}
)

type (
	tick        struct{}
	checkTick   struct{}
	retryTick   struct{}
	fileChecked struct{ problem string }
	saveChecked struct {
		done     func(bool, error)
		gathered protocol.Reply[struct{}] // the save's, when set
		problem  string
	}
	gatherTimeout struct{ gen uint64 }
	written       struct {
		gen   uint64
		stats WriteStats
		// journal is the journal after an append.
		journal JournalStats
	}
	compacted struct {
		stats   WriteStats
		skipped bool
		trimErr error
	}
)

type gather struct {
	full     bool            // ask every workspace
	snapshot bool            // write a snapshot, not a journal append
	ask      map[string]bool // else ask these (and new ones)
	state    *State          // once assembled (not for a delta)
	// next and saved are the entries the assembled state holds (cloned:
	// the view goes on changing); they become the durable entries once
	// written.
	next  map[string]*protocol.WorkspaceSnapshot
	saved map[string]messages.PipelineSpec
	// delta says the gather holds only the entries its commits changed
	// (no engine request): oldWS and oldSaved are their values before it
	// (nil: absent), in the order first touched; recs are the records,
	// encErr the error of encoding them.
	delta    bool
	oldWS    map[string]*protocol.WorkspaceSnapshot
	wsOrder  []string
	oldSaved map[string]*messages.PipelineSpec
	svOrder  []string
	newWS    map[string]*protocol.WorkspaceSnapshot // their values after it
	newSaved map[string]*messages.PipelineSpec
	recs     []Record
	encErr   error
	gen      uint64
	started  time.Time
	waiters  []func(error)
	saves    []func(bool, error)
	gathered []protocol.Reply[struct{}] // answered when the gather ends
	engine   *protocol.EngineSnapshot
	pending  map[string]bool
	entries  map[string]*protocol.WorkspaceSnapshot
	cancel   func()
}

type persister struct {
	cfg        ActorConfig
	log        *zap.Logger
	self       *actor.PID
	dirty      bool
	statsDirty bool
	gen        uint64
	cur        *gather       // being gathered
	ready      *gather       // gathered, waiting for the write in flight to end
	inflight   *gather       // being written
	waiters    []func(error) // for the next snapshot
	saves      []func(bool, error)
	gathered   []protocol.Reply[struct{}]
	ask        map[string]bool // workspaces the next snapshot must ask
	full       bool            // the next snapshot asks every workspace
	// prev and saved are the latest view of the entries: the durable ones
	// plus every gather since (being written, or waiting). viewOK says
	// they are complete (false after a failed write, until the engine is
	// asked again). changes are the commits' changes for the next gather;
	// needEngine says a commit came without one.
	prev       map[string]*protocol.WorkspaceSnapshot
	saved      map[string]messages.PipelineSpec
	viewOK     bool
	changes    []*protocol.Change
	needEngine bool
	// dws, dsaved and dkept are the entries the files hold (the last
	// write that succeeded); last is the State they make, built when
	// asked (GetLast, a compaction, a delta against it) and kept until
	// the next write.
	dws       map[string]*protocol.WorkspaceSnapshot
	dsaved    map[string]messages.PipelineSpec
	dkept     []KeptEntry
	last      *State
	stopTick  func()
	stopCheck func()
	stopRetry func()
	checking  bool
	// snapshot says the next write is a snapshot (an explicit save, a file
	// to write again, a retry after a failure); compacting that a
	// background snapshot is being written.
	snapshot   bool
	compacting bool
	// degraded is the error of the last failed write, nil once a write
	// succeeds again; retry is the next backoff.
	degraded error
	retry    time.Duration
	// kept are the entries not in effect, written back on every save.
	// The slice is replaced, never changed in place: a snapshot being
	// written shares it.
	kept []KeptEntry
	// extra holds the unknown members of restored entries, written back
	// while the entry lives: by workspace ID, live run ID, saved name.
	wsExtra    map[string]json.RawMessage
	liveExtra  map[string]json.RawMessage
	savedExtra map[string]SavedPipeline
}

// NewActorProps returns the props of the persistence actor.
func NewActorProps(cfg ActorConfig) *actor.Props {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 60 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 250 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 30 * time.Second
	}
	if cfg.JournalMaxBytes <= 0 {
		cfg.JournalMaxBytes = 64 << 20
	}
	if cfg.JournalMaxRecords <= 0 {
		cfg.JournalMaxRecords = 250_000
	}
	if cfg.JournalMaxAge <= 0 {
		cfg.JournalMaxAge = 10 * time.Minute
	}
	return actor.PropsFromProducer(func() actor.Actor {
		p := &persister{cfg: cfg, log: cfg.Log.Named("persistence"), prev: make(map[string]*protocol.WorkspaceSnapshot),
			saved: make(map[string]messages.PipelineSpec), viewOK: true, snapshot: cfg.SnapshotFirst}
		if cfg.Initial != nil {
			p.seed(cfg.Initial)
		}
		p.dws, p.dsaved, p.dkept, p.last = maps.Clone(p.prev), maps.Clone(p.saved), p.kept, cfg.Initial
		return p
	})
}

// seed turns a restored state into previous entries.
func (p *persister) seed(st *State) {
	live := make(map[string][]protocol.LivePipeline)
	for _, lp := range st.LivePipelines {
		live[lp.Workspace] = append(live[lp.Workspace], protocol.LivePipeline{ID: lp.ID, Spec: lp.Spec, Tap: lp.Tap})
	}
	cmds := make(map[string][]protocol.LiveCommand)
	for _, lc := range st.LiveCommands {
		cmds[lc.Workspace] = append(cmds[lc.Workspace], protocol.LiveCommand{ID: lc.ID, Spec: lc.Spec})
	}
	for _, w := range st.Workspaces {
		spec := w.Spec
		p.prev[w.ID] = &protocol.WorkspaceSnapshot{ID: w.ID, Spec: &spec, History: w.StatsHistory, Live: live[w.ID], Commands: cmds[w.ID]}
	}
	for _, sp := range st.SavedPipelines {
		p.saved[sp.Name] = sp.Spec
	}
	p.kept = st.Kept
	p.wsExtra = make(map[string]json.RawMessage)
	p.liveExtra = make(map[string]json.RawMessage)
	p.savedExtra = make(map[string]SavedPipeline)
	for _, w := range st.Workspaces {
		if len(w.Extra) > 0 {
			p.wsExtra[w.ID] = w.Extra
		}
	}
	for _, lp := range st.LivePipelines {
		if len(lp.Extra) > 0 && lp.ID != "" {
			p.liveExtra[lp.ID] = lp.Extra
		}
	}
	for _, lc := range st.LiveCommands {
		if len(lc.Extra) > 0 {
			p.liveExtra[lc.ID] = lc.Extra
		}
	}
	for _, sp := range st.SavedPipelines {
		if len(sp.Extra) > 0 {
			p.savedExtra[sp.Name] = sp
		}
	}
}

func (p *persister) Receive(ctx actor.Context) {
	if r, ok := ctx.Message().(protocol.Request); ok && ctx.Sender() != nil {
		r.BindSender(ctx.ActorSystem(), ctx.Sender())
	}
	switch m := ctx.Message().(type) {
	case *actor.Started:
		p.self = ctx.Self()
		p.armTick()
		p.armCheck()
		p.keptChanged()
	case *actor.Stopping:
		for _, stop := range []func(){p.stopTick, p.stopCheck, p.stopRetry} {
			if stop != nil {
				stop()
			}
		}
		if p.cur != nil && p.cur.cancel != nil {
			p.cur.cancel()
		}
		err := fmt.Errorf("persistence stopped: %w", messages.ErrStopped)
		for _, w := range p.waiters {
			w(err)
		}
		for _, s := range p.saves {
			s(false, err)
		}
		for _, r := range p.gathered {
			r.Fail(err)
		}
		for _, g := range []*gather{p.cur, p.ready, p.inflight} {
			if g == nil {
				continue
			}
			for _, r := range g.gathered {
				r.Fail(err)
			}
			for _, w := range g.waiters {
				w(err)
			}
			for _, s := range g.saves {
				s(false, err)
			}
		}
	case *MarkDirty:
		p.dirty = true
	case *StatsChanged:
		p.statsDirty = true
	case *Commit:
		p.dirty = true
		if m.Change != nil {
			p.changes = append(p.changes, m.Change)
		} else {
			p.needEngine = true
		}
		for _, id := range m.Workspaces {
			if p.ask == nil {
				p.ask = make(map[string]bool)
			}
			p.ask[id] = true
		}
		p.waiters = append(p.waiters, answerErr(m.Reply))
		p.kick(ctx)
	case *SaveNow:
		if !p.dirty && !p.statsDirty && p.cur == nil && p.ready == nil && p.inflight == nil && len(p.waiters) == 0 {
			// Clean: skip the write only if the file is still the one
			// last written (a missing or replaced file is rewritten).
			store, send, done, gathered := p.cfg.Store, p.send, answerSaved(m.Reply), m.Gathered
			p.cfg.Go(func() {
				problem := store.Check(true)
				if problem == "" && store.JournalStats().Records > 0 {
					problem = "behind its journal"
				}
				send(&saveChecked{done: done, gathered: gathered, problem: problem})
			})
			return
		}
		p.saves = append(p.saves, answerSaved(m.Reply))
		if m.Gathered.IsSet() {
			p.gathered = append(p.gathered, m.Gathered)
		}
		p.full = true
		p.kick(ctx)
	case *saveChecked:
		if m.problem == "" {
			if m.gathered.IsSet() {
				m.gathered.OK(struct{}{}) // nothing to gather
			}
			m.done(false, nil)
			return
		}
		if m.gathered.IsSet() {
			p.gathered = append(p.gathered, m.gathered)
		}
		if m.problem != "behind its journal" {
			p.log.Warn("the state file or its journal was "+m.problem+"; writing it again", zap.String("path", p.cfg.Store.Path()))
		}
		p.dirty, p.full, p.snapshot = true, true, true
		p.saves = append(p.saves, m.done)
		p.kick(ctx)
	case *checkTick:
		p.armCheck()
		if !p.checking && p.degraded == nil {
			p.checking = true
			store, send := p.cfg.Store, p.send
			p.cfg.Go(func() { send(&fileChecked{problem: store.Check(false)}) })
		}
	case *fileChecked:
		p.checking = false
		if m.problem != "" && p.degraded == nil {
			p.log.Warn("the state file or its journal was "+m.problem+"; writing it again", zap.String("path", p.cfg.Store.Path()))
			p.dirty, p.full, p.snapshot = true, true, true
			p.kick(ctx)
		}
	case *retryTick:
		p.stopRetry = nil
		if p.degraded != nil {
			p.dirty, p.full, p.snapshot = true, true, true
			p.kick(ctx)
		}
	case *GetLast:
		m.Reply.OK(p.lastState())
	case *GetKept:
		m.Reply.OK(p.kept)
	case *DropKept:
		p.dropKept(ctx, m)
	case *tick:
		p.armTick()
		if p.dirty || p.statsDirty {
			p.full = true
			p.kick(ctx)
		}
	case *protocol.EngineSnapshot:
		p.onEngine(ctx, m)
	case *protocol.WorkspaceSnapshot:
		p.onWorkspace(m)
	case *gatherTimeout:
		if p.cur != nil && p.cur.gen == m.gen {
			if p.cur.engine == nil && !p.cur.delta {
				p.log.Warn("the engine did not answer the snapshot request in time; keeping the previous registry")
			} else {
				p.log.Warn("workspaces did not answer the snapshot request in time; keeping their previous entries",
					zap.Int("count", len(p.cur.pending)))
			}
			p.finish()
		}
	case *written:
		p.onWritten(ctx, m)
	case *compacted:
		p.compacting = false
		if p.cfg.Stats != nil && !m.skipped {
			p.cfg.Stats(m.stats)
		}
		if m.stats.Err != nil {
			p.log.Warn("the background snapshot failed; the journal keeps every change", zap.Error(m.stats.Err))
		} else if m.trimErr != nil {
			p.log.Warn("the snapshot is written but the journal could not be trimmed", zap.Error(m.trimErr))
		}
	}
}

// send delivers msg to the actor itself from a timer or goroutine.
func (p *persister) send(msg any) { p.cfg.System.Root.Send(p.self, msg) }

func (p *persister) armTick() {
	t := time.AfterFunc(p.cfg.Interval, func() { p.send(&tick{}) })
	p.stopTick = func() { t.Stop() }
}

func (p *persister) armCheck() {
	t := time.AfterFunc(p.cfg.CheckInterval, func() { p.send(&checkTick{}) })
	p.stopCheck = func() { t.Stop() }
}

func (p *persister) keptChanged() {
	if p.cfg.KeptChanged != nil {
		p.cfg.KeptChanged(len(p.kept))
	}
}

// dropKept removes a kept entry, durably; it comes back if the write fails.
func (p *persister) dropKept(ctx actor.Context, m *DropKept) {
	idx, err := findKept(p.kept, m.Ref)
	if err != nil {
		m.Reply.Fail(err)
		return
	}
	entry := p.kept[idx]
	next := make([]KeptEntry, 0, len(p.kept)-1)
	next = append(append(next, p.kept[:idx]...), p.kept[idx+1:]...)
	p.kept = next
	p.keptChanged()
	p.dirty = true
	p.snapshot = true // records cannot say it
	reply := m.Reply
	p.waiters = append(p.waiters, func(err error) {
		if err != nil {
			// Not durable, so not in effect: put it back where it was.
			back := make([]KeptEntry, 0, len(p.kept)+1)
			at := min(idx, len(p.kept))
			back = append(append(append(back, p.kept[:at]...), entry), p.kept[at:]...)
			p.kept = back
			p.keptChanged()
			reply.Fail(fmt.Errorf("%s not dropped: the state file could not be written, so nothing changed: %w", describeKept(entry), err))
			return
		}
		reply.OK(entry)
	})
	p.kick(ctx)
}

// ErrKeptNotFound is wrapped by DropKept's error when no kept entry
// matches the reference; ErrKeptAmbiguous when several do.
var (
	ErrKeptNotFound  = errors.New("no kept entry matches")
	ErrKeptAmbiguous = errors.New("several kept entries match")
)

// findKept finds the kept entry ref names: its ID (any case), its label,
// or its saved pipeline name; "SECTION[N]" (e.g. "workspaces[0]") picks
// the Nth kept entry of a section when IDs and labels do not tell them
// apart.
func findKept(kept []KeptEntry, ref string) (int, error) {
	var hits []int
	for i, k := range kept {
		if k.ID != "" && strings.EqualFold(k.ID, ref) {
			return i, nil
		}
	}
	for i, k := range kept {
		if k.Label != "" && k.Label == ref {
			hits = append(hits, i)
		}
	}
	if len(hits) == 0 {
		n := map[string]int{}
		for i, k := range kept {
			if fmt.Sprintf("%s[%d]", k.Section, n[k.Section]) == ref {
				hits = append(hits, i)
			}
			n[k.Section]++
		}
	}
	switch len(hits) {
	case 0:
		return -1, fmt.Errorf("%q: %w (see shipote state ls)", ref, ErrKeptNotFound)
	case 1:
		return hits[0], nil
	}
	var names []string
	for _, i := range hits {
		names = append(names, describeKept(kept[i]))
	}
	return -1, fmt.Errorf("%q: %w: %s; name one by ID", ref, ErrKeptAmbiguous, strings.Join(names, ", "))
}

// describeKept names a kept entry for a message.
func describeKept(k KeptEntry) string {
	what := strings.TrimSuffix(strings.ReplaceAll(k.Section, "_", " "), "s")
	switch {
	case k.Label != "" && k.ID != "" && k.Label != k.ID:
		return fmt.Sprintf("%s %s (%s)", what, k.Label, k.ID)
	case k.ID != "":
		return what + " " + k.ID
	case k.Label != "":
		return what + " " + k.Label
	}
	return what
}

// kick starts gathering a snapshot unless one is being gathered or is
// waiting to be written; in that case the waiters ride on the next one.
// Gathering overlaps the write in flight, so under a stream of commits the
// disk is kept busy.
func (p *persister) kick(ctx actor.Context) {
	if p.cur != nil || p.ready != nil {
		return
	}
	p.gen++
	g := &gather{
		gen:      p.gen,
		started:  time.Now(),
		waiters:  p.waiters,
		saves:    p.saves,
		gathered: p.gathered,
		full:     p.full, // stats ride along with the tick's and explicit saves' snapshots
		snapshot: p.snapshot || len(p.saves) > 0,
		ask:      p.ask,
		entries:  make(map[string]*protocol.WorkspaceSnapshot),
		pending:  make(map[string]bool),
	}
	changes := p.changes
	g.delta = !g.full && !g.snapshot && !p.needEngine && p.viewOK
	p.waiters, p.saves, p.ask, p.full, p.snapshot, p.changes, p.needEngine = nil, nil, nil, false, false, nil, false
	p.gathered = nil
	p.dirty = false
	if g.full {
		p.statsDirty = false
	}
	p.cur = g
	gen := g.gen
	g.cancel = func() {}
	if g.delta {
		if p.applyChanges(ctx, g, changes) > 0 {
			t := time.AfterFunc(p.cfg.Timeout, func() { p.send(&gatherTimeout{gen: gen}) })
			g.cancel = func() { t.Stop() }
		} else {
			p.finish()
		}
		return
	}
	// The engine's answer holds every change so far; the workspaces whose
	// own entries changed are asked again.
	for _, ch := range changes {
		for _, w := range ch.Changed {
			if g.ask == nil {
				g.ask = make(map[string]bool)
			}
			g.ask[w.ID] = true
		}
	}
	t := time.AfterFunc(p.cfg.Timeout, func() { p.send(&gatherTimeout{gen: gen}) })
	g.cancel = func() { t.Stop() }
	ctx.Request(p.cfg.Engine, &protocol.SnapshotEngine{Gen: gen})
}

// applyChanges applies the changes of a delta gather to the view,
// remembering the value each entry had before, and asks the workspaces
// whose own entries changed; it returns how many were asked. Applying a
// change twice changes nothing (a create of a workspace the view holds,
// a removal of one it lacks).
func (p *persister) applyChanges(ctx actor.Context, g *gather, changes []*protocol.Change) int {
	g.oldWS = make(map[string]*protocol.WorkspaceSnapshot)
	g.oldSaved = make(map[string]*messages.PipelineSpec)
	touch := func(id string) {
		if _, seen := g.oldWS[id]; !seen {
			g.oldWS[id] = p.prev[id]
			g.wsOrder = append(g.wsOrder, id)
		}
	}
	var ask map[string]*actor.PID
	for _, ch := range changes {
		for _, w := range ch.Created {
			if p.prev[w.ID] == nil {
				touch(w.ID)
				p.prev[w.ID] = &protocol.WorkspaceSnapshot{ID: w.ID, Spec: w.Spec}
			}
		}
		for _, id := range ch.Removed {
			if p.prev[id] != nil {
				touch(id)
				delete(p.prev, id)
				delete(ask, id)
			}
		}
		for _, w := range ch.Changed {
			if p.prev[w.ID] != nil {
				touch(w.ID)
				if ask == nil {
					ask = make(map[string]*actor.PID)
				}
				ask[w.ID] = w.PID
			}
		}
		for _, sc := range ch.Saved {
			if _, seen := g.oldSaved[sc.Name]; !seen {
				var old *messages.PipelineSpec
				if spec, ok := p.saved[sc.Name]; ok {
					old = &spec
				}
				g.oldSaved[sc.Name] = old
				g.svOrder = append(g.svOrder, sc.Name)
			}
			if sc.Spec != nil {
				p.saved[sc.Name] = *sc.Spec
			} else {
				delete(p.saved, sc.Name)
			}
		}
	}
	for id, pid := range ask {
		g.pending[id] = true
		ctx.Request(pid, &protocol.SnapshotWorkspace{Gen: g.gen})
	}
	return len(ask)
}

func (p *persister) onEngine(ctx actor.Context, m *protocol.EngineSnapshot) {
	g := p.cur
	if g == nil || g.gen != m.Gen || g.engine != nil {
		return
	}
	g.engine = m
	for _, w := range m.Workspaces {
		if prev := p.prev[w.ID]; prev != nil && !g.full && !g.ask[w.ID] {
			g.entries[w.ID] = prev // unchanged since the last snapshot
			continue
		}
		g.pending[w.ID] = true
		ctx.Request(w.PID, &protocol.SnapshotWorkspace{Gen: g.gen})
	}
	if len(g.pending) == 0 {
		p.finish()
	}
}

func (p *persister) onWorkspace(m *protocol.WorkspaceSnapshot) {
	g := p.cur
	if g == nil || g.gen != m.Gen || !g.pending[m.ID] {
		return
	}
	delete(g.pending, m.ID)
	g.entries[m.ID] = m
	if len(g.pending) == 0 {
		p.finish()
	}
}

// finish assembles the state and writes it, or keeps it until the write in
// flight has ended.
func (p *persister) finish() {
	g := p.cur
	p.cur = nil
	g.cancel()
	if g.delta {
		for id, e := range g.entries {
			if p.prev[id] != nil {
				p.prev[id] = e
			}
		}
		g.newWS = make(map[string]*protocol.WorkspaceSnapshot, len(g.wsOrder))
		for _, id := range g.wsOrder {
			g.newWS[id] = p.prev[id]
		}
		g.newSaved = make(map[string]*messages.PipelineSpec, len(g.svOrder))
		for _, name := range g.svOrder {
			if spec, ok := p.saved[name]; ok {
				g.newSaved[name] = &spec
			} else {
				g.newSaved[name] = nil
			}
		}
		g.recs, g.encErr = p.deltaRecords(g)
		if errors.Is(g.encErr, errNeedSnapshot) {
			// Records cannot say it: write the whole view.
			g.delta, g.snapshot, g.encErr = false, true, nil
			g.next, g.saved = maps.Clone(p.prev), maps.Clone(p.saved)
			g.state = p.build(g.next, g.saved, p.kept)
		}
	} else {
		g.state = p.assemble(g)
	}
	for _, r := range g.gathered {
		r.OK(struct{}{})
	}
	g.gathered = nil
	if p.inflight != nil {
		p.ready = g
		return
	}
	p.write(g)
}

// assemble builds the state of a finished gather.
func (p *persister) assemble(g *gather) *State {
	st := &State{Version: CurrentVersion, TimestampMs: time.Now().UnixMilli()}
	if g.engine == nil {
		// The engine did not answer: write what the last snapshot had.
		cp := *p.lastState()
		st.Workspaces, st.SavedPipelines, st.LivePipelines, st.LiveCommands = cp.Workspaces, cp.SavedPipelines, cp.LivePipelines, cp.LiveCommands
	} else {
		next := make(map[string]*protocol.WorkspaceSnapshot, len(g.engine.Workspaces))
		for _, w := range g.engine.Workspaces {
			e := g.entries[w.ID]
			if e == nil {
				e = p.prev[w.ID]
			}
			if e == nil {
				// New and silent: what the engine knows of it.
				e = &protocol.WorkspaceSnapshot{ID: w.ID, Spec: w.Spec}
			}
			next[w.ID] = e
			p.addEntry(st, e)
		}
		saved := make(map[string]messages.PipelineSpec, len(g.engine.Saved))
		for _, s := range g.engine.Saved {
			saved[s.Name] = s.Spec
			st.SavedPipelines = append(st.SavedPipelines, p.savedEntry(s.Name, s.Spec))
		}
		p.prev, p.saved, p.viewOK = next, saved, true
		g.next, g.saved = maps.Clone(next), maps.Clone(saved)
	}
	st.Kept = p.kept
	return st
}

// addEntry appends a workspace's entries (its own, its supervised
// pipelines and commands) to st, with their unknown members.
func (p *persister) addEntry(st *State, e *protocol.WorkspaceSnapshot) {
	st.Workspaces = append(st.Workspaces, p.wsEntry(e, true))
	for _, lp := range e.Live {
		st.LivePipelines = append(st.LivePipelines, p.liveEntry(e.ID, lp))
	}
	for _, lc := range e.Commands {
		st.LiveCommands = append(st.LiveCommands, p.cmdEntry(e.ID, lc))
	}
}

func (p *persister) wsEntry(e *protocol.WorkspaceSnapshot, stats bool) WorkspaceEntry {
	w := WorkspaceEntry{ID: e.ID, Spec: *e.Spec, Extra: p.wsExtra[e.ID]}
	if stats {
		w.StatsHistory = e.History
	}
	return w
}

func (p *persister) liveEntry(ws string, lp protocol.LivePipeline) LivePipeline {
	return LivePipeline{ID: lp.ID, Workspace: ws, Spec: lp.Spec, Tap: lp.Tap, Extra: p.liveExtra[lp.ID]}
}

func (p *persister) cmdEntry(ws string, lc protocol.LiveCommand) LiveCommand {
	return LiveCommand{ID: lc.ID, Workspace: ws, Spec: lc.Spec, Extra: p.liveExtra[lc.ID]}
}

func (p *persister) savedEntry(name string, spec messages.PipelineSpec) SavedPipeline {
	sp := SavedPipeline{Name: name, Spec: spec}
	if x, ok := p.savedExtra[name]; ok && reflect.DeepEqual(x.Spec, spec) {
		sp.Extra = x.Extra // unchanged since restored
	}
	return sp
}

// build makes the State of a set of entries: workspaces by ID, saved
// pipelines by name, as the engine lists them.
func (p *persister) build(ws map[string]*protocol.WorkspaceSnapshot, saved map[string]messages.PipelineSpec, kept []KeptEntry) *State {
	st := &State{Version: CurrentVersion, TimestampMs: time.Now().UnixMilli(), Workspaces: make([]WorkspaceEntry, 0, len(ws))}
	for _, id := range slices.Sorted(maps.Keys(ws)) {
		p.addEntry(st, ws[id])
	}
	for _, name := range slices.Sorted(maps.Keys(saved)) {
		st.SavedPipelines = append(st.SavedPipelines, p.savedEntry(name, saved[name]))
	}
	st.Kept = kept
	return st
}

// lastState returns the State the files hold.
func (p *persister) lastState() *State {
	if p.last == nil {
		p.last = p.build(p.dws, p.dsaved, p.dkept)
	}
	return p.last
}

// errNeedSnapshot says a change cannot be said in records.
var errNeedSnapshot = errors.New("persistence: the change needs a snapshot")

// deltaRecords returns the records of a delta gather: for each entry it
// touched, the put or removal that turns its old value into its value in
// the view. As Delta orders them: removals first (of saved pipelines,
// supervised runs and commands, then workspaces), then puts (workspaces,
// then saved pipelines, runs and commands), so that any prefix is a state
// the engine could have written.
func (p *persister) deltaRecords(g *gather) ([]Record, error) {
	var delSaved, delLive, delCmd, delWS, putWS, putSaved, putLive, putCmd []Record
	for _, name := range g.svOrder {
		old := g.oldSaved[name]
		spec, ok := p.saved[name]
		switch {
		case !ok && old != nil:
			delSaved = append(delSaved, Record{Type: RecDelSaved, Key: name})
		case ok:
			sp := p.savedEntry(name, spec)
			if old != nil {
				if o := p.savedEntry(name, *old); sameJSON(&o, &sp) && bytes.Equal(o.Extra, sp.Extra) {
					continue
				}
			}
			data, err := encodeEntry(&sp, sp.Extra)
			if err != nil {
				return nil, err
			}
			putSaved = append(putSaved, Record{Type: RecPutSaved, Key: name, Payload: data})
		}
	}
	for _, id := range g.wsOrder {
		old, now := g.oldWS[id], p.prev[id]
		if old == nil && now == nil {
			continue
		}
		if old == nil {
			w := p.wsEntry(now, false)
			data, err := encodeEntry(&w, w.Extra)
			if err != nil {
				return nil, err
			}
			putWS = append(putWS, Record{Type: RecPutWorkspace, Key: id, Payload: data})
			old = &protocol.WorkspaceSnapshot{}
		}
		if now == nil {
			now = &protocol.WorkspaceSnapshot{}
		}
		oldLive := make(map[string]protocol.LivePipeline, len(old.Live))
		for _, lp := range old.Live {
			oldLive[lp.ID] = lp
		}
		nowLive := make(map[string]bool, len(now.Live))
		for _, lp := range now.Live {
			if lp.ID == "" {
				return nil, errNeedSnapshot
			}
			nowLive[lp.ID] = true
			e := p.liveEntry(id, lp)
			if o, ok := oldLive[lp.ID]; ok {
				if oe := p.liveEntry(id, o); sameJSON(&oe, &e) {
					continue
				}
			}
			data, err := encodeEntry(&e, e.Extra)
			if err != nil {
				return nil, err
			}
			putLive = append(putLive, Record{Type: RecPutLivePipeline, Key: lp.ID, Payload: data})
		}
		for _, lp := range old.Live {
			if !nowLive[lp.ID] {
				if lp.ID == "" {
					return nil, errNeedSnapshot
				}
				delLive = append(delLive, Record{Type: RecDelLivePipeline, Key: lp.ID})
			}
		}
		oldCmd := make(map[string]protocol.LiveCommand, len(old.Commands))
		for _, lc := range old.Commands {
			oldCmd[lc.ID] = lc
		}
		nowCmd := make(map[string]bool, len(now.Commands))
		for _, lc := range now.Commands {
			nowCmd[lc.ID] = true
			e := p.cmdEntry(id, lc)
			if o, ok := oldCmd[lc.ID]; ok {
				if oe := p.cmdEntry(id, o); sameJSON(&oe, &e) {
					continue
				}
			}
			data, err := encodeEntry(&e, e.Extra)
			if err != nil {
				return nil, err
			}
			putCmd = append(putCmd, Record{Type: RecPutLiveCommand, Key: lc.ID, Payload: data})
		}
		for _, lc := range old.Commands {
			if !nowCmd[lc.ID] {
				delCmd = append(delCmd, Record{Type: RecDelLiveCommand, Key: lc.ID})
			}
		}
		if p.prev[id] == nil {
			delWS = append(delWS, Record{Type: RecDelWorkspace, Key: id})
		}
	}
	return slices.Concat(delSaved, delLive, delCmd, delWS, putWS, putSaved, putLive, putCmd), nil
}

// write hands a gathered state to a writer goroutine: the records that
// turn the last state written into it are appended to the journal, or,
// for an explicit save, a retry, or a change records cannot say, the whole
// snapshot is written (and the journal trimmed).
func (p *persister) write(g *gather) {
	p.inflight = g
	store, send, gen, started := p.cfg.Store, p.send, g.gen, g.started
	if g.delta {
		recs, encErr, n := g.recs, g.encErr, len(p.prev)
		p.cfg.Go(func() {
			ws := WriteStats{Workspaces: n, Journal: true, Records: len(recs), Build: time.Since(started), Err: encErr}
			if encErr == nil {
				t0 := time.Now()
				_, ws.Err = store.Append(recs)
				ws.Write = time.Since(t0)
			}
			for _, r := range recs {
				ws.Bytes += recHeader + recFixed + len(r.Payload)
			}
			send(&written{gen: gen, stats: ws, journal: store.JournalStats()})
		})
		return
	}
	st, snap := g.state, g.snapshot
	var prev *State
	if !snap {
		prev = p.lastState()
	}
	p.cfg.Go(func() {
		ws := WriteStats{Workspaces: len(st.Workspaces)}
		var (
			recs []Record
			ok   bool
			err  error
		)
		if !snap {
			recs, ok, err = Delta(prev, st)
		}
		if err == nil && ok {
			ws.Build = time.Since(started)
			t0 := time.Now()
			_, err = store.Append(recs)
			ws.Write = time.Since(t0)
			ws.Journal, ws.Records, ws.Err = true, len(recs), err
			for _, r := range recs {
				ws.Bytes += recHeader + recFixed + len(r.Payload)
			}
			send(&written{gen: gen, stats: ws, journal: store.JournalStats()})
			return
		}
		var data []byte
		seq := store.JournalSeq()
		if err == nil {
			cp := *st
			cp.JournalSeq = seq
			data, err = Encode(&cp)
		}
		ws.Build = time.Since(started)
		if err == nil {
			t0 := time.Now()
			var trimErr error
			_, trimErr, err = store.SaveSnapshot(data, seq)
			ws.Write = time.Since(t0)
			ws.Bytes = len(data)
			if err == nil && trimErr != nil {
				// The snapshot holds every record; appends fail until
				// the journal is replaced, so say it now.
				err = trimErr
			}
		}
		ws.Err = err
		send(&written{gen: gen, stats: ws})
	})
}

// compact writes st, which the journal holds up to its last record, as
// the snapshot in the background and trims the journal, when the journal
// has passed a threshold or the state carries fresh stats. Appends go on
// meanwhile; the journal is trimmed only of the records the snapshot holds.
func (p *persister) compact(js JournalStats, stats bool) {
	if p.compacting || js.Records == 0 && !stats {
		return
	}
	if !stats && js.Bytes < p.cfg.JournalMaxBytes && js.Records < p.cfg.JournalMaxRecords && js.Age < p.cfg.JournalMaxAge {
		return
	}
	p.compacting = true
	st := p.lastState()
	store, send := p.cfg.Store, p.send
	p.cfg.Go(func() {
		t0 := time.Now()
		ws := WriteStats{Compaction: true, Workspaces: len(st.Workspaces)}
		cp := *st
		cp.JournalSeq = js.Seq
		data, err := Encode(&cp)
		ws.Build = time.Since(t0)
		var skipped bool
		var trimErr error
		if err == nil {
			t1 := time.Now()
			skipped, trimErr, err = store.SaveSnapshot(data, js.Seq)
			ws.Write, ws.Bytes = time.Since(t1), len(data)
		}
		ws.Err = err
		send(&compacted{stats: ws, skipped: skipped, trimErr: trimErr})
	})
}

// wrote makes the entries of g, just written, the durable ones.
func (p *persister) wrote(g *gather) {
	if !g.delta {
		if g.next != nil {
			p.dws, p.dsaved = g.next, g.saved
		}
		p.dkept, p.last = g.state.Kept, g.state
		return
	}
	for id, e := range g.newWS {
		if e != nil {
			p.dws[id] = e
		} else {
			delete(p.dws, id)
		}
	}
	for name, spec := range g.newSaved {
		if spec != nil {
			p.dsaved[name] = *spec
		} else {
			delete(p.dsaved, name)
		}
	}
	p.last = nil
}

func (p *persister) onWritten(ctx actor.Context, m *written) {
	g := p.inflight
	if g == nil || g.gen != m.gen {
		return // not the write in flight (cannot happen; be safe)
	}
	p.inflight = nil
	if p.cfg.Stats != nil {
		p.cfg.Stats(m.stats)
	}
	err := m.stats.Err
	if err != nil {
		p.writeFailed(g, err)
	} else {
		p.wrote(g)
		if m.stats.Journal {
			p.compact(m.journal, g.full)
		}
		if p.degraded != nil {
			p.log.Info("the state file is writable again", zap.String("path", p.cfg.Store.Path()))
			p.degraded = nil
			p.retry = 0
			if p.stopRetry != nil {
				p.stopRetry()
				p.stopRetry = nil
			}
			if p.cfg.Degraded != nil {
				p.cfg.Degraded(nil)
			}
		}
		for _, w := range g.waiters {
			w(nil)
		}
		for _, s := range g.saves {
			s(true, nil)
		}
		if p.ready != nil {
			next := p.ready
			p.ready = nil
			p.write(next)
		}
	}
	if len(p.waiters) > 0 || len(p.saves) > 0 {
		p.kick(ctx)
	}
}

// writeFailed refuses every mutation that rode on the failed write g, or
// on a snapshot gathered while g was in flight (it holds g's mutations
// too), newest first: the engine undoes them in reverse order, before it
// answers another snapshot request. The state turns degraded and a retry
// is scheduled; the next snapshot asks every workspace again, since the
// entries kept from the failed one may hold undone mutations.
func (p *persister) writeFailed(g *gather, err error) {
	p.log.Error("snapshot write failed; the changes it carried are refused", zap.Error(err))
	p.dirty, p.full, p.snapshot, p.viewOK = true, true, true, false
	// Degraded before any caller hears of the refusal: a client told
	// "not saved" finds the daemon degraded.
	if p.degraded == nil && p.cfg.Degraded != nil {
		p.cfg.Degraded(err)
	}
	p.degraded = err
	gathers := []*gather{p.cur, p.ready, g} // newest first
	p.cur, p.ready = nil, nil
	for _, x := range gathers {
		if x == nil {
			continue
		}
		if x.cancel != nil {
			x.cancel()
		}
		for i := len(x.waiters) - 1; i >= 0; i-- {
			x.waiters[i](err)
		}
		for i := len(x.saves) - 1; i >= 0; i-- {
			x.saves[i](false, err)
		}
	}
	if p.retry == 0 {
		p.retry = p.cfg.RetryMin
	} else {
		p.retry = min(2*p.retry, p.cfg.RetryMax)
	}
	if p.stopRetry != nil {
		p.stopRetry()
	}
	t := time.AfterFunc(p.retry, func() { p.send(&retryTick{}) })
	p.stopRetry = func() { t.Stop() }
}

// ErrNoSnapshot is returned when no snapshot has been written or restored.
var ErrNoSnapshot = errors.New("persistence: no snapshot yet")

// The requests above are answered to their Reply, or to their sender when
// the Reply is unset. Inside the persister, an answer waiting for a write
// is kept as a function of the persister's own (waiters, saves), made and
// run in its Receive only.

// answerErr returns the waiter that answers reply with a write's outcome.
func answerErr(reply protocol.Reply[struct{}]) func(error) {
	return func(err error) {
		if err != nil {
			reply.Fail(err)
			return
		}
		reply.OK(struct{}{})
	}
}

// answerSaved returns the save waiter that answers reply.
func answerSaved(reply protocol.Reply[bool]) func(bool, error) {
	return func(saved bool, err error) {
		if err != nil {
			reply.Fail(err)
			return
		}
		reply.OK(saved)
	}
}

// Fail answers the request with err.
func (m *Commit) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *Commit) BindSender(s *actor.ActorSystem, sender *actor.PID) { m.Reply.Bind(s, sender) }

// Fail answers the request with err.
func (m *SaveNow) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *SaveNow) BindSender(s *actor.ActorSystem, sender *actor.PID) { m.Reply.Bind(s, sender) }

// Fail answers the request with err.
func (m *GetLast) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *GetLast) BindSender(s *actor.ActorSystem, sender *actor.PID) { m.Reply.Bind(s, sender) }

// Fail answers the request with err.
func (m *GetKept) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *GetKept) BindSender(s *actor.ActorSystem, sender *actor.PID) { m.Reply.Bind(s, sender) }

// Fail answers the request with err.
func (m *DropKept) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *DropKept) BindSender(s *actor.ActorSystem, sender *actor.PID) { m.Reply.Bind(s, sender) }
