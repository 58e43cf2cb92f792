// Package actors is shipote's actor runtime: the protoactor-go actors that
// own workspaces, commands, pipelines and their data planes, and the rules
// they keep. The embedding API (package shipote) starts them and talks to
// them; nothing else holds their state.
//
// # The actor tree
//
//	shipote-<ULID>          engine (engine.go)
//	└── ws-<ULID>           workspace (workspace.go, command_control.go, workspace_pipelines.go)
//	    └── pipe-<ULID>     pipeline supervisor (pipeline.go)
//	        └── split-<node>-<gen>  splitter (splitter.go)
//	shipote-sampler-<ULID>  sampler (sampler.go), a child of the root
//
// The persistence actor (package persistence) is also a child of the root.
// The sampler and the persistence actor are not children of the engine:
// the engine answers their requests like any other actor's, and they are
// stopped after it.
//
// # Who owns what
//
// Every piece of state has one owner, and only that actor's Receive reads
// or writes it; others ask by message.
//
//   - The engine owns the registry (workspace ID and label to PID, with
//     each workspace's spec and any removal waiting for its durable write)
//     and the saved pipelines. It mirrors the registry into
//     [Runtime.Directory], which only it writes, so that callers outside
//     the actor world can send a request straight to a workspace.
//   - A workspace owns its spec, its commands (process, state, restart
//     count and backoff, log ring and log file), its TTL timer, its stats
//     history, its limits group (cgroup) and the process groups it started.
//   - A pipeline supervisor owns one pipeline: its spec, the current run's
//     nodes and their process groups, the run's log rings, its restart
//     streak and backoff timer.
//   - A splitter owns the data plane of one producer node: the producer's
//     stdout read end and the consumers' stdin write ends (from the moment
//     it starts, even when it fails to), the [flow.Splitter] pumping between
//     them, the token bucket, the flow counters and the node's tap socket.
//   - The sampler owns the /proc reader and, per workspace, the root
//     processes and the set of processes already seen in its tree.
//
// [Runtime] is what every actor of one engine shares and nobody mutates
// after start: the actor system, the process spawner, the limits backend,
// the event hub, the logger, the log-file settings and the goroutines the
// actors own.
//
// # Requests and replies
//
// The requests and answers are defined in package messages/protocol (the
// names here are aliases). A request carries a [Reply] naming the PID its
// answer goes to; [Reply.OK] and [Reply.Fail] send a *[Result]. The engine
// and workspace actors bind an unset Reply to the message's sender as it
// arrives, so an actor that asks with ctx.Request gets its answer in its
// own Receive. The embedding API asks through pooled reply processes
// (internal/askproc), cheaper than protoactor futures and free of their
// data race. The engine resolves a workspace by ID or label and forwards
// the same request, Reply bound, to the workspace, which answers the
// caller itself. A request that reaches a stopped actor is answered with
// messages.ErrNotFound by [FailDeadLetter], which the engine's owner calls
// from the actor system's dead-letter subscription, so no caller waits for
// an answer that cannot come.
//
// Between actors, a request is sent with ctx.Request and answered with
// ctx.Respond (the persistence actor asking the engine and each workspace
// for their part of a snapshot: [SnapshotEngine], [SnapshotWorkspace]), or
// sent with ctx.RequestFuture and taken back with ctx.ReenterAfter, which
// never blocks the asking actor's mailbox (a pipeline asking its splitters
// for [GetFlowStats] or to [OpenTap]). Children report to their parent by
// plain sends: a splitter's [SplitterFinished], a pipeline's status to its
// workspace, a removed workspace's departure to the engine.
//
// # Receive does no I/O
//
// An actor's Receive only changes the actor's own state, sends messages
// and starts work; it never sleeps, waits or touches a file, socket, pipe,
// process or cgroup itself. Work that can block — fork/exec, wait4,
// reading a command's output into its ring, SIGTERM then grace then
// SIGKILL, moving bytes between pipes, one sampling pass over /proc and
// the cgroups, closing a log file — runs in a goroutine started with
// [Runtime.Go]. Such a goroutine gets copies of what it needs, touches no
// actor state, and reports its outcome as a message to the actor that
// started it (for example spawned, exited and terminated for a
// workspace's commands, runLaunched and nodeExited for a pipeline run).
// The engine waits for every such goroutine when it stops
// ([Runtime.WaitGoroutines]). Delays are timers ([time.AfterFunc] sending
// a message, as Runtime's after does): a command's restart after its
// backoff, a pipeline's restart, a workspace's TTL, a stop's grace period.
// Each message a goroutine or timer sends carries what the actor needs to
// tell a stale one apart (a run generation, a command's process), since
// the state may have moved on before it arrives.
//
// # Supervision
//
// Two kinds of supervision live here. Supervision of processes is the
// product's: a workspace restarts a command whose spec says restart, after
// a backoff that doubles per consecutive restart and resets after a long
// run, and gives up after max restarts; a pipeline supervisor does the
// same for whole runs of a pipeline. The decisions are made in Receive
// from messages (an exit, a timer) and carried out by goroutines. See
// docs/design.md, "Supervision".
//
// Supervision of actors is protoactor's: the engine's strategy (one for
// one, at most 10 restarts a minute) resumes a workspace actor that
// panics, so that its processes and state stay as they were and only the
// message that panicked is lost (and logged). An actor that stops for any
// reason releases what it owns in its Stopping handler: a workspace or a
// pipeline SIGKILLs the process groups it started, cancels its timers and
// closes its output readers and log rings (a workspace also its log files,
// and tells the sampler to forget it); a splitter stops its timers and
// closes its data plane and tap listener. A workspace tells the engine
// that it is gone once its removal is over, before it stops.
//
// # Mailbox metrics
//
// Each kind of actor (engine, workspace, pipeline, splitter, sampler) has
// a mailbox middleware that counts the messages posted and still queued
// ([Mailboxes]); the daemon exports them as metrics.
package actors
