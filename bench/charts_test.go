package bench

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func syntheticRows() []Row {
	var rows []Row
	for i, n := range []string{"1", "2", "4", "8"} {
		v := float64(i+1) * 3.5
		rows = append(rows, Row{Group: "splitter", Name: "1->" + n + " aggregate", Value: v, Unit: "GB/s",
			Baseline: "coreutils tee", Base: v / 3, HigherIsBetter: true})
		if n == "4" {
			rows = append(rows,
				Row{Group: "splitter", Name: "1->4 aggregate", Value: v, Unit: "GB/s", Baseline: "bare tee(2)+splice loop", Base: v * 1.1},
				Row{Group: "splitter", Name: "1->4 aggregate, copying engine", Value: v / 2, Unit: "GB/s", Baseline: "coreutils tee", Base: v / 3})
		}
	}
	// Rows the splitter chart must skip.
	rows = append(rows,
		Row{Group: "splitter", Name: "throttle 10 MB/s error", Value: 0.4, Unit: "%"},
		Row{Group: "engine", Name: "1->4 aggregate", Value: 99, Unit: "GB/s"})
	for _, r := range []struct {
		fig        string
		unit       string
		self, a, b float64
	}{
		{FigStart, "ms", 800, 2400, 2500},
		{FigRSSIdle, "MiB", 12, 57, 25},
		{FigRSSRunning, "MiB", 20, 64, 30},
		{FigCPUIdle, "%", 0.1, 0.4, 0.2},
		{FigRestart, "ms", 3.1, 11, 1018},
		{FigStop, "ms", 150, 3975, 0}, // supervisord missing here
	} {
		rows = append(rows,
			Row{Group: "peers", Name: r.fig, Value: r.self, Unit: r.unit, Baseline: "pm2 7.0.4", Base: r.a},
			Row{Group: "peers", Name: r.fig, Value: r.self, Unit: r.unit, Baseline: "supervisord 4.2.5", Base: r.b})
	}
	return rows
}

func checkPNG(t *testing.T, path string, minW, minH int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("%s: not a PNG", path)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w < minW || h < minH {
		t.Fatalf("%s: %dx%d, want at least %dx%d", path, w, h, minW, minH)
	}
}

func TestWriteCharts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "charts")
	paths, err := WriteCharts(syntheticRows(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, ChartSplitter), filepath.Join(dir, ChartPeers)}
	if strings.Join(paths, ",") != strings.Join(want, ",") {
		t.Fatalf("paths %v, want %v", paths, want)
	}
	checkPNG(t, paths[0], 600, 400)
	checkPNG(t, paths[1], 800, 600)
}

func TestWriteChartsSubsets(t *testing.T) {
	all := syntheticRows()
	pick := func(group string) []Row {
		var out []Row
		for _, r := range all {
			if r.Group == group {
				out = append(out, r)
			}
		}
		return out
	}
	tests := []struct {
		name string
		rows []Row
		want []string
	}{
		{"none", nil, nil},
		{"unrelated rows", []Row{{Group: "engine", Name: "x", Value: 1, Unit: "ms"}}, nil},
		{"splitter only", pick("splitter"), []string{ChartSplitter}},
		{"peers only", pick("peers"), []string{ChartPeers}},
		{"one peer figure", pick("peers")[:2], []string{ChartPeers}},
		{"zero and negative values", []Row{
			{Group: "splitter", Name: "1->2 aggregate", Value: 0, Unit: "GB/s", Baseline: "tee", Base: 1},
			{Group: "peers", Name: FigRestart, Value: -1, Unit: "ms", Baseline: "pm2", Base: 0},
		}, []string{ChartSplitter, ChartPeers}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			paths, err := WriteCharts(tt.rows, dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(paths) != len(tt.want) {
				t.Fatalf("paths %v, want %v", paths, tt.want)
			}
			for i, p := range paths {
				if filepath.Base(p) != tt.want[i] {
					t.Fatalf("paths %v, want %v", paths, tt.want)
				}
				checkPNG(t, p, 100, 100)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != len(tt.want) {
				t.Fatalf("%d files in dir, want %d", len(entries), len(tt.want))
			}
		})
	}
}

func TestWriteChartsBadDir(t *testing.T) {
	if _, err := WriteCharts(syntheticRows(), ""); err == nil || !strings.Contains(err.Error(), "empty directory") {
		t.Fatalf("empty dir: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteCharts(syntheticRows(), filepath.Join(file, "sub")); err == nil {
		t.Fatal("a directory under a file: no error")
	}
}

func TestFormatFigure(t *testing.T) {
	tests := []struct {
		v    float64
		unit string
		want string
	}{
		{3.14159, "ms", "3.14 ms"},
		{0.4, "%", "0.4 %"},
		{64.25, "MiB", "64.2 MiB"},
		{2485.4, "ms", "2485 ms"},
		{0, "ms", "0 ms"},
	}
	for _, tt := range tests {
		if got := formatFigure(tt.v, tt.unit); got != tt.want {
			t.Errorf("formatFigure(%v, %q) = %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
}
