// sweep.go owns the retention of the logs of removed workspaces: a
// ".removed" marker written at removal, and Sweep, which deletes the
// directories whose marker is older than the retention.

package logfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// RemovedMarker is the file MarkRemoved writes in a workspace's log
// directory; it holds the removal time in RFC 3339.
const RemovedMarker = ".removed"

// MarkRemoved records that the workspace whose logs are in wsDir was
// removed now. A missing wsDir (the workspace never logged) is not an
// error. Marking again keeps the first time.
func MarkRemoved(wsDir string) error {
	if _, err := os.Stat(wsDir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	marker := filepath.Join(wsDir, RemovedMarker)
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	tmp, err := os.CreateTemp(wsDir, RemovedMarker+".tmp*")
	if err != nil {
		return fmt.Errorf("logfile: mark %s removed: %w", wsDir, err)
	}
	_, err = tmp.WriteString(time.Now().UTC().Format(time.RFC3339Nano) + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), marker)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("logfile: mark %s removed: %w", wsDir, err)
	}
	return nil
}

// removedAt returns when the workspace of dir was removed, and false when
// it was not. A marker that cannot be parsed counts from its mtime.
func removedAt(dir string) (time.Time, bool, error) {
	marker := filepath.Join(dir, RemovedMarker)
	b, err := os.ReadFile(marker)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b))); err == nil {
		return t, true, nil
	}
	fi, err := os.Stat(marker)
	if err != nil {
		return time.Time{}, false, err
	}
	return fi.ModTime(), true, nil
}

// Sweep deletes the workspace directories of logsDir (<logsDir>/<workspace>)
// marked removed more than retention before now, and returns their paths.
// Directories without a marker, and anything that is not a directory, are
// left alone. A missing logsDir is not an error. Errors on single
// directories do not stop the sweep; they are returned joined.
func Sweep(logsDir string, retention time.Duration, now time.Time) ([]string, error) {
	if retention < 0 {
		return nil, fmt.Errorf("logfile: sweep %s: negative retention %v", logsDir, retention)
	}
	ents, err := os.ReadDir(logsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("logfile: sweep %s: %w", logsDir, err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		if !e.IsDir() { // DirEntry does not follow symlinks
			continue
		}
		dir := filepath.Join(logsDir, e.Name())
		at, ok, err := removedAt(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("logfile: sweep %s: %w", dir, err))
			continue
		}
		if !ok || now.Sub(at) <= retention {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("logfile: sweep %s: %w", dir, err))
			continue
		}
		removed = append(removed, dir)
	}
	return removed, errors.Join(errs...)
}
