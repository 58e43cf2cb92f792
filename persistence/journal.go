// This file is the journal beside the snapshot (state.journal): an
// append-only file of checksummed records, each one mutation of declared
// state, so that a durable mutation costs one small append and one
// fdatasync rather than a rewrite of the whole snapshot.
//
// A record is
//
//	length  uint32 LE   bytes of body
//	crc     uint32 LE   CRC32C (Castagnoli) of body
//	body    type byte, seq uint64 LE, payload
//
// The payload of a put is the entry as it stands in the v4 snapshot
// (without its stats history: stats ride along with snapshots); the
// payload of a removal is the ID (or saved pipeline name). Sequence numbers
// grow by one per record across the life of the state; a snapshot names
// the last one it contains (State.JournalSeq) and a restore replays only
// the records after it.

package persistence

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"
	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/messages"
)

// RecordType is the kind of a journal record.
type RecordType byte

// Record types. A put replaces the entry with the same key or adds it at
// the end of its section; a removal removes the entry with that key.
const (
	RecPutWorkspace RecordType = 1 + iota
	RecDelWorkspace
	RecPutSaved
	RecDelSaved
	RecPutLivePipeline
	RecDelLivePipeline
	RecPutLiveCommand
	RecDelLiveCommand
)

// Record is one journal record before it is given its sequence number.
type Record struct {
	Type    RecordType
	Payload []byte
}

const (
	recHeader = 8     // length + crc
	recFixed  = 1 + 8 // type + seq
	// maxRecord bounds a record's body: a length above it is a torn or
	// corrupt header, not an allocation to attempt.
	maxRecord = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrJournalCorrupt is wrapped by the error for a journal with a bad
// record followed by a good one: not a torn tail, so mutations after the
// damage would be lost or misapplied.
var ErrJournalCorrupt = errors.New("persistence: journal is corrupt")

// JournalPath returns the journal's path for the state file at path: the
// same name with its extension replaced by .journal (state.json →
// state.journal).
func JournalPath(path string) string {
	return strings.TrimSuffix(path, filepath.Ext(path)) + ".journal"
}

// appendRecord appends the encoded record to buf.
func appendRecord(buf []byte, seq uint64, r Record) []byte {
	n := recFixed + len(r.Payload)
	var h [recHeader + recFixed]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(n))
	h[8] = byte(r.Type)
	binary.LittleEndian.PutUint64(h[9:17], seq)
	crc := crc32.Update(0, castagnoli, h[8:17])
	crc = crc32.Update(crc, castagnoli, r.Payload)
	binary.LittleEndian.PutUint32(h[4:8], crc)
	buf = append(buf, h[:]...)
	return append(buf, r.Payload...)
}

// scanned is one record read back from a journal.
type scanned struct {
	seq uint64
	Record
	end int64 // offset just past the record
}

// scanJournal reads the records of data. It stops at the first record that
// is short or fails its checksum: when nothing valid follows, that is a torn
// tail and valid is its offset (the records before are returned); when a
// valid record follows, the journal is corrupt in the middle and the error
// wraps ErrJournalCorrupt.
func scanJournal(data []byte) (recs []scanned, valid int64, err error) {
	off := 0
	for off < len(data) {
		r, n, ok := parseRecord(data[off:])
		if !ok {
			if at, found := nextValid(data, off+1); found {
				return nil, 0, fmt.Errorf("%w: a damaged record at byte %d is followed by a valid one at byte %d",
					ErrJournalCorrupt, off, at)
			}
			return recs, int64(off), nil
		}
		if len(recs) > 0 && r.seq <= recs[len(recs)-1].seq {
			return nil, 0, fmt.Errorf("%w: record at byte %d has sequence number %d after %d",
				ErrJournalCorrupt, off, r.seq, recs[len(recs)-1].seq)
		}
		off += n
		r.end = int64(off)
		recs = append(recs, r)
	}
	return recs, int64(off), nil
}

// parseRecord reads the record at the start of b; n is its size.
func parseRecord(b []byte) (r scanned, n int, ok bool) {
	if len(b) < recHeader+recFixed {
		return r, 0, false
	}
	size := int(binary.LittleEndian.Uint32(b[0:4]))
	if size < recFixed || size > maxRecord || len(b) < recHeader+size {
		return r, 0, false
	}
	body := b[recHeader : recHeader+size]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:8]) {
		return r, 0, false
	}
	r.Type = RecordType(body[0])
	r.seq = binary.LittleEndian.Uint64(body[1:9])
	r.Payload = body[9:]
	if r.Type < RecPutWorkspace || r.Type > RecDelLiveCommand {
		return r, 0, false
	}
	return r, recHeader + size, true
}

// nextValid looks for a valid record starting anywhere from off on.
func nextValid(data []byte, off int) (int, bool) {
	for i := off; i+recHeader+recFixed <= len(data); i++ {
		if _, _, ok := parseRecord(data[i:]); ok {
			return i, true
		}
	}
	return 0, false
}

// journal is the journal file's state. The Store guards it with jmu. The
// file is opened for each append rather than held open: a journal that was
// deleted, replaced, or made read-only is noticed at the next append (and
// the mutation refused) instead of written to a file nobody will read.
type journal struct {
	path string
	// exists says the file was there when last seen (else the next append
	// creates it).
	exists bool
	// size is the length of the valid records; a torn tail past it is
	// overwritten (and cut off) by the next append.
	size int64
	// records counts the records in the file, first when the oldest was
	// written (zero when none).
	records int
	first   time.Time
	// lastSeq is the highest sequence number given out (to a record
	// written or attempted, or named by the snapshot).
	lastSeq uint64
	// fileSeq is the sequence number of the last record in the file.
	fileSeq uint64
	// broken says an append failed and the file could not be cut back to
	// its valid records: nothing is appended until a snapshot replaces it.
	broken error
	// torn says bytes of a torn append follow the valid records; the next
	// append cuts them off first.
	torn  bool
	ident *fileIdent
}

// newJournal returns the journal at path, whose valid records end at size,
// opening the file when it exists (a missing one is created by the first
// append).
func newJournal(path string, size int64, records int, fileSeq, lastSeq uint64) *journal {
	j := &journal{path: path, size: size, records: records, fileSeq: fileSeq, lastSeq: lastSeq}
	if records > 0 {
		j.first = time.Now()
	}
	if fi, err := os.Stat(path); err == nil {
		j.exists = true
		j.ident = identOf(fi)
	}
	return j
}

// open opens the journal for an append, creating it durably (its
// directory fsynced) when it does not exist yet. A file that is not the
// one last written (deleted, or another in its place) is an error.
func (j *journal) open() (*os.File, error) {
	if !j.exists {
		f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		if err := syncDir(filepath.Dir(j.path)); err != nil {
			_ = f.Close()
			_ = os.Remove(j.path)
			return nil, err
		}
		j.exists = true
		if fi, err := f.Stat(); err == nil {
			j.ident = identOf(fi)
		}
		return f, nil
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && j.ident != nil {
		if id := identOf(fi); id != nil && *id != *j.ident {
			_ = f.Close()
			return nil, errors.New("another file stands in its place")
		}
	}
	return f, nil
}

// jopen returns the journal, finding where its records end when Load did
// not (a Store used without Load); nil after Close. s.jmu must be held.
func (s *Store) jopen() *journal {
	if s.journal != nil || s.jclosed {
		return s.journal
	}
	path := JournalPath(s.path)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.journal = &journal{path: path, broken: fmt.Errorf("persistence: read journal: %w", err)}
		return s.journal
	}
	recs, valid, err := scanJournal(data)
	if err != nil {
		s.journal = &journal{path: path, broken: err}
		return s.journal
	}
	var seq uint64
	if len(recs) > 0 {
		seq = recs[len(recs)-1].seq
	}
	s.journal = newJournal(path, valid, len(recs), seq, seq)
	s.journal.torn = valid < int64(len(data))
	return s.journal
}

// JournalStats says how large the journal is.
type JournalStats struct {
	Bytes   int64
	Records int
	// Age is how long ago the oldest record was written (0 when none).
	Age time.Duration
	// Seq is the sequence number of the last record given out.
	Seq uint64
}

// Append writes recs to the journal and makes them durable (one write, one
// fdatasync), giving them the next sequence numbers, and returns the
// sequence number of the last one. On failure nothing of recs is in
// effect: the file is cut back to the records before them (if even that
// fails, appends are refused until the next snapshot, which replaces the
// journal), and their sequence numbers are never used again.
func (s *Store) Append(recs []Record) (uint64, error) {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	j := s.jopen()
	if j == nil {
		return 0, ErrClosed
	}
	if j.broken != nil {
		return 0, fmt.Errorf("persistence: journal %s: an earlier append could not be undone (%w); waiting for a snapshot", j.path, j.broken)
	}
	if len(recs) == 0 {
		return j.lastSeq, nil
	}
	first := j.lastSeq + 1
	var buf []byte
	for i, r := range recs {
		buf = appendRecord(buf, first+uint64(i), r)
	}
	last := first + uint64(len(recs)) - 1
	j.lastSeq = last // given out, whatever happens
	err := s.jstep("write")
	var f *os.File
	if err == nil {
		f, err = j.open()
	}
	if err != nil {
		return 0, fmt.Errorf("persistence: append to %s: %w", j.path, err)
	}
	defer f.Close()
	if j.torn {
		if err = f.Truncate(j.size); err == nil {
			j.torn = false
		}
	}
	if err == nil {
		_, err = f.WriteAt(buf, j.size)
	}
	if err == nil {
		if err = s.jstep("sync"); err == nil {
			err = unix.Fdatasync(int(f.Fd()))
		}
	}
	if err != nil {
		// Cut the attempt off, so that it cannot come back at a restart.
		if terr := f.Truncate(j.size); terr != nil {
			j.broken = terr
		} else if serr := unix.Fdatasync(int(f.Fd())); serr != nil {
			j.broken = serr
		}
		return 0, fmt.Errorf("persistence: append to %s: %w", j.path, err)
	}
	if j.records == 0 {
		j.first = time.Now()
	}
	j.size += int64(len(buf))
	j.records += len(recs)
	j.fileSeq = last
	return last, nil
}

// jstep calls the test hook for a journal step. s.jmu must be held.
func (s *Store) jstep(name string) error {
	if h := s.jhook; h != nil {
		return h("journal-" + name)
	}
	return nil
}

// JournalStats returns the journal's size and age.
func (s *Store) JournalStats() JournalStats {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	j := s.jopen()
	if j == nil {
		return JournalStats{}
	}
	st := JournalStats{Bytes: j.size, Records: j.records, Seq: j.lastSeq}
	if j.records > 0 {
		st.Age = time.Since(j.first)
	}
	return st
}

// JournalSeq returns the sequence number of the last record given out: a
// snapshot of the state as it stands contains every record up to it.
func (s *Store) JournalSeq() uint64 {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	if s.jopen() == nil {
		return 0
	}
	return s.journal.lastSeq
}

// trimJournal replaces the journal by one holding only its records after
// seq, which a snapshot on disk now contains: the records after seq are
// copied to a temp file, fsynced, and renamed over the journal, and the
// directory is fsynced. A crash at any point leaves the old journal or the
// new one, and both restore the same state with the snapshot (replay skips
// records up to the snapshot's JournalSeq).
func (s *Store) trimJournal(seq uint64) error {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	j := s.jopen()
	if j == nil {
		return ErrClosed
	}
	if j.records == 0 && j.broken == nil && !j.torn {
		return nil // nothing to trim (or no file yet)
	}
	var tail []byte
	records := 0
	if j.fileSeq > seq && j.exists {
		data, err := os.ReadFile(j.path)
		if err != nil {
			return fmt.Errorf("persistence: read journal: %w", err)
		}
		recs, _, err := scanJournal(data[:min(int64(len(data)), j.size)])
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.seq > seq {
				tail = appendRecord(tail, r.seq, r.Record)
				records++
			}
		}
	}
	if err := s.jstep("trim-create"); err != nil {
		return fmt.Errorf("persistence: trim journal: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(j.path), filepath.Base(j.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("persistence: trim journal: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("persistence: trim journal: %w", err)
	}
	if _, err := f.Write(tail); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if err := s.jstep("trim-sync"); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := s.jstep("trim-rename"); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fail(err)
	}
	_ = f.Close()
	j.exists = true
	j.size = int64(len(tail))
	if records == 0 {
		j.first = time.Time{}
		j.fileSeq = 0
	}
	j.records = records
	j.broken = nil
	j.torn = false
	if fi, err := os.Stat(j.path); err == nil {
		j.ident = identOf(fi)
	}
	if err := s.jstep("trim-syncdir"); err != nil {
		return fmt.Errorf("persistence: trim journal: %w", err)
	}
	if err := syncDir(filepath.Dir(j.path)); err != nil {
		return fmt.Errorf("persistence: trim journal: the directory sync failed: %w", err)
	}
	return nil
}

// checkJournal says, like Check, whether the journal file is still the
// open one: "" when it is. s.jmu must not be held.
func (s *Store) checkJournal() string {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	j := s.journal
	if j == nil || j.ident == nil {
		return ""
	}
	fi, err := os.Stat(j.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "deleted"
	case err != nil:
		return ""
	}
	if id := identOf(fi); id != nil && *id != *j.ident {
		return "replaced"
	}
	return ""
}

// Replay: applying records to a State.

// replayer applies records to a state, by key, in place.
type replayer struct {
	st    *State
	ws    map[string]int
	saved map[string]int
	live  map[string]int
	cmds  map[string]int
	gone  map[string]map[int]bool // section → positions removed
}

func newReplayer(st *State) *replayer {
	r := &replayer{st: st, ws: make(map[string]int, len(st.Workspaces)), saved: make(map[string]int),
		live: make(map[string]int), cmds: make(map[string]int), gone: make(map[string]map[int]bool)}
	for i, w := range st.Workspaces {
		r.ws[w.ID] = i
	}
	for i, sp := range st.SavedPipelines {
		r.saved[sp.Name] = i
	}
	for i, lp := range st.LivePipelines {
		if lp.ID != "" {
			r.live[lp.ID] = i
		}
	}
	for i, lc := range st.LiveCommands {
		r.cmds[lc.ID] = i
	}
	return r
}

// decodeRecordEntry decodes a put's payload as a snapshot entry is
// decoded: strict, with unknown members kept as the entry's extra.
func decodeRecordEntry(payload []byte, v any) (json.RawMessage, error) {
	return decodeEntry(payload, v)
}

// apply applies one record.
func (r *replayer) apply(rec scanned) error {
	key := string(rec.Payload)
	switch rec.Type {
	case RecPutWorkspace:
		var e WorkspaceEntry
		x, err := decodeRecordEntry(rec.Payload, &e)
		if err != nil {
			return err
		}
		e.Extra = x
		if i, ok := r.ws[e.ID]; ok && !r.gone[SectionWorkspaces][i] {
			e.StatsHistory = r.st.Workspaces[i].StatsHistory // stats ride with snapshots
			r.st.Workspaces[i] = e
			return nil
		}
		r.ws[e.ID] = len(r.st.Workspaces)
		r.st.Workspaces = append(r.st.Workspaces, e)
	case RecDelWorkspace:
		r.remove(SectionWorkspaces, r.ws, key)
	case RecPutSaved:
		var e SavedPipeline
		x, err := decodeRecordEntry(rec.Payload, &e)
		if err != nil {
			return err
		}
		e.Extra = x
		if i, ok := r.saved[e.Name]; ok && !r.gone[SectionSavedPipelines][i] {
			r.st.SavedPipelines[i] = e
			return nil
		}
		r.saved[e.Name] = len(r.st.SavedPipelines)
		r.st.SavedPipelines = append(r.st.SavedPipelines, e)
	case RecDelSaved:
		r.remove(SectionSavedPipelines, r.saved, key)
	case RecPutLivePipeline:
		var e LivePipeline
		x, err := decodeRecordEntry(rec.Payload, &e)
		if err != nil {
			return err
		}
		e.Extra = x
		if e.ID == "" {
			return errors.New("a live pipeline without a run ID")
		}
		if i, ok := r.live[e.ID]; ok && !r.gone[SectionLivePipelines][i] {
			r.st.LivePipelines[i] = e
			return nil
		}
		r.live[e.ID] = len(r.st.LivePipelines)
		r.st.LivePipelines = append(r.st.LivePipelines, e)
	case RecDelLivePipeline:
		r.remove(SectionLivePipelines, r.live, key)
	case RecPutLiveCommand:
		var e LiveCommand
		x, err := decodeRecordEntry(rec.Payload, &e)
		if err != nil {
			return err
		}
		e.Extra = x
		if i, ok := r.cmds[e.ID]; ok && !r.gone[SectionLiveCommands][i] {
			r.st.LiveCommands[i] = e
			return nil
		}
		r.cmds[e.ID] = len(r.st.LiveCommands)
		r.st.LiveCommands = append(r.st.LiveCommands, e)
	case RecDelLiveCommand:
		r.remove(SectionLiveCommands, r.cmds, key)
	default:
		return fmt.Errorf("unknown record type %d", rec.Type)
	}
	return nil
}

func (r *replayer) remove(section string, idx map[string]int, key string) {
	i, ok := idx[key]
	if !ok {
		return // already gone: replay is idempotent
	}
	delete(idx, key)
	if r.gone[section] == nil {
		r.gone[section] = make(map[int]bool)
	}
	r.gone[section][i] = true
}

// finish drops the removed entries, keeping the order of the others.
func (r *replayer) finish() {
	r.st.Workspaces = without(r.st.Workspaces, r.gone[SectionWorkspaces])
	r.st.SavedPipelines = without(r.st.SavedPipelines, r.gone[SectionSavedPipelines])
	r.st.LivePipelines = without(r.st.LivePipelines, r.gone[SectionLivePipelines])
	r.st.LiveCommands = without(r.st.LiveCommands, r.gone[SectionLiveCommands])
}

func without[E any](list []E, gone map[int]bool) []E {
	if len(gone) == 0 {
		return list
	}
	out := make([]E, 0, len(list)-len(gone))
	for i, e := range list {
		if !gone[i] {
			out = append(out, e)
		}
	}
	return out
}

// Diff: the records that turn one state into the next.

// Delta returns the records that turn prev into next: puts for the entries
// of next that prev lacks or holds differently, removals for the entries
// of prev that next lacks. ok is false when the change cannot be said in
// records (the kept entries differ): then a snapshot is written instead.
// Workspace entries are compared by ID only (a workspace's spec never
// changes); stats histories are left out.
func Delta(prev, next *State) (recs []Record, ok bool, err error) {
	if prev == nil {
		prev = &State{}
	}
	if !sameKept(prev.Kept, next.Kept) {
		return nil, false, nil
	}
	old := make(map[string]bool, len(prev.Workspaces))
	for i := range prev.Workspaces {
		old[prev.Workspaces[i].ID] = true
	}
	now := make(map[string]bool, len(next.Workspaces))
	for i := range next.Workspaces {
		w := &next.Workspaces[i]
		now[w.ID] = true
		if old[w.ID] {
			continue
		}
		e := *w
		e.StatsHistory = nil
		p, err := encodeEntry(&e, e.Extra)
		if err != nil {
			return nil, false, err
		}
		recs = append(recs, Record{Type: RecPutWorkspace, Payload: p})
	}
	// Removals of supervised runs and commands come before their
	// workspace's, puts after it: any prefix of the records is a state
	// the engine could have written.
	var dels []Record
	// Saved pipelines: by name, spec compared.
	oldSaved := make(map[string]*SavedPipeline, len(prev.SavedPipelines))
	for i := range prev.SavedPipelines {
		oldSaved[prev.SavedPipelines[i].Name] = &prev.SavedPipelines[i]
	}
	nowSaved := make(map[string]bool, len(next.SavedPipelines))
	for i := range next.SavedPipelines {
		sp := &next.SavedPipelines[i]
		nowSaved[sp.Name] = true
		if o := oldSaved[sp.Name]; o != nil && sameJSON(o, sp) && bytes.Equal(o.Extra, sp.Extra) {
			continue
		}
		p, err := encodeEntry(sp, sp.Extra)
		if err != nil {
			return nil, false, err
		}
		recs = append(recs, Record{Type: RecPutSaved, Payload: p})
	}
	for i := range prev.SavedPipelines {
		if n := prev.SavedPipelines[i].Name; !nowSaved[n] {
			dels = append(dels, Record{Type: RecDelSaved, Payload: []byte(n)})
		}
	}
	oldLive := make(map[string]*LivePipeline, len(prev.LivePipelines))
	for i := range prev.LivePipelines {
		oldLive[prev.LivePipelines[i].ID] = &prev.LivePipelines[i]
	}
	nowLive := make(map[string]bool, len(next.LivePipelines))
	for i := range next.LivePipelines {
		lp := &next.LivePipelines[i]
		if lp.ID == "" {
			return nil, false, nil // cannot be keyed: write a snapshot
		}
		nowLive[lp.ID] = true
		if o := oldLive[lp.ID]; o != nil && sameJSON(o, lp) && bytes.Equal(o.Extra, lp.Extra) {
			continue
		}
		p, err := encodeEntry(lp, lp.Extra)
		if err != nil {
			return nil, false, err
		}
		recs = append(recs, Record{Type: RecPutLivePipeline, Payload: p})
	}
	for i := range prev.LivePipelines {
		if id := prev.LivePipelines[i].ID; !nowLive[id] {
			if id == "" {
				return nil, false, nil
			}
			dels = append(dels, Record{Type: RecDelLivePipeline, Payload: []byte(id)})
		}
	}
	oldCmd := make(map[string]*LiveCommand, len(prev.LiveCommands))
	for i := range prev.LiveCommands {
		oldCmd[prev.LiveCommands[i].ID] = &prev.LiveCommands[i]
	}
	nowCmd := make(map[string]bool, len(next.LiveCommands))
	for i := range next.LiveCommands {
		lc := &next.LiveCommands[i]
		nowCmd[lc.ID] = true
		if o := oldCmd[lc.ID]; o != nil && sameJSON(o, lc) && bytes.Equal(o.Extra, lc.Extra) {
			continue
		}
		p, err := encodeEntry(lc, lc.Extra)
		if err != nil {
			return nil, false, err
		}
		recs = append(recs, Record{Type: RecPutLiveCommand, Payload: p})
	}
	for i := range prev.LiveCommands {
		if id := prev.LiveCommands[i].ID; !nowCmd[id] {
			dels = append(dels, Record{Type: RecDelLiveCommand, Payload: []byte(id)})
		}
	}
	for i := range prev.Workspaces {
		if id := prev.Workspaces[i].ID; !now[id] {
			dels = append(dels, Record{Type: RecDelWorkspace, Payload: []byte(id)})
		}
	}
	return append(dels, recs...), true, nil
}

// encodeEntry marshals an entry as the snapshot writes it, with its
// unknown members merged back.
func encodeEntry[E any](e *E, extra json.RawMessage) ([]byte, error) {
	data, err := gojson.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("persistence: encode journal record: %w", err)
	}
	if len(extra) > 0 {
		if data, err = messages.MergeUnknown(data, extra, e); err != nil {
			return nil, fmt.Errorf("persistence: encode journal record: unknown members: %w", err)
		}
	}
	return data, nil
}

// sameJSON reports whether two entries encode the same.
func sameJSON(a, b any) bool {
	x, err1 := gojson.Marshal(a)
	y, err2 := gojson.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// sameKept reports whether two kept lists are the same list (the actor
// replaces the slice on every change, never changes it in place).
func sameKept(a, b []KeptEntry) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0]
}
