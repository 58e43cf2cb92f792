// This file defines the declarative fields of a command (SPEC §1.2):
// readiness and health probes, depends_on, and a cron schedule with its
// concurrency policy; their validation; and the dependency cycle check
// shared by workspaces and up files.

package messages

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Probe checks a command: one of Exec, TCP or HTTP.
type Probe struct {
	// Exec runs argv (argv[0] included, resolved with the command's PATH)
	// with the command's environment and workdir; exit 0 passes.
	Exec []string `json:"exec,omitempty"`
	// TCP connects to host:port; a connection passes.
	TCP string `json:"tcp,omitempty"`
	// HTTP gets the URL; a 2xx or 3xx status passes.
	HTTP string `json:"http,omitempty"`
	// IntervalMs is the time between two probes (0 = DefaultProbeIntervalMs).
	IntervalMs int64 `json:"interval_ms,omitempty"`
	// TimeoutMs bounds one probe (0 = DefaultProbeTimeoutMs); an exec
	// probe past it is killed.
	TimeoutMs int64 `json:"timeout_ms,omitempty"`
	// FailureThreshold is how many failures in a row count (0 =
	// DefaultFailureThreshold).
	FailureThreshold int `json:"failure_threshold,omitempty"`
}

// Probe defaults.
const (
	DefaultProbeIntervalMs  = 1000
	DefaultProbeTimeoutMs   = 1000
	DefaultFailureThreshold = 3
)

// Interval is the effective time between two probes.
func (p *Probe) Interval() time.Duration {
	if p.IntervalMs > 0 {
		return time.Duration(p.IntervalMs) * time.Millisecond
	}
	return DefaultProbeIntervalMs * time.Millisecond
}

// Timeout is the effective bound of one probe.
func (p *Probe) Timeout() time.Duration {
	if p.TimeoutMs > 0 {
		return time.Duration(p.TimeoutMs) * time.Millisecond
	}
	return DefaultProbeTimeoutMs * time.Millisecond
}

// Threshold is the effective number of failures in a row that count.
func (p *Probe) Threshold() int {
	if p.FailureThreshold > 0 {
		return p.FailureThreshold
	}
	return DefaultFailureThreshold
}

// Kind names what the probe does: "exec", "tcp" or "http".
func (p *Probe) Kind() string {
	switch {
	case len(p.Exec) > 0:
		return "exec"
	case p.TCP != "":
		return "tcp"
	}
	return "http"
}

func (p *Probe) validate(f string) error {
	n := 0
	if len(p.Exec) > 0 {
		n++
	}
	if p.TCP != "" {
		n++
	}
	if p.HTTP != "" {
		n++
	}
	if n != 1 {
		return fieldErr(f, "needs exactly one of exec, tcp, http (got %d)", n)
	}
	switch {
	case len(p.Exec) > 0:
		e := p.Exec[0]
		switch {
		case e == "":
			return fieldErr(f+".exec[0]", "is empty")
		case strings.Contains(e, "/") && !strings.HasPrefix(e, "/"):
			return fieldErr(f+".exec[0]", "%q is a relative path; give an absolute path or a bare name looked up on PATH", e)
		}
		for i, a := range p.Exec {
			if strings.ContainsRune(a, 0) {
				return fieldErr(fmt.Sprintf("%s.exec[%d]", f, i), "contains a NUL byte")
			}
		}
		if err := checkArgStrings(f+".exec", p.Exec); err != nil {
			return err
		}
	case p.TCP != "":
		host, port, err := net.SplitHostPort(p.TCP)
		if err != nil || host == "" || port == "" {
			return fieldErr(f+".tcp", "%q is not host:port", p.TCP)
		}
	default:
		u, err := url.Parse(p.HTTP)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fieldErr(f+".http", "%q is not an http:// or https:// URL", p.HTTP)
		}
	}
	if p.IntervalMs < 0 {
		return fieldErr(f+".interval_ms", "must be >= 0")
	}
	if p.TimeoutMs < 0 {
		return fieldErr(f+".timeout_ms", "must be >= 0")
	}
	if p.FailureThreshold < 0 {
		return fieldErr(f+".failure_threshold", "must be >= 0")
	}
	return nil
}

// Concurrency says what a schedule does when a run is due while the
// previous one still runs (as a Kubernetes CronJob's concurrencyPolicy).
type Concurrency string

// Concurrency policies.
const (
	// ConcurrencyAllow starts the new run beside the old one.
	ConcurrencyAllow Concurrency = "allow"
	// ConcurrencyForbid skips the new run.
	ConcurrencyForbid Concurrency = "forbid"
	// ConcurrencyReplace stops the old run and starts the new one.
	ConcurrencyReplace Concurrency = "replace"
)

// scheduleParser reads 5-field cron specs, a leading seconds field (6
// fields), and descriptors such as @daily and "@every 1s".
var scheduleParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour |
	cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a command's schedule: 5 cron fields (minute hour
// day-of-month month day-of-week), or 6 with a leading seconds field, or a
// descriptor (@hourly, @daily, "@every 90s"). Times are in the daemon's
// local time zone; a TZ= or CRON_TZ= prefix is refused (loading a zone
// reads files, and the parser takes the spec in an actor).
func ParseSchedule(spec string) (s cron.Schedule, err error) {
	t := strings.TrimSpace(spec)
	if strings.HasPrefix(t, "TZ=") || strings.HasPrefix(t, "CRON_TZ=") {
		return nil, fmt.Errorf("schedule %q: a time zone prefix is not supported; times are in the daemon's local time", spec)
	}
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("schedule %q: cannot be parsed (%v)", spec, r)
		}
	}()
	s, err = scheduleParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	return s, nil
}

// validateDeclared checks the probe, depends_on and schedule fields of c.
func (c *CommandRef) validateDeclared() error {
	if c.Ready != nil {
		if err := c.Ready.validate("ready"); err != nil {
			return err
		}
	}
	if c.Health != nil {
		if err := c.Health.validate("health"); err != nil {
			return err
		}
	}
	for i, d := range c.DependsOn {
		f := fmt.Sprintf("depends_on[%d]", i)
		if err := checkLabel(f, d); err != nil {
			return err
		}
		if c.Label != "" && d == c.Label {
			return fieldErr(f, "a command cannot depend on itself (%q)", d)
		}
		if slices.Contains(c.DependsOn[:i], d) {
			return fieldErr(f, "%q is listed twice", d)
		}
	}
	if c.Schedule == "" {
		if c.Concurrency != "" {
			return fieldErr("concurrency", "needs a schedule")
		}
		return nil
	}
	sched, err := ParseSchedule(c.Schedule)
	if err != nil {
		return fieldErr("schedule", "%v", err)
	}
	if sched.Next(time.Now()).IsZero() {
		return fieldErr("schedule", "%q never comes (no such date within five years)", c.Schedule)
	}
	if !c.Supervision.OneShot() {
		return fieldErr("schedule", "only one_shot commands take a schedule (supervision is a restart policy)")
	}
	switch c.Concurrency {
	case "", ConcurrencyAllow, ConcurrencyForbid, ConcurrencyReplace:
	default:
		return fieldErr("concurrency", "%q is not one of forbid, allow, replace", c.Concurrency)
	}
	return nil
}

// EffectiveConcurrency is the concurrency policy, allow when unset.
func (c *CommandRef) EffectiveConcurrency() Concurrency {
	if c.Concurrency == "" {
		return ConcurrencyAllow
	}
	return c.Concurrency
}

// FindCycle returns a dependency cycle of deps (each name's
// dependencies), as the path "a → b → a" walks it, or nil when there is
// none. Names are visited in sorted order, so the answer is stable.
func FindCycle(deps map[string][]string) []string {
	const (
		unseen = iota
		onPath
		done
	)
	mark := make(map[string]int, len(deps))
	var path []string
	var visit func(n string) []string
	visit = func(n string) []string {
		switch mark[n] {
		case onPath:
			i := slices.Index(path, n)
			return append(slices.Clone(path[i:]), n)
		case done:
			return nil
		}
		mark[n] = onPath
		path = append(path, n)
		for _, d := range deps[n] {
			if c := visit(d); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		mark[n] = done
		return nil
	}
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if c := visit(n); c != nil {
			return c
		}
	}
	return nil
}

// CycleError describes a dependency cycle for field f.
func CycleError(f string, cycle []string) error {
	return fieldErr(f, "dependency cycle %s", strings.Join(cycle, " → "))
}
