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
	want := 4 // two against os/exec, the namespace's spawn rate and its set-up
	if proc.PIDNamespaceSupport() != nil {
		want = 3 // the namespace row says why it was not measured
	}
	if len(rows) != want {
		t.Fatalf("%d rows, want %d", len(rows), want)
	}
	for i, row := range rows {
		unit := "spawns/s"
		if i == 3 {
			unit = "ms"
		}
		if i < want && (row.Unit != unit || (want == 3 && i == 2) != (row.Value == 0)) ||
			(row.Value > 0 && row.Base <= 0) {
			t.Fatalf("row %+v", row)
		}
		t.Log(FormatRow(row))
	}
}
