// splitter_test.go holds the testing.B side of splitter.go: 64 MiB of zeros
// per iteration from head(1) through internal/flow (zero-copy and copying
// engines) and through coreutils tee to N cat consumers, and a quick run of
// RunSplitter.

package bench

import (
	"context"
	"fmt"
	"testing"
)

func BenchmarkSplitterFanout(b *testing.B) {
	const size = 64 << 20
	for _, n := range []int{1, 4} {
		for _, k := range []struct {
			name string
			kind splitKind
		}{{"zerocopy", splitFlow}, {"copy", splitFlowCopy}, {"coreutils-tee", splitTee}} {
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
	if len(rows) != 12 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, row := range rows {
		if row.Value < 0 || row.Unit == "GB/s" && (row.Value <= 0 || row.Base <= 0) {
			t.Errorf("row %+v", row)
		}
		t.Log(FormatRow(row))
	}
}
