// sparkline.go owns the one-line chart of a stats series (▁▂▃▄▅▆▇█) that
// `ws show` and `top` print beside a workspace's figures.

package cmdutil

import (
	"math"
	"strings"
)

// sparkBlocks are the eight block heights, lowest first.
var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws values as one bar each. Bars scale from 0 to the highest
// value, or from the lowest when every value lies in the upper half (so
// that small changes of a large figure show). Equal values draw as full
// bars (empty when 0). NaN, infinite and negative values draw as the lowest
// bar and do not affect the scale. It returns "" when there are no values.
func Sparkline(values []float64) string {
	if len(values) == 0 {
		return ""
	}
	lo, hi := math.Inf(1), 0.0
	for _, v := range values {
		if usable(v) {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if lo < hi/2 || math.IsInf(lo, 1) {
		lo = 0
	}
	top := len(sparkBlocks) - 1
	var b strings.Builder
	b.Grow(len(values) * 3)
	for _, v := range values {
		i := 0
		switch {
		case !usable(v):
		case hi == lo:
			if v > 0 {
				i = top
			}
		default:
			i = int(math.Round((v - lo) / (hi - lo) * float64(top)))
		}
		b.WriteRune(sparkBlocks[min(max(i, 0), top)])
	}
	return b.String()
}

func usable(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0 }
