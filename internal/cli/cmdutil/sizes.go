// This file owns byte sizes: parsing flag values such as 512M or 2G, and
// printing sizes and rates for humans.

package cmdutil

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/shipote/shipote/internal/bytesize"
)

// ParseSize parses a size in bytes: a non-negative number with an optional
// unit K, M, G or T (powers of 1024, case-insensitive, optionally followed
// by "B" or "iB"), or plain bytes ("1024", "1024B"). Fractions are allowed
// with a unit ("1.5G"); the result is rounded down to whole bytes.
func ParseSize(s string) (int64, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty size")
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("negative size %q", in)
	}
	upper := strings.ToUpper(s)
	switch {
	case strings.HasSuffix(upper, "IB"):
		upper = upper[:len(upper)-2]
		if upper == "" || !strings.ContainsAny(upper[len(upper)-1:], "KMGT") {
			return 0, fmt.Errorf("invalid size %q: \"iB\" must follow K, M, G or T", in)
		}
	case strings.HasSuffix(upper, "B"):
		upper = upper[:len(upper)-1]
	}
	mult := int64(1)
	if n := len(upper); n > 0 {
		switch upper[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			upper = upper[:n-1]
		}
	}
	if upper == "" {
		return 0, fmt.Errorf("invalid size %q: no number", in)
	}
	for _, r := range upper {
		if (r < '0' || r > '9') && r != '.' {
			return 0, fmt.Errorf("invalid size %q: want a number with an optional unit K, M, G or T (like 512M or 2G)", in)
		}
	}
	if !strings.Contains(upper, ".") {
		n, err := strconv.ParseInt(upper, 10, 64)
		if err != nil || n > math.MaxInt64/mult {
			return 0, fmt.Errorf("invalid size %q: too large", in)
		}
		return n * mult, nil
	}
	if mult == 1 {
		return 0, fmt.Errorf("invalid size %q: a fraction needs a unit (K, M, G or T)", in)
	}
	f, err := strconv.ParseFloat(upper, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: want a number with an optional unit K, M, G or T (like 512M or 2G)", in)
	}
	v := f * float64(mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %q: too large", in)
	}
	return int64(v), nil
}

// FormatBytes prints n bytes with a binary unit: 512B, 1.5K, 12.3M, 2.0G.
// It is bytesize.Format, the form the daemon's messages use too.
func FormatBytes(n uint64) string { return bytesize.Format(n) }

// FormatRate prints a rate in bytes per second: 1.5M/s.
func FormatRate(n uint64) string { return FormatBytes(n) + "/s" }

// SizeValue is a pflag.Value for a size flag (ParseSize).
type SizeValue struct{ P *int64 }

func (v SizeValue) String() string {
	if v.P == nil || *v.P == 0 {
		return "0"
	}
	return FormatBytes(uint64(*v.P))
}

// Set implements pflag.Value.
func (v SizeValue) Set(s string) error {
	n, err := ParseSize(s)
	if err != nil {
		return err
	}
	*v.P = n
	return nil
}

// Type implements pflag.Value.
func (v SizeValue) Type() string { return "size" }
