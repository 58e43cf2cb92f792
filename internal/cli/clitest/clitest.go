// This file owns the test support of the CLI packages: a fake daemon
// client holding canned answers, and running one command with arguments
// the way the root command would.

// Package clitest helps test shipote's commands without a daemon.
package clitest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
	"github.com/shipote/shipote/persistence"
)

// ErrNotCanned is returned by a FakeClient method with no canned answer.
var ErrNotCanned = errors.New("clitest: no canned answer")

// FakeClient answers from its fields; Err, when set, is returned by every
// method. Calls records each method called, in order.
type FakeClient struct {
	Err           error
	VersionInfo   *api.VersionInfo
	WorkspaceList []messages.WorkspaceInfo
	// PageQuery is the query of the last WorkspacePage call.
	PageQuery      *messages.ListQuery
	CommandList    []messages.CommandInfo
	LogLines       map[string][]messages.LogLine // by command ID or label
	Samples        []messages.Sample
	PipelineList   []messages.PipelineInfo
	SavedList      []protocol.SavedPipeline
	EventList      []messages.Event
	State          *persistence.State
	StateInfo      *api.StateInfo
	TapData        string
	Calls          []string
	CreatedOn      string // the node of CreateWorkspaceOn
	CreatedSpec    *messages.WorkspaceSpec
	ExecRef        *messages.CommandRef
	PipelineSpecIn *messages.PipelineSpec
	// StopResult is what a stop reports; "" = "stopped by SIGTERM after
	// 120ms".
	StopResult string
	// NextPid is the pid a start or restart gives; 0 = 4242.
	NextPid int
	// Signals records each signal sent: "WS/CMD SIG" or "RUN[/NODE] SIG".
	Signals []string

	mu sync.Mutex // guards Calls
}

var _ cmdutil.Client = (*FakeClient)(nil)

func (f *FakeClient) call(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls = append(f.Calls, name)
	return f.Err
}

func (f *FakeClient) workspace(ref string) (messages.WorkspaceInfo, error) {
	for _, w := range f.WorkspaceList {
		if w.ID == ref || w.Spec.Label == ref {
			return w, nil
		}
	}
	return messages.WorkspaceInfo{}, &api.Error{Status: 404, Code: "not_found", Message: "workspace " + ref + ": not found"}
}

// Health implements cmdutil.Client.
func (f *FakeClient) Health(ctx context.Context) error { return f.call("Health") }

// Version implements cmdutil.Client.
func (f *FakeClient) Version(ctx context.Context) (api.VersionInfo, error) {
	if err := f.call("Version"); err != nil {
		return api.VersionInfo{}, err
	}
	if f.VersionInfo == nil {
		return api.VersionInfo{}, ErrNotCanned
	}
	return *f.VersionInfo, nil
}

// CreateWorkspace implements cmdutil.Client.
func (f *FakeClient) CreateWorkspace(ctx context.Context, spec messages.WorkspaceSpec) (messages.WorkspaceInfo, error) {
	if err := f.call("CreateWorkspace"); err != nil {
		return messages.WorkspaceInfo{}, err
	}
	f.CreatedSpec = &spec
	return messages.WorkspaceInfo{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAV", Spec: spec}, nil
}

// CreateWorkspaceOn implements cmdutil.Client; node is kept in
// CreatedOn.
func (f *FakeClient) CreateWorkspaceOn(ctx context.Context, spec messages.WorkspaceSpec, node string) (messages.WorkspaceInfo, error) {
	f.CreatedOn = node
	return f.CreateWorkspace(ctx, spec)
}

// Workspaces implements cmdutil.Client.
func (f *FakeClient) Workspaces(ctx context.Context) ([]messages.WorkspaceInfo, error) {
	return f.WorkspaceList, f.call("Workspaces")
}

// WorkspacePage implements cmdutil.Client: WorkspaceList (taken as
// sorted by ID) paged by q, as the daemon does.
func (f *FakeClient) WorkspacePage(ctx context.Context, q messages.ListQuery) ([]messages.WorkspaceInfo, string, error) {
	f.PageQuery = &q
	if err := f.call("WorkspacePage"); err != nil {
		return nil, "", err
	}
	if err := q.Validate(); err != nil {
		return nil, "", err
	}
	l := f.WorkspaceList
	keep, next := q.Select(len(l), func(i int) string { return l[i].ID }, func(i int) string { return l[i].Spec.Label })
	out := make([]messages.WorkspaceInfo, 0, len(keep))
	for _, i := range keep {
		out = append(out, l[i])
	}
	return out, next, nil
}

// Workspace implements cmdutil.Client.
func (f *FakeClient) Workspace(ctx context.Context, ref string) (messages.WorkspaceInfo, error) {
	if err := f.call("Workspace"); err != nil {
		return messages.WorkspaceInfo{}, err
	}
	return f.workspace(ref)
}

// RemoveWorkspace implements cmdutil.Client.
func (f *FakeClient) RemoveWorkspace(ctx context.Context, ref string, grace time.Duration) (messages.WorkspaceInfo, error) {
	if err := f.call("RemoveWorkspace"); err != nil {
		return messages.WorkspaceInfo{}, err
	}
	return f.workspace(ref)
}

// Exec implements cmdutil.Client.
func (f *FakeClient) Exec(ctx context.Context, ws string, cmd messages.CommandRef) (messages.CommandInfo, error) {
	if err := f.call("Exec"); err != nil {
		return messages.CommandInfo{}, err
	}
	f.ExecRef = &cmd
	return messages.CommandInfo{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAW", Label: cmd.Label}, nil
}

// Commands implements cmdutil.Client.
func (f *FakeClient) Commands(ctx context.Context, ws string) ([]messages.CommandInfo, error) {
	return f.CommandList, f.call("Commands")
}

// Command implements cmdutil.Client.
func (f *FakeClient) Command(ctx context.Context, ws, cmd string) (messages.CommandInfo, error) {
	if err := f.call("Command"); err != nil {
		return messages.CommandInfo{}, err
	}
	for _, c := range f.CommandList {
		if c.ID == cmd || c.Label == cmd {
			return c, nil
		}
	}
	return messages.CommandInfo{}, ErrNotCanned
}

// command finds a canned command by ID or label in workspace ws (by ID or
// label, through WorkspaceList when it knows ws).
func (f *FakeClient) command(ws, ref string) (int, error) {
	wsID := ws
	if w, err := f.workspace(ws); err == nil {
		wsID = w.ID
	}
	for i, c := range f.CommandList {
		if (c.ID == ref || c.Label == ref) && (c.Workspace == "" || c.Workspace == wsID) {
			return i, nil
		}
	}
	return -1, &api.Error{Status: 404, Code: api.CodeNotFound, Message: "command " + ref + " in workspace " + ws + ": not found"}
}

func conflict(msg string) error {
	return &api.Error{Status: 409, Code: api.CodeConflict, Message: msg}
}

func (f *FakeClient) stopAt(i int) messages.CommandInfo {
	c := &f.CommandList[i]
	c.State, c.StopReason, c.Pid = messages.CommandStopped, messages.StopUser, 0
	c.StopResult = f.StopResult
	if c.StopResult == "" {
		c.StopResult = "stopped by SIGTERM after 120ms"
	}
	return *c
}

func (f *FakeClient) startAt(i int) messages.CommandInfo {
	c := &f.CommandList[i]
	c.State, c.StopReason, c.Pid = messages.CommandRunning, "", f.NextPid
	if c.Pid == 0 {
		c.Pid = 4242
	}
	return *c
}

// StopCommand implements cmdutil.Client.
func (f *FakeClient) StopCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error) {
	if err := f.call("StopCommand " + ws + "/" + cmd); err != nil {
		return messages.CommandInfo{}, err
	}
	i, err := f.command(ws, cmd)
	if err != nil {
		return messages.CommandInfo{}, err
	}
	if c := f.CommandList[i]; c.State.Ended() {
		return messages.CommandInfo{}, conflict("command " + c.Label + " is not running (" + string(c.State) + ")")
	}
	return f.stopAt(i), nil
}

// StartCommand implements cmdutil.Client.
func (f *FakeClient) StartCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error) {
	if err := f.call("StartCommand " + ws + "/" + cmd); err != nil {
		return messages.CommandInfo{}, err
	}
	i, err := f.command(ws, cmd)
	if err != nil {
		return messages.CommandInfo{}, err
	}
	if c := f.CommandList[i]; !c.State.Ended() {
		return messages.CommandInfo{}, conflict("command " + c.Label + " is already " + string(c.State))
	}
	return f.startAt(i), nil
}

// RestartCommand implements cmdutil.Client.
func (f *FakeClient) RestartCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error) {
	if err := f.call("RestartCommand " + ws + "/" + cmd); err != nil {
		return messages.CommandInfo{}, err
	}
	i, err := f.command(ws, cmd)
	if err != nil {
		return messages.CommandInfo{}, err
	}
	f.CommandList[i].Restarts++
	return f.startAt(i), nil
}

// SignalCommand implements cmdutil.Client.
func (f *FakeClient) SignalCommand(ctx context.Context, ws, cmd, sig string) (messages.CommandInfo, error) {
	if err := f.call("SignalCommand " + ws + "/" + cmd); err != nil {
		return messages.CommandInfo{}, err
	}
	i, err := f.command(ws, cmd)
	if err != nil {
		return messages.CommandInfo{}, err
	}
	c := f.CommandList[i]
	if !c.Alive() {
		return messages.CommandInfo{}, conflict("command " + c.Label + " is not running (" + string(c.State) + ")")
	}
	if _, err := messages.ParseSignal(sig); err != nil {
		return messages.CommandInfo{}, &api.Error{Status: 400, Code: api.CodeInvalid, Field: "signal", Message: err.Error()}
	}
	f.mu.Lock()
	f.Signals = append(f.Signals, ws+"/"+cmd+" "+sig)
	f.mu.Unlock()
	return c, nil
}

// RemoveCommand implements cmdutil.Client.
func (f *FakeClient) RemoveCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error) {
	if err := f.call("RemoveCommand " + ws + "/" + cmd); err != nil {
		return messages.CommandInfo{}, err
	}
	i, err := f.command(ws, cmd)
	if err != nil {
		return messages.CommandInfo{}, err
	}
	c := f.CommandList[i]
	if !c.State.Ended() {
		return messages.CommandInfo{}, conflict("command " + c.Label + " is " + string(c.State) + "; stop it first")
	}
	f.CommandList = append(f.CommandList[:i], f.CommandList[i+1:]...)
	return c, nil
}

// StopCommands implements cmdutil.Client.
func (f *FakeClient) StopCommands(ctx context.Context, ws string) ([]messages.CommandInfo, error) {
	if err := f.call("StopCommands " + ws); err != nil {
		return nil, err
	}
	w, err := f.workspace(ws)
	if err != nil {
		return nil, err
	}
	var out []messages.CommandInfo
	for i, c := range f.CommandList {
		if (c.Workspace == "" || c.Workspace == w.ID) && !c.State.Ended() {
			out = append(out, f.stopAt(i))
		}
	}
	return out, nil
}

// Logs implements cmdutil.Client.
func (f *FakeClient) Logs(ctx context.Context, ws, cmd string, o api.LogOptions, fn func(messages.LogLine) error) error {
	if err := f.call("Logs " + cmd); err != nil {
		return err
	}
	for _, l := range f.LogLines[cmd] {
		if o.Stream != "" && l.Stream != o.Stream {
			continue
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

// Stats implements cmdutil.Client.
func (f *FakeClient) Stats(ctx context.Context, ws string) ([]messages.Sample, error) {
	return f.Samples, f.call("Stats")
}

// RunPipeline implements cmdutil.Client.
func (f *FakeClient) RunPipeline(ctx context.Context, ws string, spec messages.PipelineSpec, tap bool) (messages.PipelineInfo, error) {
	if err := f.call("RunPipeline"); err != nil {
		return messages.PipelineInfo{}, err
	}
	f.PipelineSpecIn = &spec
	return messages.PipelineInfo{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAX", Label: spec.Label, Tap: tap}, nil
}

// Pipelines implements cmdutil.Client.
func (f *FakeClient) Pipelines(ctx context.Context, ws string) ([]messages.PipelineInfo, error) {
	return f.PipelineList, f.call("Pipelines")
}

// Pipeline implements cmdutil.Client.
func (f *FakeClient) Pipeline(ctx context.Context, run string) (messages.PipelineInfo, error) {
	if err := f.call("Pipeline"); err != nil {
		return messages.PipelineInfo{}, err
	}
	for _, p := range f.PipelineList {
		if p.ID == run || p.Label == run {
			return p, nil
		}
	}
	return messages.PipelineInfo{}, &api.Error{Status: 404, Code: "not_found", Message: "pipeline " + run + ": not found"}
}

// StopPipeline implements cmdutil.Client.
func (f *FakeClient) StopPipeline(ctx context.Context, run string) (messages.PipelineInfo, error) {
	p, err := f.Pipeline(ctx, run)
	if err == nil {
		p.State = messages.PipelineStopped
	}
	return p, err
}

// RestartPipeline implements cmdutil.Client.
func (f *FakeClient) RestartPipeline(ctx context.Context, run string) (messages.PipelineInfo, error) {
	p, err := f.Pipeline(ctx, run)
	if err != nil {
		return p, err
	}
	if p.State.Ended() {
		return messages.PipelineInfo{}, conflict("pipeline " + p.Label + " has ended (" + string(p.State) + ")")
	}
	p.Restarts++
	p.State = messages.PipelineRunning
	return p, nil
}

// SignalPipeline implements cmdutil.Client.
func (f *FakeClient) SignalPipeline(ctx context.Context, run, node, sig string) (messages.PipelineInfo, error) {
	p, err := f.Pipeline(ctx, run)
	if err != nil {
		return p, err
	}
	if p.State != messages.PipelineRunning {
		return messages.PipelineInfo{}, conflict("no node of pipeline " + p.Label + " is running (" + string(p.State) + ")")
	}
	if _, err := messages.ParseSignal(sig); err != nil {
		return messages.PipelineInfo{}, &api.Error{Status: 400, Code: api.CodeInvalid, Field: "signal", Message: err.Error()}
	}
	target := run
	if node != "" {
		target += "/" + node
	}
	f.mu.Lock()
	f.Signals = append(f.Signals, target+" "+sig)
	f.mu.Unlock()
	return p, nil
}

// Tap implements cmdutil.Client.
func (f *FakeClient) Tap(ctx context.Context, run, node string) (io.ReadCloser, error) {
	if err := f.call("Tap"); err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader([]byte(f.TapData))), nil
}

// SavePipeline implements cmdutil.Client.
func (f *FakeClient) SavePipeline(ctx context.Context, name string, spec messages.PipelineSpec) error {
	if err := f.call("SavePipeline"); err != nil {
		return err
	}
	f.PipelineSpecIn = &spec
	return nil
}

// SavedPipelines implements cmdutil.Client.
func (f *FakeClient) SavedPipelines(ctx context.Context) ([]protocol.SavedPipeline, error) {
	return f.SavedList, f.call("SavedPipelines")
}

// DeleteSavedPipeline implements cmdutil.Client.
func (f *FakeClient) DeleteSavedPipeline(ctx context.Context, name string) error {
	return f.call("DeleteSavedPipeline")
}

// StartSavedPipeline implements cmdutil.Client.
func (f *FakeClient) StartSavedPipeline(ctx context.Context, name, ws string, tap bool) (messages.PipelineInfo, error) {
	if err := f.call("StartSavedPipeline"); err != nil {
		return messages.PipelineInfo{}, err
	}
	return messages.PipelineInfo{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAY", Tap: tap}, nil
}

// Events implements cmdutil.Client.
func (f *FakeClient) Events(ctx context.Context, follow bool, fn func(messages.Event) error) error {
	if err := f.call("Events"); err != nil {
		return err
	}
	for _, e := range f.EventList {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// Snapshot implements cmdutil.Client.
func (f *FakeClient) Snapshot(ctx context.Context) (*persistence.State, error) {
	if err := f.call("Snapshot"); err != nil {
		return nil, err
	}
	if f.State == nil {
		return nil, ErrNotCanned
	}
	return f.State, nil
}

// SaveSnapshot implements cmdutil.Client.
func (f *FakeClient) SaveSnapshot(ctx context.Context) (bool, string, error) {
	if err := f.call("SaveSnapshot"); err != nil {
		return false, "", err
	}
	return true, "/state.json", nil
}

// StateFile implements cmdutil.Client.
func (f *FakeClient) StateFile(ctx context.Context) (api.StateInfo, error) {
	if err := f.call("StateFile"); err != nil {
		return api.StateInfo{}, err
	}
	if f.StateInfo == nil {
		return api.StateInfo{}, ErrNotCanned
	}
	return *f.StateInfo, nil
}

// DropKept implements cmdutil.Client.
func (f *FakeClient) DropKept(ctx context.Context, ref string) (api.KeptEntry, error) {
	if err := f.call("DropKept " + ref); err != nil {
		return api.KeptEntry{}, err
	}
	if f.StateInfo == nil {
		return api.KeptEntry{}, ErrNotCanned
	}
	for _, k := range f.StateInfo.Kept {
		if k.Ref == ref || k.ID == ref || k.Label == ref {
			return k, nil
		}
	}
	return api.KeptEntry{}, &api.Error{Status: 404, Code: api.CodeNotFound, Message: "no kept entry matches " + ref}
}

// Factory returns a factory on test streams whose client is c and whose
// clock is fixed at now.
func Factory(c cmdutil.Client, now time.Time) (*cmdutil.Factory, *bytes.Buffer, *bytes.Buffer) {
	ios, _, out, errOut := cmdutil.Test()
	return &cmdutil.Factory{
		IO:     ios,
		Socket: "/tmp/test.sock",
		Client: func() (cmdutil.Client, error) { return c, nil },
		Now:    func() time.Time { return now },
	}, out, errOut
}

// Run runs cmd with args as the root command would: flag errors become
// *cmdutil.FlagError, and nothing is printed by cobra itself.
func Run(cmd *cobra.Command, args ...string) error {
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SilenceErrors = true
	cmd.SilenceUsage = true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cmdutil.FlagErrorWrap(err) })
	_, err := cmd.ExecuteContextC(context.Background())
	return err
}

// IsUsage reports whether err is a usage error (exit 2).
func IsUsage(err error) bool {
	var fe *cmdutil.FlagError
	return errors.As(err, &fe)
}

// ErrCaptured is what a test's runF returns once it has kept the options a
// command would run with, so that the command stops there.
var ErrCaptured = errors.New("clitest: options captured")

// ExpectParsed runs cmd with args (see Run); its runF must return
// ErrCaptured. With usage set, the command must fail with a usage error
// containing it, and ExpectParsed returns false; otherwise it must have
// reached its runF, and ExpectParsed returns true.
func ExpectParsed(t testing.TB, cmd *cobra.Command, args []string, usage string) bool {
	t.Helper()
	err := Run(cmd, args...)
	if usage != "" {
		if !IsUsage(err) || !strings.Contains(err.Error(), usage) {
			t.Fatalf("err = %v, want a usage error with %q", err, usage)
		}
		return false
	}
	if !errors.Is(err, ErrCaptured) {
		t.Fatalf("err = %v", err)
	}
	return true
}

// Parse builds the command newCmd makes on a factory with an empty
// FakeClient, runs it with args as ExpectParsed does, and returns the
// options it would have run with, or nil when usage was expected.
func Parse[O any](t testing.TB, newCmd func(*cmdutil.Factory, func(*O) error) *cobra.Command, args []string, usage string) *O {
	t.Helper()
	f, _, _ := Factory(&FakeClient{}, time.Now())
	var got *O
	if !ExpectParsed(t, newCmd(f, func(o *O) error { got = o; return ErrCaptured }), args, usage) {
		return nil
	}
	return got
}
