// This file tests the workspace and command specs: validation, defaults and
// the JSON form of supervision.

package messages

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// specWorkspace returns the SPEC §1.1 example with workdir set to dir.
func specWorkspace(dir string) WorkspaceSpec {
	return WorkspaceSpec{
		Label: "build",
		Soma:  Soma{MemoryMaxBytes: 536870912, CPUMax: 1.5, PidsMax: 64, NofileMax: 1024},
		Permissions: Permissions{
			AllowExec: []string{"/usr/bin/", "/bin/sh"},
			Workdir:   dir,
			Env:       map[string]string{"LANG": "C.UTF-8"},
			UID:       ptr[int64](1000),
			GID:       ptr[int64](1000),
		},
		TTLMs:        600000,
		FlowDirs:     []string{"/run/user/1000/build-flows"},
		OnExit:       ExitKeep,
		QuotaEnforce: QuotaWarn,
	}
}

func TestWorkspaceSpecValid(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		spec WorkspaceSpec
	}{
		{"spec example", specWorkspace(dir)},
		{"label only", WorkspaceSpec{Label: "x"}},
		{"root workdir", WorkspaceSpec{Label: "x", Permissions: Permissions{Workdir: "/"}}},
		{"uid and gid zero", WorkspaceSpec{Label: "x", Permissions: Permissions{UID: ptr[int64](0), GID: ptr[int64](0)}}},
		{"max uid", WorkspaceSpec{Label: "x", Permissions: Permissions{UID: ptr[int64](math.MaxUint32 - 1)}}},
		{"empty env value", WorkspaceSpec{Label: "x", Permissions: Permissions{Env: map[string]string{"EMPTY": ""}}}},
		{"env value with =", WorkspaceSpec{Label: "x", Permissions: Permissions{Env: map[string]string{"OPTS": "a=b"}}}},
		{"reap kill", WorkspaceSpec{Label: "x", OnExit: ExitReap, QuotaEnforce: QuotaKill}},
		{"quota off", WorkspaceSpec{Label: "x", QuotaEnforce: QuotaOff}},
		{"fractional cpu", WorkspaceSpec{Label: "x", Soma: Soma{CPUMax: 0.25}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.spec.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestWorkspaceSpecInvalid(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name   string
		mutate func(*WorkspaceSpec)
		field  string
		subs   []string
	}{
		{"empty label", func(s *WorkspaceSpec) { s.Label = "" }, "label", []string{"must not be empty"}},
		{"long label", func(s *WorkspaceSpec) { s.Label = strings.Repeat("l", 65) }, "label", []string{"at most 64"}},
		{"label with slash", func(s *WorkspaceSpec) { s.Label = "a/b" }, "label", []string{`"a/b"`, "characters outside"}},
		{"label dotdot", func(s *WorkspaceSpec) { s.Label = ".." }, "label", []string{"not allowed"}},
		{"negative memory", func(s *WorkspaceSpec) { s.Soma.MemoryMaxBytes = -1 }, "soma.memory_max_bytes", []string{"must be >= 0"}},
		{"negative cpu", func(s *WorkspaceSpec) { s.Soma.CPUMax = -0.5 }, "soma.cpu_max", []string{"finite number >= 0"}},
		{"NaN cpu", func(s *WorkspaceSpec) { s.Soma.CPUMax = math.NaN() }, "soma.cpu_max", []string{"finite number"}},
		{"infinite cpu", func(s *WorkspaceSpec) { s.Soma.CPUMax = math.Inf(1) }, "soma.cpu_max", []string{"finite number"}},
		{"negative pids", func(s *WorkspaceSpec) { s.Soma.PidsMax = -3 }, "soma.pids_max", []string{"must be >= 0"}},
		{"negative nofile", func(s *WorkspaceSpec) { s.Soma.NofileMax = -1 }, "soma.nofile_max", []string{"must be >= 0"}},
		{"relative allow_exec", func(s *WorkspaceSpec) { s.Permissions.AllowExec = []string{"/usr/bin/", "bin/sh"} },
			"permissions.allow_exec[1]", []string{`"bin/sh" is not an absolute path`}},
		{"empty allow_exec", func(s *WorkspaceSpec) { s.Permissions.AllowExec = []string{""} },
			"permissions.allow_exec[0]", []string{`"" is not an absolute path`}},
		{"relative workdir", func(s *WorkspaceSpec) { s.Permissions.Workdir = "srv/build" },
			"permissions.workdir", []string{`"srv/build" is not an absolute path`}},
		{"missing workdir", func(s *WorkspaceSpec) { s.Permissions.Workdir = missing },
			"permissions.workdir", []string{missing, "does not exist"}},
		{"workdir is a file", func(s *WorkspaceSpec) { s.Permissions.Workdir = file },
			"permissions.workdir", []string{file, "is not a directory"}},
		{"env key with =", func(s *WorkspaceSpec) { s.Permissions.Env = map[string]string{"A=B": "c"} },
			"permissions.env.A=B", []string{`"A=B"`, "'='"}},
		{"empty env key", func(s *WorkspaceSpec) { s.Permissions.Env = map[string]string{"": "c"} },
			"permissions.env.", []string{"empty variable name"}},
		{"env key with NUL", func(s *WorkspaceSpec) { s.Permissions.Env = map[string]string{"A\x00": "c"} },
			"permissions.env.A\x00", []string{"NUL"}},
		{"env value with NUL", func(s *WorkspaceSpec) { s.Permissions.Env = map[string]string{"LANG": "C\x00"} },
			"permissions.env.LANG", []string{"value contains a NUL byte"}},
		{"first bad env key in order", func(s *WorkspaceSpec) { s.Permissions.Env = map[string]string{"Z=": "", "B=": "", "OK": ""} },
			"permissions.env.B=", []string{"'='"}},
		{"negative uid", func(s *WorkspaceSpec) { s.Permissions.UID = ptr[int64](-1) },
			"permissions.uid", []string{"must be between 0 and 4294967294"}},
		{"huge uid", func(s *WorkspaceSpec) { s.Permissions.UID = ptr[int64](math.MaxUint32) },
			"permissions.uid", []string{"must be between 0 and"}},
		{"negative gid", func(s *WorkspaceSpec) { s.Permissions.GID = ptr[int64](-5) },
			"permissions.gid", []string{"must be between 0 and"}},
		{"negative ttl", func(s *WorkspaceSpec) { s.TTLMs = -1 }, "ttl_ms", []string{"must be >= 0"}},
		{"relative flow dir", func(s *WorkspaceSpec) { s.FlowDirs = []string{"run/flows"} },
			"flow_dirs[0]", []string{`"run/flows" is not an absolute path`}},
		{"second flow dir empty", func(s *WorkspaceSpec) { s.FlowDirs = []string{"/run/a", ""} },
			"flow_dirs[1]", []string{"not an absolute path"}},
		{"bad on_exit", func(s *WorkspaceSpec) { s.OnExit = "never" },
			"on_exit", []string{`"never" is not one of keep, reap`}},
		{"bad quota_enforce", func(s *WorkspaceSpec) { s.QuotaEnforce = "loud" },
			"quota_enforce", []string{`"loud" is not one of off, warn, kill`}},
		{"on_exit is case sensitive", func(s *WorkspaceSpec) { s.OnExit = "Keep" }, "on_exit", []string{`"Keep"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := specWorkspace(dir)
			tt.mutate(&s)
			wantFieldErr(t, s.Validate(), tt.field, tt.subs...)
		})
	}
}

func TestWorkspaceNormalize(t *testing.T) {
	s := WorkspaceSpec{Label: "x"}
	s.Normalize()
	if s.OnExit != ExitKeep || s.QuotaEnforce != QuotaWarn {
		t.Errorf("Normalize() gave on_exit %q quota_enforce %q, want keep, warn", s.OnExit, s.QuotaEnforce)
	}
	s = WorkspaceSpec{Label: "x", OnExit: ExitReap, QuotaEnforce: QuotaOff}
	s.Normalize()
	if s.OnExit != ExitReap || s.QuotaEnforce != QuotaOff {
		t.Errorf("Normalize() overwrote set fields: %q %q", s.OnExit, s.QuotaEnforce)
	}
}

func TestSomaIsZero(t *testing.T) {
	if !(Soma{}).IsZero() {
		t.Error("Soma{}.IsZero() = false")
	}
	if (Soma{PidsMax: 1}).IsZero() {
		t.Error("Soma{PidsMax: 1}.IsZero() = true")
	}
}

func webCommand() CommandRef {
	return CommandRef{
		Label: "web",
		Payload: Payload{Native: &NativePayload{
			Exec: "/usr/bin/python3",
			Argv: []string{"-m", "http.server"},
			Envp: []string{"PORT=8000"},
		}},
	}
}

func TestCommandRefValid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*CommandRef)
	}{
		{"spec example", func(*CommandRef) {}},
		{"no label", func(c *CommandRef) { c.Label = "" }},
		{"bare exec name", func(c *CommandRef) { c.Payload.Native.Exec = "python3" }},
		{"absolute exec with dots", func(c *CommandRef) { c.Payload.Native.Exec = "/usr/bin/../bin/env" }},
		{"empty argument", func(c *CommandRef) { c.Payload.Native.Argv = []string{""} }},
		{"envp empty value", func(c *CommandRef) { c.Payload.Native.Envp = []string{"EMPTY="} }},
		{"envp value with =", func(c *CommandRef) { c.Payload.Native.Envp = []string{"A=b=c"} }},
		{"restart defaults", func(c *CommandRef) { c.Supervision.Restart = &RestartPolicy{} }},
		{"restart full", func(c *CommandRef) {
			c.Supervision.Restart = &RestartPolicy{On: RestartAlways, BackoffMs: 100, MaxBackoffMs: 100, Max: 3}
		}},
		{"restart backoff above default max", func(c *CommandRef) {
			c.Supervision.Restart = &RestartPolicy{On: RestartOnFailure, BackoffMs: 60000}
		}},
		{"soma", func(c *CommandRef) { c.Soma = Soma{MemoryMaxBytes: 1 << 20, CPUMax: 0.5} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := webCommand()
			tt.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if err := c.ValidateIn(&WorkspaceSpec{Label: "w"}); err != nil {
				t.Fatalf("ValidateIn(unlimited) = %v, want nil", err)
			}
		})
	}
}

func TestCommandRefInvalid(t *testing.T) {
	restart := func(r RestartPolicy) func(*CommandRef) {
		return func(c *CommandRef) { c.Supervision.Restart = &r }
	}
	tests := []struct {
		name   string
		mutate func(*CommandRef)
		field  string
		subs   []string
	}{
		{"bad label", func(c *CommandRef) { c.Label = "a b" }, "label", []string{"characters outside"}},
		{"missing native", func(c *CommandRef) { c.Payload.Native = nil }, "payload.native", []string{"is required"}},
		{"empty exec", func(c *CommandRef) { c.Payload.Native.Exec = "" }, "payload.native.exec", []string{"is required"}},
		{"dot-slash exec", func(c *CommandRef) { c.Payload.Native.Exec = "./x" },
			"payload.native.exec", []string{`"./x" is a relative path`, "absolute path or a bare name"}},
		{"relative exec", func(c *CommandRef) { c.Payload.Native.Exec = "bin/x" },
			"payload.native.exec", []string{`"bin/x" is a relative path`}},
		{"dotdot exec", func(c *CommandRef) { c.Payload.Native.Exec = "../x" }, "payload.native.exec", []string{"relative path"}},
		{"NUL exec", func(c *CommandRef) { c.Payload.Native.Exec = "/bin/sh\x00" }, "payload.native.exec", []string{"NUL"}},
		{"NUL argument", func(c *CommandRef) { c.Payload.Native.Argv = []string{"ok", "b\x00d"} },
			"payload.native.argv[1]", []string{"NUL"}},
		{"envp without =", func(c *CommandRef) { c.Payload.Native.Envp = []string{"PORT=1", "PORT"} },
			"payload.native.envp[1]", []string{`"PORT" is not KEY=VALUE`}},
		{"envp empty key", func(c *CommandRef) { c.Payload.Native.Envp = []string{"=x"} },
			"payload.native.envp[0]", []string{"empty variable name"}},
		{"envp NUL", func(c *CommandRef) { c.Payload.Native.Envp = []string{"A=\x00"} },
			"payload.native.envp[0]", []string{"NUL"}},
		{"negative soma", func(c *CommandRef) { c.Soma.MemoryMaxBytes = -1 }, "soma.memory_max_bytes", []string{">= 0"}},
		{"NaN soma cpu", func(c *CommandRef) { c.Soma.CPUMax = math.NaN() }, "soma.cpu_max", []string{"finite"}},
		{"restart on", restart(RestartPolicy{On: "sometimes"}),
			"supervision.restart.on", []string{`"sometimes" is not one of failure, always`}},
		{"negative backoff", restart(RestartPolicy{BackoffMs: -1}), "supervision.restart.backoff_ms", []string{">= 0"}},
		{"negative max backoff", restart(RestartPolicy{MaxBackoffMs: -1}), "supervision.restart.max_backoff_ms", []string{">= 0"}},
		{"max backoff below backoff", restart(RestartPolicy{BackoffMs: 500, MaxBackoffMs: 100}),
			"supervision.restart.max_backoff_ms", []string{"100 is below backoff_ms 500"}},
		{"negative max", restart(RestartPolicy{Max: -1}), "supervision.restart.max", []string{">= 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := webCommand()
			tt.mutate(&c)
			wantFieldErr(t, c.Validate(), tt.field, tt.subs...)
			// ValidateIn runs the same checks first.
			wantFieldErr(t, c.ValidateIn(&WorkspaceSpec{Label: "w"}), tt.field, tt.subs...)
		})
	}
}

func TestCommandRefValidateIn(t *testing.T) {
	ws := &WorkspaceSpec{Label: "w", Soma: Soma{MemoryMaxBytes: 1 << 30, CPUMax: 1.5, PidsMax: 64, NofileMax: 1024}}
	tests := []struct {
		name  string
		soma  Soma
		field string // "" = valid
		subs  []string
	}{
		{"unset", Soma{}, "", nil},
		{"equal", ws.Soma, "", nil},
		{"smaller", Soma{MemoryMaxBytes: 1 << 20, CPUMax: 0.5, PidsMax: 8, NofileMax: 64}, "", nil},
		{"memory", Soma{MemoryMaxBytes: 2 << 30}, "soma.memory_max_bytes",
			[]string{"2147483648 exceeds the workspace's 1073741824"}},
		{"cpu", Soma{CPUMax: 2}, "soma.cpu_max", []string{"2 exceeds the workspace's 1.5"}},
		{"pids", Soma{PidsMax: 65}, "soma.pids_max", []string{"65 exceeds the workspace's 64"}},
		{"nofile", Soma{NofileMax: 4096}, "soma.nofile_max", []string{"4096 exceeds the workspace's 1024"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := webCommand()
			c.Soma = tt.soma
			err := c.ValidateIn(ws)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("ValidateIn() = %v, want nil", err)
				}
				return
			}
			wantFieldErr(t, err, tt.field, tt.subs...)
		})
	}
	// A workspace without limits accepts any command limit.
	c := webCommand()
	c.Soma = Soma{MemoryMaxBytes: 1 << 40, CPUMax: 64, PidsMax: 1 << 20, NofileMax: 1 << 20}
	if err := c.ValidateIn(&WorkspaceSpec{Label: "w"}); err != nil {
		t.Errorf("ValidateIn(unlimited workspace) = %v, want nil", err)
	}
}

func TestSupervisionJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Supervision
		out  string // canonical JSON
	}{
		{"one_shot", `"one_shot"`, Supervision{}, `"one_shot"`},
		{"null is one_shot", `null`, Supervision{}, `"one_shot"`},
		{"restart defaults", `{"restart":{}}`, Supervision{Restart: &RestartPolicy{}}, `{"restart":{}}`},
		{"restart full", `{"restart":{"on":"always","backoff_ms":100,"max_backoff_ms":5000,"max":3}}`,
			Supervision{Restart: &RestartPolicy{On: RestartAlways, BackoffMs: 100, MaxBackoffMs: 5000, Max: 3}},
			`{"restart":{"on":"always","backoff_ms":100,"max_backoff_ms":5000,"max":3}}`},
		{"restart spaced", ` { "restart" : { "on" : "failure" } } `,
			Supervision{Restart: &RestartPolicy{On: RestartOnFailure}}, `{"restart":{"on":"failure"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Supervision
			if err := json.Unmarshal([]byte(tt.in), &s); err != nil {
				t.Fatalf("Unmarshal(%s) = %v", tt.in, err)
			}
			if !reflect.DeepEqual(s, tt.want) {
				t.Fatalf("Unmarshal(%s) = %+v, want %+v", tt.in, s, tt.want)
			}
			if s.OneShot() != (tt.want.Restart == nil) || s.IsZero() != (tt.want.Restart == nil) {
				t.Errorf("OneShot() = %v, IsZero() = %v", s.OneShot(), s.IsZero())
			}
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.out {
				t.Errorf("Marshal = %s, want %s", b, tt.out)
			}
			var again Supervision
			if err := json.Unmarshal(b, &again); err != nil || !reflect.DeepEqual(again, s) {
				t.Errorf("round trip of %s gave %+v, %v", b, again, err)
			}
		})
	}
}

func TestSupervisionJSONInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		subs []string
	}{
		{"unknown word", `"sometimes"`, []string{`"sometimes"`, "one_shot"}},
		{"empty string", `""`, []string{"one_shot"}},
		{"empty object", `{}`, []string{"one_shot or {restart"}},
		{"null restart", `{"restart":null}`, []string{"one_shot or {restart"}},
		{"unknown field in restart", `{"restart":{"on":"failure","bogus":1}}`, []string{`unknown field "`, `restart.bogus"`}},
		{"unknown sibling of restart", `{"restart":{},"extra":true}`, []string{`unknown field "`, `extra"`}},
		{"number", `3`, []string{"supervision"}},
		{"array", `["one_shot"]`, []string{"supervision"}},
		{"wrong type in restart", `{"restart":{"max":"many"}}`, []string{"supervision", "max"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Supervision
			wantErrContains(t, json.Unmarshal([]byte(tt.in), &s), tt.subs...)

			// Inside a command decoded strictly, the error is ErrMalformed.
			doc := `{"payload":{"native":{"exec":"/bin/true"}},"supervision":` + tt.in + `}`
			var c CommandRef
			err := DecodeSpec([]byte(doc), &c)
			wantErrContains(t, err, tt.subs...)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("errors.Is(%v, ErrMalformed) = false", err)
			}
		})
	}
}

func TestCommandRefJSONRoundTrip(t *testing.T) {
	for _, sup := range []Supervision{{}, {Restart: &RestartPolicy{On: RestartOnFailure, BackoffMs: 200, MaxBackoffMs: 30000, Max: 5}}} {
		c := webCommand()
		c.Soma = Soma{PidsMax: 4}
		c.Supervision = sup
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var got CommandRef
		if err := DecodeSpec(b, &got); err != nil {
			t.Fatalf("DecodeSpec(%s) = %v", b, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("round trip of %s gave %+v, want %+v", b, got, c)
		}
	}
}

func TestRestartPolicyBackoffs(t *testing.T) {
	tests := []struct {
		r           RestartPolicy
		first, max_ int64
	}{
		{RestartPolicy{}, DefaultBackoffMs, DefaultMaxBackoffMs},
		{RestartPolicy{BackoffMs: 50}, 50, DefaultMaxBackoffMs},
		{RestartPolicy{MaxBackoffMs: 1000}, DefaultBackoffMs, 1000},
		{RestartPolicy{BackoffMs: 10, MaxBackoffMs: 20}, 10, 20},
		{RestartPolicy{BackoffMs: 60000}, 60000, 60000},
		{RestartPolicy{MaxBackoffMs: 100}, DefaultBackoffMs, DefaultBackoffMs},
	}
	for _, tt := range tests {
		first, max := tt.r.Backoffs()
		if first != tt.first || max != tt.max_ {
			t.Errorf("%+v.Backoffs() = %d, %d; want %d, %d", tt.r, first, max, tt.first, tt.max_)
		}
	}
}
