// label.go lets the logs of a removed workspace be found by its label: the
// removal writes the label beside the ".removed" marker, and
// RemovedByLabel finds the newest removed workspace of that label.

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

// LabelFile holds the label of the workspace whose logs are in the
// directory; MarkRemovedLabel writes it.
const LabelFile = ".label"

// MarkRemovedLabel is MarkRemoved that also records the workspace's
// label, so that its logs can be found by label while they are kept.
func MarkRemovedLabel(wsDir, label string) error {
	if err := MarkRemoved(wsDir); err != nil {
		return err
	}
	if _, err := os.Stat(wsDir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := os.WriteFile(filepath.Join(wsDir, LabelFile), []byte(label+"\n"), 0o600); err != nil {
		return fmt.Errorf("logfile: record the label of %s: %w", wsDir, err)
	}
	return nil
}

// RemovedByLabel returns the name of the directory under logDir (the
// workspace's ID) holding the logs of the most recently removed workspace
// labelled label; ok is false when there is none.
func RemovedByLabel(logDir, label string) (id string, ok bool, err error) {
	ents, err := os.ReadDir(logDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("logfile: find the logs of %q: %w", label, err)
	}
	var newest time.Time
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(logDir, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, LabelFile))
		if err != nil || strings.TrimSpace(string(b)) != label {
			continue
		}
		at, removed, err := removedAt(dir)
		if err != nil || !removed {
			continue
		}
		if !ok || at.After(newest) {
			id, newest, ok = e.Name(), at, true
		}
	}
	return id, ok, nil
}
