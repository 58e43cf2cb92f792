// Package pidstat parses /proc/<pid>/stat, the one line per process that
// the sampler (internal/procstats), the process-tree walks and PID
// namespace checks (internal/proc), the test helpers (internal/testproc)
// and the benchmark drivers read. It is the only parser of that line in
// the repository; it allocates nothing, so the sampler can run it on every
// process of the host each tick.
package pidstat

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
)

// ErrMalformed is wrapped when a stat line cannot be parsed.
var ErrMalformed = errors.New("pidstat: malformed stat line")

// Fields is the number of fields Parse reads (1 to 24 of proc_pid_stat(5));
// a line may stop right after field Fields, and whatever follows it is not
// looked at, so reading the first 1 KiB of the file is always enough.
const Fields = 24

// HeadBytes is enough of a stat file for Parse: 24 fields, the command
// name at most 64 bytes (TASK_COMM_LEN is 16; kernel threads may show a
// longer name), every number at most 20 digits.
const HeadBytes = 1024

// Stat is the head of one /proc/<pid>/stat line, in the kernel's units:
// times in clock ticks (USER_HZ), the resident set in pages.
type Stat struct {
	PID int
	// Comm is the command name (field 2) without its parentheses. It
	// aliases the line given to Parse.
	Comm            []byte
	State           byte   // field 3: R, S, D, Z, T, t, X, I, ...
	PPID, PGRP, SID int    // fields 4, 5, 6
	Flags           uint64 // field 9: PF_* bits
	UTime, STime    uint64 // fields 14, 15: this process (all its threads)
	CUTime, CSTime  int64  // fields 16, 17: children it has waited for
	StartTime       uint64 // field 22: start after boot; with PID it names one process
	RSS             int64  // field 24, in pages
}

// Parse parses one /proc/<pid>/stat line (proc_pid_stat(5)). The command
// name may hold spaces and parentheses (a process may call itself
// "a) R 1 (b"), so the fields after it are counted from the last ')'.
func Parse(line []byte) (Stat, error) {
	var st Stat
	open := bytes.IndexByte(line, '(')
	end := bytes.LastIndexByte(line, ')')
	if open < 1 || end < open || end+2 >= len(line) || line[end+1] != ' ' {
		return st, fmt.Errorf("%w: no (comm) in %q", ErrMalformed, truncate(line))
	}
	pid, ok := atoi(bytes.TrimSpace(line[:open]))
	if !ok {
		return st, fmt.Errorf("%w: bad pid in %q", ErrMalformed, truncate(line))
	}
	st.PID = pid
	st.Comm = line[open+1 : end]
	rest := line[end+2:]
	for field := 3; field <= Fields; field++ {
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
		if field == 3 {
			if len(tok) != 1 {
				return st, fmt.Errorf("%w: field 3 %q is not a state", ErrMalformed, tok)
			}
		} else if field != 9 {
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
			st.PGRP = int(v)
		case 6:
			st.SID = int(v)
		case 9:
			// flags is unsigned: PF_* bits up to 1<<31 and beyond.
			if st.Flags, ok = atou64(tok); !ok {
				return st, fmt.Errorf("%w: field 9 %q is not a number", ErrMalformed, tok)
			}
		case 14:
			st.UTime = uint64(max(v, 0))
		case 15:
			st.STime = uint64(max(v, 0))
		case 16:
			st.CUTime = v
		case 17:
			st.CSTime = v
		case 22:
			st.StartTime = uint64(max(v, 0))
		case 24:
			st.RSS = v
		}
		if rest == nil && field < Fields {
			return st, fmt.Errorf("%w: only %d fields in %q", ErrMalformed, field, truncate(line))
		}
	}
	return st, nil
}

// Read reads and parses /proc/<pid>/stat. An error wraps fs.ErrNotExist
// (or syscall.ESRCH) when the process is gone.
func Read(pid int) (Stat, error) {
	var buf [HeadBytes]byte
	return ReadInto(pid, buf[:])
}

// ReadInto is Read with a caller-owned buffer (at least HeadBytes long is
// enough); Stat.Comm aliases buf.
func ReadInto(pid int, buf []byte) (Stat, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, fmt.Errorf("pidstat: %w", err)
	}
	n, err := f.Read(buf)
	f.Close()
	if err != nil {
		return Stat{}, fmt.Errorf("pidstat: read /proc/%d/stat: %w", pid, err)
	}
	st, err := Parse(buf[:n])
	if err != nil {
		return Stat{}, fmt.Errorf("%w (/proc/%d/stat)", err, pid)
	}
	return st, nil
}

func truncate(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "..."
	}
	return string(b)
}

// Atoi parses a non-negative decimal int of at most 18 digits without
// allocating; ok is false for anything else. The sampler uses it for the
// names of /proc's entries.
func Atoi(b []byte) (n int, ok bool) { return atoi(b) }

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

// atou64 parses a decimal uint64 without allocating.
func atou64(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
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
