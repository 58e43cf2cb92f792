package bench

import (
	"strings"
	"testing"
)

func TestRowVerdict(t *testing.T) {
	tests := []struct {
		name string
		row  Row
		want string
	}{
		{"target met", Row{Value: 3, Base: 1, Met: Bool(true)}, "met"},
		{"target missed", Row{Value: 1, Base: 1, Met: Bool(false)}, "**not met**"},
		{"faster rate", Row{Value: 2, Base: 1, HigherIsBetter: true}, "no target; 2.00x better than the baseline"},
		{"slower rate", Row{Value: 1, Base: 4, HigherIsBetter: true}, "no target; 4.00x behind the baseline"},
		{"shorter time", Row{Value: 1, Base: 4}, "no target; 4.00x better than the baseline"},
		{"longer time", Row{Value: 3, Base: 2}, "no target; 1.50x behind the baseline"},
		{"level", Row{Value: 1.02, Base: 1}, "no target; level with the baseline"},
		{"no baseline value", Row{Value: 1}, "no target"},
		{"zero figure", Row{Value: 0, Base: 1}, "no target"},
		{"zero baseline", Row{Value: 0.005, Base: 0, Unit: "%", Baseline: "pv -L"}, "no target; +0.005 % beside a baseline of 0"},
		{"both zero", Row{Value: 0, Base: 0, Unit: "%", Baseline: "pv -L"}, "no target; level with the baseline"},
		{"far ahead", Row{Value: 3.846, Base: 1016.333}, "no target; 264.26x better than the baseline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.row.Verdict(); got != tt.want {
				t.Errorf("Verdict() = %q, want %q", got, tt.want)
			}
		})
	}
}

// A baseline of 0 has no meaningful ratio: the difference is shown, never
// "0.00x" (which reads as far better); a tiny ratio keeps its digits.
func TestRowComparison(t *testing.T) {
	for _, tt := range []struct {
		name string
		row  Row
		want string
	}{
		{"ratio", Row{Value: 1.104, Base: 0.787}, "1.40x"},
		{"zero baseline", Row{Value: 0.005, Base: 0, Unit: "%"}, "+0.005 %"},
		{"zero baseline, negative figure", Row{Value: -0.02, Base: 0, Unit: "%"}, "-0.020 %"},
		{"both zero", Row{Value: 0, Base: 0, Unit: "ms"}, "+0.000 ms"},
		{"tiny ratio", Row{Value: 3.846, Base: 1016.333}, "0.00378x"},
		{"hundredth", Row{Value: 1, Base: 100}, "0.01x"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.row.Comparison(); got != tt.want {
				t.Errorf("Comparison() = %q, want %q", got, tt.want)
			}
			if strings.Contains(FormatRow(tt.row), "0.00x") {
				t.Errorf("FormatRow prints 0.00x: %s", FormatRow(tt.row))
			}
		})
	}
}
