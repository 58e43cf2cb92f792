// format.go owns the on-disk line format, "<time> <out|err> <text>\n" with
// the time in RFC 3339 with milliseconds, UTC, and its parsing.

package logfile

import (
	"time"
)

const (
	// timeLayout is the layout of a line's time; always 24 bytes in UTC.
	timeLayout = "2006-01-02T15:04:05.000Z07:00"
	timeLen    = len("2006-01-02T15:04:05.000Z")
	// prefixLen is the length of "<time> out ".
	prefixLen = timeLen + 5
)

// Stream names as written in files and in Line.Stream.
const (
	StreamOut = "out"
	StreamErr = "err"
)

var streamNames = [2]string{StreamOut, StreamErr}

// stamp caches the formatted time of the last line: every line of a chunk
// shares its time.
type stamp struct {
	ms  int64
	buf [timeLen]byte
	ok  bool
}

// appendTo appends the formatted time t to b.
func (s *stamp) appendTo(b []byte, t time.Time) []byte {
	ms := t.UnixMilli()
	if !s.ok || ms != s.ms {
		s.ms, s.ok = ms, true
		out := time.UnixMilli(ms).UTC().AppendFormat(s.buf[:0], timeLayout)
		if len(out) != timeLen { // years outside 0000..9999
			out = time.Unix(0, 0).UTC().AppendFormat(s.buf[:0], timeLayout)
		}
		copy(s.buf[:], out)
	}
	return append(b, s.buf[:]...)
}

// parser parses lines, reusing the time of the previous line when its
// text is the same.
type parser struct {
	last [timeLen]byte
	t    time.Time
	ok   bool
}

// parse splits a raw line (without its newline) into its parts. A line not
// in the format is returned whole as Text with a zero Time and an empty
// Stream, and ok false.
func (p *parser) parse(raw []byte) (t time.Time, stream string, text []byte, ok bool) {
	if len(raw) < prefixLen || raw[timeLen] != ' ' || raw[timeLen+4] != ' ' {
		return time.Time{}, "", raw, false
	}
	switch string(raw[timeLen+1 : timeLen+4]) {
	case StreamOut:
		stream = StreamOut
	case StreamErr:
		stream = StreamErr
	default:
		return time.Time{}, "", raw, false
	}
	ts := raw[:timeLen]
	if !p.ok || string(ts) != string(p.last[:]) {
		pt, good := parseTime(ts)
		if !good {
			return time.Time{}, "", raw, false
		}
		copy(p.last[:], ts)
		p.t, p.ok = pt, true
	}
	return p.t, stream, raw[prefixLen:], true
}

// parseTime parses "YYYY-MM-DDTHH:MM:SS.mmmZ".
func parseTime(b []byte) (time.Time, bool) {
	if len(b) != timeLen || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' ||
		b[16] != ':' || b[19] != '.' || b[23] != 'Z' {
		return time.Time{}, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	y, ok1 := num(b[0:4])
	mo, ok2 := num(b[5:7])
	d, ok3 := num(b[8:10])
	h, ok4 := num(b[11:13])
	mi, ok5 := num(b[14:16])
	s, ok6 := num(b[17:19])
	ms, ok7 := num(b[20:23])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || !ok7 ||
		mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, ms*int(time.Millisecond), time.UTC), true
}
