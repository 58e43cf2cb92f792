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
	"sync"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/pidstat"
)

// userHZ is the unit of the time fields of /proc/<pid>/stat: the kernel
// exports them in USER_HZ, fixed at 100 on Linux whatever CONFIG_HZ is.
const userHZ = 100

// usecPerTick converts clock ticks to microseconds.
const usecPerTick = 1_000_000 / userHZ

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
			pid, ok := pidstat.Atoi(name)
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
		return ProcStat{}, false, fmt.Errorf("%w: %s/%s names pid %d", pidstat.ErrMalformed, r.root, r.name, st.PID)
	}
	return st, true, nil
}

// parseStat parses one /proc/<pid>/stat line into the units of ProcStat.
func parseStat(line []byte, pageSize uint64) (ProcStat, error) {
	raw, err := pidstat.Parse(line)
	if err != nil {
		return ProcStat{}, err
	}
	return ProcStat{
		PID: raw.PID, PPID: raw.PPID, PGID: raw.PGRP, SID: raw.SID,
		State:        raw.State,
		StartTicks:   raw.StartTime,
		CPUUsec:      (raw.UTime + raw.STime) * usecPerTick,
		ChildCPUUsec: uint64(max(raw.CUTime, 0)+max(raw.CSTime, 0)) * usecPerTick,
		RSSBytes:     uint64(max(raw.RSS, 0)) * pageSize,
	}, nil
}
