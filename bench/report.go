// Package bench is shipote's benchmark harness. Every figure it prints stands
// beside a baseline measured in the same run, as a ratio (as a difference
// where the baseline is 0); a figure without a baseline is never printed.
package bench

import (
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
)

// Row is one measured figure beside its baseline from the same run.
type Row struct {
	Group    string  // e.g. "splitter", "spawn", "snapshot"
	Name     string  // e.g. "1->4 aggregate"
	Value    float64 // shipote's figure (median when Runs > 1)
	Min, Max float64 // spread over runs; zero when a single run
	Unit     string  // e.g. "GB/s", "spawns/s", "ms"
	Baseline string  // what the baseline is, e.g. "coreutils tee"
	Base     float64 // the baseline's figure in the same unit
	// HigherIsBetter says how to read the ratio Value/Base.
	HigherIsBetter bool
	Target         string // the target, e.g. ">= 2x", "<= 1.5x"
	Met            *bool  // whether the target is met; nil when it has none
	Note           string
}

// Ratio is Value divided by Base, or 0 when Base is 0.
func (r Row) Ratio() float64 {
	if r.Base == 0 {
		return 0
	}
	return r.Value / r.Base
}

// Comparison renders how the figure compares with its baseline: the ratio
// ("1.40x", with three significant digits below 0.01 so that a large lead
// never reads "0.00x"), or, against a baseline of 0, where no ratio means
// anything, the absolute difference in the row's unit ("+0.005 %").
func (r Row) Comparison() string {
	if r.Base == 0 {
		return fmt.Sprintf("%+.3f %s", r.Value-r.Base, r.Unit)
	}
	ratio := r.Ratio()
	if ratio != 0 && math.Abs(ratio) < 0.01 {
		return fmt.Sprintf("%.3gx", ratio)
	}
	return fmt.Sprintf("%.2fx", ratio)
}

// Verdict says in one line where the figure stands: against its target
// when it has one, otherwise how it compares with its baseline.
func (r Row) Verdict() string {
	if r.Met != nil {
		if *r.Met {
			return "met"
		}
		return "**not met**"
	}
	if r.Base == 0 && r.Baseline != "" {
		if r.Value == 0 {
			return "no target; level with the baseline"
		}
		return fmt.Sprintf("no target; %s beside a baseline of 0", r.Comparison())
	}
	ratio := r.Ratio()
	if ratio <= 0 || r.Value <= 0 {
		return "no target"
	}
	better := ratio >= 1 == r.HigherIsBetter
	factor := ratio
	if factor < 1 {
		factor = 1 / factor
	}
	switch {
	case factor < 1.05:
		return "no target; level with the baseline"
	case better:
		return fmt.Sprintf("no target; %.2fx better than the baseline", factor)
	default:
		return fmt.Sprintf("no target; %.2fx behind the baseline", factor)
	}
}

// Report collects rows and prints each one as it is added.
type Report struct {
	mu   sync.Mutex
	out  io.Writer
	rows []Row
}

// NewReport returns a Report printing to out (nil prints nothing).
func NewReport(out io.Writer) *Report { return &Report{out: out} }

// Add records a row and prints it.
func (r *Report) Add(row Row) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, row)
	if r.out != nil {
		fmt.Fprintln(r.out, FormatRow(row))
	}
}

// Rows returns the rows added so far, in order.
func (r *Report) Rows() []Row {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Row(nil), r.rows...)
}

// FormatRow renders a row as one line: figure, baseline, comparison
// (Row.Comparison), target.
func FormatRow(row Row) string {
	cmp := "ratio " + row.Comparison()
	if row.Base == 0 {
		cmp = "diff " + row.Comparison()
	}
	s := fmt.Sprintf("%-10s %-34s %10.3f %-9s | %-28s %10.3f %-9s | %s",
		row.Group, row.Name, row.Value, row.Unit, row.Baseline, row.Base, row.Unit, cmp)
	if row.Target != "" {
		s += " | target " + row.Target
		if row.Met != nil {
			if *row.Met {
				s += " (met)"
			} else {
				s += " (NOT met)"
			}
		}
	}
	if row.Note != "" {
		s += " | " + row.Note
	}
	return s
}

// Median returns the median of xs and its min and max. xs is not modified.
func Median(xs []float64) (med, lo, hi float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

// smoke, set by this package's tests under -short (make test), shrinks the
// quick runs further: every row still comes out, from fewer and smaller
// runs, so that the harness is exercised on every test run.
var smoke bool

// Bool returns a pointer to b, for Row.Met.
func Bool(b bool) *bool { return &b }
