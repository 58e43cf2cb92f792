// Package logring keeps a command's recent output in memory: a ring of
// timestamped lines bounded by bytes, readable by tail, by time and by
// following.
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
	lines   []entry    // circular; oldest at head
	head    int
	n       int
	bytes   int
	nextSeq uint64
	partial [2][]byte // per stream: text after the last newline
	wake    chan struct{}
	closed  bool
}

type entry struct {
	seq  uint64
	line messages.LogLine
}

// New returns a ring holding at most maxBytes of line text (0 = default).
func New(maxBytes int) *Ring {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Ring{max: maxBytes, lines: make([]entry, 16), wake: make(chan struct{})}
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
		// The complete lines become one string (with the pending partial
		// line in front), and each line a substring of it: one copy and
		// one allocation per chunk, not per line. A chunk's memory stays
		// until its last line leaves the ring.
		var text string
		if len(r.partial[i]) > 0 {
			r.partial[i] = append(r.partial[i], p[:last]...)
			text = string(r.partial[i])
			r.partial[i] = r.partial[i][:0]
		} else {
			text = string(p[:last])
		}
		for {
			nl := strings.IndexByte(text, '\n')
			if nl < 0 {
				r.appendLocked(s, t, text)
				break
			}
			r.appendLocked(s, t, text[:nl])
			text = text[nl+1:]
		}
		p = p[last+1:]
	}
	buf := append(r.partial[i], p...)
	for len(buf) >= maxLine {
		r.appendLocked(s, t, string(buf[:maxLine]))
		buf = buf[maxLine:]
	}
	r.partial[i] = append(r.partial[i][:0], buf...)
	r.signalLocked()
}

// Flush turns pending partial lines into lines (at EOF of a stream).
func (r *Ring) Flush(s messages.Stream, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := streamIndex(s)
	if len(r.partial[i]) > 0 {
		r.appendLocked(s, t, string(r.partial[i]))
		r.partial[i] = r.partial[i][:0]
		r.signalLocked()
	}
}

// Note appends a line written by shipote itself (e.g. "[shipote: restarted]").
func (r *Ring) Note(s messages.Stream, t time.Time, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.appendLocked(s, t, text)
	r.signalLocked()
}

func (r *Ring) appendLocked(s messages.Stream, t time.Time, line string) {
	if r.n == len(r.lines) {
		grown := make([]entry, 2*len(r.lines))
		for k := 0; k < r.n; k++ {
			grown[k] = r.lines[(r.head+k)%len(r.lines)]
		}
		r.lines, r.head = grown, 0
	}
	r.lines[(r.head+r.n)%len(r.lines)] = entry{seq: r.nextSeq, line: messages.LogLine{Time: t, Stream: s, Line: line}}
	r.nextSeq++
	r.n++
	r.bytes += len(line) + 1
	for r.bytes > r.max && r.n > 1 {
		old := r.lines[r.head]
		r.lines[r.head] = entry{}
		r.head = (r.head + 1) % len(r.lines)
		r.n--
		r.bytes -= len(old.line.Line) + 1
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
	}
}

// Query selects lines.
type Query struct {
	Tail   int             // keep only the last Tail lines; 0 = all
	Since  time.Time       // only lines at or after Since; zero = all
	Stream messages.Stream // "" = both
}

func (q Query) match(l messages.LogLine) bool {
	if q.Stream != "" && l.Stream != q.Stream {
		return false
	}
	return q.Since.IsZero() || !l.Time.Before(q.Since)
}

// Read returns the lines matching q and a cursor to follow from.
func (r *Ring) Read(q Query) ([]messages.LogLine, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []messages.LogLine
	for k := 0; k < r.n; k++ {
		e := r.lines[(r.head+k)%len(r.lines)]
		if q.match(e.line) {
			out = append(out, e.line)
		}
	}
	if q.Tail > 0 && len(out) > q.Tail {
		out = out[len(out)-q.Tail:]
	}
	return out, r.nextSeq
}

// Next returns the lines appended at or after cursor that match q, the new
// cursor, a channel closed when more lines may be available, and whether
// the ring is closed (no more lines will come). Lines evicted before they
// were read are skipped.
func (r *Ring) Next(cursor uint64, q Query) ([]messages.LogLine, uint64, <-chan struct{}, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []messages.LogLine
	for k := 0; k < r.n; k++ {
		e := r.lines[(r.head+k)%len(r.lines)]
		if e.seq >= cursor && q.match(e.line) {
			out = append(out, e.line)
		}
	}
	return out, r.nextSeq, r.wake, r.closed
}

// Bytes returns how many bytes of line text the ring holds.
func (r *Ring) Bytes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes
}
