package bench

import (
	"context"
	"testing"
	"time"
)

func TestRunClusterQuick(t *testing.T) {
	r := NewReport(nil)
	par := ClusterParamsFor(true)
	par.PerNode, par.Seq = 50, 10
	par.TapRounds, par.TapRead = 1, 500*time.Millisecond
	if err := MeasureCluster(context.Background(), r, par); err != nil {
		t.Fatal(err)
	}
	rows := r.Rows()
	if len(rows) != 4 {
		t.Fatalf("rows %d; want 4", len(rows))
	}
	for _, row := range rows {
		t.Log(FormatRow(row))
		if row.Value <= 0 || row.Base <= 0 {
			t.Errorf("row without a figure or a baseline: %s", FormatRow(row))
		}
	}
	// The default build links more than the nocluster one: its idle RSS
	// cannot be the smaller (the two builds differ by some 10 MB of code).
	if link := rows[3]; link.Value <= link.Base {
		t.Errorf("default build's idle RSS %.1f MiB <= the nocluster build's %.1f MiB", link.Value, link.Base)
	}
}
