// status.go owns ExitStatus: how a process ended, as a value that prints
// ("exit 3", "signal SIGKILL") and converts to a shell-style code.

package proc

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// ExitStatus is how a process ended. The zero value means "exit 0".
type ExitStatus struct {
	Code       int            // exit code; -1 when killed by a signal or when Err is set
	Signal     syscall.Signal // the signal that killed it; 0 unless killed by a signal
	CoreDumped bool           // the kernel wrote a core dump
	Err        error          // a wait error, if any; Code is then -1
}

// Success reports whether the process exited with code 0.
func (e ExitStatus) Success() bool {
	return e.Err == nil && e.Signal == 0 && e.Code == 0
}

// String returns "exit 0", "exit 3", "signal SIGKILL",
// "signal SIGSEGV (core dumped)" or "wait error: ...".
func (e ExitStatus) String() string {
	switch {
	case e.Err != nil:
		return "wait error: " + e.Err.Error()
	case e.Signal != 0:
		s := "signal " + SignalName(e.Signal)
		if e.CoreDumped {
			s += " (core dumped)"
		}
		return s
	default:
		return fmt.Sprintf("exit %d", e.Code)
	}
}

// ShellCode returns the status as a shell reports it: Code, or 128+signal
// when killed by a signal.
func (e ExitStatus) ShellCode() int {
	if e.Signal != 0 {
		return 128 + int(e.Signal)
	}
	return e.Code
}

// SignalName returns the name of sig ("SIGKILL"), or "signal N" when unknown.
func SignalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return fmt.Sprintf("signal %d", int(sig))
}

// statusOf converts what os.Process.Wait returned.
func statusOf(ps *os.ProcessState, err error) ExitStatus {
	if err != nil {
		return ExitStatus{Code: -1, Err: err}
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return ExitStatus{Code: ps.ExitCode()}
	}
	switch {
	case ws.Exited():
		return ExitStatus{Code: ws.ExitStatus()}
	case ws.Signaled():
		return ExitStatus{Code: -1, Signal: ws.Signal(), CoreDumped: ws.CoreDump()}
	default:
		return ExitStatus{Code: -1, Err: fmt.Errorf("proc: unexpected wait status %#x", uint32(ws))}
	}
}
