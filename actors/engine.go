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
)

// EngineConfig configures the engine actor.
type EngineConfig struct {
	Runtime *Runtime
	// Commit, when set, is called after a mutation of declared state with a
	// function that answers the caller; it must call done once a snapshot
	// containing the mutation is durable (or with the error that prevented
	// it). Nil answers at once (in-memory engine).
	// ws names the workspaces whose own entry the mutation changed (they
	// must be asked again); a new workspace is asked anyway.
	Commit func(ws []string, done func(error))
}

type wsEntry struct {
	id    string
	label string
	pid   *actor.PID
	spec  messages.WorkspaceSpec
}

type engine struct {
	cfg     EngineConfig
	rt      *Runtime
	byID    map[string]*wsEntry
	byLabel map[string]*wsEntry
	saved   map[string]messages.PipelineSpec
	stopped bool
}

// NewEngineProps returns the props of the engine actor.
func NewEngineProps(cfg EngineConfig) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &engine{
			cfg:     cfg,
			rt:      cfg.Runtime,
			byID:    make(map[string]*wsEntry),
			byLabel: make(map[string]*wsEntry),
			saved:   make(map[string]messages.PipelineSpec),
		}
	}, cfg.Runtime.mailbox(KindEngine), actor.WithSupervisor(actor.NewOneForOneStrategy(10, time.Minute, func(reason any) actor.Directive {
		// A workspace actor that panics is resumed: its processes and
		// state stay as they were; the message that panicked is lost.
		cfg.Runtime.Log.Error("workspace actor panicked; resuming", zap.Any("reason", reason))
		return actor.ResumeDirective
	})))
}

func (e *engine) commit(reply func(error)) {
	e.commitWorkspaces(nil, reply)
}

// commitWorkspaces is commit for a mutation of the entries of ws.
func (e *engine) commitWorkspaces(ws []string, reply func(error)) {
	if e.cfg.Commit == nil {
		reply(nil)
		return
	}
	e.cfg.Commit(ws, reply)
}

func (e *engine) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *CreateWorkspace:
		e.create(ctx, m)
	case *ListWorkspaces:
		refs := make([]WorkspaceRef, 0, len(e.byID))
		for _, en := range e.byID {
			refs = append(refs, WorkspaceRef{ID: en.id, Label: en.label})
		}
		sort.Slice(refs, func(i, j int) bool { return refs[i].ID < refs[j].ID })
		m.Reply.OK(refs)
	case *workspaceGone:
		if en, ok := e.byID[m.id]; ok {
			delete(e.byID, m.id)
			if e.byLabel[en.label] == en {
				delete(e.byLabel, en.label)
			}
			e.rt.Directory.remove(en.id, en.label, en.pid)
		}
		info := m.info
		e.commit(func(err error) {
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
		delete(e.saved, m.Name)
		e.rt.dirty()
		e.commit(func(err error) { m.Reply.send(Result[struct{}]{Err: err}) })
	case *StartSavedPipeline:
		spec, ok := e.saved[m.Name]
		if !ok {
			m.Reply.Fail(fmt.Errorf("saved pipeline %q: %w", m.Name, messages.ErrNotFound))
			return
		}
		e.route(ctx, &RunPipeline{Workspace: m.Workspace, Spec: spec, Tap: m.Tap, Reply: m.Reply})
	case *SnapshotEngine:
		e.snapshot(ctx, m)
	case *commitThen:
		e.commitWorkspaces(m.ws, m.f)
	case *engineShutdown:
		e.stopped = true
		for _, en := range e.byID {
			e.rt.Directory.remove(en.id, en.label, en.pid)
		}
		m.done <- e.refs()
	case routed:
		e.route(ctx, m)
	case *actor.Terminated:
		// A workspace actor stopped without saying goodbye (it was stopped
		// by the engine's own stop): forget it.
		for id, en := range e.byID {
			if en.pid.Equal(m.Who) {
				delete(e.byID, id)
				if e.byLabel[en.label] == en {
					delete(e.byLabel, en.label)
				}
				e.rt.Directory.remove(en.id, en.label, en.pid)
			}
		}
	}
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

// engineShutdown asks the engine to refuse new work and hand over the
// workspace PIDs.
type engineShutdown struct{ done chan []*actor.PID }

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
		m.fail(messages.ErrStopped)
		return
	}
	en, err := e.lookup(m.workspaceRef())
	if err != nil {
		m.fail(err)
		return
	}
	switch rm := m.(type) {
	case *RunPipeline:
		if rm.Spec.RestartOnFailure && rm.ID == "" {
			// A supervised pipeline is declared state: answer once durable.
			fwd := *rm
			fwd.Reply = NewReply[messages.PipelineInfo]()
			ctx.Send(en.pid, &fwd)
			durableReply(e.rt, ctx.Self(), en.id, fwd.Reply, rm.Reply)
			return
		}
	case *PipelineRequest:
		if rm.Op == OpStop {
			fwd := *rm
			fwd.Reply = NewReply[PipelineAnswer]()
			ctx.Send(en.pid, &fwd)
			durableReply(e.rt, ctx.Self(), en.id, fwd.Reply, rm.Reply)
			return
		}
	}
	ctx.Send(en.pid, m)
}

// durableReply waits (in a goroutine) for the answer on inner, then has the
// engine commit a snapshot, and only then answers outer.
func durableReply[T any](rt *Runtime, engine *actor.PID, ws string, inner, outer Reply[T]) {
	rt.Go(func() {
		res := <-inner
		if res.Err != nil {
			outer.Fail(res.Err)
			return
		}
		rt.send(engine, &commitThen{ws: []string{ws}, f: func(err error) {
			if err != nil {
				outer.Fail(fmt.Errorf("done but not saved: %w", err))
				return
			}
			outer.OK(res.Val)
		}})
	})
}

// commitThen runs f once a snapshot holding the current entries of ws is
// durable.
type commitThen struct {
	ws []string
	f  func(error)
}

func (m *commitThen) fail(err error) { m.f(err) }

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
	if _, taken := e.byLabel[spec.Label]; taken {
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
		if _, taken := e.byID[id]; taken {
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
	var group limits.Group
	if e.rt.Limits != nil {
		g, err := e.rt.Limits.Create(id, limits.Limits{
			MemoryMaxBytes: spec.Soma.MemoryMaxBytes,
			CPUMax:         spec.Soma.CPUMax,
			PidsMax:        spec.Soma.PidsMax,
			NofileMax:      spec.Soma.NofileMax,
		})
		if err != nil {
			m.Reply.Fail(fmt.Errorf("create limits for workspace %s: %w", spec.Label, err))
			return
		}
		group = g
	}
	pid, err := ctx.SpawnNamed(newWorkspaceProps(e.rt, id, spec, group), "ws-"+id)
	if err != nil {
		if group != nil {
			_ = group.Remove(context.Background())
		}
		m.Reply.Fail(fmt.Errorf("spawn workspace actor: %w", err))
		return
	}
	en := &wsEntry{id: id, label: spec.Label, pid: pid, spec: spec}
	e.byID[id] = en
	e.byLabel[spec.Label] = en
	e.rt.Directory.add(id, spec.Label, pid)
	created, _ := messages.IDTime(id)
	info := messages.WorkspaceInfo{ID: id, Spec: spec, CreatedAt: created}
	if spec.TTLMs > 0 {
		info.Deadline = created.Add(time.Duration(spec.TTLMs) * time.Millisecond)
	}
	if group != nil {
		info.LimitsBackend = group.Source()
	}
	kind := messages.EventCreated
	if restoring {
		kind = messages.EventRestored
	}
	e.rt.publish(messages.Event{Kind: kind, Workspace: id, Label: spec.Label})
	if restoring {
		m.Reply.OK(info)
		return
	}
	e.rt.dirty()
	e.commit(func(err error) {
		if err != nil {
			m.Reply.Fail(fmt.Errorf("workspace created but not saved: %w", err))
			return
		}
		m.Reply.OK(info)
	})
}

// SavedPipeline is a named pipeline spec.
type SavedPipeline struct {
	Name string                `json:"name"`
	Spec messages.PipelineSpec `json:"spec"`
}

// SavePipeline saves (or replaces) a named pipeline spec.
type SavePipeline struct {
	Name    string
	Spec    messages.PipelineSpec
	Restore bool // from the state file: no commit
	Reply   Reply[SavedPipeline]
}

func (m *SavePipeline) fail(err error) { m.Reply.Fail(err) }

// GetSavedPipelines lists the saved pipelines.
type GetSavedPipelines struct{ Reply Reply[[]SavedPipeline] }

func (m *GetSavedPipelines) fail(err error) { m.Reply.Fail(err) }

// DeleteSavedPipeline deletes a saved pipeline.
type DeleteSavedPipeline struct {
	Name  string
	Reply Reply[struct{}]
}

func (m *DeleteSavedPipeline) fail(err error) { m.Reply.Fail(err) }

// StartSavedPipeline starts a saved pipeline into a workspace.
type StartSavedPipeline struct {
	Name      string
	Workspace string
	Tap       bool
	Reply     Reply[messages.PipelineInfo]
}

func (m *StartSavedPipeline) fail(err error) { m.Reply.Fail(err) }

func (e *engine) savePipeline(m *SavePipeline) {
	if err := messages.ValidateLabel(m.Name); err != nil {
		m.Reply.Fail(&messages.FieldError{Field: "name", Message: err.Error()})
		return
	}
	if err := m.Spec.Validate(); err != nil {
		m.Reply.Fail(err)
		return
	}
	e.saved[m.Name] = m.Spec
	sp := SavedPipeline{Name: m.Name, Spec: m.Spec}
	if m.Restore {
		m.Reply.OK(sp)
		return
	}
	e.rt.dirty()
	e.commit(func(err error) {
		if err != nil {
			m.Reply.Fail(fmt.Errorf("pipeline saved in memory but not on disk: %w", err))
			return
		}
		m.Reply.OK(sp)
	})
}

// ShutdownWorkspace returns the message that stops a workspace's processes
// because the engine stops; the workspace stays declared.
func ShutdownWorkspace(grace time.Duration, reply Reply[messages.WorkspaceInfo]) any {
	return &RemoveWorkspace{Grace: grace, Reply: reply, reason: reasonShutdown}
}

// BeginShutdown returns a message that makes the engine refuse new work;
// the channel receives the PIDs of the live workspaces.
func BeginShutdown(done chan []*actor.PID) any { return &engineShutdown{done: done} }

// FailDeadLetter answers a request that reached a stopped actor with an
// error, so its caller does not wait. It reports whether msg was one.
func FailDeadLetter(msg any) bool {
	f, ok := msg.(failer)
	if ok {
		f.fail(fmt.Errorf("the actor that owned it is gone: %w", messages.ErrNotFound))
	}
	return ok
}
