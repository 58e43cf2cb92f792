// Package bytesize prints byte counts for humans, in the one form that the
// CLI's tables, `top` and the daemon's messages share: 512B, 1.5K, 12.3M,
// 2.0G (binary units, one decimal below 100).
package bytesize

import "strconv"

// Format prints n bytes with a binary unit: 512B, 1.5K, 12.3M, 2.0G, 512M.
func Format(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + "B"
	}
	v := float64(n)
	i := -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	prec := 1
	if v >= 100 {
		prec = 0
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + string("KMGTP"[i])
}
