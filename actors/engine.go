// This file is the engine actor, the root of shipote's actor tree: it keeps
// the registry of workspaces by ID and label, creates (and restores) them,
// routes requests to them, and holds the saved pipelines. It receives the
// requests of protocol.go and workspaceGone from its children; it sends the
// routed requests on to the workspace actors.

package actors

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/shipote/shipote/internal/limits"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
)

// EngineConfig configures the engine actor.
type EngineConfig struct {
	Runtime *Runtime
	// Commit, when set, is called after a mutation of declared state with
	// the Reply to answer; the answer must come once a snapshot containing
	// the mutation is durable (or with the error that prevented it). Nil
	// answers at once (in-memory engine).
	// ch says what the mutation changed (created and removed workspaces,
	// workspaces whose own entry changed, saved pipelines), so that only
	// those entries are written.
	Commit func(ch *protocol.Change, reply Reply[struct{}])
}

// wsEntry is a workspace in the engine's registry. It is one allocation
// with the workspace's place in rt.Views and its spec as created, which
// its actor, its views and the persistence's entry share by pointer.
type wsEntry struct {
	viewSlot // its place in rt.Views: ID, label, published view
	pid      *actor.PID
	// removal is set once the user asked to remove the workspace: the
	// workspace is left out of snapshots, and it is stopped only once a
	// snapshot without it is durable.
	removal *pendingRemoval
	spec    messages.WorkspaceSpec // as created; never changed
	// changed is the spec in effect once it changed in place (limits):
	// a new value, never changed either; nil until then.
	changed *messages.WorkspaceSpec
}

// specNow is the workspace's spec in effect.
func (en *wsEntry) specNow() *messages.WorkspaceSpec {
	if en.changed != nil {
		return en.changed
	}
	return &en.spec
}

// pendingRemoval is a user's removal of a workspace waiting for its
// durable write (durable false) or under way (durable true).
type pendingRemoval struct {
	durable bool
	waiting []*RemoveWorkspace
	// txn is the transaction the removal is a step of (0: none); a create
	// of the same transaction may take the label.
	txn uint64
}

type engine struct {
	cfg      EngineConfig
	rt       *Runtime
	self     *actor.PID
	byID     map[string]*wsEntry
	byLabel  map[string]*wsEntry
	saved    map[string]messages.PipelineSpec
	savedVer map[string]uint64 // version of each name's current value
	verSeq   uint64
	stopped  bool
	// pending holds "id:<id>" and "label:<label>" of the workspaces whose
	// limits group is being made.
	pending map[string]struct{}
	// runs are the supervised pipeline starts forwarded to a workspace,
	// by the ID of the Reply the workspace answers.
	runs map[uint64]durableRun
	// commits are the continuations of the snapshot writes asked for,
	// by the ID of the Reply the persistence side answers.
	commits  map[uint64]func(error)
	replySeq uint64
	// spawner spawns the workspace actors from one Props.
	spawner *workspaceSpawner
	// txns are the open transactions (engine_txn.go); txnDone is the
	// highest one ended (transactions end in the order of their IDs).
	txns    map[uint64]*txn
	txnDone uint64
}

// NewEngineProps returns the props of the engine actor.
func NewEngineProps(cfg EngineConfig) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &engine{
			cfg:      cfg,
			rt:       cfg.Runtime,
			byID:     make(map[string]*wsEntry),
			byLabel:  make(map[string]*wsEntry),
			saved:    make(map[string]messages.PipelineSpec),
			savedVer: make(map[string]uint64),
			spawner:  newWorkspaceSpawner(cfg.Runtime),
		}
	}, cfg.Runtime.mailbox(KindEngine),
		// A workspace actor that panics is resumed: its processes and
		// state stay as they were; the request that panicked is answered
		// with an error.
		actor.WithSupervisor(ResumeOnPanic(cfg.Runtime.Log, "workspace")))
}

// commit asks for a durable write of the change ch, made to declared
// state just now, and runs then, inside the engine's Receive, with the
// outcome of its write.
//
// The outcome comes back as a message to the engine, so that undoing a
// mutation whose write failed happens in the engine's mailbox before the
// engine answers the next snapshot request: a refused mutation never rides
// on a later snapshot. The persistence actor reports failures newest
// first, so undo steps apply in reverse order.
func (e *engine) commit(ch *protocol.Change, then func(error)) {
	if e.cfg.Commit == nil {
		then(nil)
		return
	}
	// The answer is a *Result[struct{}] to the engine whose ID names then
	// in e.commits: then is the engine's own continuation, run in its own
	// Receive.
	e.replySeq++
	if e.commits == nil {
		e.commits = make(map[uint64]func(error))
	}
	e.commits[e.replySeq] = then
	e.cfg.Commit(ch, protocol.ReplyTo[struct{}](e.rt.System, e.self, e.replySeq))
}

func (e *engine) onCommitted(m *Result[struct{}]) {
	if then, ok := e.commits[m.ID]; ok {
		delete(e.commits, m.ID)
		then(m.Err)
	}
}

// notSaved wraps a write failure for the client: the mutation is not in
// effect.
func notSaved(what string, err error) error {
	return fmt.Errorf("%s: %w (nothing changed): %w", what, messages.ErrNotSaved, err)
}

func (e *engine) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); ok {
		e.self = ctx.Self()
		return
	}
	bindSender(ctx)
	testPanic(KindEngine, ctx.Message())
	switch m := ctx.Message().(type) {
	case *Result[struct{}]:
		e.onCommitted(m)
	case *CreateWorkspace:
		e.create(ctx, m)
	case *groupCreated:
		e.onGroupCreated(ctx, m)
	case *ListWorkspaces:
		refs := make([]WorkspaceRef, 0, len(e.byID))
		for _, en := range e.byID {
			refs = append(refs, WorkspaceRef{ID: en.id, Label: en.label})
		}
		sort.Slice(refs, func(i, j int) bool { return refs[i].ID < refs[j].ID })
		m.Reply.OK(refs)
	case *specChanged:
		if en, ok := e.byID[m.id]; ok && en.pid.Equal(m.pid) {
			en.changed = m.spec
		}
	case *workspaceGone:
		durable := false
		if en, ok := e.byID[m.id]; ok {
			if r := en.removal; r != nil {
				durable = r.durable
				// A removal still waiting for its write: the workspace
				// went anyway (TTL, reap); its callers get the outcome.
				for _, w := range r.waiting {
					m.replies = append(m.replies, w.Reply)
				}
				r.waiting = nil
			}
			e.forget(en)
		}
		info := m.info
		if durable || m.undo {
			// Already off the disk (a user's removal, committed before
			// anything was stopped, or a creation that was never saved).
			e.rt.dirty()
			for _, r := range m.replies {
				r.OK(info)
			}
			return
		}
		e.commit(&protocol.Change{Removed: []string{m.id}}, func(err error) {
			for _, r := range m.replies {
				if err != nil {
					r.Fail(fmt.Errorf("workspace removed but not saved: %w", err))
				} else {
					r.OK(info)
				}
			}
		})
	case *SavePipeline:
		e.savePipeline(m)
	case *GetSavedPipelines:
		out := make([]SavedPipeline, 0, len(e.saved))
		for name, spec := range e.saved {
			out = append(out, SavedPipeline{Name: name, Spec: spec})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		m.Reply.OK(out)
	case *DeleteSavedPipeline:
		if _, ok := e.saved[m.Name]; !ok {
			m.Reply.Fail(fmt.Errorf("saved pipeline %q: %w", m.Name, messages.ErrNotFound))
			return
		}
		undo := e.setSaved(m.Name, nil)
		e.rt.dirty()
		e.commitIn(m.Txn, &protocol.Change{Saved: []protocol.SavedChange{{Name: m.Name}}}, func(err error) {
			if err != nil {
				undo()
				m.Reply.Fail(notSaved(fmt.Sprintf("saved pipeline %q not deleted", m.Name), err))
				return
			}
			m.Reply.OK(struct{}{})
		})
		if m.Txn != 0 {
			m.Reply.OK(struct{}{}) // joined; a second answer is ignored
		}
	case *StartSavedPipeline:
		spec, ok := e.saved[m.Name]
		if !ok {
			m.Reply.Fail(fmt.Errorf("saved pipeline %q: %w", m.Name, messages.ErrNotFound))
			return
		}
		spec.Project = "" // a run belongs to its workspace
		e.route(ctx, &RunPipeline{Workspace: m.Workspace, Spec: spec, Tap: m.Tap, Reply: m.Reply})
	case *SnapshotEngine:
		e.snapshot(ctx, m)
	case *CommitTxn:
		e.commitTxn(m)
	case *commitFor:
		reply := m.reply
		e.commitIn(m.txn, e.changed(m.ws), func(err error) {
			if err != nil {
				reply.Fail(err)
				return
			}
			reply.OK(struct{}{})
		})
	case *Result[messages.PipelineInfo]:
		e.onRunStarted(m)
	case *BeginShutdown:
		e.stopped = true
		if e.rt.Sampler != nil {
			// No more kernel passes over every workspace while they stop.
			ctx.Send(e.rt.Sampler, &samplerHalt{})
		}
		for _, en := range e.byID {
			e.rt.Directory.remove(en.id, en.label, en.pid)
		}
		m.Reply.OK(e.refs())
	case routed:
		e.route(ctx, m)
	case *actor.Terminated:
		// A workspace actor stopped without saying goodbye (it was stopped
		// by the engine's own stop): forget it.
		// A durable removal is left to the workspaceGone that follows
		// (Terminated, a system message, may overtake it): it answers
		// the callers without another write.
		// The workspace is found by the name its actor was spawned with
		// ("…/ws-<id>"), not by a walk of the registry: at shutdown every
		// workspace stops, and a walk per stop would cost O(n²).
		if en := e.byID[workspaceOfPID(m.Who)]; en != nil && en.pid.Equal(m.Who) && (en.removal == nil || !en.removal.durable) {
			e.forget(en)
		}
	}
}

// workspaceOfPID returns the workspace ID in the name of a workspace
// actor's PID ("<engine>/ws-<id>"), or "" for another actor.
func workspaceOfPID(pid *actor.PID) string {
	if pid == nil {
		return ""
	}
	i := strings.LastIndex(pid.Id, "/ws-")
	if i < 0 || strings.Contains(pid.Id[i+len("/ws-"):], "/") {
		return ""
	}
	return pid.Id[i+len("/ws-"):]
}

// forget drops a workspace from the registry.
func (e *engine) forget(en *wsEntry) {
	if e.byID[en.id] != en {
		return
	}
	delete(e.byID, en.id)
	if e.byLabel[en.label] == en {
		delete(e.byLabel, en.label)
	}
	e.rt.Directory.remove(en.id, en.label, en.pid)
	e.rt.Views.remove(&en.viewSlot)
	if r := en.removal; r != nil && !r.durable {
		for _, w := range r.waiting {
			w.Reply.Fail(fmt.Errorf("workspace %s: %w", en.label, messages.ErrNotFound))
		}
		r.waiting = nil
	}
}

// setSaved sets (spec != nil) or deletes a saved pipeline and returns the
// step that undoes it while no later mutation of the same name replaced it.
// Undo steps of failed writes run newest first, so each restores the
// value and version its mutation found.
func (e *engine) setSaved(name string, spec *messages.PipelineSpec) (undo func()) {
	prevSpec, had := e.saved[name]
	prevVer := e.savedVer[name]
	e.verSeq++
	ver := e.verSeq
	if spec != nil {
		e.saved[name] = *spec
	} else {
		delete(e.saved, name)
	}
	e.savedVer[name] = ver
	return func() {
		if e.savedVer[name] != ver {
			return // a later mutation replaced it
		}
		if had {
			e.saved[name] = prevSpec
		} else {
			delete(e.saved, name)
		}
		e.savedVer[name] = prevVer
	}
}

// removeDurably handles a user's removal: the workspace leaves the next
// snapshot, and only once that snapshot is durable is it stopped. When the
// write fails, the workspace stays as it was and the caller is told why.
func (e *engine) removeDurably(ctx actor.Context, en *wsEntry, m *RemoveWorkspace) {
	if r := en.removal; r != nil {
		if r.durable {
			e.rt.sendRequest(ctx, en.pid, m) // the workspace adds the caller to its removal
		} else {
			r.waiting = append(r.waiting, m)
		}
		m.Prepared.OK(struct{}{})
		return
	}
	r := &pendingRemoval{waiting: []*RemoveWorkspace{m}, txn: m.Txn}
	en.removal = r
	e.rt.dirty()
	e.commitIn(m.Txn, &protocol.Change{Removed: []string{en.id}}, func(err error) {
		if e.byID[en.id] != en || en.removal != r {
			return // gone meanwhile; forget answered the callers
		}
		waiting := r.waiting
		r.waiting = nil
		if err != nil {
			en.removal = nil
			if e.byLabel[en.label] == nil {
				// A create of the same transaction took the label and was
				// undone first: the label is this workspace's again.
				e.byLabel[en.label] = en
				e.rt.Directory.add(en.id, en.label, en.pid)
			}
			for _, w := range waiting {
				w.Reply.Fail(notSaved(fmt.Sprintf("workspace %s not removed", en.label), err))
			}
			return
		}
		r.durable = true
		for _, w := range waiting {
			e.rt.send(en.pid, w)
		}
	})
	m.Prepared.OK(struct{}{})
}

// changed is the change of the entries of the workspaces ids (those
// still registered).
func (e *engine) changed(ids []string) *protocol.Change {
	ch := &protocol.Change{}
	for _, id := range ids {
		if en, ok := e.byID[id]; ok && en.removal == nil {
			ch.Changed = append(ch.Changed, WorkspacePID{ID: en.id, PID: en.pid, Spec: en.specNow()})
		}
	}
	return ch
}

func sortWorkspacePIDs(ws []WorkspacePID) {
	sort.Slice(ws, func(i, j int) bool { return ws[i].ID < ws[j].ID })
}

func sortSaved(s []SavedPipeline) {
	sort.Slice(s, func(i, j int) bool { return s[i].Name < s[j].Name })
}

func (e *engine) refs() []*actor.PID {
	out := make([]*actor.PID, 0, len(e.byID))
	for _, en := range e.byID {
		out = append(out, en.pid)
	}
	return out
}

func (e *engine) lookup(ref string) (*wsEntry, error) {
	if en, ok := e.byLabel[ref]; ok {
		return en, nil
	}
	if en, ok := e.byID[ref]; ok {
		return en, nil
	}
	if en, ok := e.byID[strings.ToUpper(ref)]; ok {
		return en, nil
	}
	return nil, fmt.Errorf("workspace %q: %w", ref, messages.ErrNotFound)
}

func (e *engine) route(ctx actor.Context, m routed) {
	if e.stopped {
		m.Fail(messages.ErrStopped)
		return
	}
	en, err := e.lookup(m.Target())
	if err != nil {
		m.Fail(err)
		return
	}
	switch rm := m.(type) {
	case *RemoveWorkspace:
		if rm.Reason == "" && (e.cfg.Commit != nil || rm.Txn != 0) {
			e.removeDurably(ctx, en, rm)
			return
		}
	case *RunPipeline:
		if rm.Spec.RestartOnFailure && rm.ID == "" && e.cfg.Commit != nil {
			// A supervised pipeline is declared state: answer once durable.
			e.replySeq++
			fwd := *rm
			fwd.Reply = protocol.ReplyTo[messages.PipelineInfo](ctx.ActorSystem(), ctx.Self(), e.replySeq)
			if e.runs == nil {
				e.runs = make(map[uint64]durableRun)
			}
			e.runs[e.replySeq] = durableRun{en: en, reply: rm.Reply}
			e.rt.sendRequest(ctx, en.pid, &fwd)
			return
		}
	}
	e.rt.sendRequest(ctx, en.pid, m)
}

// durableRun is a supervised pipeline's start the engine forwarded to a
// workspace: once the workspace answers (a *Result[PipelineInfo] whose ID
// names it), the engine commits a snapshot, and only then answers the
// caller. When the write fails, the run is stopped (and left out of
// snapshots at once) and the caller gets the cause.
type durableRun struct {
	en    *wsEntry
	reply Reply[messages.PipelineInfo]
}

func (e *engine) onRunStarted(m *Result[messages.PipelineInfo]) {
	d, ok := e.runs[m.ID]
	if !ok {
		return
	}
	delete(e.runs, m.ID)
	if m.Err != nil {
		d.reply.Fail(m.Err)
		return
	}
	info := m.Val
	e.commit(&protocol.Change{Changed: []WorkspacePID{{ID: d.en.id, PID: d.en.pid, Spec: d.en.specNow()}}}, func(err error) {
		if err != nil {
			e.rt.send(d.en.pid, &PipelineRequest{Workspace: d.en.id, Run: info.ID, Op: OpStop, Undo: true})
			d.reply.Fail(notSaved(fmt.Sprintf("pipeline %s not started", info.Label), err))
			return
		}
		d.reply.OK(info)
	})
}

// commitFor asks the engine for a durable snapshot holding the current
// entries of ws; the engine answers reply (nil error once durable). A
// workspace sends it and takes the answer as a message.
type commitFor struct {
	ws    []string
	reply Reply[struct{}]
	txn   uint64 // the transaction to join (0: none)
}

func (m *commitFor) fail(err error) { m.reply.Fail(err) }

func (e *engine) create(ctx actor.Context, m *CreateWorkspace) {
	if e.stopped {
		m.Reply.Fail(messages.ErrStopped)
		return
	}
	spec := m.Spec
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		m.Reply.Fail(err)
		return
	}
	if old, taken := e.byLabel[spec.Label]; (taken && !handsOver(old, m.Txn)) || e.reserved("", spec.Label) {
		m.Reply.Fail(fmt.Errorf("workspace label %q is taken: %w", spec.Label, messages.ErrConflict))
		return
	}
	id := m.ID
	restoring := id != ""
	if restoring {
		canon, err := messages.ParseID(id)
		if err != nil {
			m.Reply.Fail(&messages.FieldError{Field: "id", Message: err.Error()})
			return
		}
		id = canon
		if _, taken := e.byID[id]; taken || e.reserved(id, "") {
			m.Reply.Fail(fmt.Errorf("workspace ID %s is taken: %w", id, messages.ErrConflict))
			return
		}
		if spec.TTLMs > 0 {
			created, _ := messages.IDTime(id)
			if deadline := created.Add(time.Duration(spec.TTLMs) * time.Millisecond); !deadline.After(e.rt.now()) {
				m.Reply.Fail(fmt.Errorf("workspace %s (%s) expired at %s: %w", spec.Label, id, deadline.Format(time.RFC3339), messages.ErrExpired))
				return
			}
		}
	} else {
		id = messages.NewID()
	}
	if e.rt.Limits == nil {
		e.register(ctx, m, id, spec, restoring, nil)
		return
	}
	// The group is made (mkdir, file writes) in a goroutine; the label and
	// ID stay reserved until it reports back, so a second create of the
	// same label is refused meanwhile.
	e.reserve(id, spec.Label)
	rt, self := e.rt, e.self
	l := limits.Limits{
		MemoryMaxBytes: spec.Soma.MemoryMaxBytes,
		CPUMax:         spec.Soma.CPUMax,
		PidsMax:        spec.Soma.PidsMax,
		NofileMax:      spec.Soma.NofileMax,
	}
	rt.Go(func() {
		g, err := rt.Limits.Create(id, l)
		rt.send(self, &groupCreated{rt: rt, req: m, id: id, spec: spec, restoring: restoring, group: g, err: err})
	})
}

// groupCreated carries a workspace's new limits group (or the error that
// prevented it) back to the engine.
type groupCreated struct {
	rt        *Runtime
	req       *CreateWorkspace
	id        string
	spec      messages.WorkspaceSpec
	restoring bool
	group     limits.Group
	err       error
}

// fail handles a group that reaches an engine already gone: the creator
// is told, and the group nothing will use is removed.
func (m *groupCreated) fail(err error) {
	m.req.Reply.Fail(err)
	if m.group != nil {
		removeGroup(m.rt, m.group)
	}
}

// reserve holds a label and an ID for a workspace whose group is being
// made.
func (e *engine) reserve(id, label string) {
	if e.pending == nil {
		e.pending = make(map[string]struct{})
	}
	e.pending["id:"+id] = struct{}{}
	e.pending["label:"+label] = struct{}{}
}

func (e *engine) reserved(id, label string) bool {
	_, idTaken := e.pending["id:"+id]
	_, labelTaken := e.pending["label:"+label]
	return (id != "" && idTaken) || labelTaken
}

func (e *engine) onGroupCreated(ctx actor.Context, m *groupCreated) {
	delete(e.pending, "id:"+m.id)
	delete(e.pending, "label:"+m.spec.Label)
	if m.err != nil {
		m.req.Reply.Fail(fmt.Errorf("create limits for workspace %s: %w", m.spec.Label, m.err))
		return
	}
	if e.stopped {
		removeGroup(e.rt, m.group)
		m.req.Reply.Fail(messages.ErrStopped)
		return
	}
	e.register(ctx, m.req, m.id, m.spec, m.restoring, m.group)
}

// removeGroup removes a group nothing runs in, in a goroutine.
func removeGroup(rt *Runtime, group limits.Group) {
	rt.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := group.Remove(ctx); err != nil {
			rt.Log.Warn("removing the limits group of a workspace that did not start", zap.Error(err))
		}
	})
}

// register starts the actor of a workspace whose group exists and answers
// the creator (once durable, for a new workspace).
func (e *engine) register(ctx actor.Context, m *CreateWorkspace, id string, spec messages.WorkspaceSpec, restoring bool, group limits.Group) {
	created, _ := messages.IDTime(id)
	info := messages.WorkspaceInfo{ID: id, Spec: spec, CreatedAt: created}
	if spec.TTLMs > 0 {
		info.Deadline = created.Add(time.Duration(spec.TTLMs) * time.Millisecond)
	}
	if group != nil {
		info.LimitsBackend = group.Source()
	}
	// The first view is published before the workspace is listed; the
	// actor replaces it as its figures change.
	en := &wsEntry{viewSlot: viewSlot{id: id, label: spec.Label}, spec: spec}
	view := &en.viewSlot
	view.publishShared(e.rt, info, &en.spec)
	pid, err := e.spawner.spawn(ctx, newWorkspace(e.rt, id, &en.spec, group, view), "ws-"+id)
	if err != nil {
		if group != nil {
			removeGroup(e.rt, group)
		}
		m.Reply.Fail(fmt.Errorf("spawn workspace actor: %w", err))
		return
	}
	en.pid = pid
	e.byID[id] = en
	e.byLabel[spec.Label] = en
	e.rt.Directory.add(id, spec.Label, pid)
	e.rt.Views.add(view)
	if restoring {
		e.rt.publish(messages.Event{Kind: messages.EventRestored, Workspace: id, Label: spec.Label})
		m.Reply.OK(info)
		return
	}
	e.rt.dirty()
	e.commitIn(m.Txn, &protocol.Change{Created: []WorkspacePID{{ID: id, PID: pid, Spec: &en.spec}}}, func(err error) {
		if err != nil {
			// Not durable, so not in effect: the workspace goes away
			// before the engine answers another snapshot request.
			if e.byID[id] == en {
				e.forget(en)
				e.rt.send(pid, &RemoveWorkspace{Workspace: id, Reason: reasonUndo})
			}
			m.Reply.Fail(notSaved(fmt.Sprintf("workspace %s not created", spec.Label), err))
			return
		}
		e.rt.publish(messages.Event{Kind: messages.EventCreated, Workspace: id, Label: spec.Label})
		m.Reply.OK(info)
	})
	if m.Txn != 0 {
		m.Reply.OK(info) // joined; a second answer is ignored
	}
}

// handsOver reports whether a create of transaction txn may take the label
// of workspace en: the same transaction removes en.
func handsOver(en *wsEntry, txn uint64) bool {
	return txn != 0 && en.removal != nil && en.removal.txn == txn
}

func (e *engine) savePipeline(m *SavePipeline) {
	if err := messages.ValidateLabel(m.Name); err != nil {
		m.Reply.Fail(&messages.FieldError{Field: "name", Message: err.Error()})
		return
	}
	if err := m.Spec.Validate(); err != nil {
		m.Reply.Fail(err)
		return
	}
	spec := m.Spec
	undo := e.setSaved(m.Name, &spec)
	sp := SavedPipeline{Name: m.Name, Spec: m.Spec}
	if m.Restore {
		m.Reply.OK(sp)
		return
	}
	e.rt.dirty()
	e.commitIn(m.Txn, &protocol.Change{Saved: []protocol.SavedChange{{Name: m.Name, Spec: &spec}}}, func(err error) {
		if err != nil {
			undo()
			m.Reply.Fail(notSaved(fmt.Sprintf("pipeline %q not saved", m.Name), err))
			return
		}
		m.Reply.OK(sp)
	})
	if m.Txn != 0 {
		m.Reply.OK(sp) // joined; a second answer is ignored
	}
}
