// This file is the workspace actor: it owns one workspace's spec, its
// commands (spawned, watched, restarted with backoff), its TTL timer, its
// stats history and its limits group. It receives the routed requests of
// protocol.go and its own internal messages (spawned, exited, restartDue,
// ttlExpired, terminated); it sends events to the hub and tells the engine
// when it is gone. Blocking work (spawning, waiting, reading pipes, killing
// with a grace period) runs in goroutines it starts, which report back by
// message.

package actors

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

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

	rt      *Runtime
	id      string
	spec    messages.WorkspaceSpec
	created time.Time
	group   limits.Group // nil without a limits backend
	// oomAttributed is the cgroup's OOM kill count already reported on a
	// command: one kill is never reported twice.
	oomAttributed uint64
	self          *actor.PID
	engine        *actor.PID
	log           *zap.Logger

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
	pgids           map[int]struct{}
	live            map[int]struct{} // pids of the commands running now
	exitsSincePrune int
	readers         *readerSet

	cancelTTL func()
	removing  *removal
	// reaper decides TTL expiry and reaping; quota decides quota_enforce.
	reaper *supervise.Reaper
	quota  *supervise.Quota
	// retainAt is when the retention timer fires; zero when none is armed.
	retainAt     time.Time
	cancelRetain func()

	rootsSent    bool // the sampler has had this workspace's roots once
	rootsPending bool // a flushRoots is scheduled
	cancelRoots  func()
}

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
}

// declared reports whether c belongs in the state file: a supervised
// command that has not ended, is not being stopped for good, and whose
// start was not refused.
func (c *command) declared() bool {
	return c.info.Spec.Supervision.Restart != nil && !c.info.State.Ended() && !c.undo &&
		(c.stop == nil || c.stop.keep)
}

// Internal messages.
type (
	spawned struct {
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

func newWorkspaceProps(rt *Runtime, id string, spec messages.WorkspaceSpec, group limits.Group) *actor.Props {
	created, err := messages.IDTime(id)
	if err != nil {
		created = rt.now()
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &workspace{
			rt:      rt,
			id:      id,
			spec:    spec,
			created: created,
			group:   group,
			reaper:  supervise.NewReaper(spec.OnExit, supervise.Deadline(created, spec.TTLMs)),
			quota:   supervise.NewQuota(spec.QuotaEnforce, spec.Soma),
			log:     rt.Log.With(zap.String("workspace", id), zap.String("label", spec.Label)),
			cmds:    make(map[string]*command),
			byLabel: make(map[string]string),
			pipes:   make(map[string]*pipelineRef),
			pgids:   make(map[int]struct{}),
			live:    make(map[int]struct{}),
			readers: newReaderSet(),
			logs:    make(map[string]*logfile.Writer),
		}
	}, rt.mailbox(KindWorkspace))
}

func (w *workspace) Receive(ctx actor.Context) {
	bindSender(ctx)
	testPanic(KindWorkspace, ctx.Message())
	switch m := ctx.Message().(type) {
	case *Result[struct{}]:
		w.onCommitted(m)
	case *actor.Started:
		w.self, w.engine = ctx.Self(), ctx.Parent()
		if d, ok := w.reaper.TTLTimer(w.rt.now()); ok {
			w.cancelTTL = w.rt.after(d, w.self, &ttlExpired{})
		}
		w.tellSampler(ctx)
	case *actor.Stopping:
		if w.rt.Sampler != nil {
			ctx.Send(w.rt.Sampler, &samplerForget{id: w.id})
		}
		w.stopping()
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
		if len(w.history) > HistorySize {
			w.history = w.history[len(w.history)-HistorySize:]
		}
	case *Reading:
		w.onReading(m)
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
	case *exited:
		w.onExited(m)
		w.tellSampler(ctx)
		w.retain(ctx)
	case *restartDue:
		w.onRestartDue(m)
	case *ttlExpired:
		if w.reaper.TTLExpired() {
			w.log.Info("workspace TTL expired")
			w.remove(ctx, 0, messages.EventExpired, Reply[messages.WorkspaceInfo]{})
		}
	case *retentionDue:
		w.retainAt, w.cancelRetain = time.Time{}, nil
		w.retain(ctx)
	case *terminated:
		w.onTerminated(ctx, m)
	default:
		w.receivePipelineMessage(ctx, m)
	}
}

// info builds the workspace's view. Its walk is bounded: ended commands
// and runs are kept only up to the retention limits (retention.go).
func (w *workspace) info() messages.WorkspaceInfo {
	alive, total := 0, len(w.cmds)
	for _, c := range w.cmds {
		if !c.info.State.Ended() {
			alive++
		}
	}
	for _, p := range w.pipes {
		alive += p.aliveNodes()
		total += len(p.info.Nodes)
	}
	wi := messages.WorkspaceInfo{
		ID:             w.id,
		Spec:           w.spec,
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

// exec validates, resolves and starts a new command. The reply waits for
// the process to have started.
func (w *workspace) exec(m *ExecCommand) {
	if w.removing != nil {
		m.Reply.Fail(fmt.Errorf("workspace %s is being removed: %w", w.spec.Label, messages.ErrConflict))
		return
	}
	ref := m.Command
	if err := ref.ValidateIn(&w.spec); err != nil {
		m.Reply.Fail(err)
		return
	}
	env := buildEnv(w.spec.Permissions.Env, ref.Payload.Native.Envp)
	if ref.Label == "" {
		// Resolve keeps the base name of exec (it cleans, never follows
		// links), so the label is known before the path is.
		ref.Label = w.freeLabel(filepath.Base(filepath.Clean(ref.Payload.Native.Exec)))
	} else if old, ok := w.byLabel[ref.Label]; ok && !w.cmds[old].info.State.Ended() {
		m.Reply.Fail(fmt.Errorf("command %q is already running in workspace %s: %w", ref.Label, w.spec.Label, messages.ErrConflict))
		return
	}
	id := messages.NewID()
	if m.ID != "" {
		id = m.ID
		if _, taken := w.cmds[id]; taken {
			m.Reply.Fail(fmt.Errorf("command ID %s is taken: %w", id, messages.ErrConflict))
			return
		}
	}
	c := &command{
		restored: m.ID != "",
		info: messages.CommandInfo{
			ID: id, Workspace: w.id, Label: ref.Label, Spec: ref, State: messages.CommandStarting,
		},
		env:       env,
		sup:       supervise.New(supervise.CommandPolicy(ref.Supervision.Restart, ref.SuccessExitCodes), w.rt.now),
		ring:      logring.New(w.rt.LogRingBytes),
		pending:   m.Reply,
		resolving: true,
	}
	// The command is listed (starting) from now on; resolving its path,
	// checking allow_exec and opening its log file run in a goroutine.
	w.cmds[id] = c
	w.order = append(w.order, id)
	w.byLabel[ref.Label] = id
	rt, self, allow := w.rt, w.self, w.spec.Permissions.AllowExec
	exec, have := ref.Payload.Native.Exec, w.logs[ref.Label]
	lf := w.logFile(ref.Label)
	rt.Go(func() {
		m := &execResolved{rt: rt, cmd: id, logw: have}
		m.path, m.err = proc.Resolve(exec, env)
		if m.err != nil {
			m.err = &messages.FieldError{Field: "payload.native.exec", Message: m.err.Error()}
		} else if err := proc.CheckAllowed(m.path, allow); err != nil {
			m.err = fmt.Errorf("%w: %w", messages.ErrRefused, &messages.FieldError{Field: "payload.native.exec", Message: err.Error()})
		} else if have == nil {
			lw, err := lf.open()
			if err != nil {
				m.err = fmt.Errorf("open the log file of %s: %w", ref.Label, err)
			}
			m.logw, m.opened = lw, lw != nil
		}
		rt.send(self, m)
	})
}

// execResolved carries the checks of a new command back to its workspace:
// its resolved path and its log file, or why it cannot start.
type execResolved struct {
	rt     *Runtime
	cmd    string
	path   string
	logw   *logfile.Writer
	opened bool // logw was opened for this command
	err    error
}

// fail handles a result that reaches a workspace already gone: the file
// it opened is closed.
func (m *execResolved) fail(error) {
	if m.opened {
		m.rt.closeLog(m.logw)
	}
}

func (w *workspace) onExecResolved(m *execResolved) {
	c, ok := w.cmds[m.cmd]
	if !ok || !c.resolving {
		m.fail(nil)
		return
	}
	c.resolving = false
	err := m.err
	if err == nil && w.removing != nil {
		err = fmt.Errorf("workspace %s is being removed: %w", w.spec.Label, messages.ErrConflict)
	}
	if err != nil {
		m.fail(nil)
		c.pending.Fail(err)
		if s := c.stop; s != nil {
			if s.cancel != nil {
				s.cancel()
			}
			for _, r := range s.replies {
				r.Fail(err)
			}
		}
		w.forget(c)
		c.ring.Close()
		return
	}
	c.path = m.path
	if m.logw != nil {
		if lw, ok := w.logs[c.info.Label]; ok && lw != m.logw {
			m.fail(nil) // another command of this label opened it meanwhile
			m.logw = lw
		}
		w.logs[c.info.Label] = m.logw
	}
	c.logw = m.logw
	w.start(c)
}

// freeLabel derives a unique label from base.
func (w *workspace) freeLabel(base string) string {
	var b strings.Builder
	for _, r := range base {
		if r < 128 && (r == '.' || r == '_' || r == '-' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
			b.WriteRune(r)
		}
	}
	label := b.String()
	if len(label) > 56 {
		label = label[:56]
	}
	if messages.ValidateLabel(label) != nil {
		label = "cmd"
	}
	candidate := label
	for i := 2; ; i++ {
		if _, taken := w.byLabel[candidate]; !taken {
			return candidate
		}
		candidate = fmt.Sprintf("%s-%d", label, i)
	}
}

// buildEnv makes a command's whole environment: the workspace's env, the
// command's envp on top, and a default PATH when neither sets one.
func buildEnv(base map[string]string, envp []string) []string {
	vals := make(map[string]string, len(base)+len(envp)+1)
	var keys []string
	set := func(k, v string) {
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	bk := make([]string, 0, len(base))
	for k := range base {
		bk = append(bk, k)
	}
	sort.Strings(bk)
	for _, k := range bk {
		set(k, base[k])
	}
	for _, e := range envp {
		k, v, _ := strings.Cut(e, "=")
		set(k, v)
	}
	if _, ok := vals["PATH"]; !ok {
		set("PATH", messages.DefaultPath)
	}
	env := make([]string, 0, len(keys))
	for _, k := range keys {
		env = append(env, k+"="+vals[k])
	}
	return env
}

// spawnSpec builds what proc needs for one process of this workspace.
func (w *workspace) spawnSpec(path string, args, env []string, soma messages.Soma) proc.Spec {
	spec := proc.Spec{
		Path:      path,
		Args:      args,
		Env:       env,
		Dir:       w.spec.Permissions.Workdir,
		AllowExec: w.spec.Permissions.AllowExec,
	}
	if p := w.spec.Permissions; p.UID != nil || p.GID != nil {
		cred := &proc.Credential{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
		if p.UID != nil {
			cred.UID = uint32(*p.UID)
		}
		if p.GID != nil {
			cred.GID = uint32(*p.GID)
		}
		spec.Credential = cred
	}
	if w.group != nil {
		spec.Placement = w.group.Placement()
		spec.Rlimits = append(spec.Rlimits, w.group.Rlimits()...)
	} else if n := w.spec.Soma.NofileMax; n > 0 {
		spec.Rlimits = append(spec.Rlimits, proc.Rlimit{Resource: unix.RLIMIT_NOFILE, Cur: uint64(n), Max: uint64(n)})
	}
	if n := soma.NofileMax; n > 0 {
		spec.Rlimits = setRlimit(spec.Rlimits, proc.Rlimit{Resource: unix.RLIMIT_NOFILE, Cur: uint64(n), Max: uint64(n)})
	}
	return spec
}

func setRlimit(rs []proc.Rlimit, r proc.Rlimit) []proc.Rlimit {
	out := rs[:0:0]
	for _, x := range rs {
		if x.Resource != r.Resource {
			out = append(out, x)
		}
	}
	return append(out, r)
}

// start launches a run of c in a goroutine; the result comes back as a
// spawned message.
func (w *workspace) start(c *command) {
	c.gen++
	c.info.State = messages.CommandStarting
	c.info.NextStartAt = time.Time{}
	gen, id := c.gen, c.info.ID
	n := c.info.Spec.Payload.Native
	spec := w.spawnSpec(c.path, n.Argv, c.env, c.info.Spec.Soma)
	out := output{ring: c.ring, file: c.logw}
	c.sup.Start()
	rt, self, readers := w.rt, w.self, w.readers
	oc, _ := w.group.(limits.OOMCounter)
	rt.Go(func() {
		oomBefore, oomOK := oomKills(oc)
		p, err := spawnWithOutput(rt, spec, out, readers)
		rt.send(self, &spawned{cmd: id, gen: gen, proc: p, err: err})
		if err != nil {
			return
		}
		st := p.Wait()
		m := &exited{cmd: id, gen: gen, pid: p.Pid, status: st, at: rt.now()}
		if st.Signal == unix.SIGKILL && oomOK {
			n, ok := oomKills(oc)
			m.oom, m.oomCount = ok && n > oomBefore, n
		}
		rt.send(self, m)
	})
}

// oomKills reads the OOM kill count of a workspace's cgroup (file I/O: call
// it from a goroutine); ok is false without one.
func oomKills(oc limits.OOMCounter) (uint64, bool) {
	if oc == nil {
		return 0, false
	}
	n, ok, err := oc.OOMKills()
	return n, ok && err == nil
}

// spawnWithOutput starts spec with stdout and stderr piped into ring, read
// by goroutines of rt.
func spawnWithOutput(rt *Runtime, spec proc.Spec, out output, readers *readerSet) (*proc.Process, error) {
	outR, outW, err := outputPipe()
	if err != nil {
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	errR, errW, err := outputPipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	spec.Stdout, spec.Stderr = outW, errW
	p, err := rt.Spawner.Start(spec)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	readers.add(outR)
	readers.add(errR)
	rt.Go(func() { pump(outR, messages.Stdout, out, rt.now); readers.remove(outR) })
	rt.Go(func() { pump(errR, messages.Stderr, out, rt.now); readers.remove(errR) })
	return p, nil
}

// outputPipe makes a pipe for a child's output: the read end non-blocking
// for the runtime's poller, the write end blocking and never registered
// with the poller (the child inherits it; we only close it).
func outputPipe() (r, w *os.File, err error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "|0"), os.NewFile(uintptr(fds[1]), "|1"), nil
}

// readerSet holds the read ends of output pipes still being read, so that
// a stopping workspace can end readers whose writers escaped the kill.
type readerSet struct {
	mu sync.Mutex
	fs map[*os.File]struct{}
}

func newReaderSet() *readerSet { return &readerSet{fs: make(map[*os.File]struct{})} }

func (r *readerSet) add(f *os.File) {
	r.mu.Lock()
	r.fs[f] = struct{}{}
	r.mu.Unlock()
}

func (r *readerSet) remove(f *os.File) {
	r.mu.Lock()
	delete(r.fs, f)
	r.mu.Unlock()
}

// closeAll closes every read end; their readers return.
func (r *readerSet) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for f := range r.fs {
		f.Close()
		delete(r.fs, f)
	}
}

// output is where a process's output goes: its in-memory ring and, when
// the engine keeps log files, its log file.
type output struct {
	ring *logring.Ring
	file *logfile.Writer
}

// pump copies a process's output stream into its ring and its log file
// until EOF. Writing the file never blocks (the Writer drops and counts
// when the disk does not keep up), so the process is never slowed.
//
// The read buffer is taken from a pool only once the pipe is readable and
// given back after each read: a quiet process, the common case for a
// long-running service, holds no buffer while its pumps wait.
func pump(r *os.File, s messages.Stream, out output, now func() time.Time) {
	defer r.Close()
	rc, err := r.SyscallConn()
	if err != nil {
		out.ring.Note(s, now(), "[shipote: read error: "+err.Error()+"]")
		out.ring.Flush(s, now())
		return
	}
	for {
		var (
			n    int
			rerr error
			bp   *[]byte
		)
		// An error of rc.Read itself means the read end was closed under
		// the pump (a stopping workspace ends its readers).
		cerr := rc.Read(func(fd uintptr) bool {
			bp = pumpBuffers.Get().(*[]byte)
			n, rerr = unix.Read(int(fd), *bp)
			if errors.Is(rerr, unix.EAGAIN) {
				pumpBuffers.Put(bp)
				bp = nil
				return false // wait for the poller
			}
			return true
		})
		if n > 0 && bp != nil {
			t := now()
			out.ring.Write(s, t, (*bp)[:n])
			if out.file != nil {
				out.file.Write(string(s), t, (*bp)[:n])
			}
		}
		if bp != nil {
			pumpBuffers.Put(bp)
		}
		switch {
		case cerr != nil:
		case errors.Is(rerr, unix.EINTR):
			continue
		case rerr != nil:
			out.ring.Note(s, now(), "[shipote: read error: "+rerr.Error()+"]")
		case n > 0:
			continue
		}
		out.ring.Flush(s, now()) // EOF, closed or failed
		return
	}
}

// pumpBuffers recycles the pumps' read buffers between reads.
var pumpBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// logWriter returns the log file of a command label (or "pipeline/node")
// already open; nil when there is none yet or without log files.
func (w *workspace) logWriter(name string) *logfile.Writer {
	return w.logs[name]
}

// logFile names a log file to open: a command label or "pipeline/node"
// of a workspace, with the workspace's rotation settings.
type logFile struct {
	rt       *Runtime
	ws, name string
	maxBytes int64
	maxFiles int
}

// logFile describes the log file of a command label or "pipeline/node".
func (w *workspace) logFile(name string) logFile {
	return logFile{rt: w.rt, ws: w.id, name: name, maxBytes: w.spec.LogMaxBytes, maxFiles: w.spec.LogMaxFiles}
}

// open opens (creating) the file; nil without log files. It touches the
// disk: call it from a goroutine, and record the writer in the
// workspace's logs when the result comes back.
func (f logFile) open() (*logfile.Writer, error) {
	return f.rt.openLog(f.ws, f.maxBytes, f.maxFiles, strings.Split(f.name, "/")...)
}

func (w *workspace) onSpawned(ctx actor.Context, m *spawned) {
	c, ok := w.cmds[m.cmd]
	if !ok || c.gen != m.gen {
		return
	}
	first := c.pending.IsSet() && !c.restarting
	if m.err != nil {
		c.info.Error = m.err.Error()
		if c.restarting {
			c.restarting = false
			c.pending.Fail(fmt.Errorf("start %s: %w", c.info.Label, m.err))
			c.pending = Reply[messages.CommandInfo]{}
			c.info.State = messages.CommandFailed
			c.info.StopReason = ""
			w.maybeReap()
			return
		}
		if first {
			// Nothing started: the command does not exist.
			err := fmt.Errorf("start %s: %w", c.info.Label, m.err)
			if errors.Is(m.err, syscall.E2BIG) {
				// Past the checks of messages.CheckArgSize: a small stack limit.
				err = &messages.FieldError{Field: "payload.native.argv",
					Message: fmt.Sprintf("start %s: argv and environment too large for the kernel (E2BIG)", c.info.Label)}
			}
			c.pending.Fail(err)
			w.forget(c)
			return
		}
		w.log.Warn("restart failed", zap.String("command", c.info.Label), zap.Error(m.err))
		w.afterRun(c, proc.ExitStatus{Code: -1, Err: m.err}, 0)
		return
	}
	c.proc = m.proc
	c.sup.Spawned()
	w.pgids[m.proc.Pid] = struct{}{}
	w.live[m.proc.Pid] = struct{}{}
	c.info.State = messages.CommandRunning
	c.info.Pid = m.proc.Pid
	c.info.StartedAt = m.proc.Started
	c.info.ExitCode, c.info.Signal, c.info.Error = nil, "", ""
	w.reaper.Ran()
	kind := messages.EventStarted
	if !first {
		kind = messages.EventRestarted
	}
	w.rt.publish(messages.Event{Kind: kind, Workspace: w.id, Label: w.spec.Label, Command: c.info.Label,
		Message: "pid " + strconv.Itoa(c.info.Pid)})
	w.tellSampler(ctx)
	if c.pending.IsSet() {
		if c.info.Spec.Supervision.Restart != nil && !c.restored {
			// Declared state: answer once a snapshot holding it is durable.
			w.commitStart(c, c.pending)
		} else {
			c.pending.OK(c.info)
		}
		c.pending = Reply[messages.CommandInfo]{}
	}
	c.restarting = false
	c.restored = false
	if w.removing != nil {
		_ = proc.KillGroup(c.proc.Pid, unix.SIGKILL)
	} else if c.stop != nil && c.stop.committed {
		w.sendStop(c) // a stop asked while it was starting
	}
}

// forget drops a command that never started.
func (w *workspace) forget(c *command) {
	delete(w.cmds, c.info.ID)
	for i, id := range w.order {
		if id == c.info.ID {
			w.order = append(w.order[:i], w.order[i+1:]...)
			break
		}
	}
	if w.byLabel[c.info.Label] == c.info.ID {
		delete(w.byLabel, c.info.Label)
		// An older command with the same label keeps it.
		for i := len(w.order) - 1; i >= 0; i-- {
			if w.cmds[w.order[i]].info.Label == c.info.Label {
				w.byLabel[c.info.Label] = w.order[i]
				break
			}
		}
	}
}

func (w *workspace) onExited(m *exited) {
	c, ok := w.cmds[m.cmd]
	if !ok || c.gen != m.gen {
		return
	}
	ran := m.at.Sub(c.info.StartedAt)
	delete(w.live, m.pid)
	w.prunePgids(m.pid)
	c.info.ExitedAt = m.at
	c.info.Pid = 0
	c.proc = nil
	c.info.KilledBy = ""
	if m.oom && m.oomCount <= w.oomAttributed {
		m.oom = false // that kill went to a process that exited before this one
	}
	switch {
	case m.oom:
		w.oomAttributed = m.oomCount
		c.info.KilledBy = "oom"
		c.info.Error = "killed by the kernel's OOM killer (memory_max_bytes reached)"
		w.log.Warn("command killed by the OOM killer", zap.String("command", c.info.Label))
		w.rt.publish(messages.Event{Kind: messages.EventOOMKill, Workspace: w.id, Label: w.spec.Label,
			Command: c.info.Label, Message: "killed by the kernel's OOM killer"})
	case c.sup.KilledByQuota(int(m.status.Signal)):
		c.info.KilledBy = "quota"
	}
	w.rt.publish(messages.Event{Kind: messages.EventExited, Workspace: w.id, Label: w.spec.Label,
		Command: c.info.Label, Message: m.status.String()})
	w.afterRun(c, m.status, ran)
}

// prunePgids forgets the group of a process that exited if no member is
// left, and every empty group once the set has grown (so a recycled group
// ID is not signalled later, and the cost per exit stays constant).
func (w *workspace) prunePgids(pgid int) {
	if err := unix.Kill(-pgid, 0); errors.Is(err, unix.ESRCH) {
		delete(w.pgids, pgid)
	}
	w.exitsSincePrune++
	if len(w.pgids) < 64 || w.exitsSincePrune < len(w.pgids) {
		return
	}
	w.exitsSincePrune = 0
	for pg := range w.pgids {
		if err := unix.Kill(-pg, 0); errors.Is(err, unix.ESRCH) {
			delete(w.pgids, pg)
		}
	}
}

// afterRun records how a run ended and carries out the command's
// Supervisor's decision (supervise.Supervisor: the backoff doubles from
// backoff_ms up to max_backoff_ms and resets after a run longer than
// max_backoff_ms; after max restarts the command gives up).
func (w *workspace) afterRun(c *command, st proc.ExitStatus, ran time.Duration) {
	if st.Signal != 0 {
		c.info.Signal = proc.SignalName(st.Signal)
		c.info.ExitCode = nil
	} else if st.Err == nil {
		code := st.Code
		c.info.ExitCode = &code
	}
	if c.undo {
		w.forget(c)
		c.ring.Close()
		return
	}
	if s := c.stop; s != nil {
		if !s.committed {
			// Ended on its own while the stop's write is under way: the
			// outcome of the write decides.
			s.exit, s.ran = &st, ran
			c.info.State = messages.CommandExited
			if !st.Success() {
				c.info.State = messages.CommandFailed
			}
			return
		}
		c.sup.Exited(supervise.Exit{Code: st.Code, Signal: int(st.Signal), Failed: st.Err != nil, Ran: ran})
		w.finishStop(c)
		return
	}
	d := c.sup.Exited(supervise.Exit{Code: st.Code, Signal: int(st.Signal), Failed: st.Err != nil, Ran: ran})
	switch d.Action {
	case supervise.Done, supervise.Stopped:
		c.info.State = messages.CommandExited
		if !d.Success {
			c.info.State = messages.CommandFailed
		}
		w.maybeReap()
	case supervise.GiveUp:
		c.info.State = messages.CommandFailed
		c.info.GaveUp = true
		c.info.StopReason = messages.StopGaveUp
		w.log.Warn("command gave up", zap.String("command", c.info.Label), zap.Int("restarts", c.info.Restarts))
		w.rt.publish(messages.Event{Kind: messages.EventGaveUp, Workspace: w.id, Label: w.spec.Label,
			Command: c.info.Label, Message: fmt.Sprintf("after %d restarts", c.info.Restarts)})
		w.maybeReap()
	case supervise.Restart:
		c.info.State = messages.CommandBackoff
		c.info.NextStartAt = d.At
		c.cancel = w.rt.after(d.Delay, w.self, &restartDue{cmd: c.info.ID, gen: c.gen})
	}
}

// NextBackoff returns the delay before the next restart and advances streak:
// first<<streak capped at max, with streak reset after a run longer than max.
func NextBackoff(backoffs func() (int64, int64), streak *int, ran time.Duration) time.Duration {
	first, maxMs := backoffs()
	return supervise.NextBackoff(first, maxMs, streak, ran)
}

func (w *workspace) onRestartDue(m *restartDue) {
	c, ok := w.cmds[m.cmd]
	if !ok || c.gen != m.gen || c.info.State != messages.CommandBackoff || c.stop != nil || !c.sup.RestartDue() {
		return
	}
	c.cancel = nil
	c.info.Restarts = c.sup.Restarts()
	w.start(c)
}

// maybeReap removes the workspace under on_exit: reap once at least one
// command has run and nothing is left running or waiting to restart.
func (w *workspace) maybeReap() {
	if !w.reaper.ShouldReap(w.anyAlive) {
		return
	}
	w.log.Info("every command ended; reaping workspace")
	w.rt.send(w.self, &RemoveWorkspace{Workspace: w.id, Reason: messages.EventRemoved})
}

// anyAlive reports whether a command or pipeline run is running or waiting
// to restart.
func (w *workspace) anyAlive() bool {
	for _, c := range w.cmds {
		if !c.info.State.Ended() {
			return true
		}
	}
	for _, p := range w.pipes {
		if !p.info.State.Ended() {
			return true
		}
	}
	return false
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

// remove starts the removal: pipelines stopped, every process group sent
// SIGTERM, then SIGKILL after the grace period, the limits group removed.
func (w *workspace) remove(ctx actor.Context, grace time.Duration, reason messages.EventKind, reply Reply[messages.WorkspaceInfo]) {
	if w.removing != nil {
		if reply.IsSet() {
			w.removing.replies = append(w.removing.replies, reply)
		}
		return
	}
	if grace <= 0 {
		grace = w.rt.Grace
	}
	if reason == "" {
		reason = messages.EventRemoved
	}
	w.reaper.Remove()
	w.removing = &removal{reason: reason, info: w.info()}
	if reply.IsSet() {
		w.removing.replies = append(w.removing.replies, reply)
	}
	if w.cancelTTL != nil {
		w.cancelTTL()
	}
	var pgids []int
	for pg := range w.pgids {
		pgids = append(pgids, pg)
	}
	for _, c := range w.cmds {
		if c.cancel != nil {
			c.cancel()
			c.cancel = nil
		}
		if c.sup.Shutdown() {
			c.info.State = messages.CommandExited
		}
	}
	pipes := w.stopPipelines(ctx, grace)
	group, rt, self, label := w.group, w.rt, w.self, w.spec.Label
	logDir := ""
	if rt.LogDir != "" && reason != reasonShutdown {
		logDir = filepath.Join(rt.LogDir, w.id)
	}
	rt.Go(func() {
		tctx, cancel := context.WithTimeout(context.Background(), grace+10*time.Second)
		defer cancel()
		err := proc.Terminate(tctx, pgids, grace)
		for _, r := range pipes {
			_, _ = r.Wait(tctx) // the stop's outcome is in the run's view
		}
		if group != nil {
			if gerr := group.Remove(tctx); gerr != nil {
				err = errors.Join(err, gerr)
			}
		}
		if logDir != "" {
			// The logs stay readable for the retention period.
			if merr := logfile.MarkRemovedLabel(logDir, label); merr != nil && !errors.Is(merr, os.ErrNotExist) {
				err = errors.Join(err, merr)
			}
		}
		rt.send(self, &terminated{err: err})
	})
}

func (w *workspace) onTerminated(ctx actor.Context, m *terminated) {
	if m.err != nil {
		w.log.Warn("workspace cleanup", zap.Error(m.err))
	}
	r := w.removing
	if r.reason != reasonShutdown && r.reason != reasonUndo {
		w.rt.publish(messages.Event{Kind: r.reason, Workspace: w.id, Label: w.spec.Label})
		w.rt.dirty()
	}
	ctx.Send(w.engine, &workspaceGone{id: w.id, replies: r.replies, info: r.info, undo: r.reason == reasonUndo})
	ctx.Stop(w.self)
}

func (w *workspace) stopping() {
	if w.cancelTTL != nil {
		w.cancelTTL()
	}
	if w.cancelRoots != nil {
		w.cancelRoots()
	}
	if w.cancelRetain != nil {
		w.cancelRetain()
	}
	for pg := range w.pgids {
		// Stopped without a removal: no grace left.
		_ = proc.KillGroup(pg, unix.SIGKILL)
	}
	for _, c := range w.cmds {
		if c.cancel != nil {
			c.cancel()
		}
		if c.pending.IsSet() {
			c.pending.Fail(fmt.Errorf("workspace %s stopped: %w", w.spec.Label, messages.ErrStopped))
		}
		c.ring.Close()
	}
	if group := w.group; w.removing == nil && group != nil {
		w.rt.Go(func() { _ = group.Kill(unix.SIGKILL) })
	}
	// Whatever escaped the kill must not keep our readers waiting.
	w.readers.closeAll()
	for name, lw := range w.logs {
		w.rt.closeLog(lw)
		delete(w.logs, name)
	}
}
