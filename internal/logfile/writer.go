// Package logfile keeps each command's output in a durable log file with
// built-in, size-bounded rotation, and reads it back (tail, since, follow)
// from the files alone, across daemon restarts.
//
// A file holds one line per output line:
//
//	2024-05-01T12:00:00.123Z out text of the line
//
// with the time (RFC 3339, milliseconds, UTC) at which the chunk holding the
// end of the line was read from the command's pipe. Rotated files are
// <path>.1 (newest) … <path>.N (oldest).
//
// Durability: Write copies the chunk into a bounded queue and returns; the
// Writer's goroutine writes queued output to the file in batches, once 256
// KiB are queued or 10 ms after the first queued chunk (normally well under
// 100 ms after Write, unless the disk stalls), with no fsync. Output handed to the kernel survives a SIGKILL of the daemon,
// not a power loss. Flush waits until everything written before it is in
// the file. Output that cannot be kept (queue full, write error such as a
// full disk) is dropped, counted by Dropped and reported in the file by a
// line "[shipote: N bytes dropped]" on the err stream.
package logfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Defaults of Options.
const (
	DefaultMaxBytes     = 10 << 20
	DefaultMaxFiles     = 5
	DefaultQueueBytes   = 1 << 20
	DefaultFlushPartial = time.Second
)

// MaxLine is the longest line written whole; longer lines are split.
const MaxLine = 64 << 10

// flushAt is the size of formatted output buffered before a write(2).
const flushAt = 256 << 10

// Queued output waits for more, at most batchDelay, until batchBytes (or
// half the queue) are queued: the goroutine then takes it all at once. A
// command writing fast costs one wake-up of the goroutine per batch, not
// one per read of its pipe, and its lines still reach the file within
// batchDelay.
const (
	batchDelay = 10 * time.Millisecond
	batchBytes = flushAt
)

// outPool holds the formatting buffers of idle Writers.
var outPool = sync.Pool{New: func() any { b := make([]byte, 0, flushAt+MaxLine+prefixLen+1); return &b }}

// retryEvery is how often a Writer without a usable file tries again.
const retryEvery = time.Second

var (
	// ErrOptions reports invalid Options.
	ErrOptions = errors.New("logfile: invalid options")
	// ErrClosed is returned by the methods of a closed Writer.
	ErrClosed = errors.New("logfile: writer closed")
)

// Options configure a command's log file.
type Options struct {
	// Path is the current file, e.g. <state-dir>/logs/<workspace>/<command>.log.
	// Missing directories are created with mode 0700, the file with 0600.
	Path string
	// MaxBytes rotates the file before a line would take it past MaxBytes
	// (a single line longer than MaxBytes gets a file of its own).
	// Zero means DefaultMaxBytes.
	MaxBytes int64
	// MaxFiles is how many rotated files are kept, Path.1 … Path.MaxFiles;
	// older ones are deleted. Zero means DefaultMaxFiles.
	MaxFiles int
	// QueueBytes bounds the output queued in memory; a chunk that would
	// exceed it is dropped. Zero means DefaultQueueBytes.
	QueueBytes int
	// FlushPartial is how long text after the last newline waits for the
	// rest of its line before it is written as a line anyway. Zero means
	// DefaultFlushPartial.
	FlushPartial time.Duration
	// Wait is how long Write may wait for room in a full queue before it
	// drops the chunk. Meanwhile the caller (a pipe reader) reads no more,
	// so the command blocks on its full pipe, as it would writing to a
	// file: a disk that stalls briefly (page-cache writeback) slows the
	// command instead of losing its output. Zero never waits.
	Wait time.Duration
	// Logger receives write and rotation errors. Nil logs nothing.
	Logger *zap.Logger
}

func (o *Options) validate() error {
	switch {
	case o.Path == "":
		return fmt.Errorf("%w: empty path", ErrOptions)
	case strings.HasSuffix(o.Path, "/"):
		return fmt.Errorf("%w: path %q names a directory", ErrOptions, o.Path)
	case o.MaxBytes < 0:
		return fmt.Errorf("%w: negative MaxBytes %d", ErrOptions, o.MaxBytes)
	case o.MaxFiles < 0:
		return fmt.Errorf("%w: negative MaxFiles %d", ErrOptions, o.MaxFiles)
	case o.QueueBytes < 0:
		return fmt.Errorf("%w: negative QueueBytes %d", ErrOptions, o.QueueBytes)
	case o.FlushPartial < 0:
		return fmt.Errorf("%w: negative FlushPartial %v", ErrOptions, o.FlushPartial)
	case o.Wait < 0:
		return fmt.Errorf("%w: negative Wait %v", ErrOptions, o.Wait)
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxFiles == 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	if o.QueueBytes == 0 {
		o.QueueBytes = DefaultQueueBytes
	}
	if o.FlushPartial == 0 {
		o.FlushPartial = DefaultFlushPartial
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return nil
}

// Writer appends a command's output to its log file. Write blocks at most
// Options.Wait; a goroutine owned by the Writer formats and writes lines
// and rotates the file. Close stops it.
type Writer struct {
	o Options

	mu     sync.Mutex // guards q, closed, room and waiting
	q      queue
	closed bool
	// room is closed (and replaced) when the goroutine has taken queued
	// output while a Write waits for room (waiting > 0).
	room    chan struct{}
	waiting int

	dropped atomic.Uint64

	wake      chan struct{} // capacity 1: a batch of output was queued
	batch     *time.Timer   // fires batchDelay after output was queued; guarded by mu
	reqs      chan request
	closing   chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	// Owned by the goroutine.
	f         *os.File // nil while no file is usable
	size      int64    // bytes in f
	retryAt   time.Time
	out       []byte // formatted lines not yet written
	outLines  int    // output lines in out (notices excluded)
	outNotice uint64 // dropped bytes reported by notices in out
	outNBytes int    // bytes of notices in out
	unnoticed uint64 // dropped bytes not yet reported in the file
	torn      bool   // the file ends inside a line
	failing   bool   // the last write failed
	partial   [2]partialLine
	last      time.Time // time of the last line
	stamp     stamp
	spareRecs []record
	spareFull []*[]byte
}

// partialLine is text after the last newline of a stream.
type partialLine struct {
	buf     []byte
	t       time.Time // time of the chunk that brought its last byte
	started time.Time // when the text started waiting
}

type request struct {
	reopen bool // else flush
	reply  chan error
}

// Open opens (creating it if needed) the log file o.Path for appending and
// starts the Writer's goroutine. A file left ending inside a line (the
// previous daemon was killed mid-write) gets a newline first; rotated files
// beyond MaxFiles are deleted.
func Open(o Options) (*Writer, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o700); err != nil {
		return nil, fmt.Errorf("logfile: open %s: %w", o.Path, err)
	}
	w := &Writer{
		o:       o,
		batch:   time.NewTimer(time.Hour),
		wake:    make(chan struct{}, 1),
		reqs:    make(chan request),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	w.batch.Stop()
	if err := w.removeBeyond(); err != nil {
		return nil, err
	}
	f, size, err := openAppend(o.Path)
	if err != nil {
		return nil, err
	}
	w.f, w.size = f, size
	go w.run()
	return w, nil
}

// openAppend opens path for appending and returns its size, ending a
// trailing partial line with a newline.
func openAppend(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("logfile: open %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("logfile: open %s: %w", path, err)
	}
	size := fi.Size()
	if size > 0 {
		last := make([]byte, 1)
		r, err := os.Open(path)
		if err == nil {
			_, err = r.ReadAt(last, size-1)
			r.Close()
		}
		if err == nil && last[0] != '\n' {
			if _, err := f.Write([]byte{'\n'}); err == nil {
				size++
			}
		}
	}
	return f, size, nil
}

// removeBeyond deletes rotated files numbered above MaxFiles (left by a
// configuration that kept more).
func (w *Writer) removeBeyond() error {
	dir, base := filepath.Split(w.o.Path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("logfile: open %s: %w", w.o.Path, err)
	}
	for _, e := range ents {
		if n := rotatedIndex(e.Name(), base); n > w.o.MaxFiles {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("logfile: open %s: %w", w.o.Path, err)
			}
		}
	}
	return nil
}

// rotatedIndex returns N when name is base.N (N >= 1), 0 when name is base,
// and -1 otherwise.
func rotatedIndex(name, base string) int {
	if name == base {
		return 0
	}
	suffix, ok := strings.CutPrefix(name, base+".")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(suffix)
	if err != nil || n < 1 || strconv.Itoa(n) != suffix {
		return -1
	}
	return n
}

// Write queues output p of stream ("out" or "err"; anything else counts
// as "out") read at time t. When the queue cannot take p, Write waits up
// to Options.Wait for room (by default not at all), then p is dropped and
// counted. p may be reused once Write
// returns. Writes after Close are ignored.
func (w *Writer) Write(stream string, t time.Time, p []byte) {
	if len(p) == 0 {
		return
	}
	s := streamOut
	if stream == StreamErr {
		s = streamErr
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	if w.q.bytes+len(p) > w.o.QueueBytes && w.o.Wait > 0 && len(p) <= w.o.QueueBytes {
		w.waitRoomLocked(len(p))
		if w.closed {
			w.mu.Unlock()
			return
		}
	}
	first := len(w.q.recs) == 0
	wake := true
	if w.q.bytes+len(p) > w.o.QueueBytes {
		w.q.markDrop(s, t, uint64(len(p)))
		w.dropped.Add(uint64(len(p)))
	} else {
		w.q.push(s, t, p)
		wake = w.q.bytes >= min(batchBytes, w.o.QueueBytes/2)
	}
	if !wake && first {
		w.batch.Reset(batchDelay)
	}
	w.mu.Unlock()
	if wake {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// waitRoomLocked waits, for at most o.Wait, until the queue can take n
// more bytes or the Writer is closed. w.mu must be held; it is released
// while waiting.
func (w *Writer) waitRoomLocked(n int) {
	timer := time.NewTimer(w.o.Wait)
	defer timer.Stop()
	for w.q.bytes+n > w.o.QueueBytes && !w.closed {
		if w.room == nil {
			w.room = make(chan struct{})
		}
		room := w.room
		w.waiting++
		w.mu.Unlock()
		select {
		case w.wake <- struct{}{}:
		default:
		}
		expired := false
		select {
		case <-room:
		case <-timer.C:
			expired = true
		}
		w.mu.Lock()
		w.waiting--
		if expired {
			return
		}
	}
}

// roomLocked wakes the Writes waiting for room. w.mu must be held.
func (w *Writer) roomLocked() {
	if w.waiting > 0 && w.room != nil {
		close(w.room)
		w.room = nil
	}
}

// Dropped returns how many bytes of output were dropped since Open: chunks
// refused by a full queue, and lines that could not be written (counted as
// their text and newline).
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Flush waits until the output written before it (except text after the
// last newline of a stream, which waits for its line's end or FlushPartial)
// has been handed to the file. It does not fsync.
func (w *Writer) Flush() error { return w.request(false) }

// Reopen writes out the queue and reopens Path, creating it if needed; for
// an external logrotate that renamed the file (call it on SIGHUP). On error
// the Writer keeps its current file.
func (w *Writer) Reopen() error { return w.request(true) }

func (w *Writer) request(reopen bool) error {
	r := request{reopen: reopen, reply: make(chan error, 1)}
	select {
	case w.reqs <- r:
	case <-w.done:
		return ErrClosed
	}
	return <-r.reply
}

// Close writes out the queue and pending partial lines, closes the file
// and waits for the Writer's goroutine. Later calls return the first
// call's result.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.roomLocked()
		w.mu.Unlock()
		close(w.closing)
		<-w.done
	})
	return w.closeErr
}

// run is the Writer's goroutine.
func (w *Writer) run() {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-w.wake:
			w.drain()
		case <-w.batch.C:
			w.drain()
		case <-timer.C:
			w.drain()
		case r := <-w.reqs:
			w.drain()
			w.flushOut()
			var err error
			if r.reopen {
				err = w.reopen()
			}
			r.reply <- err
		case <-w.closing:
			w.drain()
			w.flushPartials(true)
			w.flushOut()
			if w.f != nil {
				if err := w.f.Close(); err != nil {
					w.closeErr = fmt.Errorf("logfile: close %s: %w", w.o.Path, err)
				}
				w.f = nil
			}
			timer.Stop()
			w.mu.Lock()
			w.batch.Stop()
			w.mu.Unlock()
			return
		}
		w.flushPartials(false)
		w.flushOut()
		if w.out != nil && w.idle() { // an idle command keeps no buffer
			b := w.out[:0]
			outPool.Put(&b)
			w.out = nil
		}
		timer.Stop()
		if d, ok := w.nextPartialDeadline(); ok {
			timer.Reset(d)
		}
	}
}

// idle reports whether nothing is queued.
func (w *Writer) idle() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.q.recs) == 0
}

// drain processes the output queued so far.
func (w *Writer) drain() {
	w.mu.Lock()
	recs, full := w.q.take(w.spareRecs, w.spareFull)
	w.mu.Unlock()
	if len(recs) == 0 {
		w.spareRecs, w.spareFull = recs, full
		return
	}
	if w.unnoticed > 0 {
		w.notice(recs[0].t)
	}
	n := 0
	for i := range recs {
		r := &recs[i]
		if r.drop > 0 {
			w.lineEnd(r.stream, r.t) // the rest of the line was dropped
			w.unnoticed += r.drop
			w.notice(r.t)
		} else {
			w.feed(r.stream, r.t, r.data)
			n += len(r.data)
		}
		*r = record{}
	}
	for i, b := range full {
		blockPool.Put(b)
		full[i] = nil
	}
	w.mu.Lock()
	w.q.done(n)
	w.roomLocked()
	w.mu.Unlock()
	w.spareRecs, w.spareFull = recs[:0], full[:0]
}

// feed splits data of stream s into lines.
func (w *Writer) feed(s int, t time.Time, data []byte) {
	p := &w.partial[s]
	if len(p.buf) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl >= 0 {
			p.buf = append(p.buf, data[:nl]...)
			w.line(s, t, p.buf)
			p.buf = p.buf[:0]
			data = data[nl+1:]
		}
	}
	if len(p.buf) == 0 {
		if last := bytes.LastIndexByte(data, '\n'); last >= 0 {
			w.lines(s, t, data[:last+1])
			data = data[last+1:]
		}
	}
	if len(data) == 0 {
		return
	}
	if len(p.buf) == 0 {
		p.started = time.Now()
	}
	p.buf = append(p.buf, data...)
	p.t = t
	if len(p.buf) >= MaxLine {
		k := len(p.buf) / MaxLine * MaxLine
		w.line(s, t, p.buf[:k])
		p.buf = append(p.buf[:0], p.buf[k:]...)
		p.started = time.Now()
	}
}

// lines formats data, whole lines of stream s each ending with a newline,
// all read at time t. A line that fits in the current file and in MaxLine
// (the common case) is appended here with the prefix formatted once for
// them all; any other goes through line, which splits, rotates or drops.
func (w *Writer) lines(s int, t time.Time, data []byte) {
	t = w.ordered(t)
	var prefix [prefixLen]byte
	w.stamp.appendTo(prefix[:0], t)
	prefix[timeLen] = ' '
	copy(prefix[timeLen+1:], streamNames[s])
	prefix[prefixLen-1] = ' '
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		n := prefixLen + nl + 1
		if nl > MaxLine || w.f == nil || w.size+int64(len(w.out))+int64(n) > w.o.MaxBytes {
			w.line(s, t, data[:nl])
		} else {
			if w.out == nil {
				w.out = *outPool.Get().(*[]byte)
			}
			w.out = append(w.out, prefix[:]...)
			w.out = append(w.out, data[:nl+1]...)
			w.outLines++
			if len(w.out) >= flushAt {
				w.flushOut()
			}
		}
		data = data[nl+1:]
	}
}

// ordered returns the time to write for a line read at t. Times stay in
// file order: the out and err readers stamp chunks concurrently. A clock
// stepped back by more than a second is followed.
func (w *Writer) ordered(t time.Time) time.Time {
	if t.Before(w.last) && w.last.Sub(t) < time.Second {
		t = w.last
	}
	w.last = t
	return t
}

// lineEnd writes the partial line of stream s, if any, as a line.
func (w *Writer) lineEnd(s int, t time.Time) {
	p := &w.partial[s]
	if len(p.buf) > 0 {
		if p.t.After(t) {
			t = p.t
		}
		w.line(s, t, p.buf)
		p.buf = p.buf[:0]
	}
}

// flushPartials writes partial lines that waited FlushPartial (all of them
// when all is set).
func (w *Writer) flushPartials(all bool) {
	now := time.Now()
	for s := range w.partial {
		p := &w.partial[s]
		if len(p.buf) > 0 && (all || now.Sub(p.started) >= w.o.FlushPartial) {
			w.line(s, p.t, p.buf)
			p.buf = p.buf[:0]
		}
	}
}

// nextPartialDeadline returns how long until the oldest partial line is due.
func (w *Writer) nextPartialDeadline() (time.Duration, bool) {
	var first time.Time
	for s := range w.partial {
		p := &w.partial[s]
		if len(p.buf) > 0 && (first.IsZero() || p.started.Before(first)) {
			first = p.started
		}
	}
	if first.IsZero() {
		return 0, false
	}
	return max(time.Until(first.Add(w.o.FlushPartial)), time.Millisecond), true
}

// line formats text as one or more lines (split at MaxLine).
func (w *Writer) line(s int, t time.Time, text []byte) {
	for len(text) > MaxLine {
		w.line1(s, t, text[:MaxLine], 0)
		text = text[MaxLine:]
	}
	w.line1(s, t, text, 0)
}

// notice writes "[shipote: N bytes dropped]" for the dropped bytes not yet
// reported.
func (w *Writer) notice(t time.Time) {
	n := w.unnoticed
	if n == 0 {
		return
	}
	w.unnoticed = 0
	if !w.line1(streamErr, t, []byte("[shipote: "+strconv.FormatUint(n, 10)+" bytes dropped]"), n) {
		w.unnoticed += n
	}
}

// line1 appends one line to the output, rotating first when the file would
// pass MaxBytes. notice > 0 marks a drop notice reporting that many bytes.
// It reports whether the line was kept.
func (w *Writer) line1(s int, t time.Time, text []byte, notice uint64) bool {
	n := int64(prefixLen + len(text) + 1)
	if w.f == nil && !w.retryFile() {
		if notice == 0 {
			w.lose(uint64(len(text) + 1))
		}
		return false
	}
	if pending := w.size + int64(len(w.out)); pending > 0 && pending+n > w.o.MaxBytes {
		w.flushOut()
		if !w.rotate() {
			if notice == 0 {
				w.lose(uint64(len(text) + 1))
			}
			return false
		}
	}
	t = w.ordered(t)
	if w.out == nil {
		w.out = *outPool.Get().(*[]byte)
	}
	w.out = w.stamp.appendTo(w.out, t)
	w.out = append(w.out, ' ')
	w.out = append(w.out, streamNames[s]...)
	w.out = append(w.out, ' ')
	w.out = append(w.out, text...)
	w.out = append(w.out, '\n')
	if notice > 0 {
		w.outNotice += notice
		w.outNBytes += int(n)
	} else {
		w.outLines++
	}
	if len(w.out) >= flushAt {
		w.flushOut()
	}
	return true
}

// lose counts n dropped bytes, to be reported in the file.
func (w *Writer) lose(n uint64) {
	w.dropped.Add(n)
	w.unnoticed += n
}

// flushOut writes the formatted output. On failure the whole buffer is
// lost: a partial write is truncated away when possible.
func (w *Writer) flushOut() {
	if len(w.out) == 0 {
		return
	}
	var err error
	if w.f == nil {
		err = errors.New("no file")
	} else {
		if w.torn {
			if _, err = w.f.Write([]byte{'\n'}); err == nil {
				w.size++
				w.torn = false
			}
		}
		if err == nil {
			var n int
			n, err = w.f.Write(w.out)
			if err != nil && n > 0 {
				if terr := w.f.Truncate(w.size); terr != nil {
					w.size += int64(n)
					w.torn = w.out[n-1] != '\n'
				}
			} else {
				w.size += int64(n)
			}
		}
	}
	if err != nil {
		lost := len(w.out) - w.outNBytes - w.outLines*prefixLen
		w.dropped.Add(uint64(lost))
		w.unnoticed += uint64(lost) + w.outNotice
		if !w.failing {
			w.failing = true
			w.o.Logger.Warn("log file write failed; dropping output", zap.String("path", w.o.Path), zap.Error(err))
		}
	} else if w.failing {
		w.failing = false
		w.o.Logger.Info("log file writable again", zap.String("path", w.o.Path))
	}
	w.out = w.out[:0]
	w.outLines, w.outNotice, w.outNBytes = 0, 0, 0
}

// rotate shifts Path.i to Path.i+1 (deleting Path.MaxFiles), renames Path to
// Path.1 and opens a new Path. On failure the Writer has no file until
// retryFile succeeds.
func (w *Writer) rotate() bool {
	p := w.o.Path
	name := func(i int) string { return p + "." + strconv.Itoa(i) }
	err := os.Remove(name(w.o.MaxFiles))
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	for i := w.o.MaxFiles - 1; i >= 1 && err == nil; i-- {
		if err = os.Rename(name(i), name(i+1)); errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	}
	if err == nil {
		err = os.Rename(p, name(1))
	}
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	if err == nil {
		var f *os.File
		var size int64
		if f, size, err = openAppend(p); err == nil {
			w.f, w.size, w.torn = f, size, false
			return true
		}
	}
	w.o.Logger.Warn("log file rotation failed; dropping output", zap.String("path", p), zap.Error(err))
	w.retryAt = time.Now().Add(retryEvery)
	return false
}

// retryFile tries to get a usable file again, at most once per retryEvery.
func (w *Writer) retryFile() bool {
	if time.Now().Before(w.retryAt) {
		return false
	}
	w.retryAt = time.Now().Add(retryEvery)
	f, size, err := openAppend(w.o.Path)
	if err != nil {
		return false
	}
	w.f, w.size, w.torn = f, size, false
	if size >= w.o.MaxBytes {
		return w.rotate()
	}
	return true
}

// reopen replaces the file by a fresh open of Path.
func (w *Writer) reopen() error {
	f, size, err := openAppend(w.o.Path)
	if err != nil {
		return err
	}
	if w.f != nil {
		w.f.Close()
	}
	w.f, w.size, w.torn = f, size, false
	return nil
}

var _ io.Closer = (*Writer)(nil)
