package bytesize

import (
	"math"
	"testing"
)

func TestFormat(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0B"}, {1, "1B"}, {1023, "1023B"}, {1024, "1.0K"}, {1536, "1.5K"}, {100 << 10, "100K"},
		{1<<20 - 1, "1024K"}, {512 << 20, "512M"}, {12_900_000, "12.3M"}, {2 << 30, "2.0G"},
		{1 << 40, "1.0T"}, {1 << 50, "1.0P"}, {math.MaxUint64, "16384P"},
	}
	for _, tt := range tests {
		if got := Format(tt.in); got != tt.want {
			t.Errorf("Format(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIEC(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {1<<20 - 1, "1024.0 KiB"},
		{200 << 20, "200.0 MiB"}, {3 << 30, "3.0 GiB"}, {1 << 60, "1.0 EiB"}, {math.MaxUint64, "16.0 EiB"},
	}
	for _, tt := range tests {
		if got := IEC(tt.in); got != tt.want {
			t.Errorf("IEC(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
