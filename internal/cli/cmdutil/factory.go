// This file owns the Factory: what a command needs from its environment
// (streams, the daemon client, the clock), built lazily so that parsing
// never dials the daemon.

package cmdutil

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
	"github.com/shipote/shipote/persistence"
)

// Client is the part of the daemon's API the commands use; *api.Client
// implements it.
type Client interface {
	Health(ctx context.Context) error
	Version(ctx context.Context) (api.VersionInfo, error)
	CreateWorkspace(ctx context.Context, spec messages.WorkspaceSpec) (messages.WorkspaceInfo, error)
	CreateWorkspaceOn(ctx context.Context, spec messages.WorkspaceSpec, node string) (messages.WorkspaceInfo, error)
	Workspaces(ctx context.Context) ([]messages.WorkspaceInfo, error)
	WorkspacePage(ctx context.Context, q messages.ListQuery) ([]messages.WorkspaceInfo, string, error)
	Workspace(ctx context.Context, ref string) (messages.WorkspaceInfo, error)
	RemoveWorkspace(ctx context.Context, ref string, grace time.Duration) (messages.WorkspaceInfo, error)
	Exec(ctx context.Context, ws string, cmd messages.CommandRef) (messages.CommandInfo, error)
	Commands(ctx context.Context, ws string) ([]messages.CommandInfo, error)
	Command(ctx context.Context, ws, cmd string) (messages.CommandInfo, error)
	StopCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error)
	StartCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error)
	RestartCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error)
	SignalCommand(ctx context.Context, ws, cmd, sig string) (messages.CommandInfo, error)
	RemoveCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error)
	StopCommands(ctx context.Context, ws string) ([]messages.CommandInfo, error)
	Logs(ctx context.Context, ws, cmd string, o api.LogOptions, fn func(messages.LogLine) error) error
	Stats(ctx context.Context, ws string) ([]messages.Sample, error)
	RunPipeline(ctx context.Context, ws string, spec messages.PipelineSpec, tap bool) (messages.PipelineInfo, error)
	Pipelines(ctx context.Context, ws string) ([]messages.PipelineInfo, error)
	Pipeline(ctx context.Context, run string) (messages.PipelineInfo, error)
	StopPipeline(ctx context.Context, run string) (messages.PipelineInfo, error)
	RestartPipeline(ctx context.Context, run string) (messages.PipelineInfo, error)
	SignalPipeline(ctx context.Context, run, node, sig string) (messages.PipelineInfo, error)
	Tap(ctx context.Context, run, node string) (io.ReadCloser, error)
	SavePipeline(ctx context.Context, name string, spec messages.PipelineSpec) error
	SavedPipelines(ctx context.Context) ([]protocol.SavedPipeline, error)
	DeleteSavedPipeline(ctx context.Context, name string) error
	StartSavedPipeline(ctx context.Context, name, ws string, tap bool) (messages.PipelineInfo, error)
	Events(ctx context.Context, follow bool, fn func(messages.Event) error) error
	Snapshot(ctx context.Context) (*persistence.State, error)
	SaveSnapshot(ctx context.Context) (saved bool, path string, err error)
	StateFile(ctx context.Context) (api.StateInfo, error)
	DropKept(ctx context.Context, ref string) (api.KeptEntry, error)
}

var _ Client = (*api.Client)(nil)

// Factory builds what commands need. Socket is bound to the root's
// --socket flag; Client dials nothing until a request is made.
type Factory struct {
	IO *IOStreams
	// Socket is the daemon's socket path (the --socket flag).
	Socket string
	// Client returns the client for Socket; nil = api.NewClient(Socket).
	Client func() (Client, error)
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// Version is the client's version (shipote.Version in the shipote
	// binary, which sets it through cli.WithVersion).
	Version string
}

// NewFactory returns a factory on the process's standard streams.
func NewFactory() *Factory {
	return &Factory{IO: System(), Socket: api.DefaultSocketPath()}
}

// APIClient returns the client commands talk to.
func (f *Factory) APIClient() (Client, error) {
	if f.Client != nil {
		return f.Client()
	}
	c := api.NewClient(f.Socket)
	c.OnWarning(func(w string) { fmt.Fprintln(f.IO.ErrOut, "warning: "+w) })
	return c, nil
}

// Clock returns the current time.
func (f *Factory) Clock() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}
