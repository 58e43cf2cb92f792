// read.go owns the reading side: a consistent snapshot of a log file and
// its rotated files (the chain), and Read, which scans it from the end.

package logfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// ErrQuery reports an invalid Query.
var ErrQuery = errors.New("logfile: invalid query")

// readBlock is the size of the reads of Read and Follow.
const readBlock = 256 << 10

// Line is one line of a log file.
type Line struct {
	Time   time.Time // zero for a line not in the file format
	Stream string    // StreamOut or StreamErr; empty for a line not in the file format
	Text   string
}

// Query selects lines.
type Query struct {
	Tail   int       // only the last Tail matching lines; 0 = all
	Since  time.Time // only lines at or after Since; zero = all
	Stream string    // StreamOut, StreamErr, or "" for both
}

func (q Query) validate() error {
	if q.Tail < 0 {
		return fmt.Errorf("%w: negative tail %d", ErrQuery, q.Tail)
	}
	if q.Stream != "" && q.Stream != StreamOut && q.Stream != StreamErr {
		return fmt.Errorf("%w: stream %q is not %q or %q", ErrQuery, q.Stream, StreamOut, StreamErr)
	}
	return nil
}

// matcher filters parsed lines for a query.
type matcher struct {
	q Query
	p parser
}

// match parses raw and reports whether it matches, and whether it is older
// than Since (the files are in time order, so reading backwards can stop).
func (m *matcher) match(raw []byte) (l Line, ok, older bool) {
	t, stream, text, good := m.p.parse(raw)
	if good && !m.q.Since.IsZero() && t.Before(m.q.Since) {
		return Line{}, false, true
	}
	if !good && !m.q.Since.IsZero() {
		return Line{}, false, false
	}
	if m.q.Stream != "" && stream != m.q.Stream {
		return Line{}, false, false
	}
	return Line{Time: t, Stream: stream, Text: string(text)}, true, false
}

// Read returns the lines of path and of its rotated files (path.N … path.1,
// then path) that match q, oldest first. It reads from the end of the
// newest file and stops as soon as q is satisfied, so a tail of a large log
// costs a few blocks. Since relies on lines being in time order, which the
// Writer keeps (unless the clock steps back by more than a second). The
// text after the last newline of path, a line still being written, is left
// out. When neither path nor rotated files exist the error wraps
// fs.ErrNotExist.
func Read(path string, q Query) ([]Line, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	c, err := openChain(path)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if len(c.files) == 0 {
		return nil, fmt.Errorf("logfile: read %s: %w", path, fs.ErrNotExist)
	}
	lines, _, err := c.read(q)
	return lines, err
}

// chainFile is one open file of a chain.
type chainFile struct {
	name string // base name
	f    *os.File
	ino  uint64
	size int64 // at the time of the snapshot
}

// chain is a consistent snapshot of a log file and its rotated files,
// oldest first; the last one is the current file when live is set.
type chain struct {
	files []chainFile
	live  bool
}

func (c *chain) close() {
	for _, cf := range c.files {
		cf.f.Close()
	}
	c.files = nil
}

// release closes every file but the one at index keep and returns it.
func (c *chain) release(keep int) chainFile {
	kept := c.files[keep]
	for i, cf := range c.files {
		if i != keep {
			cf.f.Close()
		}
	}
	c.files = nil
	return kept
}

// find returns the index of the file with inode ino, or -1.
func (c *chain) find(ino uint64) int {
	return slices.IndexFunc(c.files, func(cf chainFile) bool { return cf.ino == ino })
}

// chainNames lists path and its rotated files, oldest first.
func chainNames(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("logfile: read %s: %w", path, err)
	}
	type named struct {
		name string
		n    int
	}
	var ns []named
	for _, e := range ents {
		if n := rotatedIndex(e.Name(), base); n >= 0 {
			ns = append(ns, named{e.Name(), n})
		}
	}
	// Oldest (highest index) first; the current file (0) last.
	slices.SortFunc(ns, func(a, b named) int {
		ka, kb := a.n, b.n
		if ka == 0 {
			ka = -1
		}
		if kb == 0 {
			kb = -1
		}
		return kb - ka
	})
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = filepath.Join(dir, n.name)
	}
	return out, nil
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// openChain opens path and its rotated files. A rotation may rename files
// while they are listed and opened, so the listing is checked against a
// second one and taken again until both agree: files only ever move to a
// higher index, so two agreeing listings describe one consistent state.
func openChain(path string) (*chain, error) {
	base := filepath.Base(path)
	for attempt := 0; ; attempt++ {
		names, err := chainNames(path)
		if err != nil {
			return nil, err
		}
		c := &chain{}
		ok := true
		for _, n := range names {
			f, err := os.Open(n)
			if errors.Is(err, fs.ErrNotExist) {
				ok = false
				break
			}
			if err != nil {
				c.close()
				return nil, fmt.Errorf("logfile: read %s: %w", path, err)
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				c.close()
				return nil, fmt.Errorf("logfile: read %s: %w", path, err)
			}
			c.files = append(c.files, chainFile{name: filepath.Base(n), f: f, ino: inode(fi), size: fi.Size()})
		}
		if ok {
			again, err := chainNames(path)
			if err != nil {
				c.close()
				return nil, err
			}
			ok = slices.Equal(names, again)
			for i := 0; ok && i < len(again); i++ {
				fi, err := os.Stat(again[i])
				ok = err == nil && inode(fi) == c.files[i].ino
			}
		}
		if ok {
			c.live = len(c.files) > 0 && c.files[len(c.files)-1].name == base
			return c, nil
		}
		c.close()
		if attempt >= 1000 {
			return nil, fmt.Errorf("logfile: read %s: files keep changing", path)
		}
		if attempt >= 10 {
			time.Sleep(time.Millisecond)
		}
	}
}

// read returns the lines of the chain matching q, oldest first, and the
// offset in the last file after its last complete line.
func (c *chain) read(q Query) ([]Line, int64, error) {
	m := matcher{q: q}
	var rev []Line
	var end int64
	stop := false
	for i := len(c.files) - 1; i >= 0 && !stop; i-- {
		cf := c.files[i]
		whole := i < len(c.files)-1 || !c.live
		e, stopped, err := scanBack(cf.f, cf.size, whole, func(raw []byte) bool {
			l, ok, older := m.match(raw)
			if older {
				return true
			}
			if ok {
				rev = append(rev, l)
			}
			return q.Tail > 0 && len(rev) >= q.Tail
		})
		if err != nil {
			return nil, 0, fmt.Errorf("logfile: read %s: %w", cf.name, err)
		}
		if i == len(c.files)-1 {
			end = e
		}
		stop = stopped
	}
	slices.Reverse(rev)
	return rev, end, nil
}

// scanBack calls fn for each non-empty line of f[:end], last line first,
// until fn returns true. The text after the last newline is passed as a
// line when whole is set, else skipped. It returns the offset after the
// last newline in f[:end] (0 when there is none).
func scanBack(f *os.File, end int64, whole bool, fn func(raw []byte) bool) (completeEnd int64, stopped bool, err error) {
	// Blocks grow from 16 KiB to readBlock: a short tail reads little.
	var buf []byte
	blk := int64(16 << 10)
	var carry [][]byte // pieces of the line being assembled, last piece first
	var joined []byte
	// emit passes the line made of head and the carried pieces.
	emit := func(head []byte) bool {
		line := head
		if len(carry) > 0 {
			joined = append(joined[:0], head...)
			for i := len(carry) - 1; i >= 0; i-- {
				joined = append(joined, carry[i]...)
			}
			line = joined
			carry = carry[:0]
		}
		return len(line) > 0 && fn(line)
	}
	trailing := true // before the last newline
	pos := end
	for pos > 0 {
		n := min(blk, pos)
		blk = min(2*blk, readBlock)
		pos -= n
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		seg := buf[:n]
		if _, err := f.ReadAt(seg, pos); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // truncated under us
			}
			return 0, false, err
		}
		for {
			i := bytes.LastIndexByte(seg, '\n')
			if i < 0 {
				carry = append(carry, bytes.Clone(seg))
				break
			}
			if trailing {
				trailing = false
				completeEnd = pos + int64(i) + 1
				if !whole { // skip the line still being written
					carry = carry[:0]
					seg = seg[:i]
					continue
				}
			}
			if emit(seg[i+1:]) {
				return completeEnd, true, nil
			}
			seg = seg[:i]
		}
	}
	if trailing && !whole {
		return 0, false, nil
	}
	return completeEnd, emit(nil), nil
}
