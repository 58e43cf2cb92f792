// This file parses signal names and numbers as users write them.

package messages

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ParseSignal reads a signal as "SIGTERM", "TERM", "term" or "15".
func ParseSignal(s string) (syscall.Signal, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty signal")
	}
	if n, err := strconv.Atoi(t); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %d is out of range (1 to 64)", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(t)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("%q is not a signal name or number (e.g. TERM, SIGHUP, 9)", s)
}
