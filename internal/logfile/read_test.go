// read_test.go tests Read's queries across rotated files, Follow across
// rotations, and Sweep.

package logfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestReadQueries(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	// Small files: the 600 lines span about 20 rotated files.
	w := openT(t, Options{Path: p, MaxBytes: 2 << 10, MaxFiles: 100})
	var all []Line
	for i := range 600 {
		s := StreamOut
		if i%3 == 0 {
			s = StreamErr
		}
		l := Line{Time: t0.Add(time.Duration(i) * time.Second), Stream: s, Text: fmt.Sprintf("line %d", i)}
		all = append(all, l)
		w.Write(s, l.Time, []byte(l.Text+"\n"))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) < 10 {
		t.Fatalf("only %d files", len(ents))
	}
	filter := func(q Query) []Line {
		var out []Line
		for _, l := range all {
			if (q.Stream == "" || l.Stream == q.Stream) && (q.Since.IsZero() || !l.Time.Before(q.Since)) {
				out = append(out, l)
			}
		}
		if q.Tail > 0 && len(out) > q.Tail {
			out = out[len(out)-q.Tail:]
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    Query
	}{
		{"all", Query{}},
		{"tail 1", Query{Tail: 1}},
		{"tail 25", Query{Tail: 25}},
		{"tail more than all", Query{Tail: 10000}},
		{"stream err", Query{Stream: StreamErr}},
		{"stream out tail 7", Query{Stream: StreamOut, Tail: 7}},
		{"since", Query{Since: t0.Add(450 * time.Second)}},
		{"since between lines", Query{Since: t0.Add(450*time.Second + time.Millisecond)}},
		{"since before all", Query{Since: t0.Add(-time.Hour)}},
		{"since after all", Query{Since: t0.Add(time.Hour)}},
		{"since err tail 5", Query{Since: t0.Add(100 * time.Second), Stream: StreamErr, Tail: 5}},
		{"since err tail more", Query{Since: t0.Add(590 * time.Second), Stream: StreamErr, Tail: 50}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := readT(t, p, tc.q)
			want := filter(tc.q)
			if !slices.EqualFunc(got, want, func(a, b Line) bool {
				return a.Time.Equal(b.Time) && a.Stream == b.Stream && a.Text == b.Text
			}) {
				t.Fatalf("got %d lines %v…, want %d lines %v…", len(got), head(got), len(want), head(want))
			}
		})
	}
}

func head(ls []Line) []string {
	return texts(ls[:min(3, len(ls))])
}

func TestReadMalformedLines(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	content := "not a log line\n" +
		"2024-05-01T12:00:00.000Z out good\n" +
		"2024-13-01T12:00:00.000Z out bad month\n" +
		"2024-05-01T12:00:00.000Z xyz bad stream\n" +
		"2024-05-01T12:00:01.000Z err in progress" // no newline: still being written
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	ls := readT(t, p, Query{})
	if got := strings.Join(texts(ls), "|"); got != "not a log line|good|2024-13-01T12:00:00.000Z out bad month|2024-05-01T12:00:00.000Z xyz bad stream" {
		t.Fatalf("%q", got)
	}
	if ls[0].Stream != "" || !ls[0].Time.IsZero() || ls[1].Stream != StreamOut {
		t.Fatalf("%+v", ls)
	}
	if ls := readT(t, p, Query{Stream: StreamOut}); len(ls) != 1 {
		t.Fatalf("stream filter kept malformed lines: %+v", ls)
	}
	// In a rotated file the text after the last newline is a line.
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	if ls := readT(t, p, Query{Tail: 1}); len(ls) != 1 || ls[0].Text != "in progress" {
		t.Fatalf("%+v", ls)
	}
}

// collector gathers the line numbers a Follow delivers.
type collector struct {
	t    *testing.T
	mu   sync.Mutex
	nums []int
	errs []string
	last atomic.Int64
}

func (c *collector) fn(ls []Line) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range ls {
		var n int
		if _, err := fmt.Sscanf(l.Text, "line %d", &n); err != nil {
			c.errs = append(c.errs, l.Text)
			continue
		}
		c.nums = append(c.nums, n)
		c.last.Store(int64(n))
	}
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.nums)
}

// startFollow runs Follow in a goroutine; the returned stop cancels it and
// returns its error.
func startFollow(t *testing.T, p string, q Query, c *collector) (stop func() error) {
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- Follow(ctx, p, q, c.fn) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-errc
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func TestFollowAcrossRotations(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	const maxBytes, maxFiles = 64 << 10, 8
	w := openT(t, Options{Path: p, MaxBytes: maxBytes, MaxFiles: maxFiles})
	c := &collector{t: t, nums: make([]int, 0, 1<<20)}
	c.last.Store(-1)
	stop := startFollow(t, p, Query{}, c)
	const n = 400_000 // about 16 MiB of file: some 250 rotations
	perFile := maxBytes / (prefixLen + len("line 400000 ") + 1)
	var buf []byte
	for i := range n {
		buf = fmt.Appendf(buf, "line %d\n", i)
		if len(buf) >= 8<<10 || i == n-1 {
			w.Write(StreamOut, time.Now(), buf)
			buf = buf[:0]
			// Keep the follower within reach of rotation (it may lag by
			// MaxFiles files before it loses lines; allow half of that).
			for int64(i)-c.last.Load() > int64(perFile*maxFiles/2) {
				time.Sleep(time.Millisecond)
			}
		}
		if i%20000 == 0 {
			if err := w.Flush(); err != nil { // keeps the queue from dropping
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Dropped() != 0 {
		t.Fatalf("writer dropped %d bytes", w.Dropped())
	}
	eventually(t, "the follower to catch up", func() bool { return c.last.Load() == n-1 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow returned %v", err)
	}
	if len(c.errs) > 0 {
		t.Fatalf("unexpected lines: %q", c.errs[:min(5, len(c.errs))])
	}
	if len(c.nums) != n {
		t.Fatalf("%d lines followed, want %d", len(c.nums), n)
	}
	for i, v := range c.nums {
		if v != i {
			t.Fatalf("line %d is %d", i, v)
		}
	}
}

func TestFollowStartsWithRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	w := openT(t, Options{Path: p, MaxBytes: 1 << 10, MaxFiles: 50})
	for i := range 100 {
		w.Write(StreamOut, t0, fmt.Appendf(nil, "line %d\n", i))
		w.Write(StreamErr, t0, fmt.Appendf(nil, "err %d\n", i))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	c := &collector{t: t}
	stop := startFollow(t, p, Query{Tail: 3, Stream: StreamOut}, c)
	eventually(t, "the first batch", func() bool { return c.count() == 3 })
	for i := 100; i < 150; i++ {
		w.Write(StreamOut, t0, fmt.Appendf(nil, "line %d\n", i))
		w.Write(StreamErr, t0, fmt.Appendf(nil, "err %d\n", i))
	}
	eventually(t, "the new lines", func() bool { return c.last.Load() == 149 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow returned %v", err)
	}
	want := []int{97, 98, 99}
	for i := 100; i < 150; i++ {
		want = append(want, i)
	}
	if !slices.Equal(c.nums, want) || len(c.errs) > 0 {
		t.Fatalf("followed %v, other lines %q", c.nums, c.errs)
	}
}

func TestFollowWaitsForTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ws", "c.log")
	c := &collector{t: t}
	c.last.Store(-1)
	stop := startFollow(t, p, Query{Tail: 1}, c)
	time.Sleep(2 * pollInterval) // let Follow find nothing at least once
	w := openT(t, Options{Path: p})
	for i := range 10 {
		w.Write(StreamOut, t0, fmt.Appendf(nil, "line %d\n", i))
	}
	eventually(t, "the lines", func() bool { return c.last.Load() == 9 })
	stop()
	if !slices.Equal(c.nums, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("followed %v", c.nums)
	}
}

func TestFollowAfterExternalRenameAndReopen(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	w := openT(t, Options{Path: p})
	c := &collector{t: t}
	c.last.Store(-1)
	stop := startFollow(t, p, Query{}, c)
	w.Write(StreamOut, t0, []byte("line 0\n"))
	eventually(t, "line 0", func() bool { return c.last.Load() == 0 })
	if err := os.Rename(p, p+".old"); err != nil {
		t.Fatal(err)
	}
	w.Write(StreamOut, t0, []byte("line 1\n"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * pollInterval) // Follow sees no file at the path
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	w.Write(StreamOut, t0, []byte("line 2\n"))
	eventually(t, "line 2", func() bool { return c.last.Load() == 2 })
	stop()
	if !slices.Equal(c.nums, []int{0, 1, 2}) {
		t.Fatalf("followed %v", c.nums)
	}
}

func TestFollowStopsOnCallbackError(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	w := openT(t, Options{Path: p})
	w.Write(StreamOut, t0, []byte("x\n"))
	w.Flush()
	boom := errors.New("boom")
	err := Follow(t.Context(), p, Query{}, func([]Line) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Follow returned %v", err)
	}
}

func TestSweep(t *testing.T) {
	logs := filepath.Join(t.TempDir(), "logs")
	now := time.Now()
	mk := func(name string) string {
		d := filepath.Join(logs, name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "c.log"), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return d
	}
	old, recent, live, garbled := mk("old"), mk("recent"), mk("live"), mk("garbled")
	if err := MarkRemoved(old); err != nil {
		t.Fatal(err)
	}
	if err := MarkRemoved(old); err != nil { // keeps the first time
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(recent, RemovedMarker), []byte(now.Add(90*time.Minute).Format(time.RFC3339Nano)), 0o600); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(garbled, RemovedMarker)
	if err := os.WriteFile(marker, []byte("yesterday"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(marker, now.Add(-3*time.Hour), now.Add(-3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(logs, "stray-file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := MarkRemoved(filepath.Join(logs, "never-logged")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(logs, "never-logged")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("MarkRemoved created a directory: %v", err)
	}

	removed, err := Sweep(logs, time.Hour, now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if want := []string{garbled, old}; !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, d := range []string{recent, live, filepath.Join(logs, "stray-file")} {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
	}
	if removed, err := Sweep(logs, time.Hour, now); err != nil || len(removed) != 0 {
		t.Fatalf("second sweep: %v %v", removed, err)
	}
	if removed, err := Sweep(filepath.Join(logs, "missing"), time.Hour, now); err != nil || removed != nil {
		t.Fatalf("missing dir: %v %v", removed, err)
	}
	if _, err := Sweep(logs, -time.Second, now); err == nil || !strings.Contains(err.Error(), "negative retention") {
		t.Fatalf("negative retention: %v", err)
	}
}

func TestFollowFellBehindRotation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	w := openT(t, Options{Path: p, MaxBytes: 4 << 10, MaxFiles: 2})
	w.Write(StreamOut, t0, []byte("line 0\n"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	c := &collector{t: t}
	c.last.Store(-1)
	unblock := make(chan struct{})
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		errc <- Follow(ctx, p, Query{}, func(ls []Line) error {
			if calls.Add(1) == 1 {
				<-unblock // the follower stalls while the files rotate away
			}
			return c.fn(ls)
		})
	}()
	eventually(t, "the first batch", func() bool { return calls.Load() == 1 })
	for i := 1; i < 2000; i++ {
		w.Write(StreamOut, t0, fmt.Appendf(nil, "line %d\n", i))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	close(unblock)
	eventually(t, "the last line", func() bool { return c.last.Load() == 1999 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow returned %v", err)
	}
	if len(c.errs) != 1 || !strings.Contains(c.errs[0], "lines skipped") {
		t.Fatalf("other lines: %q", c.errs)
	}
	if c.nums[0] != 0 || !slices.IsSorted(c.nums) || len(slices.Compact(slices.Clone(c.nums))) != len(c.nums) {
		t.Fatalf("followed %v", c.nums)
	}
	t.Logf("followed %d of 2000 lines", len(c.nums))
}
