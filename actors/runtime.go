// This file defines Runtime, what every actor of one engine shares: the
// actor system, the process spawner, the limits backend, the event hub, the
// logger and the goroutines the actors own.

package actors

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/askproc"
	"github.com/shipote/shipote/internal/eventhub"
	"github.com/shipote/shipote/internal/limits"
	"github.com/shipote/shipote/internal/logfile"
	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
)

// Runtime is shared by the actors of one engine. Its fields are set before
// the engine actor starts and not changed after.
type Runtime struct {
	System  *actor.ActorSystem
	Spawner *proc.Spawner
	// Limits creates a group per workspace; nil means no kernel limits and
	// no cgroup (process groups and rlimits only).
	Limits limits.Backend
	Events *eventhub.Hub
	Log    *zap.Logger
	// Grace is the default time between SIGTERM and SIGKILL.
	Grace time.Duration
	// LogRingBytes bounds each command's in-memory log (0 = 1 MiB).
	LogRingBytes int
	// Now returns the time; nil = time.Now.
	Now func() time.Time
	// Dirty, when set, is told that declared state changed. The engine
	// routes it to the persistence actor.
	Dirty func()
	// StatsChanged, when set, is told after each sampling pass.
	StatsChanged func()
	// Sampler is the sampler actor; nil = no stats sampling.
	Sampler *actor.PID
	// LogDir holds the log files (<LogDir>/<workspace-id>/<label>.log);
	// "" = output is kept in memory only.
	LogDir string
	// LogMaxBytes and LogMaxFiles are the rotation defaults.
	LogMaxBytes int64
	LogMaxFiles int
	// KeepEnded and KeepEndedFor bound what a workspace remembers of its
	// ended commands and pipeline runs (of each kind, at most KeepEnded,
	// none older than KeepEndedFor); 0 = 100 and 1 h.
	KeepEnded    int
	KeepEndedFor time.Duration
	// Mailboxes counts the messages queued per actor kind.
	Mailboxes Mailboxes
	// Directory maps workspace IDs and labels to their actors. Only the
	// engine actor writes it; callers outside the actor world read it to
	// send a request straight to a workspace.
	Directory Directory
	// Views holds the workspaces' published views, in ID order. Only the
	// engine actor adds and removes workspaces; each workspace actor
	// replaces its own view. Lists read it without asking any actor.
	Views Views
	// viewEnc encodes the views published into Views.
	viewEnc viewEncoder

	// Asks are the reply processes that goroutines of the actors (and
	// the Engine API) wait on for an answer; made on first use.
	Asks     *askproc.Pool
	asksOnce sync.Once

	logMu sync.Mutex
	logs  map[*logfile.Writer]struct{}

	// held are the results on their way to an actor that hold
	// something to release (sendHeld), by the actor's PID Id. An Id is
	// taken again only once its actor has stopped, and so released.
	heldMu sync.Mutex
	held   map[string]map[heldResult]struct{}

	wg sync.WaitGroup
}

// asks returns the runtime's reply processes.
func (rt *Runtime) asks() *askproc.Pool {
	rt.asksOnce.Do(func() {
		if rt.Asks == nil {
			rt.Asks = askproc.New(rt.System)
		}
	})
	return rt.Asks
}

// LogWait is how long a pipe reader waits for room in a full log-file
// queue before the output is dropped (logfile.Options.Wait): a disk that
// stalls for less than that slows the command, as a plain file would,
// rather than losing its output.
const LogWait = time.Second

// openLog opens (creating) a log file of a workspace and registers it for
// ReopenLogs. It returns nil when the engine keeps no log files.
func (rt *Runtime) openLog(wsID string, maxBytes int64, maxFiles int, parts ...string) (*logfile.Writer, error) {
	if rt.LogDir == "" {
		return nil, nil
	}
	if maxBytes == 0 {
		maxBytes = rt.LogMaxBytes
	}
	if maxFiles == 0 {
		maxFiles = rt.LogMaxFiles
	}
	path := filepath.Join(append([]string{rt.LogDir, wsID}, parts...)...) + ".log"
	w, err := logfile.Open(logfile.Options{Path: path, MaxBytes: maxBytes, MaxFiles: maxFiles, Wait: LogWait, Logger: rt.Log})
	if err != nil {
		return nil, err
	}
	rt.logMu.Lock()
	if rt.logs == nil {
		rt.logs = make(map[*logfile.Writer]struct{})
	}
	rt.logs[w] = struct{}{}
	rt.logMu.Unlock()
	return w, nil
}

// closeLog closes a log file in a goroutine (Close waits for its queue to
// reach the file).
func (rt *Runtime) closeLog(w *logfile.Writer) {
	if w == nil {
		return
	}
	rt.logMu.Lock()
	delete(rt.logs, w)
	rt.logMu.Unlock()
	rt.Go(func() { _ = w.Close() })
}

// CloseLogsLeft closes the log files that no workspace holds. Call it
// once every workspace actor has stopped: each closes its own files, and
// the results that carried a file to a workspace that never read them
// were released at its stop (releaseHeld) or as dead letters, so a file
// left here is a bug's, closed rather than leaked. The closes run in
// goroutines of the runtime (WaitGoroutines waits for them).
func (rt *Runtime) CloseLogsLeft() {
	rt.logMu.Lock()
	left := make([]*logfile.Writer, 0, len(rt.logs))
	for w := range rt.logs {
		left = append(left, w)
	}
	rt.logMu.Unlock()
	for _, w := range left {
		rt.closeLog(w)
	}
}

// heldResult is a result, sent to an actor (a workspace, a pipeline) from
// one of its goroutines, that holds something the actor must take over or
// release: open log files, a caller's reply, a spawned process group, a
// run's pipes. release lets it go without blocking (it may run in a
// Receive: files are closed and groups killed from goroutines); fail does
// so unless the actor took it (FailDeadLetter and failPanicked call fail).
type heldResult interface {
	failer
	release(error)
}

// sendHeld sends m to the actor pid and keeps it until the actor takes it
// (take) or stops (releaseHeld). A stopped actor drops the messages left
// in its mailbox unread, with no dead letter, so only the actor's stop can
// tell that m will never be read; one sent after the stop goes to dead
// letters, and its fail finds it held or not.
func (rt *Runtime) sendHeld(pid *actor.PID, m heldResult) {
	rt.hold(pid, m)
	rt.send(pid, m)
}

// hold keeps m for the actor pid until the actor takes it (take) or
// stops (releaseHeld).
func (rt *Runtime) hold(pid *actor.PID, m heldResult) {
	rt.heldMu.Lock()
	if rt.held == nil {
		rt.held = make(map[string]map[heldResult]struct{})
	}
	set := rt.held[pid.Id]
	if set == nil {
		set = make(map[heldResult]struct{})
		rt.held[pid.Id] = set
	}
	set[m] = struct{}{}
	rt.heldMu.Unlock()
}

// askedRequest is a request on its way to a workspace actor. A workspace
// that stops with it still in its mailbox drops it unread (protoactor
// gives no dead letter for those); its stop releases the request with an
// error, so that its caller is answered at once rather than when its
// context ends.
type askedRequest struct{ r protocol.Request }

func (a askedRequest) fail(err error)    { a.r.Fail(err) }
func (a askedRequest) release(err error) { a.r.Fail(err) }

// SendRequest sends the request r to the workspace actor pid, with sender
// as its sender, from outside the actor world (the Engine API). The
// workspace takes it when it arrives (arrived); if it stops first, r
// fails with ErrNotFound.
func (rt *Runtime) SendRequest(pid *actor.PID, r protocol.Request, sender *actor.PID) {
	rt.hold(pid, askedRequest{r})
	rt.System.Root.RequestWithCustomSender(pid, r, sender)
}

// sendRequest is SendRequest from an actor (the engine routing a request
// to its workspace; the request's Reply is bound already).
func (rt *Runtime) sendRequest(ctx actor.Context, pid *actor.PID, r protocol.Request) {
	rt.hold(pid, askedRequest{r})
	ctx.Send(pid, r)
}

// arrived takes msg, when it is a request sent with SendRequest or
// sendRequest, off the list of those on their way to pid: pid is
// reading it (its Receive), or it reached pid after its stop (a dead
// letter, which the dead-letter hook answers).
func (rt *Runtime) arrived(pid *actor.PID, msg any) {
	if r, ok := msg.(protocol.Request); ok {
		rt.take(pid, askedRequest{r})
	}
}

// DeadLetter is for the dead-letter hook: msg reached pid after pid
// stopped. The hook answers it (FailDeadLetter).
func (rt *Runtime) DeadLetter(pid *actor.PID, msg any) { rt.arrived(pid, msg) }

// take hands m over to its actor; false when it was released already (or
// never held).
func (rt *Runtime) take(pid *actor.PID, m heldResult) bool {
	rt.heldMu.Lock()
	defer rt.heldMu.Unlock()
	set := rt.held[pid.Id]
	if _, ok := set[m]; !ok {
		return false
	}
	delete(set, m)
	if len(set) == 0 {
		delete(rt.held, pid.Id)
	}
	return true
}

// failHeld releases m unless its actor took it: m reached a stopped actor
// (dead letters), or its handling panicked before it was taken.
func (rt *Runtime) failHeld(pid *actor.PID, m heldResult, err error) {
	if rt.take(pid, m) {
		m.release(err)
	}
}

// releaseHeld releases the results still on their way to an actor that
// has stopped: they will never be read. The actor calls it from its
// Stopped, the last message it receives.
func (rt *Runtime) releaseHeld(pid *actor.PID, err error) {
	rt.heldMu.Lock()
	set := rt.held[pid.Id]
	delete(rt.held, pid.Id)
	rt.heldMu.Unlock()
	for m := range set {
		m.release(err)
	}
}

// ReopenLogs reopens every open log file (SIGHUP, for an external
// logrotate).
func (rt *Runtime) ReopenLogs() error {
	rt.logMu.Lock()
	ws := make([]*logfile.Writer, 0, len(rt.logs))
	for w := range rt.logs {
		ws = append(ws, w)
	}
	rt.logMu.Unlock()
	var errs []error
	for _, w := range ws {
		if err := w.Reopen(); err != nil && !errors.Is(err, logfile.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Go runs f in a goroutine the engine waits for when it stops.
func (rt *Runtime) Go(f func()) {
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		f()
	}()
}

// killGroups sends SIGKILL to each process group from a goroutine: a
// Receive makes no system call of its own. The processes' exits arrive as
// messages, as they would after a kill made in place.
func (rt *Runtime) killGroups(pgids ...int) {
	if len(pgids) == 0 {
		return
	}
	rt.Go(func() {
		for _, pg := range pgids {
			_ = proc.KillGroup(pg, unix.SIGKILL)
		}
	})
}

// closeFiles closes files from a goroutine (a Receive closes no file).
func (rt *Runtime) closeFiles(fs ...*os.File) {
	if len(fs) == 0 {
		return
	}
	rt.Go(func() {
		for _, f := range fs {
			if f != nil {
				_ = f.Close()
			}
		}
	})
}

// WaitGoroutines waits up to timeout for every goroutine started with Go;
// it reports whether they all ended.
func (rt *Runtime) WaitGoroutines(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() {
		rt.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (rt *Runtime) now() time.Time {
	if rt.Now != nil {
		return rt.Now()
	}
	return time.Now()
}

func (rt *Runtime) publish(ev messages.Event) {
	if ev.Time.IsZero() {
		ev.Time = rt.now()
	}
	if rt.Events != nil {
		rt.Events.Publish(ev)
	}
}

func (rt *Runtime) dirty() {
	if rt.Dirty != nil {
		rt.Dirty()
	}
}

// send delivers msg to pid from any goroutine.
func (rt *Runtime) send(pid *actor.PID, msg any) {
	rt.System.Root.Send(pid, msg)
}

// after sends msg to pid after d, from a timer; the returned function
// cancels it.
func (rt *Runtime) after(d time.Duration, pid *actor.PID, msg any) func() {
	t := time.AfterFunc(d, func() { rt.send(pid, msg) })
	return func() { t.Stop() }
}

// Directory is a concurrent copy of the engine's registry, ID or label ->
// workspace PID. A request sent to a PID found here that reaches a stopped
// workspace is failed by the dead-letter hook, as any other. It is a plain
// map under a read-write lock: a sync.Map's nodes cost several times the
// bytes of a map entry, twice per workspace, and the index changes only
// when a workspace comes or goes.
type Directory struct {
	mu sync.RWMutex
	m  map[string]*actor.PID
}

// Lookup returns the PID of the workspace with that ID or label.
func (d *Directory) Lookup(ref string) (*actor.PID, bool) {
	d.mu.RLock()
	pid, ok := d.m[ref]
	d.mu.RUnlock()
	return pid, ok
}

func (d *Directory) add(id, label string, pid *actor.PID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = make(map[string]*actor.PID)
	}
	d.m[id] = pid
	d.m[label] = pid
}

func (d *Directory) remove(id, label string, pid *actor.PID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range [2]string{id, label} {
		if d.m[k] == pid {
			delete(d.m, k)
		}
	}
}
