// This file is the journal beside the snapshot (state.journal): an
// append-only file of checksummed records, each one mutation of declared
// state, so that a durable mutation costs one small append and one
// fdatasync rather than a rewrite of the whole snapshot.
//
// A record is
//
//	length  uint32 LE   bytes of body
//	crc     uint32 LE   CRC32C (Castagnoli) of body
//	body    type byte, seq uint64 LE, key length uint16 LE, key, payload
//
// The records of one append (one group commit: an apply's whole
// transaction, say) form a group: every record but the last has the high
// bit of its type byte set (recMore). A group cut short — the tail of a
// write torn by a crash or power loss, even at a record boundary — is
// dropped whole, like a torn record, so a group is in effect entirely or
// not at all. A journal with no bit set is a series of one-record groups.
//
// The key is the entry's ID (or saved pipeline name). The payload of a put
// is the entry as it stands in the v4 snapshot (without its stats history:
// stats ride along with snapshots); a removal has none: its key says what
// goes. Sequence numbers
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
	"slices"
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
	Type RecordType
	// Key is the entry's ID, or a saved pipeline's name.
	Key string
	// Payload is a put's entry; empty for a removal.
	Payload []byte
}

const (
	recHeader = 8         // length + crc
	recFixed  = 1 + 8 + 2 // type + seq + key length
	// maxRecord bounds a record's body: a length above it is a torn or
	// corrupt header, not an allocation to attempt.
	maxRecord = 64 << 20
)

// recMore, in a record's type byte, says more records of the same append
// follow it.
const recMore = 0x80

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

// appendRecord appends the encoded record to buf; more says another record
// of the same group follows it.
func appendRecord(buf []byte, seq uint64, r Record, more bool) []byte {
	n := recFixed + len(r.Key) + len(r.Payload)
	var h [recHeader + recFixed]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(n))
	h[8] = byte(r.Type)
	if more {
		h[8] |= recMore
	}
	binary.LittleEndian.PutUint64(h[9:17], seq)
	binary.LittleEndian.PutUint16(h[17:19], uint16(len(r.Key)))
	start := len(buf)
	buf = append(buf, h[:]...)
	buf = append(buf, r.Key...)
	buf = append(buf, r.Payload...)
	binary.LittleEndian.PutUint32(buf[start+4:start+8], crc32.Checksum(buf[start+recHeader:], castagnoli))
	return buf
}

// scanned is one record read back from a journal.
type scanned struct {
	seq uint64
	Record
	more bool  // not the last record of its group
	end  int64 // offset just past the record
}

// scanJournal reads the records of data. It stops at the first record that
// is short or fails its checksum: when nothing valid follows, that is a torn
// tail and valid is its offset (the records before are returned); when a
// valid record follows, the journal is corrupt in the middle and the error
// wraps ErrJournalCorrupt. A last group cut short is torn too: its records
// are not returned and valid is where it starts.
func scanJournal(data []byte) (recs []scanned, valid int64, err error) {
	off := 0
	for off < len(data) {
		r, n, ok := parseRecord(data[off:])
		if !ok {
			if at, found := nextValid(data, off+1); found {
				return nil, 0, fmt.Errorf("%w: a damaged record at byte %d is followed by a valid one at byte %d",
					ErrJournalCorrupt, off, at)
			}
			recs, valid = wholeGroups(recs)
			return recs, valid, nil
		}
		if len(recs) > 0 && r.seq <= recs[len(recs)-1].seq {
			return nil, 0, fmt.Errorf("%w: record at byte %d has sequence number %d after %d",
				ErrJournalCorrupt, off, r.seq, recs[len(recs)-1].seq)
		}
		off += n
		r.end = int64(off)
		recs = append(recs, r)
	}
	recs, valid = wholeGroups(recs)
	return recs, valid, nil
}

// wholeGroups drops a last group that was cut short (its last record read
// says more follow) and returns where the records kept end.
func wholeGroups(recs []scanned) ([]scanned, int64) {
	k := len(recs)
	for k > 0 && recs[k-1].more {
		k--
	}
	if k == 0 {
		return recs[:0], 0
	}
	return recs[:k], recs[k-1].end
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
	r.Type = RecordType(body[0] &^ recMore)
	r.more = body[0]&recMore != 0
	r.seq = binary.LittleEndian.Uint64(body[1:9])
	klen := int(binary.LittleEndian.Uint16(body[9:11]))
	if recFixed+klen > len(body) {
		return r, 0, false
	}
	r.Key = string(body[recFixed : recFixed+klen])
	r.Payload = body[recFixed+klen:]
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

// Append writes recs to the journal as one group (see recMore) and makes
// them durable (one write, one fdatasync): a crash finds all of them or
// none. It gives them the next sequence numbers, and returns the
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
		buf = appendRecord(buf, first+uint64(i), r, i < len(recs)-1)
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
// records up to the snapshot's JournalSeq). When no record follows seq
// (a save after the last append), the file is emptied in place instead
// (see cutJournal).
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
				tail = appendRecord(tail, r.seq, r.Record, r.more)
				records++
			}
		}
	}
	if records == 0 && j.exists && j.broken == nil {
		if cut, err := s.cutJournal(j); cut || err != nil {
			return err
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

// cutJournal empties the journal file in place, when the snapshot on disk
// holds every record in it: no temp file, rename or sync. The cut need
// not be durable by itself. Lost in a crash, it leaves records that
// replay skips, as the snapshot holds them; and the next append's
// fdatasync makes the file's new size durable with the new records, so a
// crash after it finds exactly those. cut is false, and the journal
// untouched, when the file cannot be opened as the journal (gone, or
// another file in its place) or cut: then trimJournal replaces it. s.jmu
// must be held.
func (s *Store) cutJournal(j *journal) (cut bool, err error) {
	if err := s.jstep("trim-truncate"); err != nil {
		return false, fmt.Errorf("persistence: trim journal: %w", err)
	}
	f, err := j.open()
	if err != nil {
		return false, nil
	}
	defer f.Close()
	if err := f.Truncate(0); err != nil {
		return false, nil
	}
	j.size = 0
	j.records = 0
	j.first = time.Time{}
	j.fileSeq = 0
	j.torn = false
	return true, nil
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

// op is where an entry stands after the records so far: present or
// removed, with the payload of its last put, and whether it still sits at
// its place in the snapshot or was (re)added at the end (ticket orders
// those).
type op struct {
	present bool
	payload []byte // nil: unchanged since the snapshot
	inSnap  bool
	ticket  int
}

// sectionReplay follows one section's entries through the records by key,
// without decoding a payload that a later record replaces or removes.
type sectionReplay struct {
	ops    map[string]*op
	ticket int
}

func newSectionReplay(keys []string) *sectionReplay {
	r := &sectionReplay{ops: make(map[string]*op, len(keys))}
	for _, k := range keys {
		r.ops[k] = &op{present: true, inSnap: true}
	}
	return r
}

func (r *sectionReplay) put(key string, payload []byte) {
	o := r.ops[key]
	if o == nil {
		o = &op{}
		r.ops[key] = o
	}
	if !o.present {
		// Absent (new, or removed earlier): it goes at the end.
		o.present, o.inSnap, o.ticket = true, false, r.ticket
		r.ticket++
	}
	o.payload = payload
}

func (r *sectionReplay) remove(key string) {
	if o := r.ops[key]; o != nil {
		o.present = false // already gone: replay is idempotent
	}
}

// apply returns the section after the records: the snapshot's entries
// still present, in order (replaced ones decoded from their last put),
// then the added ones in the order they were added. key and decode read
// and build entries; keep keeps a put whose entry does not decode.
func replaySection[E any](list []E, r *sectionReplay, key func(*E) string,
	decode func(payload []byte, prev *E) (E, error), keep func(payload []byte, err error)) []E {
	out := make([]E, 0, len(list))
	for i := range list {
		o := r.ops[key(&list[i])]
		if o == nil || !o.inSnap || !o.present {
			continue
		}
		if o.payload == nil {
			out = append(out, list[i])
			continue
		}
		e, err := decode(o.payload, &list[i])
		if err != nil {
			keep(o.payload, err)
			continue
		}
		out = append(out, e)
	}
	type added struct {
		ticket  int
		payload []byte
	}
	var adds []added
	for _, o := range r.ops {
		if o.present && !o.inSnap {
			adds = append(adds, added{o.ticket, o.payload})
		}
	}
	slices.SortFunc(adds, func(a, b added) int { return a.ticket - b.ticket })
	for _, a := range adds {
		e, err := decode(a.payload, nil)
		if err != nil {
			keep(a.payload, err)
			continue
		}
		out = append(out, e)
	}
	return out
}

// replayRecords applies the records after st.JournalSeq to st, in place.
// A put whose entry does not decode is kept (State.Kept) with the reason,
// as a bad entry of the snapshot is. It returns how many records it
// applied.
func replayRecords(st *State, recs []scanned) (int, error) {
	keys := func(n int, key func(int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = key(i)
		}
		return out
	}
	ws := newSectionReplay(keys(len(st.Workspaces), func(i int) string { return st.Workspaces[i].ID }))
	saved := newSectionReplay(keys(len(st.SavedPipelines), func(i int) string { return st.SavedPipelines[i].Name }))
	live := newSectionReplay(keys(len(st.LivePipelines), func(i int) string { return st.LivePipelines[i].ID }))
	cmds := newSectionReplay(keys(len(st.LiveCommands), func(i int) string { return st.LiveCommands[i].ID }))
	applied := 0
	for _, r := range recs {
		if r.seq <= st.JournalSeq {
			continue // the snapshot holds it
		}
		applied++
		if r.Type%2 == 1 && !json.Valid(r.Payload) {
			return 0, fmt.Errorf("%w: record %d: its entry is not JSON", ErrJournalCorrupt, r.seq)
		}
		switch r.Type {
		case RecPutWorkspace:
			ws.put(r.Key, r.Payload)
		case RecDelWorkspace:
			ws.remove(r.Key)
		case RecPutSaved:
			saved.put(r.Key, r.Payload)
		case RecDelSaved:
			saved.remove(r.Key)
		case RecPutLivePipeline:
			live.put(r.Key, r.Payload)
		case RecDelLivePipeline:
			live.remove(r.Key)
		case RecPutLiveCommand:
			cmds.put(r.Key, r.Payload)
		case RecDelLiveCommand:
			cmds.remove(r.Key)
		}
	}
	if applied == 0 {
		return 0, nil
	}
	keeper := func(section string) func([]byte, error) {
		return func(payload []byte, err error) {
			st.Kept = append(st.Kept, newKept(section, payload, "journal record: "+err.Error()))
		}
	}
	st.Workspaces = replaySection(st.Workspaces, ws, func(e *WorkspaceEntry) string { return e.ID },
		func(p []byte, prev *WorkspaceEntry) (WorkspaceEntry, error) {
			var e WorkspaceEntry
			x, err := decodeEntry(p, &e)
			e.Extra = x
			if prev != nil {
				e.StatsHistory = prev.StatsHistory // stats ride with snapshots
			}
			return e, err
		}, keeper(SectionWorkspaces))
	st.SavedPipelines = replaySection(st.SavedPipelines, saved, func(e *SavedPipeline) string { return e.Name },
		func(p []byte, _ *SavedPipeline) (SavedPipeline, error) {
			var e SavedPipeline
			x, err := decodeEntry(p, &e)
			e.Extra = x
			return e, err
		}, keeper(SectionSavedPipelines))
	st.LivePipelines = replaySection(st.LivePipelines, live, func(e *LivePipeline) string { return e.ID },
		func(p []byte, _ *LivePipeline) (LivePipeline, error) {
			var e LivePipeline
			x, err := decodeEntry(p, &e)
			e.Extra = x
			return e, err
		}, keeper(SectionLivePipelines))
	st.LiveCommands = replaySection(st.LiveCommands, cmds, func(e *LiveCommand) string { return e.ID },
		func(p []byte, _ *LiveCommand) (LiveCommand, error) {
			var e LiveCommand
			x, err := decodeEntry(p, &e)
			e.Extra = x
			return e, err
		}, keeper(SectionLiveCommands))
	return applied, nil
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
		recs = append(recs, Record{Type: RecPutWorkspace, Key: w.ID, Payload: p})
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
		recs = append(recs, Record{Type: RecPutSaved, Key: sp.Name, Payload: p})
	}
	for i := range prev.SavedPipelines {
		if n := prev.SavedPipelines[i].Name; !nowSaved[n] {
			dels = append(dels, Record{Type: RecDelSaved, Key: n})
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
		recs = append(recs, Record{Type: RecPutLivePipeline, Key: lp.ID, Payload: p})
	}
	for i := range prev.LivePipelines {
		if id := prev.LivePipelines[i].ID; !nowLive[id] {
			if id == "" {
				return nil, false, nil
			}
			dels = append(dels, Record{Type: RecDelLivePipeline, Key: id})
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
		recs = append(recs, Record{Type: RecPutLiveCommand, Key: lc.ID, Payload: p})
	}
	for i := range prev.LiveCommands {
		if id := prev.LiveCommands[i].ID; !nowCmd[id] {
			dels = append(dels, Record{Type: RecDelLiveCommand, Key: id})
		}
	}
	for i := range prev.Workspaces {
		if id := prev.Workspaces[i].ID; !now[id] {
			dels = append(dels, Record{Type: RecDelWorkspace, Key: id})
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
