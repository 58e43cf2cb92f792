// wait.go owns Process: waiting for a child through its pidfd on the
// runtime's poller (no OS thread blocked per waiting goroutine), reaping it
// with waitid(P_PIDFD), and signalling it through the same pidfd.

package proc

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Process is a started child. Its process group id equals Pid.
type Process struct {
	Pid     int       // also the child's process group id
	Started time.Time // when execve had succeeded

	// pidfd is the child's pidfd, non-blocking and registered with the
	// runtime's poller: Wait parks its goroutine until the pidfd is
	// readable (the child exited) instead of holding an OS thread in a
	// blocking waitid. Closed by Wait once the child is reaped. nil when
	// the kernel has no pidfd; proc is used instead.
	pidfd  *os.File
	reaped atomic.Bool // Wait has reaped the child; set before pidfd is closed

	proc *os.Process // the fallback without pidfd; nil otherwise

	// ns is the PID namespace the process was forked into, nil if none: it
	// counts the processes not reaped yet (see Spawner.Close).
	ns *pidNamespace
	// reaper, when the Spawner reaps adopted orphans, is told once Wait
	// has reaped this process.
	reaper *orphanReaper

	once   sync.Once
	status ExitStatus
}

// newProcess wraps a child started by os.StartProcess. pidfd is the pidfd
// clone(CLONE_PIDFD) returned for it (the caller's own copy, os.Process
// holds a duplicate), or -1. With a pidfd, op is released at once: it never
// waits for the child, so nothing but Wait can reap it.
func newProcess(op *os.Process, pidfd int, started time.Time) *Process {
	p := &Process{Pid: op.Pid, Started: started}
	if pidfd < 0 {
		p.proc = op
		return p
	}
	// A pidfd has no other status flag to keep: set O_NONBLOCK with one
	// fcntl instead of unix.SetNonblock's two.
	if _, err := unix.FcntlInt(uintptr(pidfd), unix.F_SETFL, unix.O_NONBLOCK); err != nil {
		// Without O_NONBLOCK, os.NewFile would not register the pidfd with
		// the poller; fall back to os.Process.
		unix.Close(pidfd)
		p.proc = op
		return p
	}
	p.pidfd = os.NewFile(uintptr(pidfd), fmt.Sprintf("pidfd:%d", op.Pid))
	_ = op.Release()
	return p
}

// Wait blocks until the process exits, reaps it and returns its status. One
// goroutine should own the call; any later or concurrent call blocks until the
// first returns and gets the same status. A child that nobody Waits for stays
// a zombie (and keeps its process group alive for Terminate).
//
// Waiting holds no OS thread: the goroutine is parked on the runtime's poller
// until the child's pidfd becomes readable.
func (p *Process) Wait() ExitStatus {
	p.once.Do(func() {
		if p.ns != nil {
			defer p.ns.unreaped.Add(-1)
		}
		if p.reaper != nil {
			defer p.reaper.reaped(p.Pid)
		}
		if p.pidfd == nil {
			p.status = statusOf(p.proc.Wait())
			return
		}
		p.status = p.waitPidfd()
		p.reaped.Store(true)
		p.pidfd.Close()
	})
	return p.status
}

// waitPidfd waits for the pidfd to be readable and reaps the child with
// waitid(P_PIDFD, WNOHANG). Should the poller refuse the pidfd, it falls
// back to a blocking waitid on the calling goroutine's thread.
func (p *Process) waitPidfd() ExitStatus {
	rc, err := p.pidfd.SyscallConn()
	if err != nil {
		return ExitStatus{Code: -1, Err: fmt.Errorf("proc: wait for pid %d: %w", p.Pid, err)}
	}
	var st ExitStatus
	rerr := rc.Read(func(fd uintptr) bool {
		var done bool
		st, done = reap(int(fd), unix.WNOHANG)
		return done
	})
	if rerr == nil {
		return st
	}
	// Not pollable (or the poller failed): block in waitid instead.
	cerr := rc.Control(func(fd uintptr) {
		if err := unix.SetNonblock(int(fd), false); err != nil {
			st = ExitStatus{Code: -1, Err: fmt.Errorf("proc: wait for pid %d: %w", p.Pid, err)}
			return
		}
		st, _ = reap(int(fd), 0)
	})
	if cerr != nil {
		return ExitStatus{Code: -1, Err: fmt.Errorf("proc: wait for pid %d: %w", p.Pid, errors.Join(rerr, cerr))}
	}
	return st
}

// Signal sends sig to the process alone (not its group), through its pidfd.
// It returns os.ErrProcessDone once the process has been waited for.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.pidfd == nil {
		return p.proc.Signal(sig)
	}
	if p.reaped.Load() {
		return os.ErrProcessDone
	}
	rc, err := p.pidfd.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.PidfdSendSignal(int(fd), sig, nil, 0)
	}); err != nil {
		return os.ErrProcessDone // closed: Wait reaped the child meanwhile
	}
	switch {
	case serr == nil:
		return nil
	case errors.Is(serr, unix.ESRCH):
		return os.ErrProcessDone
	default:
		return os.NewSyscallError("pidfd_send_signal", serr)
	}
}

// siginfoChild is siginfo_t as waitid fills it for a child, up to si_status.
type siginfoChild struct {
	signo  int32
	errno  int32 // si_code on MIPS
	code   int32 // si_errno on MIPS
	_      [siPad]int32
	pid    int32
	uid    uint32
	status int32
	_      [128 - (6+siPad)*4]byte
}

// siPad is the padding before the union of siginfo_t: 4 bytes on 64-bit.
const siPad = (unsafe.Sizeof(uintptr(0)) - 4) / 4

// siCodeSwapped says si_errno and si_code are swapped (MIPS).
var siCodeSwapped = strings.HasPrefix(runtime.GOARCH, "mips")

// reap calls waitid(P_PIDFD, fd, WEXITED|flags) once (retrying EINTR). done
// is false when flags has WNOHANG and the child has not exited yet.
func reap(fd, flags int) (st ExitStatus, done bool) {
	var si siginfoChild
	for {
		_, _, e := unix.Syscall6(unix.SYS_WAITID, unix.P_PIDFD, uintptr(fd),
			uintptr(unsafe.Pointer(&si)), uintptr(unix.WEXITED|flags), 0, 0)
		switch e {
		case 0:
			if si.pid == 0 {
				return ExitStatus{}, false // WNOHANG: still running
			}
			code := si.code
			if siCodeSwapped {
				code = si.errno
			}
			return exitStatusOf(code, si.status), true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return ExitStatus{}, false // O_NONBLOCK pidfd: still running
		default:
			return ExitStatus{Code: -1, Err: os.NewSyscallError("waitid", e)}, true
		}
	}
}

// si_code values of SIGCHLD (include/uapi/asm-generic/siginfo.h).
const (
	cldExited = 1 // exited; si_status is the exit code
	cldKilled = 2 // killed by signal si_status
	cldDumped = 3 // killed by signal si_status, core dumped
)

// exitStatusOf converts si_code and si_status of an exited child.
func exitStatusOf(code, status int32) ExitStatus {
	switch code {
	case cldExited:
		return ExitStatus{Code: int(status)}
	case cldKilled:
		return ExitStatus{Code: -1, Signal: syscall.Signal(status)}
	case cldDumped:
		return ExitStatus{Code: -1, Signal: syscall.Signal(status), CoreDumped: true}
	default:
		return ExitStatus{Code: -1, Err: fmt.Errorf("proc: unexpected waitid code %d (status %d)", code, status)}
	}
}

// pidfdWorks reports whether this kernel gives pidfds that waitid accepts
// (Linux >= 5.4): then every child is started with CLONE_PIDFD.
var pidfdWorks = sync.OnceValue(func() bool {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var si siginfoChild
	_, _, e := unix.Syscall6(unix.SYS_WAITID, unix.P_PIDFD, uintptr(fd),
		uintptr(unsafe.Pointer(&si)), uintptr(unix.WEXITED|unix.WNOHANG), 0, 0)
	return e == unix.ECHILD // we are not our own parent
})
