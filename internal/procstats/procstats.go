// procstats.go owns the per-tick pass over /proc: Reader.Scan lists every
// process once and reads its /proc/<pid>/stat, the only file needed for pid,
// ppid, pgid, sid, start time, CPU and RSS.
//
// The pass reads /proc with raw syscalls into buffers the Reader reuses
// instead of going through github.com/prometheus/procfs per process:
// procfs's Proc+Stat allocates and parses all 52 fields and stats the
// directory first, which costs about 1.4-1.6x a plain read of the same file
// (measured in bench/sampler.go, which prints both beside the raw read).
// procfs still validates the mount point in NewReader.

// Package procstats samples processes from /proc: one Scan per tick, then
// per-workspace sums over process trees that follow grandchildren which left
// their process group or were reparented.
package procstats

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// userHZ is the unit of the time fields of /proc/<pid>/stat: the kernel
// exports them in USER_HZ, fixed at 100 on Linux whatever CONFIG_HZ is.
const userHZ = 100

// usecPerTick converts clock ticks to microseconds.
const usecPerTick = 1_000_000 / userHZ

// ErrMalformed is wrapped when a /proc/<pid>/stat line cannot be parsed.
var ErrMalformed = errors.New("procstats: malformed stat line")

// ProcStat is one process as /proc/<pid>/stat shows it.
type ProcStat struct {
	PID, PPID, PGID, SID int
	State                byte   // 'R', 'S', 'D', 'Z', ...
	StartTicks           uint64 // start time after boot, in clock ticks; with PID it identifies a process
	CPUUsec              uint64 // utime+stime of all its threads
	ChildCPUUsec         uint64 // cutime+cstime: children it has waited for
	RSSBytes             uint64 // resident set (anon + file + shmem)
}

// Reader scans a proc filesystem. It reuses its buffers between scans; its
// methods are safe for concurrent use (scans are serialised).
type Reader struct {
	root     string
	pageSize uint64

	mu    sync.Mutex // guards the buffers below
	dents []byte
	buf   []byte
	name  []byte
	lastN int
}

// NewReader returns a Reader of the proc filesystem at procRoot ("" means
// /proc).
func NewReader(procRoot string) (*Reader, error) {
	if procRoot == "" {
		procRoot = procfs.DefaultMountPoint
	}
	if _, err := procfs.NewFS(procRoot); err != nil {
		return nil, fmt.Errorf("procstats: %w", err)
	}
	return &Reader{
		root:     filepath.Clean(procRoot),
		pageSize: uint64(os.Getpagesize()),
		dents:    make([]byte, 32<<10),
		buf:      make([]byte, 1024),
		name:     make([]byte, 0, 32),
	}, nil
}

// Scan reads every process once. A process that exits during the scan is
// left out.
func (r *Reader) Scan() (*Table, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	dirfd, err := unix.Open(r.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("procstats: open %s: %w", r.root, err)
	}
	defer unix.Close(dirfd)
	t := &Table{At: time.Now(), procs: make([]ProcStat, 0, r.lastN+r.lastN/8+16)}
	sorted := true
	for {
		n, err := unix.Getdents(dirfd, r.dents)
		if err != nil {
			return nil, fmt.Errorf("procstats: read %s: %w", r.root, err)
		}
		if n == 0 {
			break
		}
		for b := r.dents[:n]; len(b) > 0; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 20 || reclen > len(b) {
				return nil, fmt.Errorf("procstats: read %s: bad dirent length %d", r.root, reclen)
			}
			name := b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			b = b[reclen:]
			pid, ok := atoi(name)
			if !ok {
				continue
			}
			st, ok, err := r.readStat(dirfd, name, pid)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if len(t.procs) > 0 && t.procs[len(t.procs)-1].PID > pid {
				sorted = false
			}
			t.procs = append(t.procs, st)
		}
	}
	if !sorted {
		slices.SortFunc(t.procs, func(a, b ProcStat) int { return a.PID - b.PID })
	}
	r.lastN = len(t.procs)
	return t, nil
}

// readStat reads <pid>/stat under dirfd; ok is false when the process is
// gone.
func (r *Reader) readStat(dirfd int, pidName []byte, pid int) (ProcStat, bool, error) {
	r.name = append(append(r.name[:0], pidName...), "/stat"...)
	fd, err := unix.Openat(dirfd, string(r.name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			return ProcStat{}, false, nil
		}
		return ProcStat{}, false, fmt.Errorf("procstats: open %s/%s: %w", r.root, r.name, err)
	}
	n := 0
	for {
		m, err := unix.Read(fd, r.buf[n:])
		if err != nil {
			unix.Close(fd)
			if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) {
				return ProcStat{}, false, nil
			}
			return ProcStat{}, false, fmt.Errorf("procstats: read %s/%s: %w", r.root, r.name, err)
		}
		n += m
		if m == 0 || n < len(r.buf) {
			break
		}
		r.buf = append(r.buf, make([]byte, len(r.buf))...)
	}
	unix.Close(fd)
	if n == 0 {
		return ProcStat{}, false, nil
	}
	st, err := parseStat(r.buf[:n], r.pageSize)
	if err != nil {
		return ProcStat{}, false, fmt.Errorf("%w: %s/%s", err, r.root, r.name)
	}
	if st.PID != pid {
		return ProcStat{}, false, fmt.Errorf("%w: %s/%s names pid %d", ErrMalformed, r.root, r.name, st.PID)
	}
	return st, true, nil
}

// parseStat parses one /proc/<pid>/stat line (proc_pid_stat(5)). The comm
// field may contain spaces and parentheses, so the fields are counted from
// the last ')'.
func parseStat(line []byte, pageSize uint64) (ProcStat, error) {
	var st ProcStat
	open := bytes.IndexByte(line, '(')
	end := bytes.LastIndexByte(line, ')')
	if open < 1 || end < open || end+2 >= len(line) {
		return st, fmt.Errorf("%w: no (comm) in %q", ErrMalformed, truncate(line))
	}
	pid, ok := atoi(bytes.TrimSpace(line[:open]))
	if !ok {
		return st, fmt.Errorf("%w: bad pid in %q", ErrMalformed, truncate(line))
	}
	st.PID = pid
	rest := line[end+2:]
	// Field numbers as in proc_pid_stat(5): 3 state ... 24 rss.
	for field := 3; field <= 24; field++ {
		i := bytes.IndexByte(rest, ' ')
		var tok []byte
		if i < 0 {
			tok, rest = bytes.TrimRight(rest, "\n"), nil
		} else {
			tok, rest = rest[:i], rest[i+1:]
		}
		if len(tok) == 0 {
			return st, fmt.Errorf("%w: field %d missing in %q", ErrMalformed, field, truncate(line))
		}
		var v int64
		if field != 3 {
			if v, ok = atoi64(tok); !ok {
				return st, fmt.Errorf("%w: field %d %q is not a number", ErrMalformed, field, tok)
			}
		}
		switch field {
		case 3:
			st.State = tok[0]
		case 4:
			st.PPID = int(v)
		case 5:
			st.PGID = int(v)
		case 6:
			st.SID = int(v)
		case 14, 15:
			st.CPUUsec += uint64(max(v, 0)) * usecPerTick
		case 16, 17:
			st.ChildCPUUsec += uint64(max(v, 0)) * usecPerTick
		case 22:
			st.StartTicks = uint64(v)
		case 24:
			st.RSSBytes = uint64(max(v, 0)) * pageSize
		}
		if rest == nil && field < 24 {
			return st, fmt.Errorf("%w: only %d fields in %q", ErrMalformed, field, truncate(line))
		}
	}
	return st, nil
}

func truncate(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "..."
	}
	return string(b)
}

// atoi parses a non-negative decimal int without allocating.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// atoi64 parses a decimal int64 that may be negative.
func atoi64(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) > 18 {
		v, err := strconv.ParseInt(string(b), 10, 64)
		if neg {
			v = -v
		}
		return v, err == nil
	}
	n, ok := atoi(b)
	if neg {
		n = -n
	}
	return int64(n), ok
}
