// This file owns the state file on disk: where it lives, loading it (moving a
// corrupt one aside) and saving it atomically and durably.

package persistence

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PreCopies is how many copies of files as read (<path>.pre-<unix-ms>) a
// Store keeps; older ones are removed.
const PreCopies = 3

// ErrClosed is returned by a Store's methods after Close.
var ErrClosed = errors.New("persistence: store is closed")

// DefaultPath returns the state file's default path: $SHIPOTE_STATE when set,
// else $XDG_STATE_HOME/shipote/state.json (when XDG_STATE_HOME is an
// absolute path), else $HOME/.local/state/shipote/state.json, else
// /tmp/shipote-state-<uid>.json. An explicit --state flag takes precedence
// over all of these; the caller handles it.
func DefaultPath() string {
	if p := os.Getenv("SHIPOTE_STATE"); p != "" {
		return p
	}
	if x := os.Getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "shipote", "state.json")
	}
	if h := os.Getenv("HOME"); h != "" && filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "state", "shipote", "state.json")
	}
	// SPEC §2 names /tmp itself, not $TMPDIR: every client finds the same file.
	return "/tmp/shipote-state-" + strconv.Itoa(os.Getuid()) + ".json"
}

// CorruptError reports a state file that could not be parsed and was moved
// aside; Load then starts from an empty state. It is meant to be reported
// loudly.
type CorruptError struct {
	// Path is the state file's path.
	Path string
	// MovedTo is where the unreadable file now is (<path>.corrupt-<unix-ms>).
	MovedTo string
	// JournalMovedTo is where the journal now is, when it was moved aside
	// with the state file (<journal>.corrupt-<unix-ms>); "" otherwise.
	JournalMovedTo string
	// Err says why the file could not be parsed; it wraps ErrCorrupt.
	Err error
}

func (e *CorruptError) Error() string {
	moved := e.MovedTo
	switch {
	case e.MovedTo == "":
		moved = e.JournalMovedTo
	case e.JournalMovedTo != "":
		moved += " (its journal to " + e.JournalMovedTo + ")"
	}
	return fmt.Sprintf("%s could not be read (%v); it was moved to %s and shipote starts with an empty state",
		e.Path, e.Err, moved)
}

// Unwrap returns Err.
func (e *CorruptError) Unwrap() error { return e.Err }

// Store is an open, locked state file. Its methods are safe for concurrent
// use; Save calls are serialised.
type Store struct {
	path string
	dir  string
	lock *fileLock

	// mu guards the following and serialises saves and loads.
	mu     sync.Mutex
	closed bool
	// hook, when set (tests only), is called before each step of a save and
	// fails the save with the error it returns.
	hook func(step string) error
	// ident is the device and inode of the file last read or written
	// (nil before either), to notice a file deleted or replaced.
	ident *fileIdent
	// read is the file as Load read it, and keepRead says it is to be
	// copied to <path>.pre-<unix-ms> before the next write.
	read     []byte
	keepRead bool
	// snapSeq is the JournalSeq of the snapshot on disk: an older
	// snapshot never replaces a newer one.
	snapSeq uint64

	// jmu guards the journal, so that appends do not wait for a snapshot
	// being written. When both are held, mu is taken first.
	jmu     sync.Mutex
	journal *journal
	jclosed bool
	// jhook is like hook, for the journal's steps (tests only).
	jhook func(step string) error
}

type fileIdent struct{ dev, ino uint64 }

func identOf(fi os.FileInfo) *fileIdent {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return &fileIdent{dev: uint64(st.Dev), ino: st.Ino}
}

// Open prepares the state file at path: it creates the file's directory
// (0700) if missing and takes an exclusive, non-blocking lock on
// <path>.lock. When the lock is held elsewhere, the error wraps ErrLocked and
// names the path and the holder's pid. The state file itself is not read;
// call Load.
func Open(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("persistence: empty state file path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("persistence: state file path %q: %w", path, err)
	}
	dir := filepath.Dir(abs)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("persistence: create state directory: %w", err)
	}
	if err := privateDir(dir); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("persistence: state file %s is a directory", abs)
	}
	l, err := lockFile(abs+".lock", abs)
	if err != nil {
		return nil, err
	}
	return &Store{path: abs, dir: dir, lock: l}, nil
}

// Path returns the state file's absolute path.
func (s *Store) Path() string { return s.path }

// LockPath returns the lock file's absolute path: whoever holds an flock
// on it owns the state file.
func (s *Store) LockPath() string { return s.lock.path }

// Close releases the lock. It is idempotent; the Store is unusable after.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.jmu.Lock()
	s.journal, s.jclosed = nil, true
	s.jmu.Unlock()
	return s.lock.release()
}

// Load reads the state file, then replays the journal beside it (see
// JournalPath): the records after the snapshot's JournalSeq, in order.
//
//   - A missing file gives an empty State of CurrentVersion and no error
//     (and the journal, if any, is replayed onto it).
//   - A file that cannot be parsed is renamed to <path>.corrupt-<unix-ms>
//     (never overwritten), with its journal, and Load returns an empty
//     State and a non-nil *CorruptError to report loudly; the caller
//     continues empty. So does a journal with a damaged record followed by
//     a valid one. A damaged last record (a torn append) is ignored, and
//     cut off by the next append.
//   - A file of a newer version returns an error wrapping ErrTooNew and is
//     left untouched.
//
// Entries that could not be decoded are left out and listed in the problems.
func (s *Store) Load() (*State, []Problem, *CorruptError, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, nil, nil, ErrClosed
	}
	jpath := JournalPath(s.path)
	st := &State{Version: CurrentVersion}
	var problems []Problem
	data, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		data = nil
	case err != nil:
		return nil, nil, nil, fmt.Errorf("persistence: read state: %w", err)
	default:
		st, problems, err = Decode(data)
		switch {
		case err == nil:
		case errors.Is(err, ErrCorrupt):
			return s.loadCorrupt(err)
		default:
			return nil, nil, nil, fmt.Errorf("%s: %w", s.path, err)
		}
	}
	jdata, err := os.ReadFile(jpath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil, fmt.Errorf("persistence: read journal: %w", err)
	}
	recs, valid, err := scanJournal(jdata)
	if err != nil {
		return s.loadCorrupt(fmt.Errorf("%s: %w", jpath, err))
	}
	st, problems, err = replay(st, problems, recs)
	if err != nil {
		return s.loadCorrupt(fmt.Errorf("%s: %w", jpath, err))
	}
	if data != nil {
		s.read = data
		if fi, serr := os.Stat(s.path); serr == nil {
			s.ident = identOf(fi)
		}
	}
	s.snapSeq = st.JournalSeq
	var fileSeq uint64
	if len(recs) > 0 {
		fileSeq = recs[len(recs)-1].seq
	}
	s.openJournal(jpath, valid, len(recs), fileSeq, max(fileSeq, st.JournalSeq), valid < int64(len(jdata)))
	return st, problems, nil, nil
}

// openJournal opens the journal for appends. When it cannot be opened
// (a directory that refuses new files), appends fail until a snapshot
// replaces it.
func (s *Store) openJournal(path string, size int64, records int, fileSeq, lastSeq uint64, torn bool) {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	j := newJournal(path, size, records, fileSeq, lastSeq)
	j.torn = torn
	s.journal = j
}

// replay applies the journal records after st.JournalSeq to st. When a
// record was applied, every entry's Pos becomes its index in its section
// as it now stands, and State.KeepEntry encodes the entry on demand.
func replay(st *State, problems []Problem, recs []scanned) (*State, []Problem, error) {
	applied, err := replayRecords(st, recs)
	if err != nil || applied == 0 {
		return st, problems, err
	}
	if last := recs[len(recs)-1].seq; last > st.JournalSeq {
		st.JournalSeq = last
	}
	st.numberEntries()
	ws, saved, live, cmds := st.Workspaces, st.SavedPipelines, st.LivePipelines, st.LiveCommands
	st.src = &source{build: func() map[string][]json.RawMessage {
		return map[string][]json.RawMessage{
			SectionWorkspaces:     rawEntries(ws, func(e *WorkspaceEntry) json.RawMessage { return e.Extra }),
			SectionSavedPipelines: rawEntries(saved, func(e *SavedPipeline) json.RawMessage { return e.Extra }),
			SectionLivePipelines:  rawEntries(live, func(e *LivePipeline) json.RawMessage { return e.Extra }),
			SectionLiveCommands:   rawEntries(cmds, func(e *LiveCommand) json.RawMessage { return e.Extra }),
		}
	}}
	return st, problems, nil
}

// rawEntries encodes each entry of list as the snapshot writes it (an
// entry that cannot be encoded is null).
func rawEntries[E any](list []E, extra func(*E) json.RawMessage) []json.RawMessage {
	out := make([]json.RawMessage, len(list))
	for i := range list {
		data, err := encodeEntry(&list[i], extra(&list[i]))
		if err != nil {
			data = []byte("null")
		}
		out[i] = data
	}
	return out
}

// loadCorrupt moves the state file and its journal aside, starts an empty
// journal, and returns the empty state and the CorruptError. s.mu must be
// held.
func (s *Store) loadCorrupt(err error) (*State, []Problem, *CorruptError, error) {
	ce := &CorruptError{Path: s.path, Err: err}
	if !errors.Is(err, ErrCorrupt) {
		ce.Err = fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	for _, f := range []struct {
		path string
		to   *string
	}{{s.path, &ce.MovedTo}, {JournalPath(s.path), &ce.JournalMovedTo}} {
		if _, serr := os.Lstat(f.path); serr != nil {
			continue
		}
		moved, merr := moveAside(f.path, s.dir)
		if merr != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w; and it could not be moved aside: %w", f.path, err, merr)
		}
		*f.to = moved
	}
	s.openJournal(JournalPath(s.path), 0, 0, 0, 0, false)
	return &State{Version: CurrentVersion}, nil, ce, nil
}

// moveAside renames path to <path>.corrupt-<unix-ms>, choosing a free
// name, and makes the rename durable.
func moveAside(path, dir string) (string, error) {
	base := path + ".corrupt-" + strconv.FormatInt(time.Now().UnixMilli(), 10)
	target := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
			break
		}
		target = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, target); err != nil {
		return "", err
	}
	if err := syncDir(dir); err != nil {
		return target, err
	}
	return target, nil
}

// Save encodes st (as CurrentVersion) and writes it like SaveRaw. It returns
// the number of bytes written.
func (s *Store) Save(st *State) (int, error) {
	data, err := Encode(st)
	if err != nil {
		return 0, err
	}
	if err := s.SaveRaw(data); err != nil {
		return 0, err
	}
	return len(data), nil
}

// SaveSnapshot writes an encoded state like SaveRaw, as the snapshot that
// holds every journal record up to seq (the document's JournalSeq), then
// trims those records from the journal. A snapshot older than the one on
// disk (a lower seq) is not written: skipped is true then. The snapshot
// is durable when err is nil; trimErr says the journal could not be
// trimmed (nothing is lost: a restore skips the records the snapshot
// holds, and the next snapshot trims them).
func (s *Store) SaveSnapshot(data []byte, seq uint64) (skipped bool, trimErr, err error) {
	s.mu.Lock()
	if seq < s.snapSeq {
		s.mu.Unlock()
		return true, nil, nil
	}
	err = s.saveRaw(data)
	if err == nil {
		s.snapSeq = seq
	}
	s.mu.Unlock()
	if err != nil {
		return false, nil, err
	}
	return false, s.trimJournal(seq), nil
}

// SaveRaw writes an encoded state atomically and durably: a temp file in the
// same directory is written, fsynced and closed, renamed over the state file,
// and the directory is fsynced. The file's mode is 0600. On failure before
// the rename, the temp file is removed and the previous state file is
// untouched; a failure of the final directory fsync is returned although the
// new file is in place.
func (s *Store) SaveRaw(data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saveRaw(data)
}

// saveRaw is SaveRaw; s.mu must be held.
func (s *Store) saveRaw(data []byte) (err error) {
	if s.closed {
		return ErrClosed
	}
	step := func(name string) error {
		if s.hook != nil {
			return s.hook(name)
		}
		return nil
	}
	if err := step("create"); err != nil {
		return fmt.Errorf("persistence: save: %w", err)
	}
	if s.keepRead {
		if err := s.writeCopy(); err != nil {
			return err
		}
		s.keepRead = false
	}
	f, err := os.CreateTemp(s.dir, filepath.Base(s.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("persistence: save: %w", err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if err != nil && !renamed {
			_ = f.Close() // may already be closed
			_ = os.Remove(tmp)
		}
	}()
	if err = step("write"); err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		// CreateTemp asks for 0600 less the umask; make it exactly 0600.
		err = f.Chmod(0o600)
	}
	if err == nil {
		if err = step("sync"); err == nil {
			err = f.Sync()
		}
	}
	var ident *fileIdent
	if err == nil {
		if fi, serr := f.Stat(); serr == nil {
			ident = identOf(fi)
		}
		if err = step("close"); err == nil {
			err = f.Close()
		}
	}
	if err == nil {
		if err = step("rename"); err == nil {
			err = os.Rename(tmp, s.path)
		}
	}
	if err != nil {
		return fmt.Errorf("persistence: save %s: %w", s.path, err)
	}
	renamed = true
	s.ident = ident
	if err = step("syncdir"); err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		return fmt.Errorf("persistence: save %s: written, but the directory sync failed: %w", s.path, err)
	}
	return nil
}

// privateDir makes the state directory 0700 even when it already existed,
// since it holds the state file and its copies. A shared sticky directory
// such as /tmp (the last-resort default path) is left as it is: the file
// itself is 0600 there.
func privateDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("persistence: state directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("persistence: state directory %s is not a directory", dir)
	}
	mode := fi.Mode()
	if mode&os.ModeSticky != 0 && mode.Perm()&0o002 != 0 {
		return nil
	}
	if mode.Perm() == 0o700 {
		return nil
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("persistence: the state directory %s is mode %04o and could not be made 0700 (%w); fix its owner or mode, or choose another --state path",
			dir, mode.Perm(), err)
	}
	return nil
}

// KeepCopyBeforeWrite makes the next write first copy the file as Load
// read it to <path>.pre-<unix-ms> (keeping the newest PreCopies such
// copies), for a restore that did not take everything in, or a file of
// another format. It does nothing when Load read no file.
func (s *Store) KeepCopyBeforeWrite() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keepRead = s.read != nil
}

// writeCopy writes the file as read to <path>.pre-<unix-ms>, durably, and
// prunes older copies. s.mu must be held.
func (s *Store) writeCopy() error {
	target := s.path + ".pre-" + strconv.FormatInt(time.Now().UnixMilli(), 10)
	if _, err := os.Lstat(target); err == nil {
		target += "-2"
	}
	if err := writeFileSync(target, s.read); err != nil {
		return fmt.Errorf("persistence: keep a copy of the state file as read: %w", err)
	}
	matches, err := filepath.Glob(s.path + ".pre-*")
	if err != nil {
		return nil
	}
	sort.Slice(matches, func(i, j int) bool { return preTime(matches[i]) < preTime(matches[j]) })
	for len(matches) > PreCopies {
		_ = os.Remove(matches[0])
		matches = matches[1:]
	}
	return nil
}

// preTime returns the Unix ms of a copy's name, for ordering.
func preTime(name string) int64 {
	i := strings.LastIndex(name, ".pre-")
	ms, _ := strconv.ParseInt(strings.SplitN(name[i+len(".pre-"):], "-", 2)[0], 10, 64)
	return ms
}

// writeFileSync writes data to a new file at path (0600) and fsyncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
	}
	return err
}

// Check says whether the state file and its journal are still the ones
// last read or written: "" when they are, "deleted" when it is gone, "replaced" when
// another file stands at the path. With strict, a file that was never
// there counts as deleted too (a save must not be skipped then). An error
// other than a missing file reads as "" (it cannot tell).
func (s *Store) Check(strict bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ""
	}
	if p := s.checkJournal(); p != "" {
		return p // its records must be written again, in a snapshot
	}
	fi, err := os.Stat(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if s.ident != nil || strict {
			return "deleted"
		}
		return ""
	case err != nil:
		return ""
	}
	if s.ident == nil {
		if strict {
			return "replaced"
		}
		return ""
	}
	if id := identOf(fi); id != nil && *id != *s.ident {
		return "replaced"
	}
	return ""
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadFiles reads the state file at path and replays its journal, as Load
// does, without the lock and without moving anything aside: for a reader
// beside the engine that owns the files (tests, diagnostics). A file that
// does not parse, or a journal damaged in its middle, is an error.
func ReadFiles(path string) (*State, []Problem, error) {
	st := &State{Version: CurrentVersion}
	var problems []Problem
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, nil, fmt.Errorf("persistence: read state: %w", err)
	default:
		if st, problems, err = Decode(data); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	jpath := JournalPath(path)
	jdata, err := os.ReadFile(jpath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("persistence: read journal: %w", err)
	}
	recs, _, err := scanJournal(jdata)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", jpath, err)
	}
	return replay(st, problems, recs)
}
