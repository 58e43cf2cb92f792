// sparkline.go owns the one-line chart of a stats series (▁▂▃▄▅▆▇█) that
// the CLI prints beside a workspace's figures.

package procstats

import (
	"math"
	"strings"
)

// sparkBlocks are the eight block heights, lowest first.
var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// Sparkline renders the last width values as block characters scaled from
// their minimum (▁) to their maximum (█). A constant series is all ▁; NaN
// and infinite values render as a space and do not affect the scale. It
// returns "" when width <= 0 or there are no values.
func Sparkline(values []float64, width int) string {
	if width <= 0 || len(values) == 0 {
		return ""
	}
	if len(values) > width {
		values = values[len(values)-width:]
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		if finite(v) {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	var b strings.Builder
	b.Grow(len(values) * 3)
	top := float64(len(sparkBlocks) - 1)
	for _, v := range values {
		switch {
		case !finite(v):
			b.WriteByte(' ')
		case hi == lo:
			b.WriteRune(sparkBlocks[0])
		default:
			i := int(math.Round((v - lo) / (hi - lo) * top))
			b.WriteRune(sparkBlocks[i])
		}
	}
	return b.String()
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
