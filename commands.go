// This file is the embedding API for controlling one command: stop, start,
// restart, signal, forget, and stop every command of a workspace.

package shipote

import (
	"context"
	"syscall"

	"github.com/shipote/shipote/actors"
	"github.com/shipote/shipote/messages"
)

func (e *Engine) controlCommand(ctx context.Context, ws, cmd string, op actors.CommandOp, sig syscall.Signal) (messages.CommandInfo, error) {
	r := newCall[messages.CommandInfo](e)
	return askWorkspace(ctx, e, ws, &actors.ControlCommand{Workspace: ws, Command: cmd, Op: op, Signal: sig, Reply: r.Reply}, r)
}

// StopCommand stops a running command gracefully: its stop_signal
// (default SIGTERM) goes to its process group, then SIGKILL after its
// stop_timeout_ms (default: the engine's grace). It answers once the
// command has ended, in state stopped with StopResult saying how. A command
// that is not running wraps messages.ErrConflict.
func (e *Engine) StopCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error) {
	return e.controlCommand(ctx, ws, cmd, actors.CmdStop, 0)
}

// StartCommand starts a stopped or ended command again, with the same ID;
// it answers once the process runs.
func (e *Engine) StartCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error) {
	return e.controlCommand(ctx, ws, cmd, actors.CmdStart, 0)
}

// RestartCommand stops a running command (as StopCommand) and starts it
// again with the same ID, or starts an ended one; it answers once the new
// process runs.
func (e *Engine) RestartCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error) {
	return e.controlCommand(ctx, ws, cmd, actors.CmdRestart, 0)
}

// SignalCommand sends sig to every process in a running command's process
// group.
func (e *Engine) SignalCommand(ctx context.Context, ws, cmd string, sig syscall.Signal) (messages.CommandInfo, error) {
	return e.controlCommand(ctx, ws, cmd, actors.CmdSignal, sig)
}

// RemoveCommand forgets an ended command (its log file stays); a command
// that has not ended wraps messages.ErrConflict.
func (e *Engine) RemoveCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error) {
	return e.controlCommand(ctx, ws, cmd, actors.CmdRemove, 0)
}

// StopCommands stops every command of a workspace that has not ended (its
// pipelines go on) and returns their views once all have ended.
func (e *Engine) StopCommands(ctx context.Context, ws string) ([]messages.CommandInfo, error) {
	r := newCall[[]messages.CommandInfo](e)
	return askWorkspace(ctx, e, ws, &actors.StopCommands{Workspace: ws, Reply: r.Reply}, r)
}
