// This file holds the testing.B benchmarks of state snapshots and a quick run
// of RunSnapshot.

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/shipote/shipote/persistence"
)

var snapshotSizes = []int{1000, 10000}

func BenchmarkSnapshotEncode(b *testing.B) {
	for _, n := range snapshotSizes {
		st := SnapshotState(n, 16)
		b.Run(fmt.Sprintf("ws=%d/persistence.Encode", n), func(b *testing.B) {
			for b.Loop() {
				data, err := persistence.Encode(st)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(data)))
			}
		})
		b.Run(fmt.Sprintf("ws=%d/json.Marshal", n), func(b *testing.B) {
			for b.Loop() {
				data, err := json.Marshal(st)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(data)))
			}
		})
	}
}

func BenchmarkSnapshotSave(b *testing.B) {
	for _, n := range snapshotSizes {
		st := SnapshotState(n, 16)
		b.Run(fmt.Sprintf("ws=%d/Store.Save", n), func(b *testing.B) {
			s, err := persistence.Open(filepath.Join(b.TempDir(), "state.json"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for b.Loop() {
				size, err := s.Save(st)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(size))
			}
		})
		b.Run(fmt.Sprintf("ws=%d/PlainSave", n), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "plain.json")
			for b.Loop() {
				size, err := PlainSave(path, st)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(size))
			}
		})
	}
}

func BenchmarkSnapshotDecode(b *testing.B) {
	data, err := persistence.Encode(SnapshotState(10000, 16))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ws=10000/persistence.Decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, _, err := persistence.Decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ws=10000/json.Unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var st persistence.State
			if err := json.Unmarshal(data, &st); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestRunSnapshotQuick(t *testing.T) {
	r := NewReport(os.Stdout)
	if err := RunSnapshot(context.Background(), r, true); err != nil {
		t.Fatal(err)
	}
	rows := r.Rows()
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4", len(rows))
	}
	for _, row := range rows {
		if row.Value <= 0 || row.Base <= 0 {
			t.Errorf("row without a figure or a baseline: %+v", row)
		}
	}
}
