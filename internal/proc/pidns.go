// pidns.go owns the Spawner's PID namespace: its init (this very binary,
// re-executed in init mode), joining the namespace before each fork, and
// replacing it when its init has died.

package proc

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/pidstat"
)

// initArg0 is argv[0] of a PID namespace's init (argv[1], if any, is
// initWatchArg). The package's init function checks it, and that it runs as
// pid 1, before main runs, so every binary that links this package can
// serve as the init: the daemon, and the test binaries of the packages that
// start engines.
const initArg0 = "shipote: pid-namespace init"

// initParentFD is the init's fd 3: a pidfd of the process that started it,
// when its argv[1] is initWatchArg.
const (
	initParentFD = 3
	initWatchArg = "--watch-fd=3"
)

func init() {
	if len(os.Args) >= 1 && len(os.Args) <= 2 && os.Args[0] == initArg0 && os.Getpid() == 1 {
		// Never returns.
		runInit(len(os.Args) == 2 && os.Args[1] == initWatchArg)
	}
}

// runInit is the whole life of a PID namespace's init. It reaps every
// process re-parented to it and exits when the daemon that started it has
// exited (fd 3 readable), in case PDEATHSIG was missed. Its own death makes
// the kernel SIGKILL every process of the namespace. It holds no fd but
// /dev/null and fd 3, so no pipe of a command is kept open by it.
func runInit(watch bool) {
	// As the init of a namespace, signals with no handler sent from inside
	// it never arrive; the Go runtime installs handlers, so ignore the ones
	// whose default would end the init (SIGKILL from outside still does).
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE, syscall.SIGALRM, syscall.SIGTSTP,
		syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGXCPU, syscall.SIGXFSZ, syscall.SIGVTALRM, syscall.SIGPROF)
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	parentGone := make(chan struct{})
	// The runtime may have opened fds of its own: watch fd 3 only when it
	// was handed over, and is a pidfd.
	if target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", initParentFD)); watch && err == nil && target == "anon_inode:[pidfd]" {
		go func() {
			fds := []unix.PollFd{{Fd: initParentFD, Events: unix.POLLIN}}
			for {
				if _, err := unix.Poll(fds, -1); !errors.Is(err, unix.EINTR) {
					break
				}
			}
			close(parentGone)
		}()
	}
	for {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		select {
		case <-chld:
		case <-parentGone:
			os.Exit(0)
		}
	}
}

// pidNamespace is one PID namespace of a Spawner and its init.
type pidNamespace struct {
	init *Process
	ns   *os.File      // /proc/<init>/ns/pid, for setns
	done chan struct{} // closed once the init is reaped: the namespace is empty and dead
	// unreaped counts the processes forked into the namespace that Wait has
	// not reaped yet. The init's exit waits for every process of its
	// namespace to be reaped, these by their Waits.
	unreaped atomic.Int64
}

// alive reports whether the namespace's init has not been reaped yet.
func (n *pidNamespace) alive() bool {
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// pidnsState is the spawning goroutine's view of namespaces; it alone
// touches it.
type pidnsState struct {
	self *os.File        // the spawning thread's own PID namespace, to come back to
	cur  *pidNamespace   // the namespace forks go to; nil before the first fork
	old  []*pidNamespace // replaced namespaces whose init may not be reaped yet
	// stale says a fork into cur failed as it does once its init is dying:
	// the next fork needs a new namespace.
	stale bool
	made  bool // a namespace has been made once
	// off says creating the first namespace failed (Spawner.nsErr says
	// why): the Spawner forks without one from then on.
	off bool
}

// Orphans names the guarantees that no process outlives the daemon.
const (
	// OrphansPIDNamespace: every process is in the Spawner's PID namespace,
	// whose init dies with the spawning thread; the kernel then kills every
	// process of the namespace, grandchildren, setsid'd and double-forked
	// ones included.
	OrphansPIDNamespace = "pid-namespace (kernel)"
	// OrphansUserPIDNamespace is OrphansPIDNamespace for a daemon without
	// root: it runs in a user namespace of its own (see the daemon's
	// guard), where it may create PID namespaces.
	OrphansUserPIDNamespace = "pid-namespace in a user namespace (kernel)"
	// OrphansWatchdog: the daemon is a child subreaper, so that every
	// descendant of its commands stays in its tree, and a watchdog parent
	// kills that tree when the daemon dies (as the daemon does when the
	// watchdog dies). Within a second, but not by the kernel: killing both
	// at once leaves the tree.
	OrphansWatchdog = "watchdog (subreaper daemon; its parent kills the tree)"
	// OrphansPdeathsig: only direct children get SIGKILL from the kernel
	// when the daemon dies; their descendants are killed by the next daemon
	// that starts on the same cgroup parent, or not at all without cgroups.
	OrphansPdeathsig = "pdeathsig (direct children only)"
)

// Orphans says which guarantee holds for the processes of this Spawner:
// OrphansPIDNamespace (or OrphansUserPIDNamespace), OrphansWatchdog, or
// OrphansPdeathsig followed by why neither is used.
func (s *Spawner) Orphans() string {
	s.nsMu.Lock()
	nsErr := s.nsErr
	s.nsMu.Unlock()
	switch {
	case s.nsWanted && nsErr == nil:
		if InUserNamespace() {
			return OrphansUserPIDNamespace
		}
		return OrphansPIDNamespace
	case s.reaper != nil:
		return OrphansWatchdog
	case s.reaperErr != nil:
		return OrphansPdeathsig + ": " + s.reaperErr.Error()
	case nsErr != nil:
		return OrphansPdeathsig + ": " + nsErr.Error()
	default:
		return OrphansPdeathsig + ": pid namespaces not asked for"
	}
}

// HostOrphans says which guarantee a daemon started by this user with
// --orphans auto would give.
func HostOrphans() string {
	if err := PIDNamespaceSupport(); err == nil {
		if InUserNamespace() {
			return OrphansUserPIDNamespace
		}
		return OrphansPIDNamespace
	}
	if UserNamespaceSupport() == nil {
		return OrphansUserPIDNamespace
	}
	return OrphansWatchdog
}

// InUserNamespace reports whether this process runs in a user namespace
// other than the host's (its uid_map is not the identity on every id).
func InUserNamespace() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}

// UserNamespaceSupport reports whether the host lets this user create user
// namespaces, as far as its settings tell; the daemon's guard still falls
// back when creating one fails.
func UserNamespaceSupport() error {
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		return fmt.Errorf("no user namespaces: %w", err)
	}
	for _, c := range []struct{ file, off string }{
		{"/proc/sys/user/max_user_namespaces", "0"},
		{"/proc/sys/kernel/unprivileged_userns_clone", "0"},
		{"/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1"},
	} {
		b, err := os.ReadFile(c.file)
		if err == nil && strings.TrimSpace(string(b)) == c.off {
			return fmt.Errorf("user namespaces are off (%s is %s)", c.file, c.off)
		}
	}
	return nil
}

// PIDNamespaceSupport reports whether this process may create PID
// namespaces (CAP_SYS_ADMIN), and if not, why.
func PIDNamespaceSupport() error {
	return pidnsSupport()
}

var pidnsSupport = sync.OnceValue(func() error {
	if _, err := os.Stat("/proc/self/ns/pid"); err != nil {
		return fmt.Errorf("no pid namespaces: %w", err)
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			var caps uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(hex), "%x", &caps); err != nil {
				return fmt.Errorf("parse CapEff %q: %w", hex, err)
			}
			if caps&(1<<unix.CAP_SYS_ADMIN) == 0 {
				return errors.New("no CAP_SYS_ADMIN (not root)")
			}
			return nil
		}
	}
	return errors.New("no CapEff in /proc/self/status")
})

// joinNamespace makes sure the spawning thread forks into a live namespace
// of this Spawner, creating one (and its init) if there is none or the last
// one's init has died. It runs on the spawning thread.
func (s *Spawner) joinNamespace() error {
	st := &s.ns
	if st.cur != nil && st.cur.alive() && !st.stale {
		return nil
	}
	if st.self == nil {
		f, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/pid", s.tid))
		if err != nil {
			return fmt.Errorf("open own pid namespace: %w", err)
		}
		st.self = f
	}
	if st.cur != nil {
		// Creating a namespace needs the thread's own one for its children.
		if err := unix.Setns(int(st.self.Fd()), unix.CLONE_NEWPID); err != nil {
			return fmt.Errorf("setns back to own pid namespace: %w", err)
		}
		_ = st.cur.init.Signal(syscall.SIGKILL) // if stale, it is dying anyway
		st.cur.ns.Close()
		st.old = append(st.old, st.cur)
		st.cur = nil
		st.stale = false
	}
	n, err := s.startInit()
	if err != nil {
		return err
	}
	if err := unix.Setns(int(n.ns.Fd()), unix.CLONE_NEWPID); err != nil {
		_ = n.init.Signal(syscall.SIGKILL)
		n.ns.Close()
		return fmt.Errorf("setns into the new pid namespace: %w", err)
	}
	st.cur = n
	st.made = true
	return nil
}

// startInit starts a new PID namespace's init on the spawning thread. The
// init gets PDEATHSIG = SIGKILL from this thread, like every child, and a
// pidfd of the daemon as fd 3. A goroutine reaps it.
func (s *Spawner) startInit() (*pidNamespace, error) {
	dn, err := s.nullFile()
	if err != nil {
		return nil, err
	}
	files := []*os.File{dn, dn, dn}
	argv := []string{initArg0}
	if fd, err := unix.PidfdOpen(os.Getpid(), 0); err == nil {
		self := os.NewFile(uintptr(fd), "pidfd:self")
		defer self.Close()
		files = append(files, self)
		argv = append(argv, initWatchArg)
	}
	sys := &syscall.SysProcAttr{
		Setpgid:    true, // out of the daemon's group: a terminal's ^C is the daemon's business
		Pdeathsig:  syscall.SIGKILL,
		Cloneflags: syscall.CLONE_NEWPID,
	}
	pidfd := -1
	if s.pidfd {
		sys.PidFD = &pidfd
	}
	var op *os.Process
	err = s.fork(func() (int, error) {
		var ferr error
		op, ferr = os.StartProcess("/proc/self/exe", argv,
			&os.ProcAttr{Dir: "/", Env: []string{}, Files: files, Sys: sys})
		if ferr != nil {
			return 0, ferr
		}
		return op.Pid, nil
	})
	if err != nil {
		return nil, fmt.Errorf("start pid namespace init: %w", err)
	}
	p := newProcess(op, pidfd, time.Now())
	p.reaper = s.reaper
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/pid", p.Pid))
	if err != nil {
		_ = p.Signal(syscall.SIGKILL)
		p.Wait()
		return nil, fmt.Errorf("open pid namespace of init %d: %w", p.Pid, err)
	}
	n := &pidNamespace{init: p, ns: ns, done: make(chan struct{})}
	go func() {
		p.Wait()
		close(n.done)
	}()
	return n, nil
}

// closeNamespace kills the current namespace's init, and with it every
// process of the namespace, when the Spawner is closed. The init is reaped
// by its goroutine once the namespace is empty: when every process forked
// into it has been reaped already, closeNamespace waits for that, so that
// Close leaves no goroutine behind; otherwise the last Wait lets it end.
func (s *Spawner) closeNamespace() {
	st := &s.ns
	if st.cur != nil {
		_ = st.cur.init.Signal(syscall.SIGKILL)
		st.cur.ns.Close()
		st.old = append(st.old, st.cur)
		st.cur = nil
	}
	for _, n := range st.old {
		if n.unreaped.Load() == 0 {
			<-n.done
		}
	}
	st.old = nil
	if st.self != nil {
		st.self.Close()
		st.self = nil
	}
}

// pfExiting is PF_EXITING, a flag of /proc/<pid>/stat (field 9).
const pfExiting = 0x4

// exiting reports whether the process has begun to exit (an init that
// does so waits for its namespace to empty before it becomes a zombie).
func (p *Process) exiting() bool {
	st, err := pidstat.Read(p.Pid)
	if err != nil {
		return !errors.Is(err, pidstat.ErrMalformed) // gone, or unreadable
	}
	return st.State == 'Z' || st.Flags&pfExiting != 0
}

// SweepStrayInits kills every PID namespace init whose daemon is gone (its
// parent is no longer a process of the same executable), and with it what
// is left of its namespace, and returns their pids. PDEATHSIG and the init's
// own watch of the daemon make such an init all but impossible; a daemon
// runs this at start anyway, as the cgroup backends sweep their groups.
func SweepStrayInits() ([]int, error) {
	pids, err := procPids()
	if err != nil {
		return nil, fmt.Errorf("proc: sweep pid namespace inits: %w", err)
	}
	var killed []int
	var errs []error
	buf := make([]byte, pidstat.HeadBytes)
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil || !strings.HasPrefix(string(b), initArg0+"\x00") {
			continue
		}
		st, ok := readStat(pid, buf)
		if !ok || st.State == 'Z' || sameExe(pid, st.PPID) {
			continue
		}
		err = unix.Kill(pid, unix.SIGKILL)
		if errors.Is(err, unix.EPERM) {
			continue // another user's daemon's: theirs to sweep
		}
		if err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("kill pid namespace init %d: %w", pid, err))
			continue
		}
		killed = append(killed, pid)
	}
	return killed, errors.Join(errs...)
}

// sameExe reports whether processes a and b run the same executable file.
func sameExe(a, b int) bool {
	fa, err1 := os.Stat("/proc/" + strconv.Itoa(a) + "/exe")
	fb, err2 := os.Stat("/proc/" + strconv.Itoa(b) + "/exe")
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
