// This file owns the human forms of times, durations and histories:
// compact durations, ages and sparklines.

package cmdutil

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// FormatDuration prints d compactly: 850ms, 42s, 3m05s, 2h04m, 3d04h.
// Negative durations print as 0s.
func FormatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

// sparkBars are the eight levels of a sparkline, lowest first.
var sparkBars = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws values as one bar each. Bars scale from 0 to the
// highest value, or from the lowest when every value lies in the upper
// half (so that small changes of a large figure show). Equal values draw
// as full bars (empty when 0). NaN, infinite and negative values draw as
// the lowest bar. An empty input gives "".
func Sparkline(values []float64) string {
	if len(values) == 0 {
		return ""
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0 }
	lo, hi := math.Inf(1), 0.0
	for _, v := range values {
		if finite(v) {
			lo = min(lo, v)
			hi = max(hi, v)
		}
	}
	if lo < hi/2 || math.IsInf(lo, 1) {
		lo = 0
	}
	top := len(sparkBars) - 1
	var b strings.Builder
	for _, v := range values {
		i := 0
		switch {
		case !finite(v):
		case hi == lo:
			if v > 0 {
				i = top
			}
		default:
			i = int(math.Round((v - lo) / (hi - lo) * float64(top)))
		}
		b.WriteRune(sparkBars[min(max(i, 0), top)])
	}
	return b.String()
}

// Age prints how long ago t was ("3m05s ago"); a zero t is "-".
func Age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return FormatDuration(now.Sub(t)) + " ago"
}
