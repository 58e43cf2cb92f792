// This file is the Engine API of declarative operation: Apply (apply, diff,
// down) and Scale. It reads the declared state, has internal/plan compute
// the plan, and carries it out through the engine's own operations.

package shipote

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/shipote/shipote/actors"
	"github.com/shipote/shipote/internal/plan"
	"github.com/shipote/shipote/messages"
)

// Apply makes the declared state of a project what req.File declares, and
// answers with the plan it carried out: workspaces of the project the file
// no longer declares are removed, commands and pipelines created, changed
// (only that command or pipeline is restarted) or removed. A workspace
// whose memory, CPU or pids limits changed is changed in place; one whose
// spec changed otherwise is replaced (removed and created again with its
// contents) only with req.Force; without it Apply changes nothing and
// wraps messages.ErrConflict. A label held by another project, or by a
// workspace created by hand, wraps messages.ErrConflict too. With
// req.DryRun it only computes the plan; with req.Down the plan removes
// every workspace of the project.
//
// The file's saved pipelines are saved (owned by the project), changed or
// removed the same way; a name saved by hand or by another project wraps
// messages.ErrConflict.
//
// The plan is one transaction: every change of declared state it makes is
// durable in one write before any process is stopped or started. If a
// step is refused, or the write fails (the error wraps
// messages.ErrNotSaved), nothing of the plan is in effect. Once durable,
// the stops and removals are carried out, then the starts; a start that
// fails then (its executable vanished) is reported, the rest stays, and
// applying the file again finishes the job. Once carried out, a plan is
// not cut short by the caller going away.
func (e *Engine) Apply(ctx context.Context, req messages.ApplyRequest) (messages.ApplyResult, error) {
	if err := e.live(); err != nil {
		return messages.ApplyResult{}, err
	}
	project := req.Project
	if project == "" {
		project = req.File.Name
	}
	if project == "" {
		return messages.ApplyResult{}, &messages.FieldError{Field: "project", Message: "is required (the file's name:, or its base name)"}
	}
	if err := messages.ValidateLabel(project); err != nil {
		return messages.ApplyResult{}, &messages.FieldError{Field: "project", Message: err.Error()}
	}
	if !req.Down {
		if err := req.File.Validate(); err != nil {
			return messages.ApplyResult{}, messages.WithPrefix("file", err)
		}
		for i, w := range req.File.Workspaces {
			if len(w.DependsOn) > 0 {
				return messages.ApplyResult{}, &messages.FieldError{Field: fmt.Sprintf("file.workspaces[%d].depends_on", i),
					Message: "orders the workspaces of `shipote up` only; apply creates a file's workspaces together: use depends_on between the commands of a workspace"}
			}
			for j, c := range w.Commands {
				if len(c.EnvFile) > 0 {
					return messages.ApplyResult{}, &messages.FieldError{Field: fmt.Sprintf("file.workspaces[%d].commands[%d].env_file", i, j),
						Message: "is read by the client that loads the file; send its variables in envp"}
				}
			}
		}
	}
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	cur, err := e.current(ctx, project, &req.File, !req.Down)
	if err != nil {
		return messages.ApplyResult{}, err
	}
	var p messages.Plan
	if req.Down {
		p, err = plan.Down(project, cur)
	} else {
		p, err = plan.Compute(project, &req.File, cur)
	}
	if err != nil {
		if errors.Is(err, plan.ErrForeign) {
			err = fmt.Errorf("%w: %w", messages.ErrConflict, err)
		}
		return messages.ApplyResult{}, err
	}
	res := messages.ApplyResult{Plan: p}
	if req.DryRun || p.Empty() {
		res.Applied = !req.DryRun
		return res, nil
	}
	if p.Replaces() && !req.Force {
		var what []string
		for _, en := range p.Entries {
			if en.Action == messages.PlanReplace {
				what = append(what, fmt.Sprintf("%s (%s)", en.Workspace, strings.Join(en.Fields, ", ")))
			}
		}
		return res, fmt.Errorf("%w: %w: the plan replaces workspace %s, stopping everything in it; apply with force to do so",
			messages.ErrConflict, plan.ErrNeedsForce, strings.Join(what, ", "))
	}
	// A client that disconnects must not leave half a plan behind (a
	// transaction never ended, or declarations never started).
	if err := e.carryOut(context.WithoutCancel(ctx), p.Entries); err != nil {
		return res, err
	}
	res.Applied = true
	return res, nil
}

// current reads the declared state a plan starts from: every workspace,
// and the commands and pipelines of those of the project or named in f
// (deep).
func (e *Engine) current(ctx context.Context, project string, f *messages.UpFile, deep bool) (plan.Current, error) {
	infos, err := e.Workspaces(ctx)
	if err != nil {
		return plan.Current{}, err
	}
	named := make(map[string]bool, len(f.Workspaces))
	for _, w := range f.Workspaces {
		named[w.Label] = true
	}
	cur := plan.Current{Workspaces: make([]plan.Workspace, len(infos))}
	errs := make([]error, len(infos))
	var wg sync.WaitGroup
	for i, info := range infos {
		cur.Workspaces[i] = plan.Workspace{ID: info.ID, Spec: info.Spec}
		if !deep || info.Spec.Project != project || !named[info.Spec.Label] {
			continue // only a workspace that stays is looked into
		}
		wg.Go(func() {
			w := &cur.Workspaces[i]
			cmds, err := e.Commands(ctx, info.ID)
			if err != nil {
				errs[i] = fmt.Errorf("workspace %s: %w", info.Spec.Label, err)
				return
			}
			for _, c := range cmds {
				w.Commands = append(w.Commands, plan.Command{ID: c.ID, Spec: c.Spec, Ended: c.State.Ended()})
			}
			runs, err := e.Pipelines(ctx, info.ID)
			if err != nil {
				errs[i] = fmt.Errorf("workspace %s: %w", info.Spec.Label, err)
				return
			}
			for _, r := range runs {
				w.Pipelines = append(w.Pipelines, plan.Pipeline{ID: r.ID, Spec: r.Spec, Ended: r.State.Ended()})
			}
		})
	}
	wg.Wait()
	saved, err := e.SavedPipelines(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, sp := range saved {
		cur.Saved = append(cur.Saved, plan.Saved{Name: sp.Name, Spec: sp.Spec})
	}
	return cur, errors.Join(errs...)
}

// carryOut carries out a plan's entries as one transaction (see
// docs/design.md, "One transaction, one write"): every change of declared
// state is prepared, then made durable in one write, and only then are
// processes stopped and started. If a step cannot be prepared, or the
// write fails, nothing of the plan is in effect.
func (e *Engine) carryOut(ctx context.Context, entries []messages.PlanEntry) error {
	e.txnSeq++
	t := &applyTxn{e: e, id: e.txnSeq, newWS: make(map[string]string)}
	var gone, made, runs []messages.PlanEntry
	for _, en := range entries {
		switch {
		case en.Kind == messages.PlanWorkspace && en.Action == messages.PlanRemove:
			gone = append(gone, en)
		case en.Kind == messages.PlanWorkspace:
			if en.Action == messages.PlanReplace {
				gone = append(gone, en)
			}
			made = append(made, en)
		case en.Kind == messages.PlanSaved:
			if en.Action == messages.PlanRemove {
				gone = append(gone, en)
			} else {
				made = append(made, en)
			}
		default:
			if en.Action != messages.PlanCreate {
				gone = append(gone, en)
			}
			if en.Action != messages.PlanRemove {
				runs = append(runs, en)
			}
		}
	}
	// Prepare: what goes away (freeing labels), then what is made, then
	// the declarations of what will run in it.
	err := wave(ctx, gone, t.prepareGone)
	if err == nil {
		err = wave(ctx, made, t.prepareMade)
	}
	if err == nil {
		err = t.prepareRuns(ctx, runs)
	}
	if err != nil {
		t.end(ctx, err)
		return err
	}
	if err := t.end(ctx, nil); err != nil {
		return err
	}
	// Act: the stops and removals go on; once they are over, the starts.
	if err := t.awaitStops(ctx); err != nil {
		return err
	}
	return t.start(ctx, runs)
}

// applyTxn is one apply's transaction as the Engine API drives it.
type applyTxn struct {
	e  *Engine
	id uint64

	mu sync.Mutex
	// newWS maps the label of each workspace created by the transaction
	// to its ID (a replaced workspace's label names the old one until the
	// new one is registered).
	newWS map[string]string
	// stops are the steps whose own answer comes after the commit: removed
	// workspaces, stopped commands (forgotten after the stop) and runs.
	stops []*stop
	// declared are the IDs given to declared commands and runs, by entry.
	declared map[*messages.PlanEntry]string
}

// stop is a step that stops something once the transaction is durable.
type stop struct {
	en    messages.PlanEntry
	ws    string // the workspace of a command, for its forget
	final func(context.Context) error
}

// end commits the transaction (abort == nil) or aborts it. The steps whose
// own answer was waiting for the commit are drained when it is not in
// effect.
func (t *applyTxn) end(ctx context.Context, abort error) error {
	r := newCall[struct{}](t.e)
	_, err := ask(ctx, t.e, &actors.CommitTxn{Txn: t.id, Abort: abort, Reply: r.Reply}, r)
	if abort != nil || err != nil {
		for _, s := range t.stops {
			_ = s.final(ctx) // the step's failure: the transaction is not in effect
		}
	}
	return err
}

// prepareGone makes a removal a step of the transaction: a workspace, a
// command or run (stopped after the commit), or a saved pipeline.
func (t *applyTxn) prepareGone(ctx context.Context, en messages.PlanEntry) error {
	e := t.e
	switch en.Kind {
	case messages.PlanWorkspace:
		s := newStaged[messages.WorkspaceInfo]()
		e.system.Root.Send(e.pid, &actors.RemoveWorkspace{Workspace: en.ID, Txn: t.id, Prepared: s.preparedReply(e), Reply: s.finalReply(e)})
		return t.joined(ctx, en, "", s, messages.ErrNotFound)
	case messages.PlanCommand:
		s := newStaged[messages.CommandInfo]()
		e.sendWorkspace(en.Workspace, &actors.ControlCommand{Workspace: en.Workspace, Command: en.ID, Op: actors.CmdStop,
			Txn: t.id, Prepared: s.preparedReply(e), Reply: s.finalReply(e)})
		// A command that has ended needs no stop; it is forgotten all the same.
		return t.joined(ctx, en, en.Workspace, s, messages.ErrConflict)
	case messages.PlanPipeline:
		s := newStaged[actors.PipelineAnswer]()
		e.system.Root.Send(e.pid, &actors.PipelineRequest{Workspace: en.Workspace, Run: en.ID, Op: actors.OpStop,
			Txn: t.id, Prepared: s.preparedReply(e), Reply: s.finalReply(e)})
		// A run that has ended, or is gone, needs no stop.
		return t.joined(ctx, en, "", s, messages.ErrConflict, messages.ErrNotFound)
	case messages.PlanSaved:
		r := newCall[struct{}](e)
		_, err := ask(ctx, e, &actors.DeleteSavedPipeline{Name: en.Name, Txn: t.id, Reply: r.Reply}, r)
		if errors.Is(err, messages.ErrNotFound) {
			return nil
		}
		return err
	}
	return fmt.Errorf("unknown kind %q", en.Kind)
}

// joined waits until the step s has joined the transaction, and records
// it for the act phase. A step refused with one of the errors done (it
// is gone, or ended, already) counts as done: nothing to stop, but a
// command is still forgotten.
func (t *applyTxn) joined(ctx context.Context, en messages.PlanEntry, ws string, s stagedStep, done ...error) error {
	err := s.waitPrepared(ctx, t.e)
	for _, d := range done {
		if errors.Is(err, d) {
			err = nil
			s = finished{}
		}
	}
	if err != nil {
		// The step failed before joining: nothing of it is in the
		// transaction.
		return err
	}
	t.mu.Lock()
	t.stops = append(t.stops, &stop{en: en, ws: ws, final: func(ctx context.Context) error { return s.waitFinal(ctx, t.e) }})
	t.mu.Unlock()
	return nil
}

// prepareMade makes a create or change a step of the transaction: a
// workspace created (or replaced), its limits changed in place, or a
// saved pipeline saved.
func (t *applyTxn) prepareMade(ctx context.Context, en messages.PlanEntry) error {
	e := t.e
	switch {
	case en.Kind == messages.PlanSaved:
		r := newCall[actors.SavedPipeline](e)
		_, err := ask(ctx, e, &actors.SavePipeline{Name: en.Name, Spec: *en.Pipeline, Txn: t.id, Reply: r.Reply}, r)
		return err
	case en.Action == messages.PlanChange:
		r := newCall[messages.WorkspaceInfo](e)
		_, err := askWorkspace(ctx, e, en.ID, &actors.UpdateSoma{Workspace: en.ID, Soma: en.WorkspaceSpec.Soma, Txn: t.id, Reply: r.Reply}, r)
		return err
	default:
		r := newCall[messages.WorkspaceInfo](e)
		info, err := ask(ctx, e, &actors.CreateWorkspace{Spec: *en.WorkspaceSpec, Txn: t.id, Reply: r.Reply}, r)
		if err != nil {
			return err
		}
		t.mu.Lock()
		t.newWS[en.Workspace] = info.ID
		t.mu.Unlock()
		return nil
	}
}

// workspace returns the reference of the workspace labelled label: the ID
// of the one the transaction created, else the label.
func (t *applyTxn) workspace(label string) string {
	if id, ok := t.newWS[label]; ok {
		return id
	}
	return label
}

// declaredState reports whether an entry's command or pipeline is
// declared state (it is persisted and relaunched at restore).
func declaredState(en *messages.PlanEntry) bool {
	if en.Command != nil {
		return en.Command.Supervision.Restart != nil || en.Command.Schedule != ""
	}
	return en.Pipeline != nil && en.Pipeline.RestartOnFailure
}

// prepareRuns declares, with new IDs, the supervised commands and
// pipelines the plan starts: one Declare per workspace.
func (t *applyTxn) prepareRuns(ctx context.Context, runs []messages.PlanEntry) error {
	type decl struct {
		cmds  []actors.LiveCommand
		pipes []actors.LivePipeline
	}
	by := make(map[string]*decl)
	var order []string
	t.declared = make(map[*messages.PlanEntry]string)
	for i := range runs {
		en := &runs[i]
		if en.Command != nil {
			if err := en.Command.CheckSingle(); err != nil {
				return fmt.Errorf("%s %s %s: %w", en.Action, en.Kind, entryName(*en), err)
			}
		}
		if !declaredState(en) {
			continue
		}
		ws := t.workspace(en.Workspace)
		d := by[ws]
		if d == nil {
			d = &decl{}
			by[ws] = d
			order = append(order, ws)
		}
		id := messages.NewID()
		t.declared[en] = id
		if en.Command != nil {
			d.cmds = append(d.cmds, actors.LiveCommand{ID: id, Spec: *en.Command})
		} else {
			d.pipes = append(d.pipes, actors.LivePipeline{ID: id, Spec: *en.Pipeline})
		}
	}
	errs := make([]error, len(order))
	var wg sync.WaitGroup
	for i, ws := range order {
		wg.Go(func() {
			d := by[ws]
			r := newCall[struct{}](t.e)
			if _, err := askWorkspace(ctx, t.e, ws, &actors.Declare{Workspace: ws, Txn: t.id, Commands: d.cmds, Pipelines: d.pipes, Reply: r.Reply}, r); err != nil {
				errs[i] = fmt.Errorf("declare the commands and pipelines of workspace %s: %w", ws, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// awaitStops waits for the stops and removals the commit let go on, then
// forgets the stopped commands.
func (t *applyTxn) awaitStops(ctx context.Context) error {
	errs := make([]error, len(t.stops))
	var wg sync.WaitGroup
	for i, s := range t.stops {
		wg.Go(func() {
			err := s.final(ctx)
			if errors.Is(err, messages.ErrNotFound) || (s.en.Kind != messages.PlanWorkspace && errors.Is(err, messages.ErrConflict)) {
				err = nil // gone or ended meanwhile
			}
			if err == nil && s.en.Kind == messages.PlanCommand {
				if _, err = t.e.RemoveCommand(ctx, s.ws, s.en.ID); errors.Is(err, messages.ErrNotFound) {
					err = nil
				}
			}
			if err != nil {
				errs[i] = fmt.Errorf("%s %s %s: %w", s.en.Action, s.en.Kind, entryName(s.en), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// start starts the commands and pipelines of the plan: the declared ones
// with the IDs they were declared with (no write of their own). The
// declaration of one that fails to start is dropped, durably.
func (t *applyTxn) start(ctx context.Context, runs []messages.PlanEntry) error {
	e := t.e
	errs := make([]error, len(runs))
	var mu sync.Mutex
	failed := make(map[string][]string) // declared IDs that did not start, by workspace
	var wg sync.WaitGroup
	for i := range runs {
		en := &runs[i]
		id, declared := t.declared[en]
		ws := t.workspace(en.Workspace)
		wg.Go(func() {
			var err error
			switch {
			case en.Command != nil && declared:
				r := newCall[messages.CommandInfo](e)
				_, err = askWorkspace(ctx, e, ws, &actors.ExecCommand{Workspace: ws, Command: *en.Command, ID: id, Reply: r.Reply}, r)
			case en.Command != nil:
				_, err = e.Exec(ctx, ws, *en.Command)
			case declared:
				_, err = e.RestorePipeline(ctx, ws, id, *en.Pipeline, false)
			default:
				_, err = e.RunPipeline(ctx, ws, *en.Pipeline, false)
			}
			if err != nil {
				errs[i] = fmt.Errorf("%s %s %s: %w", en.Action, en.Kind, entryName(*en), err)
				if declared {
					mu.Lock()
					failed[ws] = append(failed[ws], id)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for ws, ids := range failed {
		r := newCall[struct{}](e)
		if _, err := askWorkspace(ctx, e, ws, &actors.Declare{Workspace: ws, Drop: ids, Reply: r.Reply}, r); err != nil {
			errs = append(errs, fmt.Errorf("drop the declarations that did not start in workspace %s: %w", ws, err))
		}
	}
	return errors.Join(errs...)
}

// wave runs step on every entry at once and joins the errors, each
// naming its entry.
func wave(ctx context.Context, entries []messages.PlanEntry, step func(context.Context, messages.PlanEntry) error) error {
	errs := make([]error, len(entries))
	var wg sync.WaitGroup
	for i, en := range entries {
		wg.Go(func() {
			if err := step(ctx, en); err != nil {
				errs[i] = fmt.Errorf("%s %s %s: %w", en.Action, en.Kind, entryName(en), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func entryName(en messages.PlanEntry) string {
	switch {
	case en.Workspace == "":
		return en.Name
	case en.Name == "":
		return en.Workspace
	}
	return en.Workspace + "/" + en.Name
}

// UpdateWorkspaceSoma changes a live workspace's memory, CPU and pids
// limits in place: its processes keep running under the new limits. It
// answers once the change is durable. nofile_max cannot change (it is an
// rlimit fixed when each process starts), nor can a limit go below a
// running command's own.
func (e *Engine) UpdateWorkspaceSoma(ctx context.Context, ws string, soma messages.Soma) (messages.WorkspaceInfo, error) {
	r := newCall[messages.WorkspaceInfo](e)
	return askWorkspace(ctx, e, ws, &actors.UpdateSoma{Workspace: ws, Soma: soma, Reply: r.Reply}, r)
}

// Scale gives the command label of workspace ws exactly n instances,
// labelled label-0 … label-<n-1>, made from the spec of the newest
// command of that group; n = 0 removes them all. It answers with the plan
// it carried out.
func (e *Engine) Scale(ctx context.Context, ws, label string, n int) (messages.Plan, error) {
	if err := e.live(); err != nil {
		return messages.Plan{}, err
	}
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	info, err := e.Workspace(ctx, ws)
	if err != nil {
		return messages.Plan{}, err
	}
	cmds, err := e.Commands(ctx, info.ID)
	if err != nil {
		return messages.Plan{}, err
	}
	have := make([]plan.Command, len(cmds))
	for i, c := range cmds {
		have[i] = plan.Command{ID: c.ID, Spec: c.Spec, Ended: c.State.Ended()}
	}
	p, err := plan.Scale(info.Spec.Label, have, label, n)
	if err != nil {
		return messages.Plan{}, err
	}
	p.Project = info.Spec.Project
	if err := e.carryOut(ctx, p.Entries); err != nil {
		return p, err
	}
	return p, nil
}
