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
	if len(rows) != 3 {
		t.Fatalf("rows %d; want 3", len(rows))
	}
	for _, row := range rows {
		t.Log(FormatRow(row))
		if row.Value <= 0 || row.Base <= 0 {
			t.Errorf("row without a figure or a baseline: %s", FormatRow(row))
		}
	}
}
