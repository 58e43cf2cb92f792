// queue.go owns the in-memory queue between Writer.Write (the pipe readers)
// and the Writer's goroutine: chunks copied into pooled 64 KiB blocks,
// bounded in bytes, with drop markers where chunks were refused.

package logfile

import (
	"sync"
	"time"
)

// blockSize is the size of the pooled blocks queued chunks are copied into.
const blockSize = 64 << 10

// blockPool holds free blocks, shared by every Writer so that an idle
// command keeps no queue memory.
var blockPool = sync.Pool{New: func() any { b := make([]byte, blockSize); return &b }}

// stream indexes.
const (
	streamOut = 0
	streamErr = 1
)

// record is one queued piece of output, or a drop marker when drop > 0.
type record struct {
	stream int
	t      time.Time
	data   []byte // a slice of a block; nil for a drop marker
	drop   uint64 // bytes refused at this point of the stream
}

// queue is the pending output of a Writer. The zero value is empty. It is
// not safe for concurrent use: Writer.mu guards it.
type queue struct {
	recs  []record
	full  []*[]byte // blocks no longer written to; released after their records are processed
	tail  *[]byte   // block being filled
	off   int       // fill offset in tail
	bytes int       // data bytes queued and not yet processed
}

// push copies p into the queue. The caller has checked the bound.
func (q *queue) push(stream int, t time.Time, p []byte) {
	q.bytes += len(p)
	for len(p) > 0 {
		if q.tail == nil || q.off == blockSize {
			if q.tail != nil {
				q.full = append(q.full, q.tail)
			}
			q.tail, q.off = blockPool.Get().(*[]byte), 0
		}
		n := copy((*q.tail)[q.off:], p)
		q.recs = append(q.recs, record{stream: stream, t: t, data: (*q.tail)[q.off : q.off+n : q.off+n]})
		q.off += n
		p = p[n:]
	}
}

// markDrop records that n bytes of stream were refused here, merging with a
// marker just before it.
func (q *queue) markDrop(stream int, t time.Time, n uint64) {
	if k := len(q.recs) - 1; k >= 0 && q.recs[k].drop > 0 && q.recs[k].stream == stream {
		q.recs[k].drop += n
		return
	}
	q.recs = append(q.recs, record{stream: stream, t: t, drop: n})
}

// take hands the pending records and the blocks filled so far to the
// consumer, leaving recs and full (emptied spares) in their place.
func (q *queue) take(recs []record, full []*[]byte) ([]record, []*[]byte) {
	r, f := q.recs, q.full
	q.recs, q.full = recs[:0], full[:0]
	return r, f
}

// done accounts for n processed bytes and, when nothing is pending, returns
// the tail block to the pool: every byte in it has been processed.
func (q *queue) done(n int) {
	q.bytes -= n
	if len(q.recs) == 0 && q.tail != nil {
		blockPool.Put(q.tail)
		q.tail, q.off = nil, 0
	}
}
