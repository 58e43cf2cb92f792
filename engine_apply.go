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
// The plan's mutations are issued together, so that their durable writes
// share group commits, and the supervised commands it starts are made
// durable with one write per workspace; Apply answers once every mutation
// is durable.
// When a step fails, the other steps of its wave still run, but the later
// waves do not (they need the earlier ones: labels freed, workspaces
// made); the error names each step that failed, and applying the file
// again finishes the job. Once carried out, a plan is not cut short by
// the caller going away.
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
	// A client that disconnects must not leave half a plan behind (the
	// deferred starts made durable by no write).
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
	return cur, errors.Join(errs...)
}

// carryOut runs a plan's entries in three waves, each issued at once:
// what goes away (so that labels are free), then workspaces, then what
// runs in them. Supervised commands of the last wave start deferred, and
// each workspace then makes all of its starts durable in one write.
func (e *Engine) carryOut(ctx context.Context, entries []messages.PlanEntry) error {
	var gone, spaces, runs []messages.PlanEntry
	for _, en := range entries {
		switch {
		case en.Kind == messages.PlanWorkspace && en.Action == messages.PlanRemove:
			gone = append(gone, en)
		case en.Kind == messages.PlanWorkspace:
			if en.Action == messages.PlanReplace {
				gone = append(gone, en)
			}
			spaces = append(spaces, en)
		default:
			if en.Action != messages.PlanCreate {
				gone = append(gone, en)
			}
			if en.Action != messages.PlanRemove {
				runs = append(runs, en)
			}
		}
	}
	if err := e.wave(ctx, gone, e.takeAway); err != nil {
		return err
	}
	if err := e.wave(ctx, spaces, e.createWorkspace); err != nil {
		return err
	}
	b := &startBatch{byWS: make(map[string][]string)}
	err := e.wave(ctx, runs, func(ctx context.Context, en messages.PlanEntry) error { return e.start(ctx, en, b) })
	return errors.Join(err, e.commitStarts(ctx, b))
}

// startBatch gathers the deferred starts of a wave, by workspace ID.
type startBatch struct {
	mu   sync.Mutex
	byWS map[string][]string // guarded by mu
}

// commitStarts makes every deferred start of b durable: one write per
// workspace, all asked at once so that they share a group commit.
func (e *Engine) commitStarts(ctx context.Context, b *startBatch) error {
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for ws, ids := range b.byWS {
		wg.Go(func() {
			r := newCall[struct{}](e)
			if _, err := askWorkspace(ctx, e, ws, &actors.CommitStarts{Workspace: ws, IDs: ids, Reply: r.Reply}, r); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// wave runs step on every entry at once and joins the errors, each
// naming its entry.
func (e *Engine) wave(ctx context.Context, entries []messages.PlanEntry, step func(context.Context, messages.PlanEntry) error) error {
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
	if en.Name == "" {
		return en.Workspace
	}
	return en.Workspace + "/" + en.Name
}

// takeAway removes what an entry replaces, changes or removes: a
// workspace, a command (stopped, then forgotten) or a pipeline run
// (stopped). What is already gone counts as done.
func (e *Engine) takeAway(ctx context.Context, en messages.PlanEntry) error {
	switch en.Kind {
	case messages.PlanWorkspace:
		_, err := e.RemoveWorkspace(ctx, en.ID, 0)
		if errors.Is(err, messages.ErrNotFound) {
			return nil
		}
		return err
	case messages.PlanCommand:
		if _, err := e.StopCommand(ctx, en.Workspace, en.ID); err != nil &&
			!errors.Is(err, messages.ErrConflict) && !errors.Is(err, messages.ErrNotFound) {
			return err
		}
		if _, err := e.RemoveCommand(ctx, en.Workspace, en.ID); err != nil && !errors.Is(err, messages.ErrNotFound) {
			return err
		}
		return nil
	case messages.PlanPipeline:
		if _, err := e.StopPipeline(ctx, en.ID); err != nil &&
			!errors.Is(err, messages.ErrConflict) && !errors.Is(err, messages.ErrNotFound) {
			return err
		}
		return nil
	}
	return fmt.Errorf("unknown kind %q", en.Kind)
}

// createWorkspace creates an entry's workspace, or changes its limits in
// place.
func (e *Engine) createWorkspace(ctx context.Context, en messages.PlanEntry) error {
	if en.Action == messages.PlanChange {
		_, err := e.UpdateWorkspaceSoma(ctx, en.ID, en.WorkspaceSpec.Soma)
		return err
	}
	_, err := e.CreateWorkspace(ctx, *en.WorkspaceSpec)
	return err
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

// start starts an entry's command or pipeline. A supervised command of an
// engine with a state file starts deferred: b records it for
// commitStarts.
func (e *Engine) start(ctx context.Context, en messages.PlanEntry, b *startBatch) error {
	switch {
	case en.Command != nil && e.persist != nil && !en.Command.Supervision.OneShot():
		if err := en.Command.CheckSingle(); err != nil {
			return err
		}
		r := newCall[messages.CommandInfo](e)
		info, err := askWorkspace(ctx, e, en.Workspace, &actors.ExecCommand{Workspace: en.Workspace, Command: *en.Command, Deferred: true, Reply: r.Reply}, r)
		if err != nil {
			return err
		}
		b.mu.Lock()
		b.byWS[info.Workspace] = append(b.byWS[info.Workspace], info.ID)
		b.mu.Unlock()
		return nil
	case en.Command != nil:
		_, err := e.Exec(ctx, en.Workspace, *en.Command)
		return err
	case en.Pipeline != nil:
		_, err := e.RunPipeline(ctx, en.Workspace, *en.Pipeline, false)
		return err
	}
	return fmt.Errorf("entry without a command or pipeline")
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
