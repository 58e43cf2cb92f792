// follow.go owns Follow: reading a log file as it grows, across rotations,
// tracking the file by inode and offset.

package logfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// pollInterval is how often a caught-up Follow looks for new output.
const pollInterval = 50 * time.Millisecond

// Follow calls fn with the lines Read(path, q) would return (when there are
// any), then with every line appended after them, in order, until ctx is
// done (it returns ctx.Err()) or fn returns an error (it returns it). Since
// and Stream filter every line; Tail applies to the first batch only. If no
// file exists yet, Follow waits for one and delivers all its lines.
//
// Follow holds the file it reads open and tracks it by inode and offset.
// When the Writer rotates, Follow reads the old file (now path.1) to its
// end, then continues with the file that came after it, so no line is lost
// or repeated. If it fell so far behind that files were deleted by
// rotation before it reached them, it continues with the oldest file left
// and delivers an err line "[shipote: ... lines skipped]". After an
// external rename and Writer.Reopen, Follow continues with the new file
// once the Writer has created it.
func Follow(ctx context.Context, path string, q Query, fn func([]Line) error) error {
	if err := q.validate(); err != nil {
		return err
	}
	fl := &follower{path: path, q: q, fn: fn, buf: make([]byte, readBlock)}
	defer fl.close()
	timer := time.NewTimer(0)
	defer timer.Stop()
	wait := func() error {
		timer.Reset(pollInterval)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return nil
		}
	}
	<-timer.C
	first := q
	for {
		ok, err := fl.start(first)
		if err != nil || ok {
			if err != nil {
				return err
			}
			break
		}
		first.Tail = 0 // every line of a file that appears later is new
		if err := wait(); err != nil {
			return err
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fl.readMore(false); err != nil {
			return err
		}
		switched, err := fl.checkRotation()
		if err != nil {
			return err
		}
		if !switched {
			if err := wait(); err != nil {
				return err
			}
		}
	}
}

type follower struct {
	path string
	q    Query
	fn   func([]Line) error
	m    matcher
	cur  *chainFile // the file being read
	off  int64      // offset in cur after the last line delivered
	buf  []byte
}

func (fl *follower) close() {
	if fl.cur != nil {
		fl.cur.f.Close()
		fl.cur = nil
	}
}

// start delivers the lines of the files present for q and keeps the newest
// file open at the end of its last complete line. It reports false when
// there is no file yet.
func (fl *follower) start(q Query) (bool, error) {
	c, err := openChain(fl.path)
	if err != nil {
		return false, err
	}
	if len(c.files) == 0 {
		return false, nil
	}
	lines, end, err := c.read(q)
	if err != nil {
		c.close()
		return false, err
	}
	live := c.live
	cf := c.release(len(c.files) - 1)
	fl.cur, fl.off = &cf, end
	if !live { // read whole, including text after the last newline
		fl.off = cf.size
	}
	fl.m = matcher{q: Query{Since: q.Since, Stream: q.Stream}}
	if len(lines) > 0 {
		return true, fl.fn(lines)
	}
	return true, nil
}

// readMore delivers the complete lines between the offset and the end of
// the current file; with final set (the file is no longer written), also
// the text after its last newline.
func (fl *follower) readMore(final bool) error {
	fi, err := fl.cur.f.Stat()
	if err != nil {
		return fmt.Errorf("logfile: follow %s: %w", fl.path, err)
	}
	size := fi.Size()
	if size < fl.off { // truncated in place (logrotate copytruncate)
		fl.off = 0
	}
	for fl.off < size {
		n, err := fl.cur.f.ReadAt(fl.buf[:min(int64(len(fl.buf)), size-fl.off)], fl.off)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("logfile: follow %s: %w", fl.path, err)
		}
		if n == 0 {
			break
		}
		data := fl.buf[:n]
		last := bytes.LastIndexByte(data, '\n')
		switch {
		case last >= 0:
			data = data[:last+1]
		case n == len(fl.buf): // a line longer than a block: not the Writer's format
		case final:
		default:
			return nil // the rest of the line is still being written
		}
		if err := fl.deliver(data); err != nil {
			return err
		}
		fl.off += int64(len(data))
	}
	return nil
}

// deliver passes the matching lines of data (lines, the last one possibly
// without its newline) to fn.
func (fl *follower) deliver(data []byte) error {
	var batch []Line
	for len(data) > 0 {
		raw := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(raw) == 0 {
			continue
		}
		if l, ok, _ := fl.m.match(raw); ok {
			batch = append(batch, l)
		}
	}
	if len(batch) == 0 {
		return nil
	}
	return fl.fn(batch)
}

// checkRotation switches to the next file when the current one was
// rotated, after reading it to its end. It reports whether it switched.
func (fl *follower) checkRotation() (bool, error) {
	fi, err := os.Stat(fl.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // in the middle of a rotation, or renamed and not reopened yet
	}
	if err != nil {
		return false, fmt.Errorf("logfile: follow %s: %w", fl.path, err)
	}
	if inode(fi) == fl.cur.ino {
		return false, nil
	}
	// Path is another file: ours was renamed, and the Writer renames a file
	// only after its last write to it.
	if err := fl.readMore(true); err != nil {
		return false, err
	}
	c, err := openChain(fl.path)
	if err != nil {
		return false, err
	}
	i := c.find(fl.cur.ino)
	var next int
	switch {
	case len(c.files) == 0 || i == len(c.files)-1:
		c.close()
		return false, nil
	case i >= 0:
		next = i + 1
	default:
		if fi, err := fl.cur.f.Stat(); err == nil && nlink(fi) == 0 {
			// Rotated out of existence, with the files after it, before
			// we got to them.
			next = 0
			if fl.m.q.Stream != StreamOut {
				skipped := Line{Time: time.Now().UTC(), Stream: StreamErr,
					Text: "[shipote: follow fell behind log rotation; lines skipped]"}
				if err := fl.fn([]Line{skipped}); err != nil {
					c.close()
					return false, err
				}
			}
		} else {
			next = len(c.files) - 1 // renamed away by another tool
		}
	}
	fl.cur.f.Close()
	cf := c.release(next)
	fl.cur, fl.off = &cf, 0
	return true, nil
}

func nlink(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}
