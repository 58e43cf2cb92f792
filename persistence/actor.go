// This file is the persistence actor. It keeps the dirty flag and builds
// each snapshot by request-reply: it asks the engine for the registry and
// the saved pipelines, then every workspace for its entry; a workspace that
// does not answer in time keeps the entry of the previous snapshot. Writes
// run in a goroutine it owns. Mutations that arrive while a snapshot is
// being built or written share the next write (group commit). It receives
// MarkDirty, StatsChanged, Commit, SaveNow and its own gather and write
// messages.

package persistence

import (
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/shipote/shipote/actors"
	"github.com/shipote/shipote/messages"
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
}

// WriteStats describes one snapshot write.
type WriteStats struct {
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
	// it; Done is called once it is durable, or with the error that
	// prevented it. Workspaces names the workspaces whose own entries the
	// mutation changed: they are asked again; the others keep the entry of
	// the previous snapshot (their specs never change; their stats ride
	// along with the periodic full snapshot).
	Commit struct {
		Workspaces []string
		Done       func(error)
	}
	// SaveNow saves if anything changed (declared state or stats), asking
	// every workspace, and calls Done; Done(nil, false) means nothing had
	// changed.
	SaveNow struct{ Done func(saved bool, err error) }
	// GetLast returns the last snapshot written (or restored).
	GetLast struct{ Done func(*State) }
)

type (
	tick          struct{}
	gatherTimeout struct{ gen uint64 }
	written       struct {
		gen   uint64
		state *State
		stats WriteStats
	}
)

type gather struct {
	full    bool            // ask every workspace
	ask     map[string]bool // else ask these (and new ones)
	state   *State          // once assembled
	gen     uint64
	started time.Time
	waiters []func(error)
	saves   []func(bool, error)
	engine  *actors.EngineSnapshot
	pending map[string]bool
	entries map[string]*actors.WorkspaceSnapshot
	cancel  func()
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
	ask        map[string]bool // workspaces the next snapshot must ask
	full       bool            // the next snapshot asks every workspace
	prev       map[string]*actors.WorkspaceSnapshot
	last       *State
	stopTick   func()
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
	return actor.PropsFromProducer(func() actor.Actor {
		p := &persister{cfg: cfg, log: cfg.Log.Named("persistence"), prev: make(map[string]*actors.WorkspaceSnapshot), last: cfg.Initial}
		if cfg.Initial != nil {
			p.seed(cfg.Initial)
		}
		return p
	})
}

// seed turns a restored state into previous entries.
func (p *persister) seed(st *State) {
	live := make(map[string][]actors.LivePipeline)
	for _, lp := range st.LivePipelines {
		live[lp.Workspace] = append(live[lp.Workspace], actors.LivePipeline{ID: lp.ID, Spec: lp.Spec, Tap: lp.Tap})
	}
	for _, w := range st.Workspaces {
		p.prev[w.ID] = &actors.WorkspaceSnapshot{ID: w.ID, Spec: w.Spec, History: w.StatsHistory, Live: live[w.ID]}
	}
}

func (p *persister) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		p.self = ctx.Self()
		p.armTick()
	case *actor.Stopping:
		if p.stopTick != nil {
			p.stopTick()
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
		for _, g := range []*gather{p.cur, p.ready, p.inflight} {
			if g == nil {
				continue
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
		for _, id := range m.Workspaces {
			if p.ask == nil {
				p.ask = make(map[string]bool)
			}
			p.ask[id] = true
		}
		p.waiters = append(p.waiters, m.Done)
		p.kick(ctx)
	case *SaveNow:
		if !p.dirty && !p.statsDirty && p.cur == nil && p.ready == nil && p.inflight == nil && len(p.waiters) == 0 {
			m.Done(false, nil)
			return
		}
		p.saves = append(p.saves, m.Done)
		p.full = true
		p.kick(ctx)
	case *GetLast:
		m.Done(p.last)
	case *tick:
		p.armTick()
		if p.dirty || p.statsDirty {
			p.full = true
			p.kick(ctx)
		}
	case *actors.EngineSnapshot:
		p.onEngine(ctx, m)
	case *actors.WorkspaceSnapshot:
		p.onWorkspace(m)
	case *gatherTimeout:
		if p.cur != nil && p.cur.gen == m.gen {
			if p.cur.engine == nil {
				p.log.Warn("the engine did not answer the snapshot request in time; keeping the previous registry")
			} else {
				p.log.Warn("workspaces did not answer the snapshot request in time; keeping their previous entries",
					zap.Int("count", len(p.cur.pending)))
			}
			p.finish()
		}
	case *written:
		p.onWritten(ctx, m)
	}
}

// send delivers msg to the actor itself from a timer or goroutine.
func (p *persister) send(msg any) { p.cfg.System.Root.Send(p.self, msg) }

func (p *persister) armTick() {
	t := time.AfterFunc(p.cfg.Interval, func() { p.send(&tick{}) })
	p.stopTick = func() { t.Stop() }
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
		gen:     p.gen,
		started: time.Now(),
		waiters: p.waiters,
		saves:   p.saves,
		full:    p.full || p.statsDirty,
		ask:     p.ask,
		entries: make(map[string]*actors.WorkspaceSnapshot),
		pending: make(map[string]bool),
	}
	p.waiters, p.saves, p.ask, p.full = nil, nil, nil, false
	p.dirty = false
	if g.full {
		p.statsDirty = false
	}
	p.cur = g
	gen := g.gen
	t := time.AfterFunc(p.cfg.Timeout, func() { p.send(&gatherTimeout{gen: gen}) })
	g.cancel = func() { t.Stop() }
	ctx.Request(p.cfg.Engine, &actors.SnapshotEngine{Gen: gen})
}

func (p *persister) onEngine(ctx actor.Context, m *actors.EngineSnapshot) {
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
		ctx.Request(w.PID, &actors.SnapshotWorkspace{Gen: g.gen})
	}
	if len(g.pending) == 0 {
		p.finish()
	}
}

func (p *persister) onWorkspace(m *actors.WorkspaceSnapshot) {
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
	g.state = p.assemble(g)
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
		if p.last != nil {
			cp := *p.last
			st.Workspaces, st.SavedPipelines, st.LivePipelines = cp.Workspaces, cp.SavedPipelines, cp.LivePipelines
		}
	} else {
		next := make(map[string]*actors.WorkspaceSnapshot, len(g.engine.Workspaces))
		for _, w := range g.engine.Workspaces {
			e := g.entries[w.ID]
			if e == nil {
				e = p.prev[w.ID]
			}
			if e == nil {
				// New and silent: what the engine knows of it.
				e = &actors.WorkspaceSnapshot{ID: w.ID, Spec: w.Spec}
			}
			next[w.ID] = e
			st.Workspaces = append(st.Workspaces, WorkspaceEntry{ID: e.ID, Spec: e.Spec, StatsHistory: e.History})
			for _, lp := range e.Live {
				st.LivePipelines = append(st.LivePipelines, LivePipeline{ID: lp.ID, Workspace: e.ID, Spec: lp.Spec, Tap: lp.Tap})
			}
		}
		p.prev = next
		for _, s := range g.engine.Saved {
			st.SavedPipelines = append(st.SavedPipelines, SavedPipeline{Name: s.Name, Spec: s.Spec})
		}
	}
	return st
}

// write hands a gathered state to a writer goroutine.
func (p *persister) write(g *gather) {
	p.inflight = g
	st := g.state
	store, send, gen, started := p.cfg.Store, p.send, g.gen, g.started
	p.cfg.Go(func() {
		ws := WriteStats{Workspaces: len(st.Workspaces)}
		data, err := Encode(st)
		ws.Build = time.Since(started)
		if err == nil {
			t0 := time.Now()
			err = store.SaveRaw(data)
			ws.Write = time.Since(t0)
			ws.Bytes = len(data)
		}
		ws.Err = err
		send(&written{gen: gen, state: st, stats: ws})
	})
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
		p.log.Error("snapshot write failed", zap.Error(err))
		p.dirty = true // try again with the next mutation or tick
	} else {
		p.last = m.state
	}
	for _, w := range g.waiters {
		w(err)
	}
	for _, s := range g.saves {
		s(err == nil, err)
	}
	if p.ready != nil {
		next := p.ready
		p.ready = nil
		p.write(next)
	}
	if len(p.waiters) > 0 || len(p.saves) > 0 {
		p.kick(ctx)
	}
}

// ErrNoSnapshot is returned when no snapshot has been written or restored.
var ErrNoSnapshot = errors.New("persistence: no snapshot yet")
