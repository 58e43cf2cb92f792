// Package logring keeps a command's recent output in memory: a ring of
// timestamped lines bounded by bytes, readable by tail, by time and by
// following.
//
// Lines are indexed by chunk, not one by one: each write of a pipe reader
// keeps its complete lines as one string (one copy, one allocation) with
// one time, stream and sequence number for its first line. Eviction drops
// whole chunks, or the oldest lines of a chunk by slicing its string.
// Lines are split out only when they are read, which is rare beside the
// writes of a command that logs fast.
package logring

import (
	"bytes"
	"strings"
	"sync"
	"time"

	"github.com/shipote/shipote/messages"
)

// DefaultMaxBytes is the default bound of a ring.
const DefaultMaxBytes = 1 << 20

// maxLine is the longest line kept whole; longer output is split.
const maxLine = 64 << 10

// Ring is a bounded buffer of log lines. It is safe for concurrent use: the
// pipe readers of a command append, the API reads.
type Ring struct {
	max int

	mu      sync.Mutex // guards the following
	chunks  []chunk    // circular; oldest at head
	head    int
	count   int // chunks held
	n       int // lines held
	bytes   int // line text held, a newline counted per line
	nextSeq uint64
	partial [2][]byte // per stream: text after the last newline
	wake    chan struct{}
	done    chan struct{} // made on first Done
	closed  bool
}

// chunk is a run of lines of one stream read at one time.
type chunk struct {
	seq    uint64 // sequence number of the first line in text
	t      time.Time
	stream messages.Stream
	text   string // whole lines, each ending with '\n'
	n      int    // lines in text
}

// New returns a ring holding at most maxBytes of line text (0 = default).
func New(maxBytes int) *Ring {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Ring{max: maxBytes, chunks: make([]chunk, 8), wake: make(chan struct{})}
}

func streamIndex(s messages.Stream) int {
	if s == messages.Stderr {
		return 1
	}
	return 0
}

// Write appends output of stream s received at time t, splitting it into
// lines; text after the last newline waits for the rest of its line.
func (r *Ring) Write(s messages.Stream, t time.Time, p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := streamIndex(s)
	if last := bytes.LastIndexByte(p, '\n'); last >= 0 {
		// The complete lines become one string, with the pending partial
		// line in front: one copy and one allocation per chunk. A chunk's
		// memory stays until its last line leaves the ring.
		whole := p[:last+1]
		var text string
		if len(r.partial[i]) > 0 {
			r.partial[i] = append(r.partial[i], whole...)
			text = string(r.partial[i])
			r.partial[i] = r.partial[i][:0]
		} else {
			text = string(whole)
		}
		r.appendLocked(s, t, text, bytes.Count(whole, []byte{'\n'}))
		p = p[last+1:]
	}
	buf := append(r.partial[i], p...)
	for len(buf) >= maxLine {
		r.appendLocked(s, t, lineOf(buf[:maxLine]), 1)
		buf = buf[maxLine:]
	}
	r.partial[i] = append(r.partial[i][:0], buf...)
	r.signalLocked()
}

// lineOf returns text and a newline as a string.
func lineOf(text []byte) string {
	var b strings.Builder
	b.Grow(len(text) + 1)
	b.Write(text)
	b.WriteByte('\n')
	return b.String()
}

// Flush turns pending partial lines into lines (at EOF of a stream).
func (r *Ring) Flush(s messages.Stream, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := streamIndex(s)
	if len(r.partial[i]) > 0 {
		r.appendLocked(s, t, lineOf(r.partial[i]), 1)
		r.partial[i] = r.partial[i][:0]
		r.signalLocked()
	}
}

// Note appends a line written by shipote itself (e.g. "[shipote: restarted]").
// A newline in text starts another line.
func (r *Ring) Note(s messages.Stream, t time.Time, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.appendLocked(s, t, text+"\n", strings.Count(text, "\n")+1)
	r.signalLocked()
}

// appendLocked adds text, n whole lines, then evicts the oldest lines
// beyond the bound (always keeping the newest line).
func (r *Ring) appendLocked(s messages.Stream, t time.Time, text string, n int) {
	if r.count == len(r.chunks) {
		grown := make([]chunk, 2*len(r.chunks))
		for k := 0; k < r.count; k++ {
			grown[k] = r.chunks[(r.head+k)%len(r.chunks)]
		}
		r.chunks, r.head = grown, 0
	}
	r.chunks[(r.head+r.count)%len(r.chunks)] = chunk{seq: r.nextSeq, t: t, stream: s, text: text, n: n}
	r.count++
	r.nextSeq += uint64(n)
	r.n += n
	r.bytes += len(text)
	for r.bytes > r.max && r.n > 1 {
		h := &r.chunks[r.head]
		// k: the bytes of h to drop, the fewest whole lines making up the
		// excess, or all of h but its last line when h is all there is.
		k := len(h.text)
		if need := r.bytes - r.max; need < k {
			k = need + strings.IndexByte(h.text[need-1:], '\n')
		}
		if k == len(h.text) && r.count == 1 {
			k = strings.LastIndexByte(h.text[:len(h.text)-1], '\n') + 1
		}
		if k == len(h.text) {
			r.n -= h.n
			r.bytes -= k
			*h = chunk{}
			r.head = (r.head + 1) % len(r.chunks)
			r.count--
			continue
		}
		m := strings.Count(h.text[:k], "\n")
		h.text = h.text[k:]
		h.seq += uint64(m)
		h.n -= m
		r.n -= m
		r.bytes -= k
	}
}

func (r *Ring) signalLocked() {
	close(r.wake)
	r.wake = make(chan struct{})
}

// Close wakes every follower for the last time; later reads still work.
func (r *Ring) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		r.signalLocked()
		if r.done != nil {
			close(r.done)
		}
	}
}

// Done returns a channel closed when the ring is closed.
func (r *Ring) Done() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done == nil {
		r.done = make(chan struct{})
		if r.closed {
			close(r.done)
		}
	}
	return r.done
}

// Query selects lines.
type Query struct {
	Tail   int             // keep only the last Tail lines; 0 = all
	Since  time.Time       // only lines at or after Since; zero = all
	Stream messages.Stream // "" = both
}

// match reports whether the lines of c match q (they share its time and
// stream).
func (q Query) match(c *chunk) bool {
	if q.Stream != "" && c.stream != q.Stream {
		return false
	}
	return q.Since.IsZero() || !c.t.Before(q.Since)
}

// Read returns the lines matching q and a cursor to follow from.
func (r *Ring) Read(q Query) ([]messages.LogLine, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.linesLocked(0, q, q.Tail), r.nextSeq
}

// Next returns the lines appended at or after cursor that match q, the new
// cursor, a channel closed when more lines may be available, and whether
// the ring is closed (no more lines will come). Lines evicted before they
// were read are skipped. q.Tail does not apply.
func (r *Ring) Next(cursor uint64, q Query) ([]messages.LogLine, uint64, <-chan struct{}, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.linesLocked(cursor, q, 0), r.nextSeq, r.wake, r.closed
}

// linesLocked returns the lines numbered cursor or later that match q, only
// the last tail of them when tail > 0.
func (r *Ring) linesLocked(cursor uint64, q Query, tail int) []messages.LogLine {
	// from(c): how many of c's lines come before cursor.
	from := func(c *chunk) int {
		if cursor <= c.seq {
			return 0
		}
		return int(min(cursor-c.seq, uint64(c.n)))
	}
	// Count the lines to return, from the newest back, and find where
	// they start: chunk first, its first skip lines left out.
	total, first, skip := 0, r.count, 0
	for k := r.count - 1; k >= 0; k-- {
		c := &r.chunks[(r.head+k)%len(r.chunks)]
		if c.seq+uint64(c.n) <= cursor {
			break
		}
		if !q.match(c) {
			first = k
			continue
		}
		have := c.n - from(c)
		if tail > 0 && total+have >= tail {
			skip = from(c) + have - (tail - total)
			total, first = tail, k
			break
		}
		total += have
		first, skip = k, from(c)
	}
	if total == 0 {
		return nil
	}
	out := make([]messages.LogLine, 0, total)
	for k := first; k < r.count && len(out) < total; k++ {
		c := &r.chunks[(r.head+k)%len(r.chunks)]
		if !q.match(c) {
			continue
		}
		text := c.text
		for range skip {
			text = text[strings.IndexByte(text, '\n')+1:]
		}
		skip = 0
		for len(text) > 0 {
			nl := strings.IndexByte(text, '\n')
			out = append(out, messages.LogLine{Time: c.t, Stream: c.stream, Line: text[:nl]})
			text = text[nl+1:]
		}
	}
	return out
}

// Bytes returns how many bytes of line text the ring holds.
func (r *Ring) Bytes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes
}
