// splitter_test.go holds the testing.B side of splitter.go: 64 MiB of zeros
// per iteration from head(1) through internal/flow (zero-copy and copying
// engines) and through coreutils tee to N cat consumers, and a quick run of
// RunSplitter.

package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func BenchmarkSplitterFanout(b *testing.B) {
	const size = 64 << 20
	for _, n := range []int{1, 4} {
		for _, k := range []struct {
			name string
			kind splitKind
		}{{"zerocopy", splitFlow}, {"copy", splitFlowCopy}, {"coreutils-tee", splitTee}, {"coreutils-tee-1MiB", splitTeeBig}} {
			b.Run(fmt.Sprintf("%s/1to%d", k.name, n), func(b *testing.B) {
				b.SetBytes(int64(n) * size) // bytes delivered per op
				for b.Loop() {
					if _, err := splitFanoutOnce(context.Background(), k.kind, n, size); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func TestRunSplitterQuick(t *testing.T) {
	r := NewReport(nil)
	if err := RunSplitter(context.Background(), r, true); err != nil {
		t.Fatal(err)
	}
	rows := r.Rows()
	if len(rows) != 16 {
		t.Fatalf("%d rows", len(rows))
	}
	big := 0
	for _, row := range rows {
		if row.Baseline == "coreutils tee, 1 MiB pipes" && row.Base > 0 {
			big++
		}
	}
	if big != 4 {
		t.Errorf("%d fan-out rows against tee on 1 MiB pipes, want one per fan-out", big)
	}
	for _, row := range rows {
		if row.Value < 0 || row.Unit == "GB/s" && (row.Value <= 0 || row.Base <= 0) {
			t.Errorf("row %+v", row)
		}
		t.Log(FormatRow(row))
	}
}

func TestGrowPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := growPipe(w, splitPipeBytes); err != nil {
		t.Fatal(err)
	}
	rc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	if err := rc.Control(func(fd uintptr) { got, gerr = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if got != splitPipeBytes {
		t.Errorf("pipe holds %d bytes, want %d", got, splitPipeBytes)
	}
	// Not a pipe: a clear error.
	f, err := os.CreateTemp(t.TempDir(), "file")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := growPipe(f, splitPipeBytes); err == nil || !strings.Contains(err.Error(), "grow pipe to 1048576 bytes") {
		t.Errorf("growPipe of a file: %v, want a grow pipe error", err)
	}
}

// A fan-out through tee on grown pipes runs to the end, as on default
// pipes (the producer, tee and every consumer exit 0).
func TestSplitFanoutTeeBigPipes(t *testing.T) {
	for _, k := range []splitKind{splitTee, splitTeeBig} {
		if _, err := splitFanoutOnce(context.Background(), k, 3, 8<<20); err != nil {
			t.Errorf("kind %d: %v", k, err)
		}
	}
}
