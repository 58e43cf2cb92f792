package persistence_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/persistence"
)

// wsRecord is the put record of a workspace with the given ID.
func wsEntry(id, label string) persistence.WorkspaceEntry {
	return persistence.WorkspaceEntry{ID: id, Spec: messages.WorkspaceSpec{Label: label}}
}

// ids lists the workspace IDs of st, sorted.
func ids(st *persistence.State) []string {
	var out []string
	for _, w := range st.Workspaces {
		out = append(out, w.ID)
	}
	slices.Sort(out)
	return out
}

// openLoaded opens and loads the state at path, failing the test on any
// error; the store is closed at cleanup.
func openLoaded(t *testing.T, path string) (*persistence.Store, *persistence.State, *persistence.CorruptError) {
	t.Helper()
	s, err := persistence.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	st, problems, corrupt, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	return s, st, corrupt
}

// appendState appends the records that turn prev into next.
func appendState(t *testing.T, s *persistence.Store, prev, next *persistence.State) uint64 {
	t.Helper()
	recs, ok, err := persistence.Delta(prev, next)
	if err != nil || !ok {
		t.Fatalf("delta: ok=%v err=%v", ok, err)
	}
	seq, err := s.Append(recs)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// withWorkspaces returns a state holding workspaces of these IDs.
func withWorkspaces(idList ...string) *persistence.State {
	st := &persistence.State{Version: persistence.CurrentVersion}
	for _, id := range idList {
		st.Workspaces = append(st.Workspaces, wsEntry(id, "l-"+id))
	}
	return st
}

// journalOf writes a journal of three workspace creates (a, b, c) beside
// path and returns the journal's bytes and the end offset of each record.
func journalOf(t *testing.T, path string) ([]byte, []int) {
	t.Helper()
	s, st, _ := openLoaded(t, path)
	var ends []int
	prev := st
	for _, id := range []string{"a", "b", "c"} {
		next := withWorkspaces(append(ids(prev), id)...)
		appendState(t, s, prev, next)
		prev = next
		fi, err := os.Stat(persistence.JournalPath(path))
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, int(fi.Size()))
	}
	s.Close()
	data, err := os.ReadFile(persistence.JournalPath(path))
	if err != nil {
		t.Fatal(err)
	}
	return data, ends
}

func TestJournalReplaysOnLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	journalOf(t, path)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("appends wrote the snapshot: %v", err)
	}
	_, st, _ := openLoaded(t, path)
	if got := ids(st); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("restored %v, want a b c", got)
	}
	if got := persistence.JournalPath(path); filepath.Base(got) != "state.journal" {
		t.Fatalf("journal path %s", got)
	}
}

func TestJournalDamagedTail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(data []byte, ends []int) []byte
	}{
		{"torn in the header", func(d []byte, ends []int) []byte { return d[:ends[1]+5] }},
		{"torn in the payload", func(d []byte, ends []int) []byte { return d[:len(d)-3] }},
		{"CRC mismatch", func(d []byte, ends []int) []byte {
			d = slices.Clone(d)
			d[len(d)-1] ^= 0x20
			return d
		}},
		{"length past the end", func(d []byte, ends []int) []byte {
			d = slices.Clone(d)
			binary.LittleEndian.PutUint32(d[ends[1]:], 1<<20)
			return d
		}},
		{"zeros after the records", func(d []byte, ends []int) []byte {
			return append(slices.Clone(d[:ends[1]]), make([]byte, 40)...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			data, ends := journalOf(t, path)
			if err := os.WriteFile(persistence.JournalPath(path), tc.damage(data, ends), 0o600); err != nil {
				t.Fatal(err)
			}
			s, st, corrupt := openLoaded(t, path)
			if corrupt != nil {
				t.Fatalf("a damaged tail moved the files aside: %v", corrupt)
			}
			if got := ids(st); !reflect.DeepEqual(got, []string{"a", "b"}) {
				t.Fatalf("restored %v, want a b (the damaged last record ignored)", got)
			}
			// The next append cuts the damaged tail off.
			appendState(t, s, st, withWorkspaces("a", "b", "d"))
			s.Close()
			after, err := os.ReadFile(persistence.JournalPath(path))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(after[:ends[1]], data[:ends[1]]) {
				t.Fatal("the valid records changed")
			}
			_, st, corrupt = openLoaded(t, path)
			if corrupt != nil {
				t.Fatalf("after the append: %v", corrupt)
			}
			if got := ids(st); !reflect.DeepEqual(got, []string{"a", "b", "d"}) {
				t.Fatalf("restored %v after an append past a damaged tail, want a b d", got)
			}
		})
	}
}

func TestJournalCorruptMiddleMovesBothAside(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(data []byte, ends []int) []byte
	}{
		{"CRC mismatch", func(d []byte, ends []int) []byte { d[ends[0]-1] ^= 1; return d }},
		{"bad length", func(d []byte, ends []int) []byte { binary.LittleEndian.PutUint32(d[ends[0]:], 3); return d }},
		{"bytes lost", func(d []byte, ends []int) []byte { return append(d[:ends[0]-4], d[ends[0]:]...) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			snap := withWorkspaces("s")
			if err := writeState(path, snap); err != nil {
				t.Fatal(err)
			}
			data, ends := journalOf(t, path)
			if err := os.WriteFile(persistence.JournalPath(path), tc.damage(slices.Clone(data), ends), 0o600); err != nil {
				t.Fatal(err)
			}
			_, st, corrupt := openLoaded(t, path)
			if corrupt == nil {
				t.Fatal("a journal damaged in its middle was replayed")
			}
			if !errors.Is(corrupt, persistence.ErrCorrupt) || !errors.Is(corrupt, persistence.ErrJournalCorrupt) {
				t.Errorf("error %v does not wrap ErrCorrupt and ErrJournalCorrupt", corrupt)
			}
			if len(st.Workspaces) != 0 {
				t.Errorf("started with %v, want empty", ids(st))
			}
			for _, f := range []struct{ from, to string }{{path, corrupt.MovedTo}, {persistence.JournalPath(path), corrupt.JournalMovedTo}} {
				if !strings.HasPrefix(f.to, f.from+".corrupt-") {
					t.Errorf("%s moved to %q", f.from, f.to)
				}
				if _, err := os.Stat(f.from); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s still there: %v", f.from, err)
				}
				if _, err := os.Stat(f.to); err != nil {
					t.Errorf("moved file: %v", err)
				}
			}
			if !strings.Contains(corrupt.Error(), corrupt.JournalMovedTo) {
				t.Errorf("the message does not name the journal's new place: %v", corrupt)
			}
		})
	}
}

// writeState writes st as the snapshot at path.
func writeState(path string, st *persistence.State) error {
	data, err := persistence.Encode(st)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

func TestJournalReplayIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, st, _ := openLoaded(t, path)
	// Records: create a, b, c; remove a; save a pipeline; run one in b.
	states := []*persistence.State{withWorkspaces("a"), withWorkspaces("a", "b", "c"), withWorkspaces("b", "c")}
	last := withWorkspaces("b", "c")
	last.SavedPipelines = []persistence.SavedPipeline{{Name: "p", Spec: messages.PipelineSpec{Label: "p"}}}
	last.LivePipelines = []persistence.LivePipeline{{ID: "run1", Workspace: "b", Spec: messages.PipelineSpec{Label: "p"}}}
	states = append(states, last)
	prev := st
	var seq uint64
	for _, next := range states {
		seq = appendState(t, s, prev, next)
		prev = next
	}
	s.Close()
	// A snapshot that already holds every record but says it holds none
	// (as after a crash between a snapshot and its journal's trim, with
	// the sequence number lost): replaying on top changes nothing.
	if err := writeState(path, last); err != nil {
		t.Fatal(err)
	}
	_, again, _ := openLoaded(t, path)
	want := withWorkspaces("b", "c")
	want.SavedPipelines, want.LivePipelines = last.SavedPipelines, last.LivePipelines
	if got, err := comparable(again); err != nil || got != mustEncode(t, want) {
		t.Fatalf("replay over a snapshot holding the records:\n%s\nwant\n%s", got, mustEncode(t, want))
	}
	// And with the sequence number, nothing is replayed.
	cp := *last
	cp.JournalSeq = seq
	if err := writeState(path, &cp); err != nil {
		t.Fatal(err)
	}
	st2, _, err := persistence.ReadFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := comparable(st2); got != mustEncode(t, want) {
		t.Fatalf("snapshot with its sequence number:\n%s", got)
	}
}

// comparable encodes st without its timestamp and sequence number.
func comparable(st *persistence.State) (string, error) {
	cp := *st
	cp.TimestampMs, cp.JournalSeq = 0, 0
	for i := range cp.Workspaces {
		cp.Workspaces[i].Pos = 0
	}
	data, err := persistence.Encode(&cp)
	return string(data), err
}

func mustEncode(t *testing.T, st *persistence.State) string {
	t.Helper()
	s, err := comparable(st)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDelta(t *testing.T) {
	pipe := func(label string) messages.PipelineSpec { return messages.PipelineSpec{Label: label} }
	base := func() *persistence.State {
		st := withWorkspaces("a", "b")
		st.SavedPipelines = []persistence.SavedPipeline{{Name: "p", Spec: pipe("one")}}
		st.LivePipelines = []persistence.LivePipeline{{ID: "r1", Workspace: "a", Spec: pipe("x")}}
		st.LiveCommands = []persistence.LiveCommand{{ID: "c1", Workspace: "a", Spec: messages.CommandRef{Label: "web"}}}
		return st
	}
	for _, tc := range []struct {
		name    string
		change  func(*persistence.State)
		records int
	}{
		{"nothing", func(*persistence.State) {}, 0},
		{"a workspace created", func(s *persistence.State) { s.Workspaces = append(s.Workspaces, wsEntry("c", "c")) }, 1},
		{"stats alone", func(s *persistence.State) {
			s.Workspaces[0].StatsHistory = []messages.Sample{{TimestampMs: 1}}
		}, 0},
		{"a workspace removed with its run and command", func(s *persistence.State) {
			s.Workspaces = s.Workspaces[1:]
			s.LivePipelines, s.LiveCommands = nil, nil
		}, 3},
		{"a saved pipeline replaced", func(s *persistence.State) { s.SavedPipelines[0].Spec = pipe("two") }, 1},
		{"a saved pipeline deleted", func(s *persistence.State) { s.SavedPipelines = nil }, 1},
		{"a run started", func(s *persistence.State) {
			s.LivePipelines = append(s.LivePipelines, persistence.LivePipeline{ID: "r2", Workspace: "b", Spec: pipe("y"), Tap: true})
		}, 1},
		{"a command stopped", func(s *persistence.State) { s.LiveCommands = nil }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev, next := base(), base()
			tc.change(next)
			recs, ok, err := persistence.Delta(prev, next)
			if err != nil || !ok {
				t.Fatalf("ok=%v err=%v", ok, err)
			}
			if len(recs) != tc.records {
				t.Fatalf("%d records, want %d", len(recs), tc.records)
			}
			// Written on top of prev, the records give next.
			path := filepath.Join(t.TempDir(), "state.json")
			if err := writeState(path, prev); err != nil {
				t.Fatal(err)
			}
			s, _, _ := openLoaded(t, path)
			if _, err := s.Append(recs); err != nil {
				t.Fatal(err)
			}
			s.Close()
			got, _, err := persistence.ReadFiles(path)
			if err != nil {
				t.Fatal(err)
			}
			want := *next
			want.Workspaces = slices.Clone(next.Workspaces)
			for i := range want.Workspaces { // stats ride along with snapshots, not records
				if want.Workspaces[i].ID == "a" {
					want.Workspaces[i].StatsHistory = prev.Workspaces[0].StatsHistory
				}
			}
			if g, w := mustEncode(t, got), mustEncode(t, &want); g != w {
				t.Fatalf("replayed:\n%s\nwant\n%s", g, w)
			}
		})
	}
	t.Run("kept entries changed", func(t *testing.T) {
		prev, next := base(), base()
		next.Kept = []persistence.KeptEntry{{Section: persistence.SectionWorkspaces, Raw: []byte(`{"id":"k"}`)}}
		if _, ok, err := persistence.Delta(prev, next); ok || err != nil {
			t.Fatalf("a change of kept entries said in records: ok=%v err=%v", ok, err)
		}
	})
}

// TestCompactionCrashPoints writes a snapshot while records keep being
// appended (as a background compaction does) and stops it before each of
// its steps, as a crash would; at every point the files must restore
// exactly the acknowledged state.
func TestCompactionCrashPoints(t *testing.T) {
	steps := []string{"create", "write", "sync", "close", "rename", "syncdir",
		"journal-trim-create", "journal-trim-sync", "journal-trim-rename", "journal-trim-syncdir", ""}
	for _, stop := range steps {
		name := "before " + stop
		if stop == "" {
			name = "completed"
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := writeState(path, withWorkspaces("s1", "s2")); err != nil {
				t.Fatal(err)
			}
			s, st, _ := openLoaded(t, path)
			acked := st
			ack := func(next *persistence.State) uint64 {
				seq := appendState(t, s, acked, next)
				acked = next
				return seq
			}
			ack(withWorkspaces("s1", "s2", "a"))
			seq := ack(withWorkspaces("s2", "a"))
			// The compaction takes the state at seq; appends go on.
			cp := *acked
			cp.JournalSeq = seq
			data, err := persistence.Encode(&cp)
			if err != nil {
				t.Fatal(err)
			}
			ack(withWorkspaces("s2", "a", "b"))
			crash := errors.New("crash")
			persistence.SetSaveHook(s, func(step string) error {
				if step == stop {
					return crash
				}
				return nil
			})
			_, trimErr, err := s.SaveSnapshot(data, seq)
			if err != nil && !errors.Is(err, crash) || trimErr != nil && !errors.Is(trimErr, crash) {
				t.Fatalf("save: %v, trim: %v", err, trimErr)
			}
			if stop == "" && (err != nil || trimErr != nil) {
				t.Fatalf("save: %v, trim: %v", err, trimErr)
			}
			s.Close()
			// Reopen: exactly the acknowledged state.
			s2, got, corrupt := openLoaded(t, path)
			if corrupt != nil {
				t.Fatal(corrupt)
			}
			if g, w := ids(got), ids(acked); !reflect.DeepEqual(g, w) {
				t.Fatalf("restored %v, acknowledged %v", g, w)
			}
			// And appends go on from there, with new sequence numbers.
			next := withWorkspaces("s2", "a", "b", "c")
			if _, err := s2.Append(mustDelta(t, got, next)); err != nil {
				t.Fatal(err)
			}
			s2.Close()
			_, again, _ := openLoaded(t, path)
			if g, w := ids(again), ids(next); !reflect.DeepEqual(g, w) {
				t.Fatalf("after one more append: %v, want %v", g, w)
			}
			if stop == "" {
				fi, err := os.Stat(persistence.JournalPath(path))
				if err != nil || fi.Size() == 0 {
					t.Fatalf("the trimmed journal lost the record appended during the snapshot: %v %v", fi, err)
				}
			}
		})
	}
}

func mustDelta(t *testing.T, prev, next *persistence.State) []persistence.Record {
	t.Helper()
	recs, ok, err := persistence.Delta(prev, next)
	if err != nil || !ok {
		t.Fatalf("delta: ok=%v err=%v", ok, err)
	}
	return recs
}

// TestFailedAppendIsNotInEffect: an append that fails (here before its
// fdatasync) is cut off the file, so it never comes back at a restart,
// and its sequence numbers are not used again.
func TestFailedAppendIsNotInEffect(t *testing.T) {
	for _, step := range []string{"journal-write", "journal-sync"} {
		t.Run(step, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			s, st, _ := openLoaded(t, path)
			one := withWorkspaces("a")
			first := appendState(t, s, st, one)
			persistence.SetSaveHook(s, func(x string) error {
				if x == step {
					return fmt.Errorf("refused at %s", x)
				}
				return nil
			})
			if _, err := s.Append(mustDelta(t, one, withWorkspaces("a", "b"))); err == nil {
				t.Fatal("the append did not fail")
			}
			persistence.SetSaveHook(s, nil)
			seq := appendState(t, s, one, withWorkspaces("a", "c"))
			if seq <= first+1 {
				t.Errorf("sequence number %d reused after a failed append (first %d)", seq, first)
			}
			s.Close()
			_, got, _ := openLoaded(t, path)
			if g := ids(got); !reflect.DeepEqual(g, []string{"a", "c"}) {
				t.Fatalf("restored %v, want a c", g)
			}
		})
	}
}

// TestDeletedJournalRefusesAppends: an append never goes to a journal
// that is no longer at its path; Check reports it so it is written again.
func TestDeletedJournalRefusesAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, st, _ := openLoaded(t, path)
	appendState(t, s, st, withWorkspaces("a"))
	if err := os.Remove(persistence.JournalPath(path)); err != nil {
		t.Fatal(err)
	}
	if got := s.Check(false); got != "deleted" {
		t.Errorf("Check = %q, want deleted", got)
	}
	if _, err := s.Append(mustDelta(t, withWorkspaces("a"), withWorkspaces("a", "b"))); err == nil {
		t.Fatal("appended to a deleted journal")
	}
	data, err := persistence.Encode(withWorkspaces("a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, trimErr, err := s.SaveSnapshot(data, s.JournalSeq()); err != nil || trimErr != nil {
		t.Fatalf("snapshot: %v %v", err, trimErr)
	}
	if got := s.Check(false); got != "" {
		t.Errorf("Check after the snapshot = %q", got)
	}
	appendState(t, s, withWorkspaces("a"), withWorkspaces("a", "b"))
	s.Close()
	_, got, _ := openLoaded(t, path)
	if g := ids(got); !reflect.DeepEqual(g, []string{"a", "b"}) {
		t.Fatalf("restored %v, want a b", g)
	}
}

// TestSaveAfterLastAppendCutsTheJournal: a snapshot that holds every
// record empties the journal in place (same file, no temp file). Stopped
// before the cut, or with the cut lost as a crash may lose it (the file
// put back as it was), the files restore exactly the acknowledged state,
// and appends go on from there.
func TestSaveAfterLastAppendCutsTheJournal(t *testing.T) {
	for _, tc := range []string{"completed", "stopped before the cut", "cut lost"} {
		t.Run(tc, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			jpath := persistence.JournalPath(path)
			if err := writeState(path, withWorkspaces("s1")); err != nil {
				t.Fatal(err)
			}
			s, st, _ := openLoaded(t, path)
			appendState(t, s, st, withWorkspaces("s1", "a"))
			acked := withWorkspaces("a", "b")
			seq := appendState(t, s, withWorkspaces("s1", "a"), acked)
			before, err := os.ReadFile(jpath)
			if err != nil || len(before) == 0 {
				t.Fatalf("journal before the save: %d bytes, %v", len(before), err)
			}
			fi0, err := os.Stat(jpath)
			if err != nil {
				t.Fatal(err)
			}
			cp := *acked
			cp.JournalSeq = seq
			data, err := persistence.Encode(&cp)
			if err != nil {
				t.Fatal(err)
			}
			crash := errors.New("crash")
			if tc == "stopped before the cut" {
				persistence.SetSaveHook(s, func(step string) error {
					if step == "journal-trim-truncate" {
						return crash
					}
					return nil
				})
			}
			_, trimErr, err := s.SaveSnapshot(data, seq)
			if err != nil {
				t.Fatal(err)
			}
			if tc == "stopped before the cut" {
				if !errors.Is(trimErr, crash) {
					t.Fatalf("trim: %v, want the crash", trimErr)
				}
			} else if trimErr != nil {
				t.Fatal(trimErr)
			}
			fi, err := os.Stat(jpath)
			if err != nil {
				t.Fatal(err)
			}
			switch tc {
			case "completed":
				if fi.Size() != 0 || !os.SameFile(fi0, fi) {
					t.Fatalf("journal after the save: %d bytes, same file %v; want the same file, empty", fi.Size(), os.SameFile(fi0, fi))
				}
				if js := s.JournalStats(); js.Bytes != 0 || js.Records != 0 || js.Seq != seq {
					t.Errorf("journal stats after the save: %+v", js)
				}
			case "stopped before the cut":
				if fi.Size() != int64(len(before)) {
					t.Fatalf("journal cut although stopped: %d bytes", fi.Size())
				}
			case "cut lost":
				if err := os.WriteFile(jpath, before, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			s2, got, corrupt := openLoaded(t, path)
			if corrupt != nil {
				t.Fatal(corrupt)
			}
			if g, w := ids(got), ids(acked); !reflect.DeepEqual(g, w) {
				t.Fatalf("restored %v, acknowledged %v", g, w)
			}
			next := withWorkspaces("a", "b", "c")
			nseq, err := s2.Append(mustDelta(t, got, next))
			if err != nil {
				t.Fatal(err)
			}
			if nseq <= seq {
				t.Errorf("sequence number %d after the snapshot's %d", nseq, seq)
			}
			s2.Close()
			_, again, _ := openLoaded(t, path)
			if g, w := ids(again), ids(next); !reflect.DeepEqual(g, w) {
				t.Fatalf("after one more append: %v, want %v", g, w)
			}
		})
	}
}

// TestJournalGroupIsAllOrNothing cuts a three-record append (one group
// commit, as an apply makes) at every byte, record boundaries included:
// a restore finds the whole group or none of it.
func TestJournalGroupIsAllOrNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s, st, _ := openLoaded(t, path)
	one := withWorkspaces("a")
	appendState(t, s, st, one)
	fi, err := os.Stat(persistence.JournalPath(path))
	if err != nil {
		t.Fatal(err)
	}
	before := int(fi.Size())
	appendState(t, s, one, withWorkspaces("a", "b", "c", "d"))
	s.Close()
	data, err := os.ReadFile(persistence.JournalPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := persistence.ReadJournal(persistence.JournalPath(path)); err != nil || len(recs) != 4 {
		t.Fatalf("journal holds %d records (%v), want 4", len(recs), err)
	}
	for cut := before; cut <= len(data); cut++ {
		dir := t.TempDir()
		p := filepath.Join(dir, "state.json")
		if err := os.WriteFile(persistence.JournalPath(p), data[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		s, st, corrupt := openLoaded(t, p)
		if corrupt != nil {
			t.Fatalf("cut at %d: moved aside: %v", cut, corrupt)
		}
		want := []string{"a"}
		if cut == len(data) {
			want = []string{"a", "b", "c", "d"}
		}
		if got := ids(st); !reflect.DeepEqual(got, want) {
			t.Fatalf("cut at byte %d of %d: restored %v, want %v", cut, len(data), got, want)
		}
		// The torn group is cut off by the next append, which restores.
		appendState(t, s, st, withWorkspaces(append(want, "e")...))
		s.Close()
		_, st, corrupt = openLoaded(t, p)
		if corrupt != nil {
			t.Fatalf("cut at %d, after an append: %v", cut, corrupt)
		}
		if got, w := ids(st), append(want, "e"); !reflect.DeepEqual(got, w) {
			t.Fatalf("cut at %d, after an append: restored %v, want %v", cut, got, w)
		}
		s.Close()
	}
}
