// This file is how a workspace runs a command: exec's checks in a goroutine,
// the spawn with its output pipes and pumps, the command's log file, and
// what follows a run's end (restart, backoff, reap).

package actors

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
)

// exec validates, resolves and starts a new command. The reply waits for
// the process to have started.
func (w *workspace) exec(m *ExecCommand) {
	if w.removing != nil {
		m.Reply.Fail(fmt.Errorf("workspace %s is being removed: %w", w.spec.Label, messages.ErrConflict))
		return
	}
	ref := m.Command
	if err := ref.ValidateIn(w.spec); err != nil {
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
	if err := w.checkDependsOn(&ref); err != nil {
		m.Reply.Fail(err)
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
		decl:      newDecl(&ref),
	}
	// The command is listed (starting) from now on; resolving its path,
	// checking allow_exec and opening its log file run in a goroutine.
	put(&w.cmds, id, c)
	w.undeclare(id) // listed as a command from now on
	w.order = append(w.order, id)
	put(&w.byLabel, ref.Label, id)
	rt, self, allow := w.rt, w.self, w.spec.Permissions.AllowExec
	exec, have := ref.Payload.Native.Exec, w.logs[ref.Label]
	lf := w.logFile(ref.Label)
	rt.Go(func() {
		m := &execResolved{rt: rt, to: self, cmd: id, logw: have}
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
		rt.sendHeld(self, m)
	})
}

// execResolved carries the checks of a new command back to its workspace:
// its resolved path and its log file, or why it cannot start.
type execResolved struct {
	rt     *Runtime
	to     *actor.PID // the workspace actor
	cmd    string
	path   string
	logw   *logfile.Writer
	opened bool // logw was opened for this command
	err    error
}

// fail handles a result that reaches a workspace already gone (or whose
// handling panicked before the workspace took it): the file it opened is
// closed.
func (m *execResolved) fail(err error) { m.rt.failHeld(m.to, m, err) }

// release closes the file the result opened.
func (m *execResolved) release(error) {
	if m.opened {
		m.rt.closeLog(m.logw)
	}
}

func (w *workspace) onExecResolved(m *execResolved) {
	if !w.rt.take(w.self, m) {
		return // released already
	}
	c, ok := w.cmds[m.cmd]
	if !ok || !c.resolving {
		m.release(nil)
		return
	}
	c.resolving = false
	err := m.err
	if err == nil && w.removing != nil {
		err = fmt.Errorf("workspace %s is being removed: %w", w.spec.Label, messages.ErrConflict)
	}
	if err != nil {
		m.release(nil)
		c.pending.Fail(err)
		if s := c.stop; s != nil {
			if s.cancel != nil {
				s.cancel()
			}
			for _, r := range s.replies {
				r.Fail(err)
			}
			for _, f := range s.done {
				f()
			}
		}
		w.forget(c)
		c.ring.Close()
		return
	}
	c.path = m.path
	if m.logw != nil {
		if lw, ok := w.logs[c.info.Label]; ok && lw != m.logw {
			m.release(nil) // another command of this label opened it meanwhile
			m.logw = lw
		}
		put(&w.logs, c.info.Label, m.logw)
	}
	c.logw = m.logw
	w.launch(c)
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
	rt, self, readers := w.rt, w.self, &w.readers
	oc, _ := w.group.(limits.OOMCounter)
	rt.Go(func() {
		oomBefore, oomOK := oomKills(oc)
		var drained pumps
		p, err := spawnWithOutput(rt, spec, out, readers, &drained)
		if err != nil {
			rt.send(self, &spawned{cmd: id, gen: gen, err: err})
			return
		}
		rt.sendHeld(self, &spawned{rt: rt, to: self, cmd: id, gen: gen, proc: p})
		st := p.Wait()
		m := &exited{cmd: id, gen: gen, pid: p.Pid, status: st, at: rt.now()}
		if st.Signal == unix.SIGKILL && oomOK {
			n, ok := oomKills(oc)
			m.oom, m.oomCount = ok && n > oomBefore, n
		}
		drained.wait(outputDrainWait)
		m.groupGone = len(deadGroups([]int{p.Pid})) == 1
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
// by goroutines of rt that drained counts.
func spawnWithOutput(rt *Runtime, spec proc.Spec, out output, readers *readerSet, drained *pumps) (*proc.Process, error) {
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
	drained.run(rt, outR, messages.Stdout, out, readers)
	drained.run(rt, errR, messages.Stderr, out, readers)
	return p, nil
}

// outputDrainWait bounds how long a process's exit is held back for its
// output to be read to the end. The exit is reported once its pumps reach
// EOF, so a reader who sees "exited" finds the last lines in the logs; a
// child that left a writer behind (a daemonized grandchild keeping stdout)
// delays it by at most this much, as os/exec's WaitDelay does.
const outputDrainWait = time.Second

// pumps counts the output pumps of one process, so that its exit can wait
// for them. Its zero value is ready to use.
type pumps struct{ wg sync.WaitGroup }

// run starts a pump of r into out in a goroutine of rt.
func (d *pumps) run(rt *Runtime, r *os.File, s messages.Stream, out output, readers *readerSet) {
	d.wg.Add(1)
	rt.Go(func() {
		defer d.wg.Done()
		pump(r, s, out, rt.now)
		readers.remove(r)
	})
}

// wait returns once every pump reached EOF, or after max.
func (d *pumps) wait(max time.Duration) {
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
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
// a stopping workspace can end readers whose writers escaped the kill. Its
// zero value is ready to use.
type readerSet struct {
	mu sync.Mutex
	fs map[*os.File]struct{} // made on first add
}

func newReaderSet() *readerSet { return &readerSet{fs: make(map[*os.File]struct{})} }

func (r *readerSet) add(f *os.File) {
	r.mu.Lock()
	setOf(&r.fs, f)
	r.mu.Unlock()
}

func (r *readerSet) remove(f *os.File) {
	r.mu.Lock()
	delete(r.fs, f)
	r.mu.Unlock()
}

// closeAll closes every read end from a goroutine of rt; their readers
// return.
func (r *readerSet) closeAll(rt *Runtime) {
	r.mu.Lock()
	fs := slices.Collect(maps.Keys(r.fs))
	clear(r.fs)
	r.mu.Unlock()
	rt.closeFiles(fs...)
}

// output is where a process's output goes: its in-memory ring and, when
// the engine keeps log files, its log file.
type output struct {
	ring *logring.Ring
	file *logfile.Writer
}

// pump copies a process's output stream into its ring and its log file
// until EOF. Writing the file waits at most LogWait for room in the
// Writer's queue (the process blocks on its pipe meanwhile, as with a
// plain file); past that the Writer drops and counts.
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
	pool := &pumpBuffers
	full := 0 // reads in a row that filled the buffer
	grown := false
	defer func() {
		if grown {
			grownPipes.Add(-1)
		}
	}()
	for {
		var (
			n    int
			rerr error
			bp   *[]byte
		)
		// An error of rc.Read itself means the read end was closed under
		// the pump (a stopping workspace ends its readers).
		cerr := rc.Read(func(fd uintptr) bool {
			bp = pool.Get().(*[]byte)
			n, rerr = unix.Read(int(fd), *bp)
			if errors.Is(rerr, unix.EAGAIN) {
				pool.Put(bp)
				bp = nil
				return false // wait for the poller
			}
			if n == len(*bp) && pool == &pumpBuffers {
				// A flood: after a few full reads, the pipe grows to
				// 1 MiB (as the splitter's do) and reads get larger, so
				// the writer blocks and the pump wakes less often. A
				// quiet command's pipe never grows. The kernel may
				// refuse (a user over pipe-user-pages-soft): then it
				// stays as it is.
				if full++; full == floodReads && grownPipes.Add(1) <= maxGrownPipes {
					if _, err := unix.FcntlInt(fd, unix.F_SETPIPE_SZ, floodPipeSize); err == nil {
						grown = true
					} else {
						grownPipes.Add(-1)
					}
				} else if full == floodReads {
					grownPipes.Add(-1)
				}
			} else {
				full = 0
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
			pool.Put(bp)
		}
		if full >= floodReads && pool == &pumpBuffers {
			pool = &floodBuffers
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

// pumpBuffers recycles the pumps' read buffers between reads;
// floodBuffers, larger, serve the pumps of a flooding command.
var (
	pumpBuffers  = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}
	floodBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}
)

// A pump whose reads fill its buffer floodReads times in a row grows its
// pipe to floodPipeSize.
const (
	floodReads    = 4
	floodPipeSize = 1 << 20
)

// grownPipes counts the pipes grown now; maxGrownPipes bounds them for a
// daemon without root: the kernel counts a user's pipe pages, and past
// pipe-user-pages-soft (64 MiB by default) every new pipe of that user
// gets 2 pages and no growth. 16 grown pipes stay at a quarter of that.
var (
	grownPipes    atomic.Int64
	maxGrownPipes = func() int64 {
		if os.Geteuid() == 0 {
			return 1 << 30 // exempt from the per-user limit
		}
		return 16
	}()
)

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

// fail handles a run whose workspace is gone (or whose handling panicked
// before the workspace took it): its process group is killed.
func (m *spawned) fail(err error) {
	if m.proc != nil {
		m.rt.failHeld(m.to, m, err)
	}
}

// release kills the run's process group (from a goroutine: it may run in
// a Receive); its wait still reaps it.
func (m *spawned) release(error) { m.rt.killGroups(m.proc.Pid) }

func (w *workspace) onSpawned(ctx actor.Context, m *spawned) {
	if m.proc != nil && !w.rt.take(w.self, m) {
		return // released already: its group was killed
	}
	c, ok := w.cmds[m.cmd]
	if !ok || c.gen != m.gen {
		if m.err == nil && m.proc != nil {
			// The command was forgotten (or moved on) while this run was
			// being spawned: nothing supervises it, so it must not live.
			pgid := m.proc.Pid
			w.rt.Go(func() { _ = proc.KillGroup(pgid, unix.SIGKILL) })
		}
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
		w.logger().Warn("restart failed", zap.String("command", c.info.Label), zap.Error(m.err))
		w.afterRun(c, proc.ExitStatus{Code: -1, Err: m.err}, 0)
		return
	}
	c.proc = m.proc
	c.sup.Spawned()
	setOf(&w.pgids, m.proc.Pid)
	setOf(&w.live, m.proc.Pid)
	c.info.Pid = m.proc.Pid
	c.info.StartedAt = m.proc.Started
	c.info.ExitCode, c.info.Signal, c.info.Error = nil, "", ""
	w.reaper.Ran()
	kind := messages.EventStarted
	if !first && c.decl.ran && c.decl.sched == nil {
		kind = messages.EventRestarted
	}
	w.rt.publish(messages.Event{Kind: kind, Workspace: w.id, Label: w.spec.Label, Command: c.info.Label,
		Message: "pid " + strconv.Itoa(c.info.Pid) + c.startNote()})
	w.runUp(c) // the state: running, or starting until a ready probe passes
	w.tellSampler(ctx)
	if c.pending.IsSet() {
		if c.info.Spec.Supervision.Restart != nil && !c.restored {
			// Declared state: answer once a snapshot holding it is durable.
			w.commitStart(c, c.pending)
		} else {
			w.publishView() // a list after the answer counts the command
			c.pending.OK(c.info)
		}
		c.pending = Reply[messages.CommandInfo]{}
	}
	c.restarting = false
	c.restored = false
	if w.removing != nil {
		w.rt.killGroups(c.proc.Pid)
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
	w.prunePgids(m)
	c.info.ExitedAt = m.at
	c.info.Pid = 0
	c.proc = nil
	w.runDown(c)
	c.info.KilledBy = ""
	if m.oom && m.oomCount <= w.oomAttributed {
		m.oom = false // that kill went to a process that exited before this one
	}
	switch {
	case m.oom:
		w.oomAttributed = m.oomCount
		c.info.KilledBy = "oom"
		c.info.Error = "killed by the kernel's OOM killer (memory_max_bytes reached)"
		w.logger().Warn("command killed by the OOM killer", zap.String("command", c.info.Label))
		w.rt.publish(messages.Event{Kind: messages.EventOOMKill, Workspace: w.id, Label: w.spec.Label,
			Command: c.info.Label, Message: "killed by the kernel's OOM killer"})
	case c.sup.KilledByQuota(int(m.status.Signal)):
		c.info.KilledBy = "quota"
	}
	w.rt.publish(messages.Event{Kind: messages.EventExited, Workspace: w.id, Label: w.spec.Label,
		Command: c.info.Label, Message: m.status.String()})
	w.afterRun(c, m.status, ran)
}

// pgidsGone names process groups found with no member left.
type pgidsGone struct{ dead []int }

// deadGroups returns the groups of pgids with no member left (kill(2)
// with signal 0: a system call, so goroutines call it, not a Receive).
func deadGroups(pgids []int) []int {
	var dead []int
	for _, pg := range pgids {
		if err := unix.Kill(-pg, 0); errors.Is(err, unix.ESRCH) {
			dead = append(dead, pg)
		}
	}
	return dead
}

// prunePgids forgets the group of a process that exited if its exit found
// no member left, and every empty group once the set has grown (so a
// recycled group ID is not signalled later, and the cost per exit stays
// constant); that check runs in a goroutine and answers with pgidsGone.
func (w *workspace) prunePgids(m *exited) {
	if m.groupGone {
		delete(w.pgids, m.pid)
	}
	w.exitsSincePrune++
	if len(w.pgids) < 64 || int(w.exitsSincePrune) < len(w.pgids) {
		return
	}
	w.exitsSincePrune = 0
	check := slices.Collect(maps.Keys(w.pgids))
	rt, self := w.rt, w.self
	rt.Go(func() {
		if dead := deadGroups(check); len(dead) > 0 {
			rt.send(self, &pgidsGone{dead: dead})
		}
	})
}

// forgetGroups forgets the groups found empty, except one that a live
// process leads again (its ID was recycled since the check).
func (w *workspace) forgetGroups(m *pgidsGone) {
	for _, pg := range m.dead {
		if _, live := w.live[pg]; !live {
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
	// A run killed for failing its health probe failed, even if it
	// exited 0 on its stop signal: on-failure policies restart it.
	d := c.sup.Exited(supervise.Exit{Code: st.Code, Signal: int(st.Signal), Failed: st.Err != nil || c.decl.unhealthy, Ran: ran})
	switch d.Action {
	case supervise.Done, supervise.Stopped:
		c.info.State = messages.CommandExited
		if !d.Success {
			c.info.State = messages.CommandFailed
		}
		w.declaredEnded(c, d.Success)
		w.maybeReap()
	case supervise.GiveUp:
		c.info.State = messages.CommandFailed
		c.info.GaveUp = true
		c.info.StopReason = messages.StopGaveUp
		w.logger().Warn("command gave up", zap.String("command", c.info.Label), zap.Int("restarts", c.info.Restarts))
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
