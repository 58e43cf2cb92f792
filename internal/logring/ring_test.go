package logring

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

func lines(ls []messages.LogLine) []string {
	var out []string
	for _, l := range ls {
		out = append(out, string(l.Stream)+":"+l.Line)
	}
	return out
}

func TestSplitsLinesPerStream(t *testing.T) {
	r := New(0)
	now := time.Now()
	r.Write(messages.Stdout, now, []byte("one\ntw"))
	r.Write(messages.Stderr, now, []byte("err\n"))
	r.Write(messages.Stdout, now, []byte("o\nthree"))
	r.Flush(messages.Stdout, now)
	got, _ := r.Read(Query{})
	want := "out:one err:err out:two out:three"
	if strings.Join(lines(got), " ") != want {
		t.Fatalf("got %v, want %s", lines(got), want)
	}
}

func TestQueries(t *testing.T) {
	r := New(0)
	t0 := time.Unix(1000, 0)
	for i, s := range []string{"a", "b", "c", "d"} {
		st := messages.Stdout
		if i%2 == 1 {
			st = messages.Stderr
		}
		r.Write(st, t0.Add(time.Duration(i)*time.Second), []byte(s+"\n"))
	}
	cases := []struct {
		q    Query
		want string
	}{
		{Query{}, "out:a err:b out:c err:d"},
		{Query{Tail: 2}, "out:c err:d"},
		{Query{Stream: messages.Stderr}, "err:b err:d"},
		{Query{Since: t0.Add(2 * time.Second)}, "out:c err:d"},
		{Query{Tail: 1, Stream: messages.Stdout}, "out:c"},
	}
	for _, c := range cases {
		got, _ := r.Read(c.q)
		if strings.Join(lines(got), " ") != c.want {
			t.Errorf("%+v: got %v, want %s", c.q, lines(got), c.want)
		}
	}
}

func TestBoundedByBytes(t *testing.T) {
	r := New(100)
	for i := 0; i < 100; i++ {
		r.Write(messages.Stdout, time.Now(), []byte("0123456789\n"))
	}
	if b := r.Bytes(); b > 100 {
		t.Fatalf("ring holds %d bytes, bound is 100", b)
	}
	got, _ := r.Read(Query{})
	if len(got) != 9 {
		t.Fatalf("ring holds %d lines, want 9", len(got))
	}
}

func TestLongLinesAreSplit(t *testing.T) {
	r := New(1 << 20)
	r.Write(messages.Stdout, time.Now(), []byte(strings.Repeat("x", maxLine+10)))
	r.Flush(messages.Stdout, time.Now())
	got, _ := r.Read(Query{})
	if len(got) != 2 || len(got[0].Line) != maxLine || len(got[1].Line) != 10 {
		t.Fatalf("got %d lines", len(got))
	}
}

func TestFollowSeesNewLinesAndClose(t *testing.T) {
	r := New(0)
	r.Write(messages.Stdout, time.Now(), []byte("old\n"))
	_, cursor := r.Read(Query{})
	got, next, wake, closed := r.Next(cursor, Query{})
	if len(got) != 0 || closed {
		t.Fatalf("nothing new expected, got %v closed=%v", got, closed)
	}
	go r.Write(messages.Stdout, time.Now(), []byte("new\n"))
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up")
	}
	got, next, wake, _ = r.Next(next, Query{})
	if strings.Join(lines(got), " ") != "out:new" {
		t.Fatalf("followed %v", lines(got))
	}
	r.Close()
	<-wake
	_, _, _, closed = r.Next(next, Query{})
	if !closed {
		t.Fatal("closed ring not reported")
	}
}

// model is the ring's contract, kept line by line: every line with its
// sequence number, time and stream; the oldest evicted while the text
// held (a newline counted per line) exceeds max, keeping the newest.
type model struct {
	max     int
	lines   []entry
	seq     uint64
	bytes   int
	partial [2][]byte
}

type entry struct {
	seq  uint64
	line messages.LogLine
}

func (m *model) add(s messages.Stream, t time.Time, line string) {
	m.lines = append(m.lines, entry{m.seq, messages.LogLine{Time: t, Stream: s, Line: line}})
	m.seq++
	m.bytes += len(line) + 1
	for m.bytes > m.max && len(m.lines) > 1 {
		m.bytes -= len(m.lines[0].line.Line) + 1
		m.lines = m.lines[1:]
	}
}

func (m *model) write(s messages.Stream, t time.Time, p []byte) {
	i := streamIndex(s)
	for {
		nl := bytes.IndexByte(p, '\n')
		if nl < 0 {
			break
		}
		m.add(s, t, string(m.partial[i])+string(p[:nl]))
		m.partial[i] = nil
		p = p[nl+1:]
	}
	m.partial[i] = append(m.partial[i], p...)
	for len(m.partial[i]) >= maxLine {
		m.add(s, t, string(m.partial[i][:maxLine]))
		m.partial[i] = m.partial[i][maxLine:]
	}
}

func (m *model) flush(s messages.Stream, t time.Time) {
	if i := streamIndex(s); len(m.partial[i]) > 0 {
		m.add(s, t, string(m.partial[i]))
		m.partial[i] = nil
	}
}

func (m *model) read(cursor uint64, q Query, tail int) []messages.LogLine {
	var out []messages.LogLine
	for _, e := range m.lines {
		if e.seq >= cursor && (q.Stream == "" || e.line.Stream == q.Stream) && (q.Since.IsZero() || !e.line.Time.Before(q.Since)) {
			out = append(out, e.line)
		}
	}
	if tail > 0 && len(out) > tail {
		out = out[len(out)-tail:]
	}
	return out
}

func sameLines(a, b []messages.LogLine) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Time.Equal(b[i].Time) || a[i].Stream != b[i].Stream || a[i].Line != b[i].Line {
			return false
		}
	}
	return true
}

// TestMatchesLineModel drives the ring and its line-by-line model with the
// same random writes (lines of many lengths, partial lines, notes,
// flushes) and checks every read, tail, time and stream query and cursor.
func TestMatchesLineModel(t *testing.T) {
	for _, max := range []int{1, 7, 64, 300, 4096, 300 << 10} {
		rnd := rand.New(rand.NewPCG(uint64(max), 1))
		r, m := New(max), &model{max: max}
		t0 := time.Unix(1000, 0)
		var (
			cursors  [][2]uint64        // the ring's and the model's
			kept     []messages.LogLine // lines read before, to stay as read
			keptText []string
		)
		steps := 2000
		if max > 4096 {
			steps = 300
		}
		for step := range steps {
			tm := t0.Add(time.Duration(step/3) * time.Millisecond)
			s := messages.Stdout
			if rnd.IntN(3) == 0 {
				s = messages.Stderr
			}
			switch op := rnd.IntN(20); {
			case op == 0:
				r.Flush(s, tm)
				m.flush(s, tm)
			case op == 1:
				r.Note(s, tm, "[shipote: note]")
				m.add(s, tm, "[shipote: note]")
			case op == 2 && max > 4096:
				// Big writes: full-size blocks filled, evicted and reused.
				line := strings.Repeat(string(rune('a'+step%26)), rnd.IntN(80)) + "\n"
				p := []byte(strings.Repeat(line, rnd.IntN(100<<10)/len(line)))
				p = append(p, "partial"...)
				r.Write(s, tm, p)
				m.write(s, tm, p)
			default:
				var p []byte
				for range rnd.IntN(12) {
					p = append(p, strings.Repeat(string(rune('a'+rnd.IntN(26))), rnd.IntN(40))...)
					if rnd.IntN(4) != 0 {
						p = append(p, '\n')
					}
				}
				r.Write(s, tm, p)
				m.write(s, tm, p)
			}
			checkBlocks(t, r)
			if r.Bytes() != m.bytes {
				t.Fatalf("max %d step %d: ring holds %d bytes, model %d", max, step, r.Bytes(), m.bytes)
			}
			q := Query{}
			switch rnd.IntN(4) {
			case 1:
				q.Stream = messages.Stderr
			case 2:
				q.Stream = messages.Stdout
			}
			if rnd.IntN(3) == 0 {
				q.Since = t0.Add(time.Duration(rnd.IntN(step/3+1)) * time.Millisecond)
			}
			if rnd.IntN(2) == 0 {
				q.Tail = 1 + rnd.IntN(20)
			}
			for k, l := range kept {
				if l.Line != keptText[k] {
					t.Fatalf("max %d step %d: a line read earlier changed from %q to %q", max, step, keptText[k], l.Line)
				}
			}
			got, next := r.Read(q)
			if len(got) > 0 && step%50 == 0 {
				kept = append(kept, got[0], got[len(got)-1])
				keptText = append(keptText, strings.Clone(got[0].Line), strings.Clone(got[len(got)-1].Line))
			}
			if want := m.read(0, q, q.Tail); !sameLines(got, want) {
				t.Fatalf("max %d step %d: Read(%+v) = %d lines, want %d", max, step, q, len(got), len(want))
			}
			cursors = append(cursors, [2]uint64{next, m.seq})
			c := cursors[rnd.IntN(len(cursors))]
			got, next2, _, _ := r.Next(c[0], q)
			if want := m.read(c[1], q, 0); !sameLines(got, want) || next2 != next {
				t.Fatalf("max %d step %d: Next(%d, %+v) = %d lines, want %d", max, step, c[0], q, len(got), len(want))
			}
		}
	}
}

func TestDoneClosesWithTheRing(t *testing.T) {
	r := New(0)
	done := r.Done()
	select {
	case <-done:
		t.Fatal("done before Close")
	default:
	}
	r.Close()
	<-done
	<-r.Done()
}

// TestReusedBlocksKeepLines floods a ring with numbered lines in writes
// of many sizes (full-size blocks fill, empty and are reused) and checks
// after each write that it holds the newest lines, each intact, within
// its bound, and that lines read earlier did not change.
func TestReusedBlocksKeepLines(t *testing.T) {
	const max = 200 << 10
	r := New(max)
	rnd := rand.New(rand.NewPCG(7, 7))
	line := func(i int) string { return fmt.Sprintf("%08d %s", i, strings.Repeat("x", i%97)) }
	var (
		next     int
		pending  []byte
		old      []messages.LogLine
		oldLines []string
	)
	for w := range 240 {
		for len(pending) < rnd.IntN([]int{2 << 10, 30 << 10, 150 << 10}[w%3]) {
			pending = append(pending, line(next)+"\n"...)
			next++
		}
		cut := rnd.IntN(len(pending) + 1)
		r.Write(messages.Stdout, time.Now(), pending[:cut])
		pending = pending[cut:]
		checkBlocks(t, r)
		got, _ := r.Read(Query{})
		if r.Bytes() > max {
			t.Fatalf("write %d: %d bytes held, bound %d", w, r.Bytes(), max)
		}
		if len(got) == 0 {
			continue
		}
		first, _ := strconv.Atoi(got[0].Line[:8])
		for k, l := range got {
			if want := line(first + k); l.Line != want {
				t.Fatalf("write %d: line %d is %q, want %q", w, k, l.Line, want)
			}
		}
		for k, l := range old {
			if l.Line != oldLines[k] {
				t.Fatalf("write %d: a line read earlier changed from %q to %q", w, oldLines[k], l.Line)
			}
		}
		old = append(old[:0], got[0], got[len(got)-1])
		oldLines = append(oldLines[:0], strings.Clone(got[0].Line), strings.Clone(got[len(got)-1].Line))
	}
}

// checkBlocks fails unless each block holds one run of consecutive chunks
// (a block reused while an older chunk still lies in it shows up twice)
// and the block being filled holds the newest.
func checkBlocks(t *testing.T, r *Ring) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[*[]byte]bool{}
	var prev *[]byte
	for k := range r.count {
		c := &r.chunks[(r.head+k)%len(r.chunks)]
		if c.blk != prev && seen[c.blk] {
			t.Fatalf("chunk %d of %d lies in a block reused by newer chunks", k, r.count)
		}
		seen[c.blk], prev = true, c.blk
	}
	if r.count > 0 && prev != r.tail {
		t.Fatal("the newest chunk is not in the block being filled")
	}
}

// TestBlockReusedOnlyOnceEmpty streams 1 KiB writes of short lines through
// a ring spanning a few full-size blocks, each holding many chunks: a
// block must not be reused while a chunk still lies in it.
func TestBlockReusedOnlyOnceEmpty(t *testing.T) {
	r := New(100 << 10)
	p := []byte(strings.Repeat(strings.Repeat("a", 63)+"\n", 16))
	for range 5000 {
		r.Write(messages.Stdout, time.Now(), p)
		checkBlocks(t, r)
	}
	got, _ := r.Read(Query{})
	if len(got) != 100<<10/64 || got[0].Line != string(p[:63]) {
		t.Fatalf("%d lines held, the first %q", len(got), got[0].Line)
	}
}

// TestWritesAfterCloseWithFollowers: a pipe reader may still write after
// the ring closed, while followers keep asking for lines.
func TestWritesAfterCloseWithFollowers(t *testing.T) {
	r := New(0)
	_, cursor, wake, _ := r.Next(0, Query{})
	r.Close()
	<-wake
	for range 3 {
		_, _, wake, closed := r.Next(cursor, Query{})
		if !closed {
			t.Fatal("closed ring not reported")
		}
		<-wake
		r.Write(messages.Stdout, time.Now(), []byte("late\n"))
	}
	if got, _ := r.Read(Query{}); len(got) != 3 {
		t.Fatalf("%d lines after close, want 3", len(got))
	}
}
