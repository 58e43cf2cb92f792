// This file is the embedding API for controlling a pipeline run beyond
// stopping it: restart it, or signal its nodes.

package shipote

import (
	"context"
	"syscall"

	"github.com/shipote/shipote/actors"
	"github.com/shipote/shipote/messages"
)

// RestartPipeline stops the current run's nodes (SIGTERM to each node's
// process group, the grace period, SIGKILL) and launches the run again at
// once with the same run ID; a run waiting to restart launches at once. It
// answers once the new run's processes run. A run that has ended wraps
// messages.ErrConflict.
func (e *Engine) RestartPipeline(ctx context.Context, run string) (messages.PipelineInfo, error) {
	ws, err := e.findRun(ctx, run)
	if err != nil {
		return messages.PipelineInfo{}, err
	}
	r := newCall[actors.PipelineAnswer](e)
	a, err := ask(ctx, e, &actors.PipelineRequest{Workspace: ws, Run: run, Op: actors.OpRestart, Reply: r.Reply}, r)
	return a.Info, err
}

// SignalPipeline sends sig to the process group of node ("" = every
// running node) of a run. A node that is not running, or a run with no
// running node, wraps messages.ErrConflict; an unknown node
// messages.ErrNotFound.
func (e *Engine) SignalPipeline(ctx context.Context, run, node string, sig syscall.Signal) (messages.PipelineInfo, error) {
	ws, err := e.findRun(ctx, run)
	if err != nil {
		return messages.PipelineInfo{}, err
	}
	r := newCall[actors.PipelineAnswer](e)
	a, err := ask(ctx, e, &actors.PipelineRequest{Workspace: ws, Run: run, Op: actors.OpSignal, Node: node, Signal: sig, Reply: r.Reply}, r)
	return a.Info, err
}
