// spawn_test.go holds the testing.B side of spawn.go: one /bin/true spawn+wait
// per iteration through proc.Spawner and through os/exec, and a quick run of
// RunSpawn.

package bench

import (
	"context"
	"testing"

	"github.com/shipote/shipote/internal/proc"
)

func BenchmarkSpawnerTrue(b *testing.B) {
	s := proc.NewSpawner()
	defer s.Close()
	once := spawnerOnce(s)
	for b.Loop() {
		if err := once(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkExecTrue(b *testing.B) {
	for b.Loop() {
		if err := execOnce(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRunSpawnQuick(t *testing.T) {
	r := NewReport(nil)
	if err := RunSpawn(context.Background(), r, true); err != nil {
		t.Fatal(err)
	}
	rows := r.Rows()
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, row := range rows {
		if row.Value <= 0 || row.Base <= 0 || row.Unit != "spawns/s" {
			t.Fatalf("row %+v", row)
		}
		t.Log(FormatRow(row))
	}
}
