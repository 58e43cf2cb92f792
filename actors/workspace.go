// This file is the workspace actor: it owns one workspace's spec, its
// commands (spawned, watched, restarted with backoff), its TTL timer, its
// stats history and its limits group. It receives the routed requests of
// protocol.go and its own internal messages (spawned, exited, restartDue,
// ttlExpired, terminated); it sends events to the hub and tells the engine
// when it is gone. Blocking work (spawning, waiting, reading pipes, killing
// with a grace period) runs in goroutines it starts, which report back by
// message. Running a command is in workspace_exec.go, pipelines in
// workspace_pipelines.go, command control in command_control.go, and the
// workspace's end in workspace_remove.go.

package actors

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"

	"github.com/shipote/shipote/internal/limits"
	"github.com/shipote/shipote/internal/logfile"
	"github.com/shipote/shipote/internal/logring"
	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/internal/supervise"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
)

// reasonShutdown marks a removal done because the engine stops: the
// workspace stays declared.
const reasonShutdown = protocol.ReasonShutdown

// reasonUndo marks the removal of a workspace whose creation could not be
// written to the state file: it was never in effect, so no event.
const reasonUndo = protocol.ReasonUndo

// HistorySize is how many stats samples a workspace keeps in memory.
const HistorySize = 300

type workspace struct {
	// commits are the continuations of the snapshot writes this
	// workspace asked the engine for (askCommit), by Reply ID.
	commits   map[uint64]func(error)
	commitSeq uint64
	// txn is the transaction askCommit joins while a step of one is
	// handled (0 otherwise).
	txn uint64
	// declCmds and declPipes are supervised commands and runs an apply
	// declared (Declare) and has not started yet: snapshots list them.
	declCmds  []LiveCommand
	declPipes []LivePipeline

	rt *Runtime
	id string
	// spec is shared with the engine's entry and never changed in
	// place: a change of limits replaces it (workspace_update.go).
	spec    *messages.WorkspaceSpec
	created time.Time
	group   limits.Group // nil without a limits backend
	// oomAttributed is the cgroup's OOM kill count already reported on a
	// command: one kill is never reported twice.
	oomAttributed uint64
	self          *actor.PID
	engine        *actor.PID
	log           *zap.Logger // made on first use: see logger
	// view is where the workspace publishes its view for lists
	// (views.go); nil when nothing lists it.
	view *viewSlot

	// The maps are made on first write (an idle workspace holds none);
	// reading, ranging over and deleting from a nil map need nothing.
	cmds    map[string]*command        // by ID
	order   []string                   // command IDs in creation order
	byLabel map[string]string          // label -> newest command ID
	logs    map[string]*logfile.Writer // by command label (or pipeline/node)

	pipes     map[string]*pipelineRef // by run ID
	pipeOrder []string
	// pipeStarting holds the labels of pipelines whose nodes are being
	// checked (pipelineResolved).
	pipeStarting map[string]struct{}

	history []messages.Sample

	// pgids holds every process group this workspace started whose
	// members may still live (a command's children outlive it in its
	// group); removal signals them all.
	pgids   map[int]struct{}
	live    map[int]struct{} // pids of the commands running now
	readers readerSet

	// timers are the TTL and retention timers, made when one is first
	// armed: most workspaces never arm either.
	timers   *wsTimers
	removing *removal
	// reaper decides TTL expiry and reaping; quota decides quota_enforce.
	reaper      *supervise.Reaper
	quota       *supervise.Quota
	cancelRoots func()

	// The small fields, together (each alone would be padded to a word).
	exitsSincePrune int32
	// updatingSoma is set while an UpdateSoma is being written.
	updatingSoma bool
	rootsSent    bool // the sampler has had this workspace's roots once
	rootsPending bool // a flushRoots is scheduled
	// hadRoots: a process of this workspace has run (the sampler may
	// know its descendants), so it no longer counts itself as empty.
	hadRoots bool
	// readSinceRoots: a Reading came after the roots were last sent. Until
	// one does, a reading is due anyway, and it will carry the counts of
	// the moment it arrives.
	readSinceRoots bool
}

// wsTimers are a workspace's rarely armed timers.
type wsTimers struct {
	cancelTTL func()
	// retainAt is when the retention timer fires; zero when none is armed.
	retainAt     time.Time
	cancelRetain func()
}

// timer returns the workspace's timers, making them first if need be.
func (w *workspace) timer() *wsTimers {
	if w.timers == nil {
		w.timers = &wsTimers{}
	}
	return w.timers
}

// cancelTimers stops the timers armed.
func (w *workspace) cancelTimers() {
	if t := w.timers; t != nil {
		if t.cancelTTL != nil {
			t.cancelTTL()
		}
		if t.cancelRetain != nil {
			t.cancelRetain()
		}
	}
}

// removal is a removal of the workspace under way.
type removal struct {
	replies []Reply[messages.WorkspaceInfo]
	reason  messages.EventKind
	info    messages.WorkspaceInfo
}

// command is one command and its current run.
type command struct {
	info    messages.CommandInfo
	path    string
	env     []string
	ring    *logring.Ring
	logw    *logfile.Writer // nil without log files
	gen     int             // increases with every run; stale messages carry older gens
	proc    *proc.Process
	sup     *supervise.Supervisor // restarts, backoff, give-up
	cancel  func()
	pending Reply[messages.CommandInfo] // exec waiting for the first start
	// stop is a stop in progress (command_control.go).
	stop *cmdStop
	// restarting marks a start by start/restart: its pending reply is
	// answered like a first start, and the event is "restarted".
	restarting bool
	// restored marks a supervised command relaunched from the state file:
	// its start needs no commit.
	restored bool
	// undo marks a command whose start could not be written to the state
	// file: it is killed and forgotten.
	undo bool
	// resolving: a new command whose path and log file are being checked
	// and opened in a goroutine (execResolved); it has never run.
	resolving bool
	// decl holds its probes, dependencies and schedule (command_declare.go).
	decl cmdDecl
}

// declared reports whether c belongs in the state file: a supervised
// command that has not ended, is not being stopped for good, and whose
// start was not refused.
func (c *command) declared() bool {
	return (c.info.Spec.Supervision.Restart != nil || c.info.Spec.Schedule != "") && !c.info.State.Ended() && !c.undo &&
		(c.stop == nil || c.stop.keep)
}

// Internal messages.
type (
	// spawned is a command's run started (or not); a run the workspace
	// never takes in (sendHeld) has its process group killed.
	spawned struct {
		rt   *Runtime
		to   *actor.PID // the workspace actor
		cmd  string
		gen  int
		proc *proc.Process
		err  error
	}
	exited struct {
		cmd    string
		gen    int
		pid    int
		status proc.ExitStatus
		at     time.Time
		// oom: the workspace's cgroup counted an OOM kill during the run
		// (its count is now oomCount); the actor attributes each kill once.
		oom      bool
		oomCount uint64
		// groupGone: the process's group had no member left after it
		// exited (checked by the goroutine that waited for it).
		groupGone bool
	}
	restartDue struct {
		cmd string
		gen int
	}
	ttlExpired   struct{}
	retentionDue struct{}
	terminated   struct{ err error }
	// workspaceGone tells the engine a workspace is removed; the engine
	// unregisters it, then answers the removers.
	workspaceGone struct {
		id      string
		replies []Reply[messages.WorkspaceInfo]
		info    messages.WorkspaceInfo
		undo    bool // a creation whose write failed, undone
	}
)

// newWorkspace returns the actor of a new workspace.
func newWorkspace(rt *Runtime, id string, spec *messages.WorkspaceSpec, group limits.Group, view *viewSlot) *workspace {
	created, err := messages.IDTime(id)
	if err != nil {
		created = rt.now()
	}
	return &workspace{
		rt:      rt,
		id:      id,
		spec:    spec,
		created: created,
		group:   group,
		view:    view,
		reaper:  supervise.NewReaper(spec.OnExit, supervise.Deadline(created, spec.TTLMs)),
		quota:   supervise.NewQuota(spec.QuotaEnforce, spec.Soma),
	}
}

// workspaceSpawner spawns the engine's workspace actors, all from one
// Props: a Props per workspace (and the producer closure holding its
// spec) would stay with each actor for its whole life. Its producer hands
// out the actor that spawn was given; protoactor calls it synchronously,
// inside SpawnNamed, and never again, since a workspace is resumed after
// a panic, not restarted (panics.go).
type workspaceSpawner struct {
	props *actor.Props
	next  *workspace
}

func newWorkspaceSpawner(rt *Runtime) *workspaceSpawner {
	s := &workspaceSpawner{}
	s.props = actor.PropsFromProducer(func() actor.Actor {
		w := s.next
		s.next = nil
		return w
	}, rt.workspaceMailbox())
	return s
}

// spawn starts w as a child of ctx named name. Only the engine's actor
// calls it.
func (s *workspaceSpawner) spawn(ctx actor.Context, w *workspace, name string) (*actor.PID, error) {
	s.next = w
	defer func() { s.next = nil }()
	return ctx.SpawnNamed(s.props, name)
}

// logger returns the workspace's logger, made on first use: most
// workspaces never log, and a zap logger with fields holds a clone of the
// encoder.
func (w *workspace) logger() *zap.Logger {
	if w.log == nil {
		w.log = w.rt.Log.With(zap.String("workspace", w.id), zap.String("label", w.spec.Label))
	}
	return w.log
}

// setOf adds k to the set *m, making it first if need be.
func setOf[K comparable](m *map[K]struct{}, k K) {
	if *m == nil {
		*m = make(map[K]struct{})
	}
	(*m)[k] = struct{}{}
}

// put sets (*m)[k] = v, making the map first if need be.
func put[K comparable, V any](m *map[K]V, k K, v V) {
	if *m == nil {
		*m = make(map[K]V)
	}
	(*m)[k] = v
}

func (w *workspace) Receive(ctx actor.Context) {
	bindSender(ctx)
	w.rt.arrived(ctx.Self(), ctx.Message())
	testPanic(KindWorkspace, ctx.Message())
	switch m := ctx.Message().(type) {
	case *Result[struct{}]:
		w.onCommitted(m)
	case *actor.Started:
		w.self, w.engine = ctx.Self(), ctx.Parent()
		if d, ok := w.reaper.TTLTimer(w.rt.now()); ok {
			w.timer().cancelTTL = w.rt.after(d, w.self, &ttlExpired{})
		}
		w.tellSampler(ctx)
	case *actor.Stopping:
		if w.rt.Sampler != nil {
			ctx.Send(w.rt.Sampler, &samplerForget{id: w.id})
		}
		w.stopping()
	case *actor.Stopped:
		// Results of this workspace's goroutines still on their way
		// will never be read: what they hold is released.
		w.rt.releaseHeld(ctx.Self(), fmt.Errorf("workspace %s is gone: %w", w.spec.Label, messages.ErrNotFound))
	case *GetWorkspace:
		m.Reply.OK(w.info())
	case *ListCommands:
		m.Reply.OK(w.commandInfos())
	case *ExecCommand:
		w.exec(m)
	case *execResolved:
		w.onExecResolved(m)
	case *OpenLogs:
		w.openLogs(m)
	case *SnapshotWorkspace:
		w.snapshot(ctx, m)
	case *SeedHistory:
		w.history = append(append([]messages.Sample(nil), m.Samples...), w.history...)
		// A sample taken before the seed came (an empty workspace counts
		// itself at once) carries the restored peak on, as the later
		// ones do.
		for i := max(len(m.Samples), 1); i < len(w.history); i++ {
			w.history[i].RSSPeakBytes = max(w.history[i].RSSPeakBytes, w.history[i-1].RSSPeakBytes)
		}
		if len(w.history) > HistorySize {
			w.history = w.history[len(w.history)-HistorySize:]
		}
	case *Reading:
		w.onReading(m)
		if w.rt.Sampler != nil {
			ctx.Send(w.rt.Sampler, &readingDone{})
		}
	case *flushRoots:
		w.sendRoots(ctx)
	case *GetStats:
		m.Reply.OK(append([]messages.Sample(nil), w.history...))
	case *RemoveWorkspace:
		w.remove(ctx, m.Grace, m.Reason, m.Reply)
	case *ControlCommand:
		w.control(m)
	case *StopCommands:
		w.stopAll(m)
	case *UpdateSoma:
		w.updateSoma(m)
	case *somaUpdated:
		w.onSomaUpdated(m)
	case *Declare:
		w.declare(m)
	case *stopTimeout:
		w.onStopTimeout(m)
	case *startCommitted:
		w.onStartCommitted(m)
	case *cmdStopCommitted:
		w.onCmdStopCommitted(m)
	case *signalSent:
		if m.err != nil {
			m.reply.Fail(m.err)
		} else {
			w.rt.publish(messages.Event{Kind: messages.EventSignalled, Workspace: w.id, Label: w.spec.Label,
				Command: m.info.Label, Message: proc.SignalName(m.sig) + " to process group " + strconv.Itoa(m.info.Pid)})
			m.reply.OK(m.info)
		}
	case *spawned:
		w.onSpawned(ctx, m)
	case *pgidsGone:
		w.forgetGroups(m)
	case *exited:
		w.onExited(m)
		w.tellSampler(ctx)
		w.retain(ctx)
	case *restartDue:
		w.onRestartDue(m)
	case *ttlExpired:
		if w.reaper.TTLExpired() {
			w.logger().Info("workspace TTL expired")
			w.remove(ctx, 0, messages.EventExpired, Reply[messages.WorkspaceInfo]{})
		}
	case *retentionDue:
		if t := w.timers; t != nil {
			t.retainAt, t.cancelRetain = time.Time{}, nil
		}
		w.retain(ctx)
	case *terminated:
		w.onTerminated(ctx, m)
	default:
		if w.onDeclared(m) {
			return
		}
		w.receivePipelineMessage(ctx, m)
	}
	w.publishView()
}

// publishView publishes the workspace's view when its figures changed
// since the last one published.
func (w *workspace) publishView() {
	if w.view == nil {
		return
	}
	alive, total := w.counts()
	var last *messages.Sample
	if n := len(w.history); n > 0 {
		last = &w.history[n-1]
	}
	if cur := w.view.view.Load(); cur != nil && cur.SameCounts(alive, total, len(w.pipes), last) {
		return
	}
	w.view.publishShared(w.rt, w.info(), w.spec)
	if last != nil && (last.CommandsAlive != alive || last.CommandsTotal != total) && w.readSinceRoots {
		// The latest sample's counts are behind: an idle workspace,
		// which the sampler no longer reads, gets a fresh one. (Until
		// the first reading since the roots were sent, one is due
		// anyway: a restore of 10,000 workspaces asks for nothing more.)
		w.resample()
	}
}

// republishView publishes the view even when its counts and stats are
// unchanged: the spec itself changed (limits changed in place).
func (w *workspace) republishView() {
	if w.view != nil {
		w.view.publishShared(w.rt, w.info(), w.spec)
	}
}

// counts returns how many of the workspace's commands and pipeline nodes
// are alive, and how many there are.
func (w *workspace) counts() (alive, total int) {
	total = len(w.cmds)
	for _, c := range w.cmds {
		if !c.info.State.Ended() {
			alive++
		}
	}
	for _, p := range w.pipes {
		alive += p.aliveNodes()
		total += len(p.info.Nodes)
	}
	return alive, total
}

// info builds the workspace's view. Its walk is bounded: ended commands
// and runs are kept only up to the retention limits (retention.go).
func (w *workspace) info() messages.WorkspaceInfo {
	alive, total := w.counts()
	wi := messages.WorkspaceInfo{
		ID:             w.id,
		Spec:           *w.spec,
		CreatedAt:      w.created,
		Deadline:       w.reaper.Deadline(),
		CommandsAlive:  alive,
		CommandsTotal:  total,
		PipelinesTotal: len(w.pipes),
	}
	if w.group != nil {
		wi.LimitsBackend = w.group.Source()
	}
	if n := len(w.history); n > 0 {
		s := w.history[n-1]
		wi.Stats = &s
	}
	return wi
}

func (w *workspace) commandInfos() []messages.CommandInfo {
	out := make([]messages.CommandInfo, 0, len(w.order))
	for _, id := range w.order {
		c := w.cmds[id]
		info := c.info
		if c.logw != nil {
			info.LogDroppedBytes = c.logw.Dropped()
		}
		out = append(out, info)
	}
	return out
}

func (w *workspace) openLogs(m *OpenLogs) {
	if run, node, ok := strings.Cut(m.Command, "/"); ok {
		// A pipeline node: "<run ID or pipeline label>/<node>".
		ref := w.findPipeline(run)
		if ref == nil {
			m.Reply.Fail(fmt.Errorf("pipeline %q in workspace %s: %w", run, w.spec.Label, messages.ErrNotFound))
			return
		}
		ring, ok := ref.rings[node]
		if !ok {
			m.Reply.Fail(fmt.Errorf("node %q of pipeline %s: %w", node, ref.info.Label, messages.ErrNotFound))
			return
		}
		m.Reply.OK(LogHandle{Command: messages.CommandInfo{ID: ref.info.ID + "/" + node, Workspace: w.id, Label: ref.info.Label + "/" + node},
			Ring: ring, Path: w.logPath(ref.info.Label + "/" + node)})
		return
	}
	c := w.findCommand(m.Command)
	if c == nil {
		m.Reply.Fail(fmt.Errorf("command %q in workspace %s: %w", m.Command, w.spec.Label, messages.ErrNotFound))
		return
	}
	m.Reply.OK(LogHandle{Command: c.info, Ring: c.ring, Path: w.logPath(c.info.Label)})
}

// logPath is the log file of a command label or "pipeline/node"; "" when
// the engine keeps no log files.
func (w *workspace) logPath(name string) string {
	if w.rt.LogDir == "" {
		return ""
	}
	return filepath.Join(append([]string{w.rt.LogDir, w.id}, strings.Split(name, "/")...)...) + ".log"
}

func (w *workspace) findCommand(ref string) *command {
	if c, ok := w.cmds[ref]; ok {
		return c
	}
	if id, ok := w.byLabel[ref]; ok {
		return w.cmds[id]
	}
	if up := strings.ToUpper(ref); up != ref {
		if c, ok := w.cmds[up]; ok {
			return c
		}
	}
	return nil
}
