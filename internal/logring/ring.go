// Package logring keeps a command's recent output in memory: a ring of
// timestamped lines bounded by bytes, readable by tail, by time and by
// following.
//
// Lines are indexed by chunk, not one by one: each write of a pipe reader
// copies its complete lines, as they are, into the ring's blocks, as one
// chunk with one time and stream, numbered by the position of its first
// byte in all the text the ring was given (the cursors of readers are such
// positions, so a write counts no lines).
// Eviction drops whole chunks, or the oldest lines of a chunk by slicing
// it; a block whose chunks are all gone is reused. Lines are split out (and
// copied into strings) only when they are read, which is rare beside the
// writes of a command that logs fast: a flood of output costs the ring one
// copy per read of the pipe and no allocation.
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

// Blocks hold the text of chunks. A ring's first block is small and each
// next one twice the size of the last, up to blockSize: a quiet command's
// ring keeps little memory, a busy one recycles full-size blocks.
const (
	minBlock  = 512
	blockSize = 64 << 10
)

// blockPool holds free full-size blocks (length 0), shared by every ring.
var blockPool = sync.Pool{New: func() any { b := make([]byte, 0, blockSize); return &b }}

// Ring is a bounded buffer of log lines. It is safe for concurrent use: the
// pipe readers of a command append, the API reads.
type Ring struct {
	max int

	mu      sync.Mutex // guards the following
	chunks  []chunk    // circular; oldest at head
	head    int
	count   int           // chunks held
	bytes   int           // line text held, a newline counted per line
	end     uint64        // position after the last byte appended
	partial [2][]byte     // per stream: text after the last newline
	tail    *[]byte       // the block being filled; nil before the first write
	wake    chan struct{} // closed on the next line; made by the first follower to wait
	done    chan struct{} // made on first Done
	closed  bool
}

// chunk is a run of lines of one stream read at one time.
type chunk struct {
	pos    uint64 // position of text[0]
	t      time.Time
	stream messages.Stream
	text   []byte  // whole lines, each ending with '\n', in blk
	blk    *[]byte // the block holding text
}

// New returns a ring holding at most maxBytes of line text (0 = default).
func New(maxBytes int) *Ring {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Ring{max: maxBytes, chunks: make([]chunk, 8)}
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
		// The complete lines, with the pending partial line in front,
		// become one chunk.
		r.appendLinesLocked(s, t, r.partial[i], p[:last+1])
		r.partial[i] = r.partial[i][:0]
		p = p[last+1:]
	}
	buf := append(r.partial[i], p...)
	for len(buf) >= maxLine {
		r.lineLocked(s, t, buf[:maxLine])
		buf = buf[maxLine:]
	}
	r.partial[i] = append(r.partial[i][:0], buf...)
	r.signalLocked()
}

// appendLinesLocked appends pre+whole, whole lines (pre holds no newline, whole
// ends with one), as one chunk, or as several when they do not fit in the
// room left in the block being filled: the lines that fit go there, so that
// blocks are used to the end.
func (r *Ring) appendLinesLocked(s messages.Stream, t time.Time, pre, whole []byte) {
	for len(whole) > 0 {
		n, room := len(pre)+len(whole), r.room()
		if n > room {
			if room > len(pre) {
				n = len(pre) + bytes.LastIndexByte(whole[:room-len(pre)], '\n') + 1
			} else {
				n = len(pre)
			}
			if n == len(pre) { // not even the first line fits
				r.newBlock(len(pre) + bytes.IndexByte(whole, '\n') + 1)
				continue
			}
		}
		text, blk := r.allocLocked(n)
		k := copy(text, pre)
		copy(text[k:], whole[:n-k])
		r.appendLocked(s, t, text, blk)
		pre, whole = nil, whole[n-k:]
	}
}

// room returns the free bytes of the block being filled.
func (r *Ring) room() int {
	if r.tail == nil {
		return 0
	}
	return cap(*r.tail) - len(*r.tail)
}

// newBlock starts a block of at least n bytes to fill.
func (r *Ring) newBlock(n int) {
	size := minBlock
	if r.tail != nil {
		size = min(blockSize, 2*cap(*r.tail))
	}
	var b *[]byte
	switch {
	case n > blockSize:
		nb := make([]byte, 0, n)
		b = &nb
	case size == blockSize || n > size:
		b = blockPool.Get().(*[]byte)
	default:
		nb := make([]byte, 0, size)
		b = &nb
	}
	r.tail = b
}

// allocLocked returns room for n bytes of text in the ring's blocks, and
// the block holding it.
func (r *Ring) allocLocked(n int) ([]byte, *[]byte) {
	if r.room() < n {
		r.newBlock(n)
	}
	b := r.tail
	k := len(*b)
	*b = (*b)[:k+n]
	return (*b)[k : k+n : k+n], b
}

// release gives a block no chunk uses any more back for reuse.
func (r *Ring) release(b *[]byte) {
	if b != r.tail && cap(*b) == blockSize {
		*b = (*b)[:0]
		blockPool.Put(b)
	}
}

// lineLocked appends text as one line.
func (r *Ring) lineLocked(s messages.Stream, t time.Time, text []byte) {
	line, blk := r.allocLocked(len(text) + 1)
	line[copy(line, text)] = '\n'
	r.appendLocked(s, t, line, blk)
}

// Flush turns pending partial lines into lines (at EOF of a stream).
func (r *Ring) Flush(s messages.Stream, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := streamIndex(s)
	if len(r.partial[i]) > 0 {
		r.lineLocked(s, t, r.partial[i])
		r.partial[i] = r.partial[i][:0]
		r.signalLocked()
	}
}

// Note appends a line written by shipote itself (e.g. "[shipote: restarted]").
// A newline in text starts another line.
func (r *Ring) Note(s messages.Stream, t time.Time, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line, blk := r.allocLocked(len(text) + 1)
	line[copy(line, text)] = '\n'
	r.appendLocked(s, t, line, blk)
	r.signalLocked()
}

// appendLocked adds text, whole lines in blk, then evicts the oldest
// lines beyond the bound (always keeping the newest line).
func (r *Ring) appendLocked(s messages.Stream, t time.Time, text []byte, blk *[]byte) {
	if r.count == len(r.chunks) {
		grown := make([]chunk, 2*len(r.chunks))
		for k := 0; k < r.count; k++ {
			grown[k] = r.chunks[(r.head+k)%len(r.chunks)]
		}
		r.chunks, r.head = grown, 0
	}
	r.chunks[(r.head+r.count)%len(r.chunks)] = chunk{pos: r.end, t: t, stream: s, text: text, blk: blk}
	r.count++
	r.end += uint64(len(text))
	r.bytes += len(text)
	for r.bytes > r.max {
		h := &r.chunks[r.head]
		// k: the bytes of h to drop, the fewest whole lines making up the
		// excess, or all of h but its last line when h is all there is.
		k := len(h.text)
		if need := r.bytes - r.max; need < k {
			k = need + bytes.IndexByte(h.text[need-1:], '\n')
		}
		if k == len(h.text) && r.count == 1 {
			if k = bytes.LastIndexByte(h.text[:len(h.text)-1], '\n') + 1; k == 0 {
				return // one line left: it stays, whatever its length
			}
		}
		if k == len(h.text) {
			r.bytes -= k
			blk := h.blk
			*h = chunk{}
			r.head = (r.head + 1) % len(r.chunks)
			r.count--
			// Blocks fill in order: once the new oldest chunk is in
			// another block, no chunk is left in blk.
			if r.chunks[r.head].blk != blk {
				r.release(blk)
			}
			continue
		}
		h.text = h.text[k:]
		h.pos += uint64(k)
		r.bytes -= k
	}
}

// signalLocked wakes the followers waiting for a line.
func (r *Ring) signalLocked() {
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
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
	return r.linesLocked(0, q, q.Tail), r.end
}

// Next returns the lines appended at or after cursor that match q, the new
// cursor, a channel closed when more lines may be available, and whether
// the ring is closed (no more lines will come). Lines evicted before they
// were read are skipped. q.Tail does not apply.
func (r *Ring) Next(cursor uint64, q Query) ([]messages.LogLine, uint64, <-chan struct{}, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	wake := r.wake
	if wake == nil {
		wake = make(chan struct{})
		if r.closed {
			close(wake) // nothing will signal it
		} else {
			r.wake = wake
		}
	}
	return r.linesLocked(cursor, q, 0), r.end, wake, r.closed
}

// linesLocked returns the lines at cursor or after that match q, only the
// last tail of them when tail > 0.
func (r *Ring) linesLocked(cursor uint64, q Query, tail int) []messages.LogLine {
	// The selected text of each chunk, from the newest back.
	type part struct {
		c    *chunk
		text []byte
	}
	var (
		parts       []part
		total, size int
	)
	for k := r.count - 1; k >= 0 && (tail == 0 || total < tail); k-- {
		c := &r.chunks[(r.head+k)%len(r.chunks)]
		if c.pos+uint64(len(c.text)) <= cursor {
			break
		}
		if !q.match(c) {
			continue
		}
		text := c.text
		if cursor > c.pos {
			text = fromLine(text, int(cursor-c.pos))
		}
		n := bytes.Count(text, []byte{'\n'})
		if tail > 0 && total+n > tail {
			text, n = lastLines(text, tail-total), tail-total
		}
		parts = append(parts, part{c, text})
		total += n
		size += len(text)
	}
	if total == 0 {
		return nil
	}
	// The lines are copied into one string (the blocks are reused) and
	// sliced from it.
	var (
		b    strings.Builder
		ends = make([]int, 0, total)
		out  = make([]messages.LogLine, 0, total)
	)
	b.Grow(size)
	for k := len(parts) - 1; k >= 0; k-- {
		c, text := parts[k].c, parts[k].text
		for len(text) > 0 {
			nl := bytes.IndexByte(text, '\n')
			b.Write(text[:nl])
			ends = append(ends, b.Len())
			out = append(out, messages.LogLine{Time: c.t, Stream: c.stream})
			text = text[nl+1:]
		}
	}
	all, start := b.String(), 0
	for j, end := range ends {
		out[j].Line = all[start:end]
		start = end
	}
	return out
}

// fromLine returns the lines of text that start at off or after.
func fromLine(text []byte, off int) []byte {
	if off > 0 && text[off-1] != '\n' {
		return text[off+bytes.IndexByte(text[off:], '\n')+1:]
	}
	return text[off:]
}

// lastLines returns the last n lines of text (whole lines, n > 0).
func lastLines(text []byte, n int) []byte {
	i := len(text) - 1
	for ; n > 0 && i >= 0; n-- {
		i = bytes.LastIndexByte(text[:i], '\n')
	}
	return text[i+1:]
}

// Bytes returns how many bytes of line text the ring holds.
func (r *Ring) Bytes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes
}
