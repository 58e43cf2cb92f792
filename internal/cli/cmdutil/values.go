// This file owns the typed flag values the commands share: K=V lists,
// non-negative numbers and durations. A bad value is a usage error (the
// flag parser reports it, exit 2).

package cmdutil

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EnvValue collects repeated K=V flags in order.
type EnvValue struct{ P *[]string }

func (v EnvValue) String() string {
	if v.P == nil || len(*v.P) == 0 {
		return ""
	}
	return strings.Join(*v.P, ",")
}

// Set implements pflag.Value.
func (v EnvValue) Set(s string) error {
	k, _, ok := strings.Cut(s, "=")
	switch {
	case !ok:
		return fmt.Errorf("%q is not K=V", s)
	case k == "":
		return fmt.Errorf("%q has an empty variable name", s)
	case strings.ContainsRune(s, 0):
		return errors.New("contains a NUL byte")
	}
	*v.P = append(*v.P, s)
	return nil
}

// Type implements pflag.Value.
func (v EnvValue) Type() string { return "K=V" }

// EnvMap turns K=V entries into a map; a later key wins.
func EnvMap(kvs []string) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, val, _ := strings.Cut(kv, "=")
		m[k] = val
	}
	return m
}

// FloatValue is a non-negative float flag.
type FloatValue struct{ P *float64 }

func (v FloatValue) String() string {
	if v.P == nil {
		return "0"
	}
	return strconv.FormatFloat(*v.P, 'f', -1, 64)
}

// Set implements pflag.Value.
func (v FloatValue) Set(s string) error {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", s)
	}
	if f < 0 || f != f || f > 1e9 {
		return fmt.Errorf("%q must be a finite number >= 0", s)
	}
	*v.P = f
	return nil
}

// Type implements pflag.Value.
func (v FloatValue) Type() string { return "float" }

// CountValue is a non-negative integer flag.
type CountValue struct{ P *int64 }

func (v CountValue) String() string {
	if v.P == nil {
		return "0"
	}
	return strconv.FormatInt(*v.P, 10)
}

// Set implements pflag.Value.
func (v CountValue) Set(s string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	if n < 0 {
		return fmt.Errorf("%q must be >= 0", s)
	}
	*v.P = n
	return nil
}

// Type implements pflag.Value.
func (v CountValue) Type() string { return "int" }

// DurationValue is a non-negative Go duration flag (10m, 250ms).
type DurationValue struct{ P *time.Duration }

func (v DurationValue) String() string {
	if v.P == nil || *v.P == 0 {
		return "0" // pflag leaves a zero default out of the help
	}
	return v.P.String()
}

// Set implements pflag.Value.
func (v DurationValue) Set(s string) error {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a duration (like 10m, 250ms or 1h30m)", s)
	}
	if d < 0 {
		return fmt.Errorf("%q is negative", s)
	}
	*v.P = d
	return nil
}

// Type implements pflag.Value.
func (v DurationValue) Type() string { return "duration" }
