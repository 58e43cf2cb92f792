// This file owns the state file's lock: an exclusive flock on
// <path>.lock, holding the owner's pid, so that one daemon owns a state file.

package persistence

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrLocked is wrapped by Open's error when another process (or another
// Store in this process) holds the state file's lock.
var ErrLocked = errors.New("persistence: state file is locked")

// fileLock is a held flock. The lock file itself is never removed: removing
// it would let two processes lock two different files of the same name.
type fileLock struct {
	path string
	f    *os.File
}

// lockFile takes an exclusive, non-blocking flock on path (created 0600 if
// missing) and writes the calling process's pid into it.
func lockFile(path, statePath string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("persistence: open lock file: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := "another process"
			if pid := readPid(path); pid > 0 {
				holder = fmt.Sprintf("pid %d", pid)
			}
			return nil, fmt.Errorf("%w: %s is in use by %s (lock %s); is another shipote daemon running on it?",
				ErrLocked, statePath, holder, path)
		}
		return nil, fmt.Errorf("persistence: lock %s: %w", path, err)
	}
	// The pid is informative only; failing to write it does not matter.
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &fileLock{path: path, f: f}, nil
}

// readPid returns the pid written in the lock file at path, or 0.
func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// release drops the lock. Closing the descriptor releases the flock.
func (l *fileLock) release() error {
	err := unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("persistence: release lock %s: %w", l.path, err)
	}
	return nil
}
