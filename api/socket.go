// This file owns the socket's place and hygiene: the default path, and
// Listen, which refuses a live socket, replaces a stale one and sets modes.

package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// maxSocketPath is the longest path a Unix socket address holds (sun_path
// is 108 bytes with the terminating NUL).
const maxSocketPath = 107

// DefaultSocketPath returns $SHIPOTE_SOCKET if set, else
// $XDG_RUNTIME_DIR/shipote/shipote.sock, else /tmp/shipote-$UID/shipote.sock.
func DefaultSocketPath() string {
	if p := os.Getenv("SHIPOTE_SOCKET"); p != "" {
		return p
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "shipote", "shipote.sock")
	}
	return filepath.Join("/tmp", "shipote-"+strconv.Itoa(os.Getuid()), "shipote.sock")
}

// Listen listens on the Unix socket at path. It creates the socket's
// directory with mode 0700 if it is missing (and refuses an existing one
// owned by another user), refuses with an "already in use by a running
// daemon" error when a daemon answers there, removes a stale socket left by
// a daemon that died, listens, and sets the socket's mode to 0600.
func Listen(path string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("api: empty socket path")
	}
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("api: socket path %s is %d bytes long; a Unix socket path holds at most %d", path, len(path), maxSocketPath)
	}
	if err := socketDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("api: socket %s: %w", path, err)
	case fi.Mode().Type() != fs.ModeSocket:
		return nil, fmt.Errorf("api: %s exists and is not a socket; not replacing it", path)
	default:
		c, derr := net.DialTimeout("unix", path, time.Second)
		if derr == nil {
			_ = c.Close()
			return nil, fmt.Errorf("api: socket %s is already in use by a running daemon", path)
		}
		if !errors.Is(derr, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("api: socket %s exists and cannot be checked: %w", path, derr)
		}
		// Nobody listens: a daemon died and left it.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("api: removing stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("api: socket mode: %w", err)
	}
	return ln, nil
}

// socketDir makes dir with mode 0700 if it does not exist; an existing one
// must be a directory owned by this user or root.
func socketDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("api: socket directory: %w", err)
		}
		// MkdirAll's mode is filtered by the umask; set it exactly.
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("api: socket directory mode: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("api: socket directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("api: socket directory %s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := int(st.Uid); uid != os.Geteuid() && uid != 0 {
			return fmt.Errorf("api: socket directory %s belongs to user %d, not to this user (%d); refusing to use it", dir, uid, os.Geteuid())
		}
	}
	return nil
}
