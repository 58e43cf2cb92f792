// charts.go draws PNG charts from report rows: the splitter's aggregate
// throughput by fan-out beside its baselines, and the peer comparison as
// bar charts (start time, daemon RSS, restart latency, stop time).

package bench

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Chart file names written by WriteCharts.
const (
	ChartSplitter = "splitter-fanout.png"
	ChartPeers    = "peers.png"
)

// splitterRow matches the splitter's fan-out rows, e.g. "1->4 aggregate" and
// "1->4 aggregate, copying engine".
var splitterRow = regexp.MustCompile(`^1->(\d+) aggregate(.*)$`)

// WriteCharts writes PNG charts of rows into dir (created if needed) and
// returns their paths: ChartSplitter when there are splitter fan-out rows,
// ChartPeers when there are peer rows. No matching rows, no chart.
func WriteCharts(rows []Row, dir string) ([]string, error) {
	if dir == "" {
		return nil, errors.New("bench: WriteCharts: empty directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	if p, ok, err := splitterChart(rows, filepath.Join(dir, ChartSplitter)); err != nil {
		return paths, fmt.Errorf("bench: splitter chart: %w", err)
	} else if ok {
		paths = append(paths, p)
	}
	if p, ok, err := peersChart(rows, filepath.Join(dir, ChartPeers)); err != nil {
		return paths, fmt.Errorf("bench: peers chart: %w", err)
	} else if ok {
		paths = append(paths, p)
	}
	return paths, nil
}

// series is a named line of (fan-out, GB/s) points.
type series struct {
	name string
	pts  map[int]float64
}

func splitterChart(rows []Row, path string) (string, bool, error) {
	var order []string
	byName := map[string]*series{}
	hi := 0.0
	add := func(name string, x int, y float64) {
		if y <= 0 || math.IsNaN(y) || math.IsInf(y, 0) {
			return
		}
		s := byName[name]
		if s == nil {
			s = &series{name: name, pts: map[int]float64{}}
			byName[name] = s
			order = append(order, name)
		}
		if _, dup := s.pts[x]; !dup {
			s.pts[x] = y
			hi = math.Max(hi, y)
		}
	}
	fanouts := map[int]bool{}
	for _, r := range rows {
		m := splitterRow.FindStringSubmatch(r.Name)
		if r.Group != "splitter" || m == nil || r.Unit != "GB/s" {
			continue
		}
		n, err := strconv.Atoi(m[1])
		if err != nil || n <= 0 {
			continue
		}
		fanouts[n] = true
		add("shipote"+m[2], n, r.Value)
		if r.Baseline != "" {
			add(r.Baseline, n, r.Base)
		}
	}
	if len(order) == 0 {
		return "", false, nil
	}
	p := plot.New()
	p.Title.Text = "Splitter: aggregate throughput by fan-out"
	p.X.Label.Text = "consumers (1 -> N)"
	p.Y.Label.Text = "GB/s (sum over consumers)"
	p.Y.Min = 0
	p.Y.Max = hi * 1.35 // room for the legend
	p.Legend.Top, p.Legend.Left = true, true
	var ticks []plot.Tick
	for n := range fanouts {
		ticks = append(ticks, plot.Tick{Value: float64(n), Label: strconv.Itoa(n)})
	}
	sort.Slice(ticks, func(i, j int) bool { return ticks[i].Value < ticks[j].Value })
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Add(plotter.NewGrid())
	var args []any
	for _, name := range order {
		s := byName[name]
		xs := make([]int, 0, len(s.pts))
		for x := range s.pts {
			xs = append(xs, x)
		}
		sort.Ints(xs)
		xys := make(plotter.XYs, len(xs))
		for i, x := range xs {
			xys[i] = plotter.XY{X: float64(x), Y: s.pts[x]}
		}
		args = append(args, name, xys)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return "", false, err
	}
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		return "", false, err
	}
	return path, true, nil
}

// peerPanels are the figures of the peer chart, in reading order.
var peerPanels = []string{FigStart, FigRSSRunning, FigRestart, FigStop}

// bar is one labelled bar of a panel.
type bar struct {
	label string
	value float64
}

func peersChart(rows []Row, path string) (string, bool, error) {
	// One colour per system across the panels.
	colors := map[string]color.Color{"shipote": plotutil.Color(0)}
	for _, r := range rows {
		if r.Group == "peers" && r.Baseline != "" && colors[r.Baseline] == nil {
			colors[r.Baseline] = plotutil.Color(len(colors))
		}
	}
	var plots []*plot.Plot
	for _, fig := range peerPanels {
		var bars []bar
		unit := ""
		seen := map[string]bool{}
		for _, r := range rows {
			if r.Group != "peers" || r.Name != fig {
				continue
			}
			unit = r.Unit
			if len(bars) == 0 {
				bars = append(bars, bar{"shipote", r.Value})
			}
			if r.Base > 0 && !seen[r.Baseline] {
				seen[r.Baseline] = true
				bars = append(bars, bar{r.Baseline, r.Base})
			}
		}
		if len(bars) == 0 {
			continue
		}
		p, err := barPanel(fig, unit, bars, colors)
		if err != nil {
			return "", false, err
		}
		plots = append(plots, p)
	}
	if len(plots) == 0 {
		return "", false, nil
	}
	const cols = 2
	nrows := (len(plots) + cols - 1) / cols
	grid := make([][]*plot.Plot, nrows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, p := range plots {
		grid[i/cols][i%cols] = p
	}
	img := vgimg.New(10*vg.Inch, vg.Length(nrows)*4*vg.Inch)
	dc := draw.New(img)
	// A white background: PNG viewers show transparency as black or checks.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: nrows, Cols: cols,
		PadX: vg.Points(24), PadY: vg.Points(24),
		PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(8)}
	canvases := plot.Align(grid, tiles, dc)
	for j := range grid {
		for i := range grid[j] {
			if grid[j][i] != nil {
				grid[j][i].Draw(canvases[j][i])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return "", false, err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return "", false, err
	}
	if err := f.Close(); err != nil {
		return "", false, err
	}
	return path, true, nil
}

// barPanel draws one bar per system, each in its own colour, with its value
// written above it (a 3 ms bar beside a 1000 ms one is otherwise invisible).
func barPanel(title, unit string, bars []bar, colors map[string]color.Color) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = unit
	p.Y.Min = 0
	hi := 0.0
	names := make([]string, len(bars))
	lxy := make(plotter.XYs, len(bars))
	labels := make([]string, len(bars))
	for i, b := range bars {
		v := b.value
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			v = 0
		}
		bc, err := plotter.NewBarChart(plotter.Values{v}, vg.Points(36))
		if err != nil {
			return nil, err
		}
		bc.XMin = float64(i)
		bc.Color = colors[b.label]
		bc.LineStyle.Width = 0
		p.Add(bc)
		names[i] = b.label
		lxy[i] = plotter.XY{X: float64(i), Y: v}
		labels[i] = formatFigure(v, unit)
		hi = math.Max(hi, v)
	}
	if hi == 0 {
		hi = 1
	}
	p.Y.Max = hi * 1.18
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: lxy, Labels: labels})
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign = draw.XCenter
	}
	l.Offset = vg.Point{Y: vg.Points(3)}
	p.Add(l)
	p.NominalX(names...)
	return p, nil
}

// formatFigure prints v with three significant digits and its unit.
func formatFigure(v float64, unit string) string {
	s := strconv.FormatFloat(v, 'g', 3, 64)
	if v >= 1000 {
		s = strconv.FormatFloat(v, 'f', 0, 64)
	}
	return s + " " + unit
}
