package bench

import (
	"context"
	"testing"
)

func TestRunRetentionQuick(t *testing.T) {
	r := NewReport(nil)
	if err := MeasureRetention(context.Background(), r, RetentionParamsFor(true)); err != nil {
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
