// This file tests the store on a real filesystem: default paths, loading
// (missing, corrupt, too new), atomic saves and their failures, and modes.

package persistence_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/persistence"
)

func TestDefaultPath(t *testing.T) {
	tmpFallback := "/tmp/shipote-state-" + strconv.Itoa(os.Getuid()) + ".json"
	tests := []struct {
		name               string
		shipote, xdg, home string
		want               string
	}{
		{"SHIPOTE_STATE wins", "/etc/x/state.json", "/xdg", "/home/u", "/etc/x/state.json"},
		{"relative SHIPOTE_STATE kept", "rel/state.json", "/xdg", "/home/u", "rel/state.json"},
		{"XDG_STATE_HOME", "", "/xdg", "/home/u", "/xdg/shipote/state.json"},
		{"relative XDG_STATE_HOME ignored", "", "xdg", "/home/u", "/home/u/.local/state/shipote/state.json"},
		{"HOME", "", "", "/home/u", "/home/u/.local/state/shipote/state.json"},
		{"HOME with trailing slash", "", "", "/home/u/", "/home/u/.local/state/shipote/state.json"},
		{"relative HOME ignored", "", "", "home", tmpFallback},
		{"nothing set", "", "", "", tmpFallback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SHIPOTE_STATE", tt.shipote)
			t.Setenv("XDG_STATE_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			t.Setenv("TMPDIR", "/var/elsewhere")
			if got := persistence.DefaultPath(); got != tt.want {
				t.Fatalf("DefaultPath() = %q, want %q", got, tt.want)
			}
		})
	}
}

func openStore(t *testing.T, path string) *persistence.Store {
	t.Helper()
	s, err := persistence.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// leftovers lists the files of dir other than the state file and its lock.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); n != "state.json" && n != "state.json.lock" {
			out = append(out, n)
		}
	}
	return out
}

func TestSaveLoadRoundTripAndModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "shipote")
	path := filepath.Join(dir, "state.json")
	s := openStore(t, path)
	if s.Path() != path {
		t.Fatalf("Path() = %q, want %q", s.Path(), path)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Fatalf("directory mode %o, want 700", m)
	}
	if m := mode(t, path+".lock"); m != 0o600 {
		t.Fatalf("lock file mode %o, want 600", m)
	}

	st, problems, corrupt, err := s.Load()
	if err != nil || corrupt != nil || len(problems) != 0 {
		t.Fatalf("Load of a missing file: %v %v %v", err, corrupt, problems)
	}
	if !reflect.DeepEqual(st, &persistence.State{Version: persistence.CurrentVersion}) {
		t.Fatalf("Load of a missing file = %+v", st)
	}

	want := fullState()
	n, err := s.Save(want)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(data) {
		t.Fatalf("Save returned %d bytes, the file has %d", n, len(data))
	}
	if m := mode(t, path); m != 0o600 {
		t.Fatalf("state file mode %o, want 600", m)
	}
	// A second save replaces the file and keeps its mode.
	want.TimestampMs++
	if _, err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Fatalf("state file mode after a second save %o, want 600", m)
	}
	if l := leftovers(t, dir); len(l) != 0 {
		t.Fatalf("files left beside the state: %v", l)
	}
	s.Close()

	s2 := openStore(t, path)
	got, problems, corrupt, err := s2.Load()
	if err != nil || corrupt != nil || len(problems) != 0 {
		t.Fatalf("Load: %v %v %v", err, corrupt, problems)
	}
	if !reflect.DeepEqual(persistence.Comparable(got), want) {
		t.Fatalf("loaded state differs:\n got %+v\nwant %+v", got, want)
	}
}

func TestSaveIs0600WhateverTheUmaskAndOldMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := openStore(t, path)
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := unix.Umask(0o377) // process-wide; this test is not parallel
	defer unix.Umask(old)
	if err := s.SaveRaw([]byte(`{"version":4}`)); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Fatalf("state file mode %o, want 600", m)
	}
}

func TestOpenMakesExistingDirectoryPrivate(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	openStore(t, filepath.Join(dir, "state.json"))
	if m := mode(t, dir); m != 0o700 {
		t.Fatalf("Open left an existing state directory at %o, want 700", m)
	}
}

func TestOpenLeavesSharedStickyDirectoryAlone(t *testing.T) {
	// The last-resort default path is /tmp/shipote-state-<uid>.json: a
	// shared sticky directory is never made private (the file is 0600).
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	openStore(t, filepath.Join(dir, "state.json"))
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o777 || fi.Mode()&os.ModeSticky == 0 {
		t.Fatalf("Open changed a shared sticky directory to %v", fi.Mode())
	}
}

func TestOpenBadPaths(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path, contains string }{
		{"empty", "", "empty state file path"},
		{"directory", dir, "is a directory"},
		{"parent is a file", filepath.Join(file, "state.json"), "create state directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := persistence.Open(tt.path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Fatalf("error %q does not contain %q", err, tt.contains)
			}
		})
	}
}

func TestLoadTooNewLeavesFileUntouched(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	orig := readFixture(t, "state-v5.json")
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	past := time.Date(2024, 10, 15, 12, 0, 0, 0, time.UTC)
	if err := os.Chtimes(path, past, past); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, path)
	st, _, corrupt, err := s.Load()
	if !errors.Is(err, persistence.ErrTooNew) {
		t.Fatalf("Load: %v, want ErrTooNew", err)
	}
	if st != nil || corrupt != nil {
		t.Fatalf("Load returned a state or a CorruptError with ErrTooNew: %+v %v", st, corrupt)
	}
	for _, c := range []string{path, "version 5", "1 to 4"} {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not name %q", err, c)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, orig) {
		t.Fatal("the file's bytes changed")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(past) {
		t.Fatalf("mtime changed: %v, want %v", fi.ModTime(), past)
	}
	if l := leftovers(t, dir); len(l) != 0 {
		t.Fatalf("files created beside the state: %v", l)
	}
}

func TestLoadCorruptMovesAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	orig := readFixture(t, "corrupt.json")
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, path)
	before := time.Now().UnixMilli()
	st, problems, corrupt, err := s.Load()
	after := time.Now().UnixMilli()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if corrupt == nil {
		t.Fatal("no CorruptError")
	}
	if !reflect.DeepEqual(st, &persistence.State{Version: persistence.CurrentVersion}) || len(problems) != 0 {
		t.Fatalf("Load of a corrupt file = %+v %v, want an empty state", st, problems)
	}
	if !errors.Is(corrupt, persistence.ErrCorrupt) || corrupt.Path != path {
		t.Fatalf("CorruptError %+v", corrupt)
	}
	prefix := path + ".corrupt-"
	if !strings.HasPrefix(corrupt.MovedTo, prefix) {
		t.Fatalf("moved to %q, want %s<ms>", corrupt.MovedTo, prefix)
	}
	ms, err := strconv.ParseInt(strings.TrimPrefix(corrupt.MovedTo, prefix), 10, 64)
	if err != nil || ms < before || ms > after {
		t.Fatalf("moved to %q: suffix is not the Unix ms of the load (%d..%d)", corrupt.MovedTo, before, after)
	}
	moved, err := os.ReadFile(corrupt.MovedTo)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(moved, orig) {
		t.Fatal("the moved file does not hold the original bytes")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the corrupt file is still at its path: %v", err)
	}
	for _, c := range []string{path, corrupt.MovedTo, "truncated", "empty state"} {
		if !strings.Contains(corrupt.Error(), c) {
			t.Errorf("message %q does not contain %q", corrupt.Error(), c)
		}
	}

	// A second corrupt file in the same millisecond or later never
	// overwrites the first one.
	if err := os.WriteFile(corrupt.MovedTo+"-2", []byte("taken"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := os.WriteFile(path, []byte("{{"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, c2, err := s.Load()
		if err != nil || c2 == nil {
			t.Fatalf("second Load: %v %v", err, c2)
		}
	}
	if got, _ := os.ReadFile(corrupt.MovedTo); !bytes.Equal(got, orig) {
		t.Fatal("the first moved file was overwritten")
	}
	if got, _ := os.ReadFile(corrupt.MovedTo + "-2"); string(got) != "taken" {
		t.Fatal("an existing file was overwritten")
	}
	if l := leftovers(t, dir); len(l) != 5 {
		t.Fatalf("want 4 moved files and the taken one, got %v", l)
	}
}

func TestLoadBadEntryReportsProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path, readFixture(t, "state-bad-entry.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, path)
	st, problems, corrupt, err := s.Load()
	if err != nil || corrupt != nil {
		t.Fatalf("Load: %v %v", err, corrupt)
	}
	if len(st.Workspaces) != 3 || len(problems) != 3 || len(st.Kept) != 1 {
		t.Fatalf("%d workspaces, problems %v", len(st.Workspaces), problems)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("a file with bad entries must stay in place: %v", err)
	}
}

func TestLoadUnreadableIsAnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := openStore(t, path)
	if err := os.Mkdir(path, 0o700); err != nil { // made after Open
		t.Fatal(err)
	}
	_, _, corrupt, err := s.Load()
	if err == nil || corrupt != nil {
		t.Fatalf("Load of a directory: %v %v", err, corrupt)
	}
}

func TestSaveFailureLeavesNoTempAndKeepsOldFile(t *testing.T) {
	for _, step := range []string{"create", "write", "sync", "close", "rename"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			s := openStore(t, path)
			old := []byte(`{"version":4,"timestamp_ms":1}`)
			if err := s.SaveRaw(old); err != nil {
				t.Fatal(err)
			}
			injected := errors.New("injected failure")
			persistence.SetSaveHook(s, func(got string) error {
				if got == step {
					return injected
				}
				return nil
			})
			_, err := s.Save(fullState())
			if !errors.Is(err, injected) {
				t.Fatalf("Save: %v, want the injected error", err)
			}
			if !strings.Contains(err.Error(), "persistence: save") {
				t.Fatalf("error %q does not say what failed", err)
			}
			if l := leftovers(t, dir); len(l) != 0 {
				t.Fatalf("files left after a failed save: %v", l)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, old) {
				t.Fatalf("the old state changed: %s", got)
			}
			// The store still works afterwards.
			persistence.SetSaveHook(s, nil)
			if _, err := s.Save(fullState()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSaveDirSyncFailureReportsButKeepsNewFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := openStore(t, path)
	injected := errors.New("injected failure")
	persistence.SetSaveHook(s, func(step string) error {
		if step == "syncdir" {
			return injected
		}
		return nil
	})
	data := []byte(`{"version":4,"timestamp_ms":2}`)
	err := s.SaveRaw(data)
	if !errors.Is(err, injected) || !strings.Contains(err.Error(), "directory sync failed") {
		t.Fatalf("SaveRaw: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
		t.Fatalf("the renamed file is not in place: %s", got)
	}
	if l := leftovers(t, dir); len(l) != 0 {
		t.Fatalf("files left: %v", l)
	}
}

func TestSaveIntoRemovedDirectoryFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	s := openStore(t, filepath.Join(dir, "state.json"))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(fullState()); err == nil {
		t.Fatal("Save into a removed directory succeeded")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the directory came back: %v", err)
	}
}

// TestSaveFailingWriteInChild makes a real write fail (EFBIG under
// RLIMIT_FSIZE, in a child process so the limit stays there).
func TestSaveFailingWriteInChild(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	old := []byte(`{"version":4,"timestamp_ms":3}`)
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=save-fsize", "SHIPOTE_PERSISTENCE_PATH="+path)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != childFailed {
		t.Fatalf("child: %v, output %q; want exit %d (save failed)", err, out, childFailed)
	}
	if !strings.Contains(string(out), "file too large") {
		t.Fatalf("child output %q does not show EFBIG", out)
	}
	if l := leftovers(t, dir); len(l) != 0 {
		t.Fatalf("files left after a failed save: %v", l)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, old) {
		t.Fatalf("the old state changed: %s", got)
	}
}

func TestClosedStore(t *testing.T) {
	s, err := persistence.Open(filepath.Join(t.TempDir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Save(&persistence.State{}); !errors.Is(err, persistence.ErrClosed) {
		t.Fatalf("Save after Close: %v", err)
	}
	if _, _, _, err := s.Load(); !errors.Is(err, persistence.ErrClosed) {
		t.Fatalf("Load after Close: %v", err)
	}
}
