// This file is the Engine API for pipelines (running, supervised, saved),
// stats and events.

package shipote

import (
	"context"
	"errors"
	"fmt"

	"github.com/shipote/shipote/actors"
	"github.com/shipote/shipote/internal/eventhub"
	"github.com/shipote/shipote/internal/flow"
	"github.com/shipote/shipote/messages"
)

// RunPipeline starts a pipeline in a workspace. With tap, each producer's
// output is also served on a Unix socket in the workspace's first flow dir.
// A supervised pipeline (restart_on_failure) is answered once durable.
func (e *Engine) RunPipeline(ctx context.Context, ws string, spec messages.PipelineSpec, tap bool) (messages.PipelineInfo, error) {
	r := newCall[messages.PipelineInfo](e)
	return ask(ctx, e, &actors.RunPipeline{Workspace: ws, Spec: spec, Tap: tap, Reply: r.Reply}, r)
}

// RestorePipeline starts a supervised pipeline with a known run ID.
func (e *Engine) RestorePipeline(ctx context.Context, ws, id string, spec messages.PipelineSpec, tap bool) (messages.PipelineInfo, error) {
	r := newCall[messages.PipelineInfo](e)
	return ask(ctx, e, &actors.RunPipeline{Workspace: ws, Spec: spec, Tap: tap, ID: id, Reply: r.Reply}, r)
}

// Pipelines lists the pipelines of one workspace, or of all when ws is "".
func (e *Engine) Pipelines(ctx context.Context, ws string) ([]messages.PipelineInfo, error) {
	var refs []string
	if ws != "" {
		refs = []string{ws}
	} else {
		r := newCall[[]actors.WorkspaceRef](e)
		all, err := ask(ctx, e, &actors.ListWorkspaces{Reply: r.Reply}, r)
		if err != nil {
			return nil, err
		}
		for _, a := range all {
			refs = append(refs, a.ID)
		}
	}
	var out []messages.PipelineInfo
	for _, ref := range refs {
		r := newCall[[]messages.PipelineInfo](e)
		ps, err := ask(ctx, e, &actors.ListPipelines{Workspace: ref, Reply: r.Reply}, r)
		if err != nil {
			if ws == "" && errors.Is(err, messages.ErrNotFound) {
				continue
			}
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// findRun finds the workspace that runs pipeline run (ID or label).
func (e *Engine) findRun(ctx context.Context, run string) (string, error) {
	ps, err := e.Pipelines(ctx, "")
	if err != nil {
		return "", err
	}
	var found string
	for _, p := range ps {
		if p.ID == run {
			return p.Workspace, nil
		}
		if p.Label == run {
			found = p.Workspace
		}
	}
	if found == "" {
		return "", fmt.Errorf("pipeline %q: %w", run, messages.ErrNotFound)
	}
	return found, nil
}

func (e *Engine) pipelineOp(ctx context.Context, run string, op actors.PipelineOp, node string) (actors.PipelineAnswer, error) {
	ws, err := e.findRun(ctx, run)
	if err != nil {
		return actors.PipelineAnswer{}, err
	}
	r := newCall[actors.PipelineAnswer](e)
	return ask(ctx, e, &actors.PipelineRequest{Workspace: ws, Run: run, Op: op, Node: node, Reply: r.Reply}, r)
}

// Pipeline returns a pipeline run with its nodes and live flow counters.
func (e *Engine) Pipeline(ctx context.Context, run string) (messages.PipelineInfo, error) {
	a, err := e.pipelineOp(ctx, run, actors.OpShow, "")
	return a.Info, err
}

// StopPipeline stops a pipeline for good and returns its final view.
func (e *Engine) StopPipeline(ctx context.Context, run string) (messages.PipelineInfo, error) {
	a, err := e.pipelineOp(ctx, run, actors.OpStop, "")
	return a.Info, err
}

// Tap returns a live copy of a node's output from now on ("" = the first
// producer). A slow reader loses bytes (counted); it never slows the
// pipeline. Close the tap when done.
func (e *Engine) Tap(ctx context.Context, run, node string) (*flow.Tap, error) {
	a, err := e.pipelineOp(ctx, run, actors.OpTap, node)
	return a.Tap, err
}

// SavePipeline saves (or replaces) a named pipeline spec.
func (e *Engine) SavePipeline(ctx context.Context, name string, spec messages.PipelineSpec) error {
	r := newCall[actors.SavedPipeline](e)
	_, err := ask(ctx, e, &actors.SavePipeline{Name: name, Spec: spec, Reply: r.Reply}, r)
	return err
}

// SavedPipelines lists the saved pipelines.
func (e *Engine) SavedPipelines(ctx context.Context) ([]actors.SavedPipeline, error) {
	r := newCall[[]actors.SavedPipeline](e)
	return ask(ctx, e, &actors.GetSavedPipelines{Reply: r.Reply}, r)
}

// DeleteSavedPipeline deletes a saved pipeline.
func (e *Engine) DeleteSavedPipeline(ctx context.Context, name string) error {
	r := newCall[struct{}](e)
	_, err := ask(ctx, e, &actors.DeleteSavedPipeline{Name: name, Reply: r.Reply}, r)
	return err
}

// StartSavedPipeline starts a saved pipeline into a workspace.
func (e *Engine) StartSavedPipeline(ctx context.Context, name, ws string, tap bool) (messages.PipelineInfo, error) {
	r := newCall[messages.PipelineInfo](e)
	return ask(ctx, e, &actors.StartSavedPipeline{Name: name, Workspace: ws, Tap: tap, Reply: r.Reply}, r)
}

// Stats returns a workspace's stats history, newest last.
func (e *Engine) Stats(ctx context.Context, ws string) ([]messages.Sample, error) {
	r := newCall[[]messages.Sample](e)
	return ask(ctx, e, &actors.GetStats{Workspace: ws, Reply: r.Reply}, r)
}

// Events subscribes to lifecycle events; buf events are buffered and a
// subscriber that falls behind loses events. Cancel the subscription when
// done.
func (e *Engine) Events(buf int) *eventhub.Subscription { return e.rt.Events.Subscribe(buf) }

// RecentEvents returns the last events (up to 1000), oldest first.
func (e *Engine) RecentEvents() []messages.Event { return e.rt.Events.Recent() }

// NodeLogs returns the output of a pipeline node (its stderr, and its
// stdout when it feeds no other node); run is the run ID or label.
func (e *Engine) NodeLogs(ctx context.Context, run, node string, q LogQuery) ([]messages.LogLine, error) {
	ws, err := e.findRun(ctx, run)
	if err != nil {
		return nil, err
	}
	return e.Logs(ctx, ws, run+"/"+node, q)
}
