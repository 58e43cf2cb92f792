// Package bytesize prints byte counts for humans: Format in the short form
// that the CLI's tables and `top` share (512B, 1.5K, 12.3M, 2.0G: binary
// units, one decimal below 100), and IEC in the spelled-out form of the
// daemon's messages and events (512 B, 1.5 MiB).
package bytesize

import "strconv"

// scale returns n in its largest binary unit at most P (or E for IEC's
// range) and that unit's index in "KMGTPE", or -1 below 1024.
func scale(n uint64, top int) (float64, int) {
	const unit = 1024
	v := float64(n)
	i := -1
	for v >= unit && i < top {
		v /= unit
		i++
	}
	return v, i
}

// Format prints n bytes with a binary unit: 512B, 1.5K, 12.3M, 2.0G, 512M.
func Format(n uint64) string {
	v, i := scale(n, 4)
	if i < 0 {
		return strconv.FormatUint(n, 10) + "B"
	}
	prec := 1
	if v >= 100 {
		prec = 0
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + string("KMGTP"[i])
}

// IEC prints n bytes with an IEC unit and one decimal: 512 B, 1.5 MiB,
// 200.0 MiB.
func IEC(n uint64) string {
	v, i := scale(n, 5)
	if i < 0 {
		return strconv.FormatUint(n, 10) + " B"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + string("KMGTPE"[i]) + "iB"
}
