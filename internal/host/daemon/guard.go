// This file owns the daemon's guard: how a daemon without root keeps the
// promise that no process outlives it. Root puts every command in a PID
// namespace whose init dies with the daemon, and the kernel kills the rest.
// Without root, `shipote daemon` stays as a small guard process and runs the
// daemon proper as its child:
//
//   - in a user namespace of its own, where it has the right to create PID
//     namespaces: the kernel guarantee again. The guard ties the daemon to
//     itself with PDEATHSIG, so killing either one ends every command.
//   - where user namespaces are off, under a watchdog: the guard and the
//     daemon are both child subreapers, so every descendant of a command
//     stays in the daemon's tree; when the daemon dies its tree is handed
//     to the guard, which kills it, and when the guard dies the daemon
//     kills its own tree and exits.

package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/internal/proc"
)

// guardEnv is set in the environment of a daemon started by its guard:
// "<mode>:<guard pid>". The daemon removes it from its own environment.
const guardEnv = "SHIPOTE_DAEMON_GUARD"

// Guard modes.
const (
	guardUserNS   = "userns"
	guardWatchdog = "watchdog"
)

// orphanChoices are the values of --orphans.
var orphanChoices = []string{"auto", "pid-namespace", "watchdog", "pdeathsig"}

// guardPlan says how `daemon` runs for --orphans want: modes is the guard
// modes to try in order (none: the daemon runs in this process), and
// engine is the engine's Config.Orphans.
func guardPlan(want string, pidnsErr, usernsErr error) (modes []string, engine string, err error) {
	switch want {
	case "", "auto":
		if pidnsErr == nil {
			return nil, "auto", nil
		}
		if usernsErr == nil {
			return []string{guardUserNS, guardWatchdog}, "", nil
		}
		return []string{guardWatchdog}, "", nil
	case "pid-namespace":
		if pidnsErr == nil {
			return nil, "pid-namespace", nil
		}
		if usernsErr != nil {
			return nil, "", fmt.Errorf("--orphans pid-namespace: %v, and %w", pidnsErr, usernsErr)
		}
		return []string{guardUserNS}, "", nil
	case "watchdog":
		return []string{guardWatchdog}, "", nil
	case "pdeathsig":
		return nil, "pdeathsig", nil
	default:
		return nil, "", fmt.Errorf("--orphans %q: want one of %s", want, strings.Join(orphanChoices, ", "))
	}
}

// guarded is what a daemon started by its guard knows of it.
type guarded struct {
	mode string
	pid  int
}

// takeGuardEnv reads and unsets guardEnv: the daemon's commands must not
// inherit it.
func takeGuardEnv() (*guarded, error) {
	v, ok := os.LookupEnv(guardEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(guardEnv)
	mode, pidStr, _ := strings.Cut(v, ":")
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 1 || (mode != guardUserNS && mode != guardWatchdog) {
		return nil, fmt.Errorf("bad %s=%q", guardEnv, v)
	}
	return &guarded{mode: mode, pid: pid}, nil
}

// engineOrphans is the engine's Config.Orphans for a guarded daemon.
func (g *guarded) engineOrphans() string {
	if g.mode == guardUserNS {
		return "pid-namespace"
	}
	return "watchdog"
}

// watchGuard makes a watchdog-mode daemon end with its guard: once the
// guard has died, onDeath runs (it kills the daemon's tree and exits). It
// fails when the guard is already gone.
func (g *guarded) watchGuard(onDeath func()) error {
	fd, err := unix.PidfdOpen(g.pid, 0)
	if err != nil {
		return fmt.Errorf("watch the guard process %d: %w", g.pid, err)
	}
	if os.Getppid() != g.pid {
		unix.Close(fd)
		return fmt.Errorf("the guard process %d is gone", g.pid)
	}
	go func() {
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); !errors.Is(err, unix.EINTR) {
				break
			}
		}
		onDeath()
	}()
	return nil
}

// runGuard is the guard: it starts the daemon proper (this binary, the same
// arguments) in the first mode of modes that works, forwards SIGTERM,
// SIGINT and SIGHUP to it, reaps whatever is re-parented to it, kills the
// daemon's tree once the daemon has exited, and ends as the daemon did.
// It returns only on error; otherwise it exits the process.
func runGuard(stderr io.Writer, modes []string) error {
	// The daemon's PDEATHSIG is tied to the thread that forks it; the main
	// goroutine never ends, so lock it to its thread for good.
	runtime.LockOSThread()
	if err := proc.BecomeSubreaper(); err != nil {
		return err
	}
	// Take the signals before the daemon runs, so none ends the guard.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	var (
		daemon *os.Process
		errs   []error
	)
	for _, mode := range modes {
		p, err := startGuarded(mode)
		if err == nil {
			daemon = p
			break
		}
		errs = append(errs, err)
		if len(modes) > 1 {
			fmt.Fprintf(stderr, "shipote: %v; trying the next way to keep commands from outliving the daemon\n", err)
		}
	}
	if daemon == nil {
		return errors.Join(errs...)
	}
	go func() {
		for s := range sigs {
			_ = daemon.Signal(s)
		}
	}()
	var status unix.WaitStatus
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for the daemon: %w", err)
		}
		if pid == daemon.Pid {
			status = ws
			break
		}
	}
	if n, err := proc.KillTree(5*time.Second, true); err != nil {
		fmt.Fprintf(stderr, "shipote: killing what the daemon left: %v\n", err)
	} else if n > 0 {
		fmt.Fprintf(stderr, "shipote: the daemon ended; killed %d processes it left\n", n)
	}
	signal.Stop(sigs)
	if status.Signaled() {
		sig := status.Signal()
		signal.Reset(sig)
		_ = unix.Kill(os.Getpid(), sig)
		os.Exit(128 + int(sig))
	}
	os.Exit(status.ExitStatus())
	return nil
}

// startGuarded starts the daemon proper in mode.
func startGuarded(mode string) (*os.Process, error) {
	env := append(os.Environ(), fmt.Sprintf("%s=%s:%d", guardEnv, mode, os.Getpid()))
	sys := &syscall.SysProcAttr{
		// Out of the guard's process group: a terminal's ^C reaches the
		// guard, which forwards it once.
		Setpgid: true,
	}
	if mode == guardUserNS {
		uid, gid := os.Getuid(), os.Getgid()
		sys.Cloneflags = syscall.CLONE_NEWUSER
		sys.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		sys.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		sys.GidMappingsEnableSetgroups = false
		// The daemon runs as its own user, not as root of the namespace,
		// so execve would drop the capabilities it holds there: keep the
		// one that creating and joining PID namespaces takes. The Spawner
		// clears it from its thread's ambient set, so no command has it.
		sys.AmbientCaps = []uintptr{unix.CAP_SYS_ADMIN}
		// The daemon dies with the guard; its PID namespaces' inits die
		// with it, and the kernel kills the rest.
		sys.Pdeathsig = syscall.SIGKILL
	}
	// In watchdog mode the daemon watches the guard itself, to kill its
	// tree before it exits.
	p, err := os.StartProcess("/proc/self/exe", os.Args, &os.ProcAttr{
		Env:   env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   sys,
	})
	if err != nil {
		if mode == guardUserNS {
			return nil, fmt.Errorf("start the daemon in a user namespace: %w", err)
		}
		return nil, fmt.Errorf("start the daemon: %w", err)
	}
	return p, nil
}

// guardFlagError turns a plan error into a usage error.
func guardFlagError(err error) error {
	return cmdutil.FlagErrorf("%v", err)
}
