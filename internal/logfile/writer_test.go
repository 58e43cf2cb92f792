// writer_test.go tests the Writer on real files: format, partial and long
// lines, rotation bounds, drops, reopen, crash durability and a full
// filesystem.

package logfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func openT(t *testing.T, o Options) *Writer {
	t.Helper()
	w, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func readT(t *testing.T, path string, q Query) []Line {
	t.Helper()
	ls, err := Read(path, q)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func texts(ls []Line) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Text
	}
	return out
}

// eventually polls cond until it holds or a generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOptionsValidation(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.log")
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"empty path", Options{}, "empty path"},
		{"directory path", Options{Path: dir + "/"}, "names a directory"},
		{"negative MaxBytes", Options{Path: p, MaxBytes: -1}, "negative MaxBytes -1"},
		{"negative MaxFiles", Options{Path: p, MaxFiles: -2}, "negative MaxFiles -2"},
		{"negative QueueBytes", Options{Path: p, QueueBytes: -3}, "negative QueueBytes -3"},
		{"negative FlushPartial", Options{Path: p, FlushPartial: -time.Second}, "negative FlushPartial -1s"},
		{"negative Wait", Options{Path: p, Wait: -time.Millisecond}, "negative Wait -1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Open(tc.o)
			if err == nil {
				w.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want ErrOptions mentioning %q", err, tc.want)
			}
		})
	}
	// A path that is a directory fails at open.
	if w, err := Open(Options{Path: dir}); err == nil {
		w.Close()
		t.Fatal("opened a directory")
	}
}

func TestQueryValidation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	for _, tc := range []struct {
		name string
		q    Query
		want string
	}{
		{"negative tail", Query{Tail: -1}, "negative tail -1"},
		{"bad stream", Query{Stream: "stdout"}, `stream "stdout" is not`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(p, tc.q)
			if !errors.Is(err, ErrQuery) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Read: %v, want ErrQuery mentioning %q", err, tc.want)
			}
			err = Follow(t.Context(), p, tc.q, func([]Line) error { return nil })
			if !errors.Is(err, ErrQuery) {
				t.Fatalf("Follow: %v", err)
			}
		})
	}
	if _, err := Read(p, Query{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Read of a missing log: %v", err)
	}
}

func TestFormatPermissionsAndRead(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ws", "sub", "cmd.log")
	w := openT(t, Options{Path: p})
	w.Write(StreamOut, t0.Add(1500*time.Millisecond), []byte("hello\nworld\n"))
	w.Write(StreamErr, t0.Add(2*time.Second), []byte("oops\n\n"))
	w.Write("bogus", t0.Add(3*time.Second), []byte("as out\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := "2024-05-01T12:00:01.500Z out hello\n" +
		"2024-05-01T12:00:01.500Z out world\n" +
		"2024-05-01T12:00:02.000Z err oops\n" +
		"2024-05-01T12:00:02.000Z err \n" +
		"2024-05-01T12:00:03.000Z out as out\n"
	if string(b) != want {
		t.Fatalf("file:\n%s\nwant:\n%s", b, want)
	}
	for _, d := range []string{filepath.Join(dir, "ws"), filepath.Join(dir, "ws", "sub")} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v %v, want 0700", d, fi.Mode(), err)
		}
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v, want 0600", p, fi.Mode(), err)
	}
	ls := readT(t, p, Query{})
	if got := strings.Join(texts(ls), "|"); got != "hello|world|oops||as out" {
		t.Fatalf("read %q", got)
	}
	if l := ls[2]; l.Stream != StreamErr || l.Text != "oops" || !l.Time.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("line %+v", l)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.Flush(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
	if err := w.Reopen(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reopen after Close: %v", err)
	}
	w.Write(StreamOut, t0, []byte("ignored\n")) // no panic, no effect
}

func TestPartialLines(t *testing.T) {
	t.Run("joined across chunks and flushed at Close", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "c.log")
		w := openT(t, Options{Path: p, FlushPartial: time.Hour})
		w.Write(StreamOut, t0, []byte("ab"))
		w.Write(StreamErr, t0.Add(time.Second), []byte("e1\n"))
		w.Write(StreamOut, t0.Add(2*time.Second), []byte("cd"))
		w.Write(StreamOut, t0.Add(3*time.Second), []byte("ef\ngh"))
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := texts(readT(t, p, Query{})); strings.Join(got, "|") != "e1|abcdef" {
			t.Fatalf("before Close: %q", got)
		}
		w.Close()
		ls := readT(t, p, Query{})
		if got := texts(ls); strings.Join(got, "|") != "e1|abcdef|gh" {
			t.Fatalf("after Close: %q", got)
		}
		if !ls[1].Time.Equal(t0.Add(3 * time.Second)) {
			t.Fatalf("a line's time is the time of its last chunk: %v", ls[1].Time)
		}
	})
	t.Run("written after FlushPartial", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "c.log")
		w := openT(t, Options{Path: p, FlushPartial: 20 * time.Millisecond})
		w.Write(StreamOut, t0, []byte("prompt> "))
		eventually(t, "the partial line", func() bool {
			ls, _ := Read(p, Query{})
			return len(ls) == 1 && ls[0].Text == "prompt> "
		})
		w.Write(StreamOut, t0, []byte("answer\n"))
		w.Close()
		if got := texts(readT(t, p, Query{})); strings.Join(got, "|") != "prompt> |answer" {
			t.Fatalf("%q", got)
		}
	})
	t.Run("long lines split", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "c.log")
		w := openT(t, Options{Path: p, FlushPartial: time.Hour})
		long := bytes.Repeat([]byte("x"), 2*MaxLine+100)
		w.Write(StreamOut, t0, append(long, '\n'))
		// 130 KiB without a newline: two full pieces are written at once.
		for range 13 {
			w.Write(StreamErr, t0, bytes.Repeat([]byte("y"), 10<<10))
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		var lens []int
		for _, l := range readT(t, p, Query{}) {
			lens = append(lens, len(l.Text))
		}
		if fmt.Sprint(lens) != fmt.Sprint([]int{MaxLine, MaxLine, 100, MaxLine, MaxLine}) {
			t.Fatalf("line lengths %v", lens)
		}
		w.Close()
		if ls := readT(t, p, Query{Tail: 1}); len(ls[0].Text) != 130<<10-2*MaxLine {
			t.Fatalf("last piece %d bytes", len(ls[0].Text))
		}
	})
}

// numberedChunks calls fn with 32 KiB chunks (cut anywhere) of the lines
// "line <n> <padding>" for n in [0, n).
func numberedChunks(n int, pad string, fn func([]byte)) {
	var buf []byte
	for i := range n {
		buf = fmt.Appendf(buf, "line %d %s\n", i, pad)
		for len(buf) >= 32<<10 {
			fn(buf[:32<<10])
			buf = append(buf[:0], buf[32<<10:]...)
		}
	}
	if len(buf) > 0 {
		fn(buf)
	}
}

// lineNumber parses "line <n> ...".
func lineNumber(t *testing.T, s string) int {
	t.Helper()
	f := strings.Fields(s)
	if len(f) < 2 || f[0] != "line" {
		t.Fatalf("unexpected line %q", s)
	}
	n, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatalf("unexpected line %q", s)
	}
	return n
}

func TestRotationBounds(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.log")
	const maxBytes = 1 << 20
	w := openT(t, Options{Path: p, MaxBytes: maxBytes, MaxFiles: 3})
	pad := strings.Repeat("p", 50)
	const n = 50 << 20 / 64 // 64-byte lines: 50 MiB
	chunks := 0
	numberedChunks(n, pad, func(c []byte) {
		w.Write(StreamOut, time.Now(), c)
		if chunks++; chunks%16 == 0 { // 512 KiB: the queue never fills
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if d := w.Dropped(); d != 0 {
		t.Fatalf("dropped %d bytes", d)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > maxBytes {
			t.Errorf("%s: %d bytes > %d", e.Name(), fi.Size(), maxBytes)
		}
		if e.Name() != "c.log" && fi.Size() < maxBytes-200 {
			t.Errorf("rotated %s: only %d bytes", e.Name(), fi.Size())
		}
	}
	if strings.Join(names, " ") != "c.log c.log.1 c.log.2 c.log.3" {
		t.Fatalf("files %v", names)
	}
	tail := readT(t, p, Query{Tail: 1000})
	if len(tail) != 1000 {
		t.Fatalf("tail: %d lines", len(tail))
	}
	for i, l := range tail {
		if got := lineNumber(t, l.Text); got != n-1000+i {
			t.Fatalf("tail[%d] = %d, want %d", i, got, n-1000+i)
		}
	}
	all := readT(t, p, Query{})
	first := lineNumber(t, all[0].Text)
	for i, l := range all {
		if got := lineNumber(t, l.Text); got != first+i {
			t.Fatalf("all[%d] = %d, want %d", i, got, first+i)
		}
	}
	if last := lineNumber(t, all[len(all)-1].Text); last != n-1 || len(all) < 3*(maxBytes-200)/(64+prefixLen) {
		t.Fatalf("read %d lines ending at %d", len(all), last)
	}
}

func TestRemovesFilesBeyondMaxFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.log")
	for _, n := range []string{"c.log.1", "c.log.2", "c.log.3", "c.log.7", "c.log.x", "c.log.03", "d.log.9"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w := openT(t, Options{Path: p, MaxFiles: 2})
	w.Close()
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "c.log c.log.03 c.log.1 c.log.2 c.log.x d.log.9" {
		t.Fatalf("files: %s", got)
	}
}

func TestOpenEndsTornLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	if err := os.WriteFile(p, []byte("2024-05-01T12:00:00.000Z out before\n2024-05-01T12:00:00.000Z out torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := openT(t, Options{Path: p})
	w.Write(StreamOut, t0.Add(time.Second), []byte("after\n"))
	w.Close()
	if got := texts(readT(t, p, Query{})); strings.Join(got, "|") != "before|torn|after" {
		t.Fatalf("%q", got)
	}
}

func TestDropsAreCountedAndNoted(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	w := openT(t, Options{Path: p, QueueBytes: 64 << 10, MaxBytes: 1 << 30})
	chunk := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), 512)
	for range 4000 { // 128 MiB, far faster than the goroutine can write
		w.Write(StreamOut, time.Now(), chunk)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Dropped() == 0 {
		t.Fatal("nothing dropped")
	}
	re := regexp.MustCompile(`^\[shipote: (\d+) bytes dropped\]$`)
	var noted uint64
	for _, l := range readT(t, p, Query{Stream: StreamErr}) {
		m := re.FindStringSubmatch(l.Text)
		if m == nil {
			t.Fatalf("unexpected err line %q", l.Text)
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		noted += n
	}
	if noted != w.Dropped() {
		t.Fatalf("notices report %d bytes, Dropped() = %d", noted, w.Dropped())
	}
	t.Logf("dropped %d of %d bytes", w.Dropped(), 4000*len(chunk))
}

// TestWaitKeepsEverything: the flood that TestDropsAreCountedAndNoted
// drops from (a queue of 64 KiB, written far faster than the goroutine
// writes) is kept whole when Write may wait for room: Write slows to the
// disk's pace and nothing is dropped.
func TestWaitKeepsEverything(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	w := openT(t, Options{Path: p, QueueBytes: 64 << 10, MaxBytes: 1 << 30, Wait: time.Minute})
	line := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"
	chunk := bytes.Repeat([]byte(line+"\n"), 512)
	const chunks = 1000 // 32 MiB
	for range chunks {
		w.Write(StreamOut, time.Now(), chunk)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Dropped() != 0 {
		t.Fatalf("dropped %d bytes", w.Dropped())
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		if !strings.HasSuffix(sc.Text(), " out "+line) {
			t.Fatalf("line %d is %q", n, sc.Text())
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n != chunks*512 {
		t.Fatalf("%d lines in the file, want %d", n, chunks*512)
	}
}

// TestWaitEndsAtClose: a Write waiting for room returns when the Writer
// is closed.
func TestWaitEndsAtClose(t *testing.T) {
	w := openT(t, Options{Path: filepath.Join(t.TempDir(), "c.log"), QueueBytes: 64 << 10, Wait: time.Hour})
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	w.Write(StreamOut, time.Now(), chunk) // fills the queue...
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 { // ...and these wait for the goroutine, or for Close
			w.Write(StreamOut, time.Now(), chunk)
		}
	}()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Write still waiting after Close")
	}
}

func TestReopenAfterExternalRename(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	w := openT(t, Options{Path: p})
	w.Write(StreamOut, t0, []byte("a\n"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p, p+"-20240501"); err != nil {
		t.Fatal(err)
	}
	w.Write(StreamOut, t0, []byte("b\n")) // still goes to the renamed file
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	w.Write(StreamOut, t0, []byte("c\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := texts(readT(t, p+"-20240501", Query{})); strings.Join(got, "|") != "a|b" {
		t.Fatalf("renamed file: %q", got)
	}
	if got := texts(readT(t, p, Query{})); strings.Join(got, "|") != "c" {
		t.Fatalf("reopened file: %q", got)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("reopened file mode %v %v", fi.Mode(), err)
	}
}

// crashRun starts the test binary as a process writing numbered lines
// through a Writer (see crashHelper) and SIGKILLs it: after its third
// acknowledgement when rounds is large, else once its last line (written
// without Flush) is in the file. It returns the acknowledged count, the
// count written, and the lines read back after the kill.
func crashRun(t *testing.T, rounds int, waitUnflushed bool) (acked, wrote int, lines []Line) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.log")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+p, "LOGFILE_CRASH_ROUNDS="+strconv.Itoa(rounds))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			t.Fatalf("helper: %q", sc.Text())
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatalf("helper: %q", sc.Text())
		}
		if f[0] == "ack" {
			acked = n
			if !waitUnflushed && acked >= 3000 {
				break
			}
		} else if f[0] == "wrote" {
			wrote = n
			break
		} else {
			t.Fatalf("helper: %q", sc.Text())
		}
	}
	if waitUnflushed {
		if wrote == 0 {
			t.Fatal("helper ended early")
		}
		eventually(t, "the unflushed lines in the file", func() bool {
			ls, err := Read(p, Query{Tail: 1})
			return err == nil && len(ls) == 1 && ls[0].Text == fmt.Sprintf("line %d", wrote-1)
		})
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	return acked, wrote, readT(t, p, Query{})
}

func TestCrashKeepsWrittenLines(t *testing.T) {
	t.Run("acknowledged lines survive SIGKILL", func(t *testing.T) {
		acked, _, lines := crashRun(t, 1<<20, false)
		if len(lines) < acked {
			t.Fatalf("%d lines read, %d acknowledged", len(lines), acked)
		}
		for i, l := range lines { // a gapless prefix, at least up to the acknowledged point
			if l.Text != fmt.Sprintf("line %d", i) {
				t.Fatalf("line %d is %q", i, l.Text)
			}
		}
		t.Logf("acknowledged %d, on disk %d", acked, len(lines))
	})
	t.Run("unflushed lines reach the file", func(t *testing.T) {
		_, wrote, lines := crashRun(t, 2, true)
		if len(lines) != wrote {
			t.Fatalf("%d lines read, %d written", len(lines), wrote)
		}
		for i, l := range lines {
			if l.Text != fmt.Sprintf("line %d", i) {
				t.Fatalf("line %d is %q", i, l.Text)
			}
		}
	})
}

func TestFullFilesystemDoesNotBlock(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a 1 MiB tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	p := filepath.Join(mnt, "ws", "c.log")
	w := openT(t, Options{Path: p}) // MaxBytes 10 MiB: the disk fills first
	pad := strings.Repeat("p", 50)
	done := make(chan struct{})
	go func() {
		defer close(done)
		numberedChunks(50<<20/64, pad, func(c []byte) {
			w.Write(StreamOut, time.Now(), c)
		})
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("Write blocked on a full filesystem")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if w.Dropped() == 0 {
		t.Fatal("nothing dropped on a full filesystem")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	// What was written reads back in order, from line 0. A chunk dropped
	// by a full queue cuts a line: its start is written as a line.
	ls := readT(t, p, Query{Stream: StreamOut})
	prev := -1
	for _, l := range ls {
		if !strings.HasSuffix(l.Text, " "+pad) {
			continue
		}
		got := lineNumber(t, l.Text)
		if prev == -1 && got != 0 || got <= prev {
			t.Fatalf("line %d after %d", got, prev)
		}
		prev = got
	}
	t.Logf("file %d bytes, %d lines, dropped %d bytes", fi.Size(), len(ls), w.Dropped())
}

// TestBatchesReachTheFile writes, without Flush, runs of small chunks
// (below a batch: they wait for the batch timer) and of large ones (a
// batch: the goroutine wakes at once), from two goroutines as a command's
// out and err readers do, and checks that every line reaches the file.
func TestBatchesReachTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "b.log")
	w := openT(t, Options{Path: p, MaxBytes: 64 << 20, Wait: time.Minute})
	var (
		wg    sync.WaitGroup
		wrote [2]int // lines per stream
	)
	for s, stream := range []string{StreamOut, StreamErr} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			defer func() { wrote[s] = n }()
			for round := range 6 {
				size := 100 // bytes per chunk: small rounds, then batch-sized ones
				if round%2 == 1 {
					size = batchBytes + 1000
				}
				for range 3 {
					var chunk []byte
					for len(chunk) < size {
						chunk = fmt.Appendf(chunk, "%s %d\n", stream, n)
						n++
					}
					w.Write(stream, time.Now(), chunk)
				}
				time.Sleep(time.Duration(s+1) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	want := map[string]int{}
	eventually(t, "every line in the file", func() bool {
		ls, err := Read(p, Query{})
		if err != nil {
			return false
		}
		clear(want)
		for _, l := range ls {
			var name string
			var k int
			if _, err := fmt.Sscanf(l.Text, "%s %d", &name, &k); err != nil || name != l.Stream || k != want[name] {
				t.Fatalf("line %q of %s after %d lines", l.Text, l.Stream, want[l.Stream])
			}
			want[name]++
		}
		return want[StreamOut] == wrote[0] && want[StreamErr] == wrote[1]
	})
	if w.Dropped() != 0 {
		t.Fatalf("dropped %d bytes", w.Dropped())
	}
}
