// This file defines the workspace and command specs of SPEC §1.1–1.2 and
// their validation.

package messages

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// WorkspaceSpec declares a workspace: a named group of processes with a
// resource envelope, permissions and a TTL.
type WorkspaceSpec struct {
	Label        string       `json:"label"`
	Soma         Soma         `json:"soma,omitzero"`
	Permissions  Permissions  `json:"permissions,omitzero"`
	TTLMs        int64        `json:"ttl_ms,omitempty"`
	FlowDirs     []string     `json:"flow_dirs,omitempty"`
	OnExit       ExitPolicy   `json:"on_exit,omitempty"`
	QuotaEnforce QuotaEnforce `json:"quota_enforce,omitempty"`
	// LogMaxBytes rotates each command's log file at this size; 0 = the
	// engine's default (10 MiB).
	LogMaxBytes int64 `json:"log_max_bytes,omitempty"`
	// LogMaxFiles is how many rotated log files are kept per command; 0 =
	// the engine's default (5).
	LogMaxFiles int `json:"log_max_files,omitempty"`

	// Project names the applied file that manages the workspace (its
	// `name:`, else its base name); "" = created by hand. `shipote apply`
	// changes and removes only workspaces of its own project.
	Project string `json:"project,omitempty"`
}

// Soma is a resource envelope; a zero field means unlimited.
type Soma struct {
	MemoryMaxBytes int64   `json:"memory_max_bytes,omitempty"`
	CPUMax         float64 `json:"cpu_max,omitempty"`
	PidsMax        int64   `json:"pids_max,omitempty"`
	NofileMax      int64   `json:"nofile_max,omitempty"`
}

// IsZero reports whether no limit is set.
func (s Soma) IsZero() bool { return s == Soma{} }

// Permissions restrict what a workspace's commands may run and how.
type Permissions struct {
	// AllowExec lists absolute paths; one ending in "/" allows a directory.
	// Empty allows anything.
	AllowExec []string `json:"allow_exec,omitempty"`
	// Workdir is the working directory of every command; "" = "/".
	Workdir string `json:"workdir,omitempty"`
	// Env is the base environment of every command.
	Env map[string]string `json:"env,omitempty"`
	// UID and GID set the credentials of every command (daemon as root only).
	UID *int64 `json:"uid,omitempty"`
	GID *int64 `json:"gid,omitempty"`
}

// IsZero reports whether p restricts nothing (for omitzero): empty lists and
// maps count as absent, so that encoding a decoded spec and decoding it again
// gives the same encoding.
func (p Permissions) IsZero() bool {
	return len(p.AllowExec) == 0 && p.Workdir == "" && len(p.Env) == 0 && p.UID == nil && p.GID == nil
}

// ExitPolicy says what happens when every command of a workspace has ended.
type ExitPolicy string

// Exit policies.
const (
	ExitKeep ExitPolicy = "keep"
	ExitReap ExitPolicy = "reap"
)

// QuotaEnforce says what a sampled excursion over a limit does.
type QuotaEnforce string

// Quota enforcement modes.
const (
	QuotaOff  QuotaEnforce = "off"
	QuotaWarn QuotaEnforce = "warn"
	QuotaKill QuotaEnforce = "kill"
)

// DefaultPath is the PATH of a command whose environment does not set one.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin"

// Normalize fills defaults: on_exit keep, quota_enforce warn.
func (s *WorkspaceSpec) Normalize() {
	if s.OnExit == "" {
		s.OnExit = ExitKeep
	}
	if s.QuotaEnforce == "" {
		s.QuotaEnforce = QuotaWarn
	}
}

// Validate checks every field and returns a *FieldError naming the first
// wrong one. It also checks that workdir exists.
func (s *WorkspaceSpec) Validate() error {
	if err := checkLabel("label", s.Label); err != nil {
		return err
	}
	if err := s.Soma.validate("soma"); err != nil {
		return err
	}
	p := s.Permissions
	for i, a := range p.AllowExec {
		f := fmt.Sprintf("permissions.allow_exec[%d]", i)
		if a == "" || !filepath.IsAbs(a) {
			return fieldErr(f, "%q is not an absolute path", a)
		}
		if err := checkPathLen(f, a); err != nil {
			return err
		}
	}
	if p.Workdir != "" {
		if !filepath.IsAbs(p.Workdir) {
			return fieldErr("permissions.workdir", "%q is not an absolute path", p.Workdir)
		}
		if err := checkPathLen("permissions.workdir", p.Workdir); err != nil {
			return err
		}
		fi, err := os.Stat(p.Workdir)
		if err != nil {
			return fieldErr("permissions.workdir", "%q does not exist", p.Workdir)
		}
		if !fi.IsDir() {
			return fieldErr("permissions.workdir", "%q is not a directory", p.Workdir)
		}
	}
	for _, k := range sortedKeys(p.Env) {
		if err := checkEnvKey(k); err != nil {
			return fieldErr("permissions.env."+k, "%v", err)
		}
		if strings.ContainsRune(p.Env[k], 0) {
			return fieldErr("permissions.env."+k, "value contains a NUL byte")
		}
		if n := len(k) + 1 + len(p.Env[k]) + 1; n > MaxArgStringBytes {
			return fieldErr("permissions.env."+k, "is %d bytes; one variable takes at most %d (the kernel's limit)", n-1, MaxArgStringBytes-1)
		}
	}
	if n := CheckArgSize("", &NativePayload{}, p.Env); n != nil {
		return fieldErr("permissions.env", "takes more than %d bytes; a command's argv and environment take at most that together", MaxArgTotalBytes)
	}
	if p.UID != nil && (*p.UID < 0 || *p.UID > math.MaxUint32-1) {
		return fieldErr("permissions.uid", "must be between 0 and %d", uint32(math.MaxUint32-1))
	}
	if p.GID != nil && (*p.GID < 0 || *p.GID > math.MaxUint32-1) {
		return fieldErr("permissions.gid", "must be between 0 and %d", uint32(math.MaxUint32-1))
	}
	if s.TTLMs < 0 {
		return fieldErr("ttl_ms", "must be >= 0")
	}
	for i, d := range s.FlowDirs {
		if err := checkPathLen(fmt.Sprintf("flow_dirs[%d]", i), d); err != nil {
			return err
		}
		if d == "" || !filepath.IsAbs(d) {
			return fieldErr(fmt.Sprintf("flow_dirs[%d]", i), "%q is not an absolute path", d)
		}
	}
	if s.Project != "" {
		if err := checkLabel("project", s.Project); err != nil {
			return err
		}
	}
	if s.LogMaxBytes < 0 {
		return fieldErr("log_max_bytes", "must be >= 0")
	}
	if s.LogMaxFiles < 0 {
		return fieldErr("log_max_files", "must be >= 0")
	}
	switch s.OnExit {
	case "", ExitKeep, ExitReap:
	default:
		return fieldErr("on_exit", "%q is not one of keep, reap", s.OnExit)
	}
	switch s.QuotaEnforce {
	case "", QuotaOff, QuotaWarn, QuotaKill:
	default:
		return fieldErr("quota_enforce", "%q is not one of off, warn, kill", s.QuotaEnforce)
	}
	return nil
}

func (s Soma) validate(prefix string) error {
	if s.MemoryMaxBytes < 0 {
		return fieldErr(join(prefix, "memory_max_bytes"), "must be >= 0")
	}
	if s.CPUMax < 0 || math.IsNaN(s.CPUMax) || math.IsInf(s.CPUMax, 0) {
		return fieldErr(join(prefix, "cpu_max"), "must be a finite number >= 0")
	}
	if s.PidsMax < 0 {
		return fieldErr(join(prefix, "pids_max"), "must be >= 0")
	}
	if s.NofileMax < 0 {
		return fieldErr(join(prefix, "nofile_max"), "must be >= 0")
	}
	return nil
}

// Within checks that every limit set in s is no larger than the same limit
// set in outer.
func (s Soma) Within(prefix string, outer Soma) error {
	over := func(name string, inner, out int64) error {
		if inner > 0 && out > 0 && inner > out {
			return fieldErr(join(prefix, name), "%d exceeds the workspace's %d", inner, out)
		}
		return nil
	}
	if err := over("memory_max_bytes", s.MemoryMaxBytes, outer.MemoryMaxBytes); err != nil {
		return err
	}
	if s.CPUMax > 0 && outer.CPUMax > 0 && s.CPUMax > outer.CPUMax {
		return fieldErr(join(prefix, "cpu_max"), "%s exceeds the workspace's %s",
			strconv.FormatFloat(s.CPUMax, 'f', -1, 64), strconv.FormatFloat(outer.CPUMax, 'f', -1, 64))
	}
	if err := over("pids_max", s.PidsMax, outer.PidsMax); err != nil {
		return err
	}
	return over("nofile_max", s.NofileMax, outer.NofileMax)
}

func checkEnvKey(k string) error {
	if k == "" {
		return fmt.Errorf("empty variable name")
	}
	if strings.ContainsAny(k, "=\x00") {
		return fmt.Errorf("variable name %q contains '=' or NUL", k)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// CommandRef declares one command of a workspace.
type CommandRef struct {
	Label       string      `json:"label,omitempty"`
	Payload     Payload     `json:"payload"`
	Soma        Soma        `json:"soma,omitzero"`
	Supervision Supervision `json:"supervision,omitzero"`
	// StopSignal is sent to the command's process group on a stop
	// ("SIGTERM", "TERM", "15"); "" = SIGTERM.
	StopSignal string `json:"stop_signal,omitempty"`
	// StopTimeoutMs is how long a stop waits after StopSignal before
	// SIGKILL; 0 = the daemon's --grace.
	StopTimeoutMs int64 `json:"stop_timeout_ms,omitempty"`
	// SuccessExitCodes are the exits that count as success (for restart
	// on-failure); nil = [0]. A code above 128 also matches death by
	// signal code-128, as a shell reports it (143 = SIGTERM).
	SuccessExitCodes []int `json:"success_exit_codes,omitempty"`

	// Readiness, health, ordering and schedules (declare.go).

	// Ready is probed while the command runs: it is ready from its first
	// success; without it, a command is ready once it runs.
	Ready *Probe `json:"ready,omitempty"`
	// Health is probed once the command is ready: failure_threshold
	// failures in a row make it unhealthy, and it is killed and restarted
	// by its supervision.
	Health *Probe `json:"health,omitempty"`
	// DependsOn names commands of the same workspace that must be ready
	// (a one_shot dependency: have exited with success) before this one
	// starts.
	DependsOn []string `json:"depends_on,omitempty"`
	// Schedule runs a one_shot command at the times of a cron spec
	// (ParseSchedule); missed runs are not made up.
	Schedule string `json:"schedule,omitempty"`
	// Concurrency says what a due run does while the last one still runs;
	// "" = allow.
	Concurrency Concurrency `json:"concurrency,omitempty"`

	// Declarative operation (shipote apply).

	// Instances, when set, asks for that many copies of the command,
	// labelled label-0 … label-<N-1>; 0 = one command labelled label.
	Instances int `json:"instances,omitempty"`
	// EnvFile lists dotenv files read when the file that declares the
	// command is loaded; their variables come before envp, and envp and
	// permissions.env win over them. A loaded spec has them in envp and
	// EnvFile empty.
	EnvFile []string `json:"env_file,omitempty"`
	// InstanceOf is the label of the declaration an instance was made
	// from (set by the expansion of Instances, not written by hand).
	InstanceOf string `json:"instance_of,omitempty"`
}

// Payload is what a command runs. Only native executables exist today.
type Payload struct {
	Native *NativePayload `json:"native,omitempty"`
}

// NativePayload runs an executable directly (never through a shell).
type NativePayload struct {
	// Exec is an absolute path or a bare name looked up on the command's PATH.
	Exec string `json:"exec"`
	// Argv are the arguments, without argv[0].
	Argv []string `json:"argv,omitempty"`
	// Envp adds KEY=VALUE entries to the workspace's environment.
	Envp []string `json:"envp,omitempty"`
}

// Validate checks the command on its own. A command label may be empty (the
// engine derives one from the executable's name).
func (c *CommandRef) Validate() error {
	if c.Label != "" {
		if err := checkLabel("label", c.Label); err != nil {
			return err
		}
	}
	if err := c.Payload.validate("payload"); err != nil {
		return err
	}
	if err := c.Soma.validate("soma"); err != nil {
		return err
	}
	if c.StopSignal != "" {
		if _, err := ParseSignal(c.StopSignal); err != nil {
			return fieldErr("stop_signal", "%v", err)
		}
	}
	if c.StopTimeoutMs < 0 {
		return fieldErr("stop_timeout_ms", "must be ≥ 0, got %d", c.StopTimeoutMs)
	}
	for i, code := range c.SuccessExitCodes {
		if code < 0 || code > 255 {
			return fieldErr(fmt.Sprintf("success_exit_codes[%d]", i), "%d is not an exit code (0 to 255)", code)
		}
	}
	if err := c.validateDeclarative(); err != nil {
		return err
	}
	if err := c.Supervision.validate("supervision"); err != nil {
		return err
	}
	return c.validateDeclared()
}

// Validate checks every limit of s; field paths start with prefix.
func (s Soma) Validate(prefix string) error { return s.validate(prefix) }

// MaxInstances bounds CommandRef.Instances.
const MaxInstances = 1000

// validateDeclarative checks the fields of declarative operation.
func (c *CommandRef) validateDeclarative() error {
	switch {
	case c.Instances < 0:
		return fieldErr("instances", "must be >= 0, got %d", c.Instances)
	case c.Instances > MaxInstances:
		return fieldErr("instances", "%d is above the limit of %d", c.Instances, MaxInstances)
	case c.Instances > 0 && c.Label == "":
		return fieldErr("label", "is required with instances (copies are labelled label-0 … label-<N-1>)")
	case c.Instances > 0 && len(InstanceLabel(c.Label, c.Instances-1)) > 64:
		return fieldErr("label", "%q is too long for instances: %q is over 64 characters", c.Label, InstanceLabel(c.Label, c.Instances-1))
	}
	for i, f := range c.EnvFile {
		if f == "" || strings.ContainsRune(f, 0) {
			return fieldErr(fmt.Sprintf("env_file[%d]", i), "%q is not a file path", f)
		}
		if err := checkPathLen(fmt.Sprintf("env_file[%d]", i), f); err != nil {
			return err
		}
	}
	if c.InstanceOf != "" {
		if err := checkLabel("instance_of", c.InstanceOf); err != nil {
			return err
		}
	}
	return nil
}

// CheckSingle refuses the declarative fields a single command cannot
// carry: copies are made by an applied file or `shipote scale`, and env
// files are read when a file is loaded.
func (c *CommandRef) CheckSingle() error {
	if c.Instances > 0 {
		return fieldErr("instances", "starts copies only from an applied file or `shipote scale`; one command is started here")
	}
	if len(c.EnvFile) > 0 {
		return fieldErr("env_file", "is read when a file is loaded; pass variables in payload.native.envp here")
	}
	return nil
}

// InstanceLabel is the label of copy i of a command labelled label.
func InstanceLabel(label string, i int) string {
	return label + "-" + strconv.Itoa(i)
}

// ExpandInstances returns the commands c stands for: c itself when
// Instances is 0, else Instances copies labelled label-0 … label-<N-1>,
// each with Instances 0 and InstanceOf = c's label.
func (c CommandRef) ExpandInstances() []CommandRef {
	if c.Instances == 0 {
		return []CommandRef{c}
	}
	out := make([]CommandRef, c.Instances)
	for i := range out {
		cp := c
		cp.Label = InstanceLabel(c.Label, i)
		cp.Instances = 0
		cp.InstanceOf = c.Label
		out[i] = cp
	}
	return out
}

// IsSuccess reports whether a run that ended with exit code code (signal
// 0) or by signal sig counts as success under codes (nil = [0]).
func IsSuccess(codes []int, code int, sig int) bool {
	if len(codes) == 0 {
		return sig == 0 && code == 0
	}
	for _, c := range codes {
		if sig == 0 && c == code || sig != 0 && c > 128 && c-128 == sig {
			return true
		}
	}
	return false
}

// ValidateIn checks the command against its workspace's spec: its soma must
// lie within the workspace's.
func (c *CommandRef) ValidateIn(ws *WorkspaceSpec) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := CheckArgSize("payload", c.Payload.Native, ws.Permissions.Env); err != nil {
		return err
	}
	return c.Soma.Within("soma", ws.Soma)
}

func (p Payload) validate(prefix string) error {
	if p.Native == nil {
		return fieldErr(join(prefix, "native"), "is required")
	}
	n := p.Native
	f := join(prefix, "native")
	switch {
	case n.Exec == "":
		return fieldErr(f+".exec", "is required")
	case strings.ContainsRune(n.Exec, 0):
		return fieldErr(f+".exec", "contains a NUL byte")
	case strings.Contains(n.Exec, "/") && !filepath.IsAbs(n.Exec):
		return fieldErr(f+".exec", "%q is a relative path; give an absolute path or a bare name looked up on PATH", n.Exec)
	}
	for i, a := range n.Argv {
		if strings.ContainsRune(a, 0) {
			return fieldErr(fmt.Sprintf("%s.argv[%d]", f, i), "contains a NUL byte")
		}
	}
	if err := checkPathLen(f+".exec", n.Exec); err != nil {
		return err
	}
	if err := checkArgStrings(f+".argv", n.Argv); err != nil {
		return err
	}
	for i, e := range n.Envp {
		k, _, ok := strings.Cut(e, "=")
		if !ok {
			return fieldErr(fmt.Sprintf("%s.envp[%d]", f, i), "%q is not KEY=VALUE", e)
		}
		if err := checkEnvKey(k); err != nil {
			return fieldErr(fmt.Sprintf("%s.envp[%d]", f, i), "%v", err)
		}
		if strings.ContainsRune(e, 0) {
			return fieldErr(fmt.Sprintf("%s.envp[%d]", f, i), "contains a NUL byte")
		}
	}
	return checkArgStrings(f+".envp", n.Envp)
}

// Supervision is "one_shot" or a restart policy.
type Supervision struct {
	Restart *RestartPolicy `json:"restart,omitempty"`
}

// RestartPolicy restarts a command with exponential backoff.
type RestartPolicy struct {
	// On is "failure" (default) or "always".
	On RestartOn `json:"on,omitempty"`
	// BackoffMs is the first delay (0 = 200 ms); it doubles on each
	// consecutive restart up to MaxBackoffMs (0 = 30 s) and resets after a run
	// that lasted longer than MaxBackoffMs.
	BackoffMs    int64 `json:"backoff_ms,omitempty"`
	MaxBackoffMs int64 `json:"max_backoff_ms,omitempty"`
	// Max is the number of restarts before giving up; 0 = no limit.
	Max int64 `json:"max,omitempty"`
}

// RestartOn says which exits restart a command.
type RestartOn string

// Restart conditions.
const (
	RestartOnFailure RestartOn = "failure"
	RestartAlways    RestartOn = "always"
)

// Default backoffs.
const (
	DefaultBackoffMs    = 200
	DefaultMaxBackoffMs = 30000
)

// OneShot reports whether the command is never restarted.
func (s Supervision) OneShot() bool { return s.Restart == nil }

// IsZero reports whether s is one_shot (for omitzero).
func (s Supervision) IsZero() bool { return s.Restart == nil }

// supervisionObject is the object form of Supervision.
type supervisionObject struct {
	Restart *RestartPolicy `json:"restart"`
}

// jsonShape lets strict decoding check the fields of the object form.
func (Supervision) jsonShape() any { return supervisionObject{} }

// MarshalJSON writes "one_shot" or {"restart": {...}}.
func (s Supervision) MarshalJSON() ([]byte, error) {
	if s.Restart == nil {
		return []byte(`"one_shot"`), nil
	}
	return json.Marshal(supervisionObject(s))
}

// UnmarshalJSON reads "one_shot" or {"restart": {...}}, strictly; null
// leaves s unchanged, as encoding/json does for other types.
func (s *Supervision) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		if str != "one_shot" {
			return fmt.Errorf("supervision %q is not one_shot or {restart: {...}}", str)
		}
		s.Restart = nil
		return nil
	}
	var p supervisionObject
	if err := decodeJSON(b, &p); err != nil {
		return fmt.Errorf("supervision: %w", err)
	}
	if p.Restart == nil {
		return fmt.Errorf("supervision: expected one_shot or {restart: {...}}")
	}
	s.Restart = p.Restart
	return nil
}

func (s Supervision) validate(prefix string) error {
	r := s.Restart
	if r == nil {
		return nil
	}
	f := join(prefix, "restart")
	switch r.On {
	case "", RestartOnFailure, RestartAlways:
	default:
		return fieldErr(f+".on", "%q is not one of failure, always", r.On)
	}
	if r.BackoffMs < 0 {
		return fieldErr(f+".backoff_ms", "must be >= 0")
	}
	if r.MaxBackoffMs < 0 {
		return fieldErr(f+".max_backoff_ms", "must be >= 0")
	}
	if r.MaxBackoffMs > 0 && r.BackoffMs > r.MaxBackoffMs {
		return fieldErr(f+".max_backoff_ms", "%d is below backoff_ms %d", r.MaxBackoffMs, r.BackoffMs)
	}
	if r.Max < 0 {
		return fieldErr(f+".max", "must be >= 0")
	}
	return nil
}

// Backoffs returns the effective first and maximum backoff in ms.
func (r *RestartPolicy) Backoffs() (first, max int64) {
	first, max = r.BackoffMs, r.MaxBackoffMs
	if first == 0 {
		first = DefaultBackoffMs
	}
	if max == 0 {
		max = DefaultMaxBackoffMs
	}
	if max < first {
		max = first
	}
	return first, max
}
