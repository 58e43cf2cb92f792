// This file owns the human forms of times, durations, histories and
// limits: compact durations, ages, sparklines and a workspace's soma.

package cmdutil

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shipote/shipote/messages"
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

// Age prints how long ago t was ("3m05s ago"); a zero t is "-".
func Age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return FormatDuration(now.Sub(t)) + " ago"
}

// FormatSoma prints a workspace's limits joined by sep ("memory 1.0G, cpu
// 2, pids 64"), or "none".
func FormatSoma(s messages.Soma, sep string) string {
	var parts []string
	if s.MemoryMaxBytes > 0 {
		parts = append(parts, "memory "+FormatBytes(uint64(s.MemoryMaxBytes)))
	}
	if s.CPUMax > 0 {
		parts = append(parts, "cpu "+strconv.FormatFloat(s.CPUMax, 'f', -1, 64))
	}
	if s.PidsMax > 0 {
		parts = append(parts, "pids "+strconv.FormatInt(s.PidsMax, 10))
	}
	if s.NofileMax > 0 {
		parts = append(parts, "nofile "+strconv.FormatInt(s.NofileMax, 10))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, sep)
}
