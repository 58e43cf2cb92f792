// execfd.go owns the last check before a fork: the executable is opened
// once, the path the kernel reports for that open file is checked against
// allow_exec, and the child executes that very file through its descriptor,
// so no link or rename swapped in after the check changes what runs.

package proc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// execFile is an executable opened by the Spawner for one fork.
type execFile struct {
	fd   int
	path string // what the child passes to execve
	dir  string // the directory of a link made for this fork, removed after it; "" = none
}

// close releases the descriptor and removes the link.
func (ex *execFile) close() {
	if ex.dir != "" {
		_ = os.RemoveAll(ex.dir)
	}
	if ex.fd >= 0 {
		_ = unix.Close(ex.fd)
	}
}

// openExec opens spec.Path (O_PATH, close-on-exec), checks the real path of
// the opened file, read back from /proc/self/fd, against spec.AllowExec, and
// returns how the child is to
// execute it. It runs on the spawning thread.
//
// A binary is executed through "/proc/self/fd/N": execve opens the
// descriptor's file before the close-on-exec descriptors are closed, so the
// child runs exactly the file that was checked. The kernel names the process
// (comm, as shown by ps and top) after the last element of the path given to
// execve, which would be "N"; so the Spawner calls it through a link named
// after spec.Path's base name, in a directory of its own made for this fork
// and removed after it, that points to "/proc/self/fd/N" (the link is resolved in the child, where self is the
// child and N is the same open file). argv[0] stays spec.Path.
//
// A script ("#!") is executed by its real path: the kernel hands the script's
// path to the interpreter, which opens it again after the close-on-exec
// descriptors are gone, so "/proc/self/fd/N" would not open there. A script
// is re-read by name by its interpreter in any case.
//
// The descriptor is moved to minFD or above (see safeExecFD). Without
// allow_exec nothing is checked, and spec.Path is executed as given.
func (s *Spawner) openExec(spec *Spec, minFD int) (*execFile, error) {
	if len(spec.AllowExec) == 0 {
		// No allow_exec: nothing is checked, so there is no window to
		// close; the path is executed as given, at no extra cost per
		// spawn (the common case, and what the spawn benchmark measures).
		return &execFile{fd: -1, path: spec.Path}, nil
	}
	fd, err := unix.Open(spec.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &ExecError{Exec: spec.Path, Reason: fmt.Sprintf("cannot open: %v", err), Err: ErrNotFound, Cause: err}
	}
	if fd < minFD {
		high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, minFD)
		_ = unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("proc: start %s: move the executable's descriptor to %d or above: %w", spec.Path, minFD, err)
		}
		fd = high
	}
	ex := &execFile{fd: fd}
	ok := false
	defer func() {
		if !ok {
			ex.close()
		}
	}()
	fdPath := "/proc/self/fd/" + strconv.Itoa(fd)
	real, err := os.Readlink(fdPath)
	if err != nil {
		return nil, fmt.Errorf("proc: start %s: read the path of the opened file: %w", spec.Path, err)
	}
	if len(spec.AllowExec) > 0 {
		if !filepath.IsAbs(real) {
			return nil, &ExecError{Exec: spec.Path, Reason: fmt.Sprintf("refused: opened file has no path (%q)", real), Err: ErrExecRefused}
		}
		if err := checkResolved(spec.Path, real, spec.AllowExec); err != nil {
			return nil, err
		}
	}
	ok = true
	if isScript(fdPath) {
		ex.path = real
		return ex, nil
	}
	ex.path = fdPath
	if dir := s.execLinkDir(); dir != "" {
		ex.dir = dir
		link := filepath.Join(dir, filepath.Base(spec.Path))
		if os.Symlink(fdPath, link) == nil {
			ex.path = link
		}
	}
	return ex, nil
}

// isScript reports whether the file open at fdPath starts with "#!". A file
// the daemon may execute but not read is taken as a binary.
func isScript(fdPath string) bool {
	f, err := os.Open(fdPath)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [2]byte
	n, err := io.ReadFull(f, b[:])
	return (err == nil || errors.Is(err, io.ErrUnexpectedEOF)) && n == 2 && b[0] == '#' && b[1] == '!'
}

// execLinkDir makes a directory for one fork's exec link (mode 0711: a
// child running under another uid must pass through it; nobody else may
// list or change it). It is removed after the fork, so a daemon that dies
// leaves nothing behind. "" when it cannot be made (the child then executes
// "/proc/self/fd/N" itself); after a failure it is not tried again.
func (s *Spawner) execLinkDir() string {
	if s.linkDirFailed {
		return ""
	}
	dir, err := os.MkdirTemp("", "shipote-exec-")
	if err == nil {
		if err = os.Chmod(dir, 0o711); err != nil {
			_ = os.Remove(dir)
		}
	}
	if err != nil {
		s.linkDirFailed = true
		return ""
	}
	return dir
}

// safeExecFD is the lowest descriptor the executable's may have so that the
// child's fd shuffle leaves it alone: before it puts files in place as 0, 1,
// 2, ..., Go's forkExec moves its status pipe and any file below its target
// slot to max(files)+1 and up (dup3, which closes what was there), at most
// len(files)+1 descriptors.
func safeExecFD(files []*os.File) int {
	top := len(files)
	for _, f := range files {
		if f != nil && int(f.Fd()) > top {
			top = int(f.Fd())
		}
	}
	return top + len(files) + 3
}
