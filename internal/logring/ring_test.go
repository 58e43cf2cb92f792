package logring

import (
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

func lines(ls []messages.LogLine) []string {
	var out []string
	for _, l := range ls {
		out = append(out, string(l.Stream)+":"+l.Line)
	}
	return out
}

func TestSplitsLinesPerStream(t *testing.T) {
	r := New(0)
	now := time.Now()
	r.Write(messages.Stdout, now, []byte("one\ntw"))
	r.Write(messages.Stderr, now, []byte("err\n"))
	r.Write(messages.Stdout, now, []byte("o\nthree"))
	r.Flush(messages.Stdout, now)
	got, _ := r.Read(Query{})
	want := "out:one err:err out:two out:three"
	if strings.Join(lines(got), " ") != want {
		t.Fatalf("got %v, want %s", lines(got), want)
	}
}

func TestQueries(t *testing.T) {
	r := New(0)
	t0 := time.Unix(1000, 0)
	for i, s := range []string{"a", "b", "c", "d"} {
		st := messages.Stdout
		if i%2 == 1 {
			st = messages.Stderr
		}
		r.Write(st, t0.Add(time.Duration(i)*time.Second), []byte(s+"\n"))
	}
	cases := []struct {
		q    Query
		want string
	}{
		{Query{}, "out:a err:b out:c err:d"},
		{Query{Tail: 2}, "out:c err:d"},
		{Query{Stream: messages.Stderr}, "err:b err:d"},
		{Query{Since: t0.Add(2 * time.Second)}, "out:c err:d"},
		{Query{Tail: 1, Stream: messages.Stdout}, "out:c"},
	}
	for _, c := range cases {
		got, _ := r.Read(c.q)
		if strings.Join(lines(got), " ") != c.want {
			t.Errorf("%+v: got %v, want %s", c.q, lines(got), c.want)
		}
	}
}

func TestBoundedByBytes(t *testing.T) {
	r := New(100)
	for i := 0; i < 100; i++ {
		r.Write(messages.Stdout, time.Now(), []byte("0123456789\n"))
	}
	if b := r.Bytes(); b > 100 {
		t.Fatalf("ring holds %d bytes, bound is 100", b)
	}
	got, _ := r.Read(Query{})
	if len(got) != 9 {
		t.Fatalf("ring holds %d lines, want 9", len(got))
	}
}

func TestLongLinesAreSplit(t *testing.T) {
	r := New(1 << 20)
	r.Write(messages.Stdout, time.Now(), []byte(strings.Repeat("x", maxLine+10)))
	r.Flush(messages.Stdout, time.Now())
	got, _ := r.Read(Query{})
	if len(got) != 2 || len(got[0].Line) != maxLine || len(got[1].Line) != 10 {
		t.Fatalf("got %d lines", len(got))
	}
}

func TestFollowSeesNewLinesAndClose(t *testing.T) {
	r := New(0)
	r.Write(messages.Stdout, time.Now(), []byte("old\n"))
	_, cursor := r.Read(Query{})
	got, next, wake, closed := r.Next(cursor, Query{})
	if len(got) != 0 || closed {
		t.Fatalf("nothing new expected, got %v closed=%v", got, closed)
	}
	go r.Write(messages.Stdout, time.Now(), []byte("new\n"))
	select {
	case <-wake:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up")
	}
	got, next, wake, _ = r.Next(next, Query{})
	if strings.Join(lines(got), " ") != "out:new" {
		t.Fatalf("followed %v", lines(got))
	}
	r.Close()
	<-wake
	_, _, _, closed = r.Next(next, Query{})
	if !closed {
		t.Fatal("closed ring not reported")
	}
}
