// Package messages holds shipote's plain data: the specs users declare
// (workspaces, commands, pipelines) with their validation, the views the
// engine reports (workspace, command, pipeline and stats info), and the
// messages its actors exchange. Nothing here does I/O except the checks of
// Validate that look at the host (a workdir must exist).
package messages
