// This file defines what the engine reports: workspace, command and stats
// views, log lines and lifecycle events. They go to the API as JSON.

package messages

import "time"

// CommandState is the lifecycle state of a command.
type CommandState string

// Command states. A run goes starting → running, or, with a ready: probe,
// starting → ready (and back to starting while its ready probe fails);
// either may turn unhealthy when its health: probe fails, and is then
// killed and handled by its supervision.
const (
	// CommandStarting: its run is being spawned, it waits for its
	// dependencies (Readiness waiting), or it runs and its ready probe
	// has not passed (Pid is set).
	CommandStarting CommandState = "starting"
	// CommandRunning: its process runs; a command without a ready probe.
	CommandRunning CommandState = "running"
	// CommandReady: its process runs and its ready probe has passed.
	CommandReady CommandState = "ready"
	// CommandUnhealthy: its health probe failed failure_threshold times
	// in a row; the run is being killed, its supervision decides the
	// restart.
	CommandUnhealthy CommandState = "unhealthy"
	CommandBackoff   CommandState = "backoff"
	CommandExited    CommandState = "exited"
	CommandFailed    CommandState = "failed"
	// CommandStopped: stopped on purpose (StopReason says why); it is not
	// restarted until started again.
	CommandStopped CommandState = "stopped"
	// CommandScheduled: a command with a schedule waiting for its next
	// run (NextRunAt); its last run's end is kept.
	CommandScheduled CommandState = "scheduled"
)

// Readiness says whether a command that runs serves (CommandInfo.Readiness):
// what its dependents wait for. It follows the state (starting, ready,
// unhealthy) and adds two cases the state does not say: ready for a
// command without a ready probe (state running), and waiting, with
// WaitingOn, for one held back by its depends_on (state starting).
type Readiness string

// Readiness values.
const (
	// ReadyStarting: it runs and its ready probe has not passed yet.
	ReadyStarting Readiness = "starting"
	// ReadyOK: it runs and is ready (its ready probe passed, or it has none).
	ReadyOK Readiness = "ready"
	// ReadyUnhealthy: its health probe failed failure_threshold times in a
	// row; it is being killed, and restarted by its supervision.
	ReadyUnhealthy Readiness = "unhealthy"
	// ReadyWaiting: it has not started yet; WaitingOn lists the
	// dependencies that are not ready.
	ReadyWaiting Readiness = "waiting"
)

// Ended reports whether the state is final (nothing left to restart).
func (s CommandState) Ended() bool {
	return s == CommandExited || s == CommandFailed || s == CommandStopped
}

// Running reports whether the state is one of a run whose process is up
// and past its start: running, ready or unhealthy. A starting command may
// have a process too (its ready probe has not passed): CommandInfo.Alive
// tells.
func (s CommandState) Running() bool {
	return s == CommandRunning || s == CommandReady || s == CommandUnhealthy
}

// Why a command stopped (CommandInfo.StopReason).
const (
	StopUser   = "user"
	StopTTL    = "ttl"
	StopQuota  = "quota"
	StopOOM    = "oom"
	StopGaveUp = "gave_up"
)

// CommandInfo is the view of one command.
type CommandInfo struct {
	ID          string       `json:"id"`
	Workspace   string       `json:"workspace"`
	Label       string       `json:"label"`
	Spec        CommandRef   `json:"spec"`
	State       CommandState `json:"state"`
	Pid         int          `json:"pid,omitempty"`
	ExitCode    *int         `json:"exit_code,omitempty"`
	Signal      string       `json:"signal,omitempty"`
	Restarts    int          `json:"restarts"`
	GaveUp      bool         `json:"gave_up,omitempty"`
	StartedAt   time.Time    `json:"started_at,omitzero"`
	ExitedAt    time.Time    `json:"exited_at,omitzero"`
	NextStartAt time.Time    `json:"next_start_at,omitzero"`
	// Error is the last spawn error, or why the command was killed.
	Error string `json:"error,omitempty"`
	// StopReason says why a command stopped: user, ttl, quota, oom or
	// gave_up; "" while it runs or when it ended on its own.
	StopReason string `json:"stop_reason,omitempty"`
	// StopResult says how the last stop ended: "stopped by SIGTERM after
	// 120 ms" or "killed after the 5 s timeout".
	StopResult string `json:"stop_result,omitempty"`
	// KilledBy says who killed the last run: "oom" (the kernel's OOM
	// killer, counted in the workspace's cgroup) or "quota" (quota_enforce:
	// kill); "" otherwise.
	KilledBy string `json:"killed_by,omitempty"`
	// LogDroppedBytes counts output its log file lost because the disk
	// did not keep up (the process itself is never slowed).
	LogDroppedBytes uint64 `json:"log_dropped_bytes,omitempty"`

	// Readiness is starting, ready or unhealthy while the command runs,
	// waiting while it waits for its dependencies, "" otherwise.
	Readiness Readiness `json:"readiness,omitempty"`
	// WaitingOn lists the depends_on labels not ready yet.
	WaitingOn []string `json:"waiting_on,omitempty"`
	// NextRunAt is the next run of a scheduled command.
	NextRunAt time.Time `json:"next_run_at,omitzero"`
	// Node is the cluster member running the command, in the lists a
	// member of a cluster gathers; "" on a lone daemon.
	Node string `json:"node,omitempty"`
}

// Alive reports whether the command has a process: its state is
// running, ready or unhealthy, or starting with a pid (it runs, its ready
// probe has not passed).
func (c CommandInfo) Alive() bool {
	return c.State.Running() || c.State == CommandStarting && c.Pid > 0
}

// Uptime is how long the current run has lasted, 0 unless it is alive.
func (c CommandInfo) Uptime(now time.Time) time.Duration {
	if !c.Alive() || c.StartedAt.IsZero() {
		return 0
	}
	return now.Sub(c.StartedAt)
}

// WorkspaceInfo is the view of one workspace.
type WorkspaceInfo struct {
	ID        string        `json:"id"`
	Spec      WorkspaceSpec `json:"spec"`
	CreatedAt time.Time     `json:"created_at"`
	// Deadline is the TTL deadline; zero when the workspace has no TTL.
	Deadline time.Time `json:"deadline,omitzero"`
	// CommandsAlive and CommandsTotal count the workspace's commands and
	// the nodes of its pipelines' current runs.
	CommandsAlive  int     `json:"commands_alive"`
	CommandsTotal  int     `json:"commands_total"`
	PipelinesTotal int     `json:"pipelines_total"`
	LimitsBackend  string  `json:"limits_backend,omitempty"`
	Stats          *Sample `json:"stats,omitempty"`
	// Node is the cluster member holding the workspace, in the answers of
	// a member of a cluster (lists, creates); "" on a lone daemon.
	Node string `json:"node,omitempty"`
}

// Sample is one stats reading of a workspace (SPEC §1.4).
type Sample struct {
	TimestampMs   int64   `json:"timestamp_ms"`
	CommandsAlive int     `json:"commands_alive"`
	CommandsTotal int     `json:"commands_total"`
	RSSBytes      uint64  `json:"rss_bytes"`
	RSSPeakBytes  uint64  `json:"rss_peak_bytes"`
	CPUUsec       uint64  `json:"cpu_usec"`
	CPUPercent    float64 `json:"cpu_percent"`
	CPUCores      float64 `json:"cpu_cores"`
	UptimeMs      int64   `json:"uptime_ms"`
	Source        string  `json:"source"`
}

// SourcePersisted is the Source of a sample read back from the state file.
const SourcePersisted = "persisted"

// Stream names a command's output stream.
type Stream string

// Streams.
const (
	Stdout Stream = "out"
	Stderr Stream = "err"
)

// LogLine is one line of a command's output.
type LogLine struct {
	Time   time.Time `json:"time"`
	Stream Stream    `json:"stream"`
	Line   string    `json:"line"`
}

// EventKind names a lifecycle event.
type EventKind string

// Event kinds (SPEC §3.3 `shipote events`).
const (
	EventCreated   EventKind = "created"
	EventStarted   EventKind = "started"
	EventExited    EventKind = "exited"
	EventRestarted EventKind = "restarted"
	EventGaveUp    EventKind = "gave_up"
	EventQuota     EventKind = "quota"
	EventOOMKill   EventKind = "oom_kill"
	EventExpired   EventKind = "expired"
	EventRestored  EventKind = "restored"
	EventRemoved   EventKind = "removed"
	EventFailed    EventKind = "failed"
	EventStopped   EventKind = "stopped"
	EventSucceeded EventKind = "succeeded"
	// EventReady: a command became ready; EventUnhealthy: its health probe
	// failed failure_threshold times in a row (it is restarted by its
	// supervision); EventSkipped: a scheduled run was not started
	// (concurrency: forbid).
	EventReady     EventKind = "ready"
	EventUnhealthy EventKind = "unhealthy"
	EventSkipped   EventKind = "skipped"
	// EventUnrestored counts, at start, the state file's entries that are
	// kept but not in effect (see shipote state ls).
	EventUnrestored EventKind = "unrestored"
	// EventStateDegraded: the state file cannot be written; mutations are
	// refused until it can. EventStateWritable: it can again.
	EventStateDegraded EventKind = "state_degraded"
	EventStateWritable EventKind = "state_writable"
	// EventSignalled: a user sent a signal to a command's process group.
	EventSignalled EventKind = "signalled"
	// EventStateDropped: the user dropped a kept entry.
	EventStateDropped EventKind = "state_dropped"
)

// Event is a lifecycle event.
type Event struct {
	Time      time.Time `json:"time"`
	Kind      EventKind `json:"kind"`
	Workspace string    `json:"workspace,omitempty"`
	Label     string    `json:"label,omitempty"` // workspace label
	Command   string    `json:"command,omitempty"`
	Pipeline  string    `json:"pipeline,omitempty"`
	Node      string    `json:"node,omitempty"`
	Message   string    `json:"message,omitempty"`
	// Member is the cluster member the event happened on, in the events a
	// member of a cluster gathers; "" on a lone daemon.
	Member string `json:"member,omitempty"`
}

// PipelineState is the state of a pipeline run (SPEC §1.3).
type PipelineState string

// Pipeline states.
const (
	PipelineRunning   PipelineState = "running"
	PipelineBackoff   PipelineState = "backoff"
	PipelineSucceeded PipelineState = "succeeded"
	PipelineFailed    PipelineState = "failed"
	PipelineGaveUp    PipelineState = "gave_up"
	PipelineStopped   PipelineState = "stopped"
)

// Ended reports whether the pipeline will not run again.
func (s PipelineState) Ended() bool {
	return s == PipelineSucceeded || s == PipelineFailed || s == PipelineGaveUp || s == PipelineStopped
}

// PipelineInfo is the view of a pipeline run.
type PipelineInfo struct {
	ID             string `json:"id"`
	Workspace      string `json:"workspace"`
	WorkspaceLabel string `json:"workspace_label"`
	// Node is the cluster member running the pipeline, in the lists a
	// member of a cluster gathers; "" on a lone daemon.
	Node        string         `json:"node,omitempty"`
	Label       string         `json:"label"`
	Spec        PipelineSpec   `json:"spec"`
	State       PipelineState  `json:"state"`
	Supervised  bool           `json:"supervised"`
	Tap         bool           `json:"tap"`
	Restarts    int            `json:"restarts"`
	StartedAt   time.Time      `json:"started_at,omitzero"`
	EndedAt     time.Time      `json:"ended_at,omitzero"`
	NextStartAt time.Time      `json:"next_start_at,omitzero"`
	Nodes       []NodeInfo     `json:"nodes"`
	Splitters   []SplitterInfo `json:"splitters"`
	Error       string         `json:"error,omitempty"`
}

// NodeInfo is the state of one node in the current run.
type NodeInfo struct {
	Label    string       `json:"label"`
	State    CommandState `json:"state"`
	Pid      int          `json:"pid,omitempty"`
	ExitCode *int         `json:"exit_code,omitempty"`
	Signal   string       `json:"signal,omitempty"`
	Error    string       `json:"error,omitempty"`
}

// SplitterInfo holds the flow counters of one producer node.
type SplitterInfo struct {
	Node        string        `json:"node"`
	BytesIn     uint64        `json:"bytes_in"`
	ThrottledMs uint64        `json:"throttled_ms"`
	Channels    []ChannelInfo `json:"channels"`
}

// ChannelInfo holds the counters of one edge or tap.
type ChannelInfo struct {
	From         string `json:"from"`
	To           string `json:"to"`
	Tap          bool   `json:"tap,omitempty"`
	BytesTotal   uint64 `json:"bytes_total"`
	BytesPerSec  uint64 `json:"bytes_per_sec"`
	DroppedBytes uint64 `json:"dropped_bytes"`
}
