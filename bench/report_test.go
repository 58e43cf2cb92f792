package bench

import "testing"

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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.row.Verdict(); got != tt.want {
				t.Errorf("Verdict() = %q, want %q", got, tt.want)
			}
		})
	}
}
