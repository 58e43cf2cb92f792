// logs_test.go holds the testing.B side of logs.go: the logfile.Writer fed
// 32 KiB chunks of lines directly (no drops: Flush every 512 KiB), a tail
// Read of a rotated 60 MiB log, and a quick run of RunLogs.

package bench

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/logfile"
)

func logsChunk() []byte {
	return bytes.Repeat([]byte(logsLine+"\n"), 32<<10/(len(logsLine)+1))
}

func BenchmarkLogfileWriter(b *testing.B) {
	w, err := logfile.Open(logfile.Options{Path: filepath.Join(b.TempDir(), "cmd.log")})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	chunk := logsChunk()
	b.SetBytes(int64(len(chunk)))
	i := 0
	for b.Loop() {
		w.Write(logfile.StreamOut, time.Now(), chunk)
		if i++; i%16 == 0 {
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(w.Dropped()), "dropped-bytes")
	b.ReportMetric(float64(b.N*bytes.Count(chunk, []byte{'\n'}))/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkLogfileReadTail(b *testing.B) {
	p := filepath.Join(b.TempDir(), "cmd.log")
	w, err := logfile.Open(logfile.Options{Path: p})
	if err != nil {
		b.Fatal(err)
	}
	chunk := logsChunk()
	for i := range 40 << 20 / len(chunk) { // 40 MiB of input, about 60 MiB on disk
		w.Write(logfile.StreamOut, time.Now(), chunk)
		if i%16 == 0 {
			w.Flush()
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	for _, tail := range []int{10, 1000} {
		b.Run("tail="+strconv.Itoa(tail), func(b *testing.B) {
			for b.Loop() {
				ls, err := logfile.Read(p, logfile.Query{Tail: tail})
				if err != nil || len(ls) != tail {
					b.Fatal(len(ls), err)
				}
			}
		})
	}
	b.Run("since=last-second", func(b *testing.B) {
		last, err := logfile.Read(p, logfile.Query{Tail: 1})
		if err != nil {
			b.Fatal(err)
		}
		since := last[0].Time.Add(-time.Second)
		for b.Loop() {
			if _, err := logfile.Read(p, logfile.Query{Since: since, Tail: 100}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestRunLogsQuick(t *testing.T) {
	r := NewReport(nil)
	if err := RunLogs(context.Background(), r, true); err != nil {
		t.Fatal(err)
	}
	rows := r.Rows()
	if len(rows) != 6 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, row := range rows {
		if row.Value <= 0 || row.Base <= 0 {
			t.Errorf("row %+v", row)
		}
		t.Log(FormatRow(row))
	}
}
