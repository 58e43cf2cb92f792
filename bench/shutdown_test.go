package bench

import (
	"context"
	"testing"
)

func TestRunShutdownQuick(t *testing.T) {
	r := NewReport(nil)
	if err := MeasureShutdown(context.Background(), r, ShutdownParamsFor(true)); err != nil {
		t.Fatal(err)
	}
	rows := r.Rows()
	if len(rows) != 1 {
		t.Fatalf("rows %d; want 1", len(rows))
	}
	row := rows[0]
	t.Log(FormatRow(row))
	if row.Value <= 0 || row.Base <= 0 || row.Met == nil {
		t.Errorf("row without a figure, a baseline or a target: %s", FormatRow(row))
	}
}
