// This file tests package cmdutil: sizes, formats, sparklines, flag values,
// the JSON exporter and tables.

package cmdutil

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"0", 0, ""},
		{"1024", 1024, ""},
		{"1024B", 1024, ""},
		{"512K", 512 << 10, ""},
		{"512k", 512 << 10, ""},
		{"512M", 512 << 20, ""},
		{"512MB", 512 << 20, ""},
		{"512MiB", 512 << 20, ""},
		{"2G", 2 << 30, ""},
		{"2g", 2 << 30, ""},
		{"1T", 1 << 40, ""},
		{"1.5G", 3 << 29, ""},
		{"0.5K", 512, ""},
		{" 64M ", 64 << 20, ""},
		{"", 0, "empty size"},
		{"-1", 0, `negative size "-1"`},
		{"-1G", 0, `negative size "-1G"`},
		{"12X", 0, `invalid size "12X"`},
		{"G", 0, `invalid size "G": no number`},
		{"1.2.3M", 0, `invalid size "1.2.3M"`},
		{"1.5", 0, "a fraction needs a unit"},
		{"1iB", 0, `"iB" must follow K, M, G or T`},
		{"9999999999T", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
		{"1e3", 0, `invalid size "1e3"`},
		{"0x10", 0, `invalid size "0x10"`},
		{"ten", 0, `invalid size "ten"`},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseSize(%q) = %d, %v; want error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		// The forms themselves are tested in internal/bytesize.
		{0, "0B"}, {1536, "1.5K"}, {512 << 20, "512M"}, {math.MaxUint64, "16384P"},
	}
	for _, tt := range tests {
		if got := FormatBytes(tt.in); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := FormatRate(1536); got != "1.5K/s" {
		t.Errorf("FormatRate = %q", got)
	}
}

func TestSparkline(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		in   []float64
		want string
	}{
		{"empty", nil, ""},
		{"one zero", []float64{0}, "▁"},
		{"one value", []float64{5}, "█"},
		{"ramp from zero", []float64{0, 1, 2, 3, 4, 5, 6, 7}, "▁▂▃▄▅▆▇█"},
		{"all zero", []float64{0, 0, 0}, "▁▁▁"},
		{"equal", []float64{3, 3, 3}, "███"},
		{"scaled from zero", []float64{1, 7}, "▂█"},
		{"bunched high values scale from the lowest", []float64{100, 107, 114}, "▁▅█"},
		{"NaN and negatives are lowest", []float64{nan, -5, 7}, "▁▁█"},
		{"infinity is lowest", []float64{math.Inf(1), 2}, "▁█"},
		{"upper half scales from the lowest", []float64{100, 90, 95}, "█▁▅"},
		{"min..max not 0..max", []float64{10, 20, 15}, "▁█▅"},
		{"rounding", []float64{0, 0.49, 0.51, 1}, "▁▄▅█"},
		{"infinity among zeros", []float64{math.Inf(1), 0, 1}, "▁▁█"},
	}
	for _, tt := range tests {
		if got := Sparkline(tt.in); got != tt.want {
			t.Errorf("%s: Sparkline(%v) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{-time.Second, "0s"}, {0, "0s"}, {850 * time.Millisecond, "850ms"}, {42 * time.Second, "42s"},
		{185 * time.Second, "3m05s"}, {2*time.Hour + 4*time.Minute, "2h04m"}, {76 * time.Hour, "3d04h"},
	}
	for _, tt := range tests {
		if got := FormatDuration(tt.in); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestValues(t *testing.T) {
	var env []string
	ev := EnvValue{P: &env}
	for _, bad := range []string{"NOVALUE", "=x", "A=\x00"} {
		if err := ev.Set(bad); err == nil {
			t.Errorf("EnvValue.Set(%q): no error", bad)
		}
	}
	if err := ev.Set("A=1=2"); err != nil || env[0] != "A=1=2" {
		t.Errorf("EnvValue.Set(A=1=2) = %v, %v", err, env)
	}
	if m := EnvMap([]string{"A=1", "B=", "A=2"}); m["A"] != "2" || m["B"] != "" || len(m) != 2 {
		t.Errorf("EnvMap = %v", m)
	}
	var f float64
	for _, bad := range []string{"-1", "x", "NaN", "Inf"} {
		if err := (FloatValue{P: &f}).Set(bad); err == nil {
			t.Errorf("FloatValue.Set(%q): no error", bad)
		}
	}
	var n int64
	for _, bad := range []string{"-1", "1.5", "x"} {
		if err := (CountValue{P: &n}).Set(bad); err == nil {
			t.Errorf("CountValue.Set(%q): no error", bad)
		}
	}
	var d time.Duration
	for _, bad := range []string{"-1s", "10", "soon"} {
		if err := (DurationValue{P: &d}).Set(bad); err == nil {
			t.Errorf("DurationValue.Set(%q): no error", bad)
		}
	}
	if err := (DurationValue{P: &d}).Set("1h30m"); err != nil || d != 90*time.Minute {
		t.Errorf("DurationValue.Set(1h30m) = %v, %v", err, d)
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	var nilSlice []string
	if err := WriteJSON(&buf, nilSlice); err != nil || buf.String() != "[]\n" {
		t.Errorf("nil slice: %q, %v", buf.String(), err)
	}
	buf.Reset()
	if err := WriteJSON(&buf, map[string]string{"cmd": "a && b <c>"}); err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"cmd\": \"a && b <c>\"\n}\n"; buf.String() != want {
		t.Errorf("got %q, want %q (indented, HTML not escaped)", buf.String(), want)
	}
	buf.Reset()
	if err := WriteJSONLine(&buf, map[string]int{"a": 1}); err != nil || buf.String() != "{\"a\":1}\n" {
		t.Errorf("WriteJSONLine: %q, %v", buf.String(), err)
	}
}

func TestTable(t *testing.T) {
	var buf bytes.Buffer
	tb := NewTable(&buf, "ID", "NAME")
	tb.Row("1", "")
	tb.Row("22", "a\tb")
	tb.Flush()
	want := "ID  NAME\n1   -\n22  a b\n"
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

func TestFormatSoma(t *testing.T) {
	tests := []struct {
		soma messages.Soma
		want string
	}{
		{messages.Soma{}, "none"},
		{messages.Soma{MemoryMaxBytes: 1 << 30}, "memory 1.0G"},
		{messages.Soma{MemoryMaxBytes: 64 << 20, CPUMax: 1.5, PidsMax: 64, NofileMax: 1024}, "memory 64.0M, cpu 1.5, pids 64, nofile 1024"},
	}
	for _, tt := range tests {
		if got := FormatSoma(tt.soma, ", "); got != tt.want {
			t.Errorf("FormatSoma(%+v) = %q, want %q", tt.soma, got, tt.want)
		}
	}
}
