package protocol

// This file gives every request its Fail, BindSender and (for routed
// requests) Target methods.

import "github.com/asynkron/protoactor-go/actor"

// Fail answers the request with err.
func (m *CreateWorkspace) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *CreateWorkspace) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Fail answers the request with err.
func (m *ListWorkspaces) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *ListWorkspaces) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Fail answers the request with err.
func (m *BeginShutdown) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *BeginShutdown) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Fail answers the request with err.
func (m *SavePipeline) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *SavePipeline) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Fail answers the request with err.
func (m *GetSavedPipelines) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *GetSavedPipelines) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Fail answers the request with err.
func (m *DeleteSavedPipeline) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *DeleteSavedPipeline) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Fail answers the request with err.
func (m *StartSavedPipeline) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *StartSavedPipeline) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Fail answers the request with err.
func (m *GetWorkspace) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *GetWorkspace) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Target is the workspace the request is for.
func (m *GetWorkspace) Target() string { return m.Workspace }

// Fail answers the request with err.
func (m *RemoveWorkspace) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *RemoveWorkspace) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Target is the workspace the request is for.
func (m *RemoveWorkspace) Target() string { return m.Workspace }

// Fail answers the request with err.
func (m *ExecCommand) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *ExecCommand) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Target is the workspace the request is for.
func (m *ExecCommand) Target() string { return m.Workspace }

// Fail answers the request with err.
func (m *ListCommands) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *ListCommands) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Target is the workspace the request is for.
func (m *ListCommands) Target() string { return m.Workspace }

// Fail answers the request with err.
func (m *OpenLogs) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *OpenLogs) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Target is the workspace the request is for.
func (m *OpenLogs) Target() string { return m.Workspace }

// Fail answers the request with err.
func (m *RunPipeline) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *RunPipeline) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Target is the workspace the request is for.
func (m *RunPipeline) Target() string { return m.Workspace }

// Fail answers the request with err.
func (m *ListPipelines) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *ListPipelines) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Target is the workspace the request is for.
func (m *ListPipelines) Target() string { return m.Workspace }

// Fail answers the request with err.
func (m *PipelineRequest) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *PipelineRequest) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Target is the workspace the request is for.
func (m *PipelineRequest) Target() string { return m.Workspace }

// Fail answers the request with err.
func (m *GetStats) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *GetStats) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Target is the workspace the request is for.
func (m *GetStats) Target() string { return m.Workspace }

// Fail answers the request with err.
func (m *ControlCommand) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *ControlCommand) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Target is the workspace the request is for.
func (m *ControlCommand) Target() string { return m.Workspace }

// Fail answers the request with err.
func (m *StopCommands) Fail(err error) { m.Reply.Fail(err) }

// BindSender binds an unset Reply to sender.
func (m *StopCommands) BindSender(system *actor.ActorSystem, sender *actor.PID) {
	m.Reply.Bind(system, sender)
}

// Target is the workspace the request is for.
func (m *StopCommands) Target() string { return m.Workspace }

// Fail does nothing: SeedHistory has no answer.
func (m *SeedHistory) Fail(error) {}

// BindSender does nothing: SeedHistory has no answer.
func (m *SeedHistory) BindSender(*actor.ActorSystem, *actor.PID) {}

// Target is the workspace the samples are for.
func (m *SeedHistory) Target() string { return m.Workspace }
