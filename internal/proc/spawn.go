// spawn.go owns the Spawner (its locked thread and the fork itself), Spec
// and Placement.

package proc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var (
	// ErrInvalidSpec is wrapped by Start for a Spec it refuses before forking.
	ErrInvalidSpec = errors.New("proc: invalid spec")
	// ErrNotRoot is wrapped by Start when a Spec asks for a Credential and
	// the daemon does not run as root.
	ErrNotRoot = errors.New("proc: credentials need root")
	// ErrClosed is returned by Start after Close.
	ErrClosed = errors.New("proc: spawner closed")
)

// rlimNLimits is RLIM_NLIMITS on Linux: resources are 0..15.
const rlimNLimits = 16

// Rlimit is one resource limit applied to a child (see Spec.Rlimits).
type Rlimit struct {
	Resource int    // unix.RLIMIT_*
	Cur, Max uint64 // soft and hard limit; unix.RLIM_INFINITY for none
}

// Credential is the user and group a child runs as. Supplementary groups are
// cleared.
type Credential struct {
	UID, GID uint32
}

// Placement says where in the cgroup hierarchy a new process is born, so that
// it is inside from its first instruction. The zero value leaves the child in
// the daemon's own cgroups.
type Placement struct {
	// CgroupFD, when > 0, is an open directory fd of a cgroup v2 cgroup; the
	// child is cloned directly into it (clone3 with CLONE_INTO_CGROUP).
	CgroupFD int
	// JoinTasks are cgroup v1 "tasks" files. The spawning thread writes its
	// own TID into each just before the fork, so the child inherits those
	// cgroups; the other threads of the daemon do not move.
	JoinTasks []string
	// LeaveTasks are the "tasks" files of the spawning thread's original
	// cgroups; it writes its TID back into each right after the fork, whether
	// the fork failed or not. Required when JoinTasks is set. Should moving
	// back fail, the Spawner retries before its next fork and refuses to fork
	// until it succeeds, so no process is ever born in the wrong cgroup.
	//
	// Note that in a v1 pids cgroup the spawning thread counts as one task
	// while it is inside, so a fork into a cgroup with pids.max = N fails once
	// N-1 tasks are already there.
	LeaveTasks []string
}

// Spec is what Start needs to run one process. Nothing is inherited from the
// daemon: not its environment, not its cwd, not its stdio.
type Spec struct {
	Path string   // absolute and clean: already resolved (Resolve) and checked (CheckAllowed)
	Args []string // argv without argv[0]; argv[0] is Path
	// AllowExec is the workspace's allow_exec; empty = anything. The
	// Spawner opens Path once, checks the real path of the opened file
	// against it and executes that same file (see openExec).
	AllowExec []string
	Env       []string // the whole environment, "KEY=VALUE" each; nil = empty
	Dir       string   // working directory; "" = "/"
	// Credential is the uid/gid the child runs as; nil = the daemon's own.
	// Only a daemon running as root may set it.
	Credential *Credential
	// Stdin, Stdout and Stderr become fds 0, 1, 2 of the child; nil = /dev/null.
	// They are passed as they are (no copying goroutine), so Wait never waits
	// for a pipe to drain or close. The caller closes its copies after Start.
	Stdin, Stdout, Stderr *os.File
	// ExtraFiles become fds 3, 4, ... of the child; a nil entry is a closed fd.
	ExtraFiles []*os.File
	// Rlimits are applied to the child with prlimit(2) right after it is
	// started, on the spawning thread, before Start returns. There is a window
	// of a few microseconds in which the new program already runs without
	// them; the cgroup is the primary enforcement, rlimits are the fallback.
	// If one cannot be applied the child is killed and Start fails.
	Rlimits []Rlimit
	// Placement says in which cgroups the child is born.
	Placement Placement
}

// validate checks a Spec without touching the system, except for the euid.
func (spec *Spec) validate() error {
	if !filepath.IsAbs(spec.Path) || filepath.Clean(spec.Path) != spec.Path {
		return fmt.Errorf("%w: path %q is not absolute and clean (use Resolve)", ErrInvalidSpec, spec.Path)
	}
	for i, a := range spec.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("%w: args[%d] %q contains a NUL byte", ErrInvalidSpec, i, a)
		}
	}
	for i, e := range spec.Env {
		if strings.IndexByte(e, 0) >= 0 {
			return fmt.Errorf("%w: env[%d] %q contains a NUL byte", ErrInvalidSpec, i, e)
		}
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("%w: env[%d] %q is not KEY=VALUE", ErrInvalidSpec, i, e)
		}
	}
	if spec.Dir != "" && !filepath.IsAbs(spec.Dir) {
		return fmt.Errorf("%w: dir %q is not absolute", ErrInvalidSpec, spec.Dir)
	}
	if err := checkCredential(spec.Credential, os.Geteuid()); err != nil {
		return err
	}
	for i, rl := range spec.Rlimits {
		if rl.Resource < 0 || rl.Resource >= rlimNLimits {
			return fmt.Errorf("%w: rlimits[%d]: unknown resource %d", ErrInvalidSpec, i, rl.Resource)
		}
		if rl.Cur > rl.Max {
			return fmt.Errorf("%w: rlimits[%d]: soft limit %d above hard limit %d", ErrInvalidSpec, i, rl.Cur, rl.Max)
		}
	}
	pl := &spec.Placement
	if pl.CgroupFD < 0 {
		return fmt.Errorf("%w: placement: negative cgroup fd %d", ErrInvalidSpec, pl.CgroupFD)
	}
	if len(pl.JoinTasks) > 0 && len(pl.LeaveTasks) == 0 {
		return fmt.Errorf("%w: placement: JoinTasks without LeaveTasks would leave the spawning thread in the workspace's cgroups", ErrInvalidSpec)
	}
	return nil
}

// checkCredential refuses a credential unless euid is root.
func checkCredential(c *Credential, euid int) error {
	if c == nil || euid == 0 {
		return nil
	}
	return fmt.Errorf("%w: cannot run as uid %d gid %d: the daemon runs as uid %d, not root", ErrNotRoot, c.UID, c.GID, euid)
}

// Spawner forks every process on one goroutine locked to one OS thread that
// lives as long as the Spawner. Each child gets Setpgid (it leads its own
// process group). With a PID namespace (see Options and pidns.go) the
// namespace's init holds PDEATHSIG = SIGKILL, which the kernel sends when the
// forking thread exits, and its death takes every process of the namespace
// with it. Without one each child holds PDEATHSIG itself; the kernel clears
// it when the child executes a set-user-ID, set-group-ID or file-capability
// program, and the child's own children never get it: for those, kill the
// workspace's cgroup (at the next start, after a crash). Either way the
// thread must not be one that Go might end at random. Use NewSpawner; the
// zero value is not usable. A Spawner is safe for concurrent use.
type Spawner struct {
	reqs      chan *request
	quit      chan struct{}
	done      chan struct{} // closed when the spawning goroutine returns
	closeOnce sync.Once
	tid       int // the spawning thread's id; set before NewSpawner returns
	// pidfd says children are started with CLONE_PIDFD and waited for on
	// the runtime's poller (see Process); false on kernels without pidfd
	// support, and in tests of the os.Process fallback.
	pidfd bool

	// nsWanted says children go to a PID namespace of the Spawner's own
	// (see pidns.go); set before the spawning goroutine starts.
	nsWanted bool

	// reaper reaps the orphans a subreaper Spawner adopts (see
	// Options.Watchdog); nil otherwise.
	reaper *orphanReaper
	// reaperErr says why the Spawner could not become a subreaper.
	reaperErr error

	// nsMu guards nsErr: why PID namespaces are not used, nil while they
	// are (or have not been tried).
	nsMu  sync.Mutex
	nsErr error

	// The spawning goroutine owns the following.
	devNull       *os.File // opened on first use
	pendingLeave  []string // LeaveTasks still to be rewritten after a failure
	ns            pidnsState
	linkDirFailed bool // making an exec link directory failed once (see openExec)
}

// Options configure a Spawner. The zero value asks for PID namespaces.
type Options struct {
	// NoPIDNamespace forks children into the daemon's own PID namespace,
	// with PDEATHSIG as the only tie to the daemon (see Spawner). Without
	// it, when the process may create PID namespaces (root), every child is
	// forked into a PID namespace of the Spawner whose init dies with the
	// spawning thread, taking every process of the namespace with it.
	NoPIDNamespace bool
	// Watchdog says this process runs under a watchdog parent that kills
	// its whole process tree when it dies (see the daemon's guard). The
	// process becomes a child subreaper, so that the tree stays whole:
	// an orphaned descendant of a command is re-parented to the daemon,
	// and reaped by the Spawner, rather than to init.
	Watchdog bool
}

type request struct {
	spec  *Spec
	reply chan result // buffered: the spawning goroutine never blocks on it
}

type result struct {
	p   *Process
	err error
}

// NewSpawner starts the spawning goroutine. It calls runtime.LockOSThread and
// never unlocks, so every fork happens on that thread and PDEATHSIG is tied to
// a thread that lives exactly as long as the Spawner. It never settles on the
// process's main thread, which Go does not terminate when a locked goroutine
// ends (Close would then not kill the children).
func NewSpawner() *Spawner {
	return NewSpawnerOptions(Options{})
}

// NewSpawnerOptions is NewSpawner with options. A PID namespace is created
// on the first Start, not here; if it cannot be, the Spawner forks without
// one and Orphans says why.
func NewSpawnerOptions(o Options) *Spawner {
	s := newSpawnerState()
	if !o.NoPIDNamespace {
		if err := PIDNamespaceSupport(); err != nil {
			s.nsErr = err
		} else {
			s.nsWanted = true
		}
	}
	if o.Watchdog {
		if err := BecomeSubreaper(); err != nil {
			s.reaperErr = err
		} else {
			s.reaper = startOrphanReaper()
		}
	}
	ready := make(chan int, 1)
	go s.run(ready)
	s.tid = <-ready
	return s
}

// newSpawnerState returns a Spawner whose goroutine is not started yet.
func newSpawnerState() *Spawner {
	return &Spawner{
		reqs:  make(chan *request),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
		pidfd: pidfdWorks(),
	}
}

// run locks the goroutine to its thread, moves off the main thread if it
// landed there, reports the thread id on ready (buffered) and serves requests
// until Close.
func (s *Spawner) run(ready chan<- int) {
	runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
	if unix.Gettid() == unix.Getpid() {
		// The main thread. Hand over to a new goroutine: while this one holds
		// the main thread locked, the new one necessarily runs on another.
		next := make(chan int, 1)
		go s.run(next)
		tid := <-next
		runtime.UnlockOSThread()
		ready <- tid
		return
	}
	defer close(s.done)
	if InUserNamespace() {
		// A daemon in a user namespace of its own holds CAP_SYS_ADMIN
		// there as an ambient capability (see the daemon's guard); it is
		// for this thread's setns, not for the commands it forks.
		_ = unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
		clearInheritable()
	}
	ready <- unix.Gettid()
	for {
		select {
		case <-s.quit:
			s.closeNamespace()
			if s.reaper != nil {
				s.reaper.stop()
			}
			if s.devNull != nil {
				s.devNull.Close()
			}
			return
		case r := <-s.reqs:
			p, err := s.spawn(r.spec)
			r.reply <- result{p, err}
		}
	}
}

// Start starts the process described by spec and returns once the new program
// is running (execve succeeded) and its rlimits are set. It is safe for
// concurrent use; forks are serialized on the spawning thread.
func (s *Spawner) Start(spec Spec) (*Process, error) {
	if s.done == nil {
		return nil, errors.New("proc: Start on a Spawner not made by NewSpawner")
	}
	if err := spec.validate(); err != nil {
		return nil, err
	}
	if spec.Dir != "" {
		// The child's chdir failure would read as "fork/exec <path>: no such
		// file or directory", blaming the executable.
		if fi, err := os.Stat(spec.Dir); err != nil {
			return nil, fmt.Errorf("proc: start %s: chdir %s: %w", spec.Path, spec.Dir, errors.Unwrap(err))
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("proc: start %s: chdir %s: %w", spec.Path, spec.Dir, syscall.ENOTDIR)
		}
	}
	r := &request{spec: &spec, reply: make(chan result, 1)}
	select {
	case s.reqs <- r:
	case <-s.done:
		return nil, ErrClosed
	}
	res := <-r.reply // always sent once the request was taken
	return res.p, res.err
}

// Close stops the spawning goroutine and waits for it. It kills the PID
// namespace's init, and its thread then exits, so the kernel sends SIGKILL to
// every process of the namespace (or, without one, every child of this
// Spawner: PDEATHSIG), shortly after Close returns: Close ends every process
// the Spawner started. Their Process.Wait still works. The init is reaped by
// a goroutine once every process of its namespace has been waited for.
// Start after Close returns ErrClosed. Close is idempotent.
func (s *Spawner) Close() {
	s.closeOnce.Do(func() { close(s.quit) })
	<-s.done
}

// spawn runs on the spawning thread.
func (s *Spawner) spawn(spec *Spec) (*Process, error) {
	if len(s.pendingLeave) > 0 {
		if err := writeTasks(s.pendingLeave, s.tid); err != nil {
			return nil, fmt.Errorf("proc: spawning thread still outside its own cgroups, refusing to fork: %w", err)
		}
		s.pendingLeave = nil
	}
	inNS := false
	if s.nsWanted && !s.ns.off {
		if err := s.joinNamespace(); err != nil {
			if s.ns.made {
				// Never fall back once processes rely on a namespace.
				return nil, fmt.Errorf("proc: start %s: %w", spec.Path, err)
			}
			// The first namespace could not be made: fork without.
			s.ns.off = true
			s.nsMu.Lock()
			s.nsErr = err
			s.nsMu.Unlock()
		} else {
			inNS = true
		}
	}
	files := make([]*os.File, 3, 3+len(spec.ExtraFiles))
	for i, f := range []*os.File{spec.Stdin, spec.Stdout, spec.Stderr} {
		if f == nil {
			dn, err := s.nullFile()
			if err != nil {
				return nil, err
			}
			f = dn
		}
		files[i] = f
	}
	files = append(files, spec.ExtraFiles...)
	env := spec.Env
	if env == nil {
		env = []string{} // nil would make os.StartProcess inherit the daemon's environment
	}
	dir := spec.Dir
	if dir == "" {
		dir = "/"
	}
	sys := &syscall.SysProcAttr{Setpgid: true}
	if !inNS {
		// In a namespace the init holds PDEATHSIG for every process of it
		// (and Go's check of the parent's pid would kill the child there:
		// its parent is outside, so getppid returns 0).
		sys.Pdeathsig = syscall.SIGKILL
	}
	if c := spec.Credential; c != nil {
		sys.Credential = &syscall.Credential{Uid: c.UID, Gid: c.GID}
	}
	pl := &spec.Placement
	if pl.CgroupFD > 0 {
		sys.UseCgroupFD = true
		sys.CgroupFD = pl.CgroupFD
	}
	pidfd := -1
	if s.pidfd {
		sys.PidFD = &pidfd // ours; os.StartProcess keeps a duplicate (see newProcess)
	}
	argv := make([]string, 0, 1+len(spec.Args))
	argv = append(argv, spec.Path)
	argv = append(argv, spec.Args...)

	ex, err := s.openExec(spec, safeExecFD(files))
	if err != nil {
		return nil, err
	}
	defer ex.close()
	var (
		op      *os.Process
		started time.Time
	)
	for attempt := 0; ; attempt++ {
		if len(pl.JoinTasks) > 0 {
			if err := writeTasks(pl.JoinTasks, s.tid); err != nil {
				s.leave(pl.LeaveTasks)
				return nil, fmt.Errorf("proc: start %s: join cgroup: %w", spec.Path, err)
			}
		}
		err = s.fork(func() (int, error) {
			var ferr error
			op, ferr = os.StartProcess(ex.path, argv, &os.ProcAttr{Dir: dir, Env: env, Files: files, Sys: sys})
			if ferr != nil {
				return 0, ferr
			}
			return op.Pid, nil
		})
		started = time.Now()
		if len(pl.JoinTasks) > 0 {
			s.leave(pl.LeaveTasks)
		}
		if err == nil || !inNS || attempt > 0 || !errors.Is(err, syscall.ENOMEM) || !s.ns.cur.init.exiting() {
			break
		}
		// fork fails so in a namespace whose init is exiting (someone
		// killed it): its processes are being killed; take a new one.
		s.ns.stale = true
		if jerr := s.joinNamespace(); jerr != nil {
			return nil, fmt.Errorf("proc: start %s: %w (and %w)", spec.Path, err, jerr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("proc: start %s: %w", spec.Path, err)
	}
	p := newProcess(op, pidfd, started)
	p.reaper = s.reaper
	if inNS {
		p.ns = s.ns.cur
		p.ns.unreaped.Add(1)
	}
	for _, rl := range spec.Rlimits {
		lim := unix.Rlimit{Cur: rl.Cur, Max: rl.Max}
		if err := unix.Prlimit(p.Pid, rl.Resource, &lim, nil); err != nil {
			_ = p.Signal(syscall.SIGKILL)
			p.Wait()
			return nil, fmt.Errorf("proc: start %s: set rlimit %d to %d/%d: %w", spec.Path, rl.Resource, rl.Cur, rl.Max, err)
		}
	}
	return p, nil
}

// clearInheritable empties the calling thread's inheritable capabilities.
func clearInheritable() {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	_ = unix.Capset(&hdr, &data[0])
}

// fork runs start, which forks once and returns the child's pid. With an
// orphan reaper, the reaper cannot take the child for an adopted orphan
// until its Process is waited for.
func (s *Spawner) fork(start func() (int, error)) error {
	if s.reaper == nil {
		_, err := start()
		return err
	}
	return s.reaper.fork(start)
}

// nullFile returns /dev/null, opened on first use.
func (s *Spawner) nullFile() (*os.File, error) {
	if s.devNull == nil {
		dn, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("proc: open %s: %w", os.DevNull, err)
		}
		s.devNull = dn
	}
	return s.devNull, nil
}

// leave moves the spawning thread back to its original cgroups, or records
// them to retry before the next fork.
func (s *Spawner) leave(tasks []string) {
	if err := writeTasks(tasks, s.tid); err != nil {
		s.pendingLeave = tasks
	}
}

// writeTasks writes tid into each cgroup v1 tasks file, stopping at the
// first failure.
func writeTasks(files []string, tid int) error {
	b := []byte(strconv.Itoa(tid))
	for _, name := range files {
		f, err := os.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = f.Write(b)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write tid %d to %s: %w", tid, name, err)
		}
	}
	return nil
}
