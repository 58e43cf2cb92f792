// This file tests the declarative command fields: probes, depends_on,
// schedule and concurrency, their validation, decoding, and the cycle
// check of up files.

package messages

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidateDeclared(t *testing.T) {
	base := func() CommandRef {
		return CommandRef{Label: "web", Payload: Payload{Native: &NativePayload{Exec: "/bin/true"}}}
	}
	restart := Supervision{Restart: &RestartPolicy{}}
	tests := []struct {
		name  string
		edit  func(*CommandRef)
		field string // "" = valid
		msg   string
	}{
		{"no probes", func(*CommandRef) {}, "", ""},
		{"exec probe", func(c *CommandRef) { c.Ready = &Probe{Exec: []string{"test", "-f", "/x"}} }, "", ""},
		{"tcp probe", func(c *CommandRef) {
			c.Health = &Probe{TCP: "127.0.0.1:80", IntervalMs: 5, TimeoutMs: 5, FailureThreshold: 1}
		}, "", ""},
		{"http probe", func(c *CommandRef) { c.Ready = &Probe{HTTP: "http://127.0.0.1:8000/healthz"} }, "", ""},
		{"empty probe", func(c *CommandRef) { c.Ready = &Probe{} }, "ready", "exactly one of exec, tcp, http (got 0)"},
		{"two kinds", func(c *CommandRef) { c.Health = &Probe{TCP: "a:1", HTTP: "http://a"} }, "health", "got 2"},
		{"empty exec", func(c *CommandRef) { c.Ready = &Probe{Exec: []string{""}} }, "ready.exec[0]", "is empty"},
		{"relative exec", func(c *CommandRef) { c.Ready = &Probe{Exec: []string{"bin/check"}} }, "ready.exec[0]", "relative path"},
		{"nul in exec", func(c *CommandRef) { c.Ready = &Probe{Exec: []string{"check", "a\x00"}} }, "ready.exec[1]", "NUL"},
		{"tcp without port", func(c *CommandRef) { c.Ready = &Probe{TCP: "localhost"} }, "ready.tcp", "not host:port"},
		{"tcp without host", func(c *CommandRef) { c.Ready = &Probe{TCP: ":80"} }, "ready.tcp", "not host:port"},
		{"http bad scheme", func(c *CommandRef) { c.Health = &Probe{HTTP: "ftp://x/"} }, "health.http", "not an http"},
		{"http no host", func(c *CommandRef) { c.Health = &Probe{HTTP: "http:///x"} }, "health.http", "not an http"},
		{"negative interval", func(c *CommandRef) { c.Ready = &Probe{TCP: "a:1", IntervalMs: -1} }, "ready.interval_ms", ">= 0"},
		{"negative timeout", func(c *CommandRef) { c.Ready = &Probe{TCP: "a:1", TimeoutMs: -1} }, "ready.timeout_ms", ">= 0"},
		{"negative threshold", func(c *CommandRef) { c.Health = &Probe{TCP: "a:1", FailureThreshold: -2} }, "health.failure_threshold", ">= 0"},
		{"depends_on", func(c *CommandRef) { c.DependsOn = []string{"db", "cache"} }, "", ""},
		{"depends_on bad label", func(c *CommandRef) { c.DependsOn = []string{"db", "a/b"} }, "depends_on[1]", ""},
		{"depends_on itself", func(c *CommandRef) { c.DependsOn = []string{"web"} }, "depends_on[0]", "itself"},
		{"depends_on twice", func(c *CommandRef) { c.DependsOn = []string{"db", "db"} }, "depends_on[1]", "twice"},
		{"schedule 5 fields", func(c *CommandRef) { c.Schedule = "0 3 * * *" }, "", ""},
		{"schedule seconds", func(c *CommandRef) { c.Schedule = "*/2 * * * * *"; c.Concurrency = ConcurrencyForbid }, "", ""},
		{"schedule every", func(c *CommandRef) { c.Schedule = "@every 1s"; c.Concurrency = ConcurrencyReplace }, "", ""},
		{"schedule bad", func(c *CommandRef) { c.Schedule = "61 * * * *" }, "schedule", "61"},
		{"schedule junk", func(c *CommandRef) { c.Schedule = "often" }, "schedule", "often"},
		{"schedule never", func(c *CommandRef) { c.Schedule = "0 0 30 2 *" }, "schedule", "never comes"},
		{"schedule time zone", func(c *CommandRef) { c.Schedule = "CRON_TZ=UTC 0 3 * * *" }, "schedule", "time zone prefix"},
		{"schedule time zone without spec", func(c *CommandRef) { c.Schedule = "TZ=UTC" }, "schedule", "time zone prefix"},
		{"schedule empty descriptor", func(c *CommandRef) { c.Schedule = "@every" }, "schedule", "@every"},
		{"schedule supervised", func(c *CommandRef) { c.Schedule = "@hourly"; c.Supervision = restart }, "schedule", "only one_shot"},
		{"concurrency without schedule", func(c *CommandRef) { c.Concurrency = ConcurrencyForbid }, "concurrency", "needs a schedule"},
		{"concurrency bad", func(c *CommandRef) { c.Schedule = "@hourly"; c.Concurrency = "queue" }, "concurrency", "not one of forbid, allow, replace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.edit(&c)
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Message, tt.msg) {
				t.Fatalf("Validate() = %v, want a field error on %s with %q", err, tt.field, tt.msg)
			}
		})
	}
}

func TestProbeDefaults(t *testing.T) {
	var p Probe
	if p.Interval() != time.Second || p.Timeout() != time.Second || p.Threshold() != 3 {
		t.Errorf("defaults: %v %v %d", p.Interval(), p.Timeout(), p.Threshold())
	}
	p = Probe{IntervalMs: 20, TimeoutMs: 30, FailureThreshold: 1}
	if p.Interval() != 20*time.Millisecond || p.Timeout() != 30*time.Millisecond || p.Threshold() != 1 {
		t.Errorf("set: %v %v %d", p.Interval(), p.Timeout(), p.Threshold())
	}
}

func TestDecodeDeclared(t *testing.T) {
	doc := `label: job
payload: {native: {exec: /bin/true}}
ready: {tcp: "127.0.0.1:9", interval_ms: 100}
health: {exec: [test, -d, /], failure_threshold: 2}
depends_on: [db]
schedule: "*/5 * * * *"
concurrency: forbid
`
	var c CommandRef
	if err := DecodeSpec([]byte(doc), &c); err != nil {
		t.Fatalf("DecodeSpec() = %v", err)
	}
	want := CommandRef{Label: "job", Payload: Payload{Native: &NativePayload{Exec: "/bin/true"}},
		Ready: &Probe{TCP: "127.0.0.1:9", IntervalMs: 100}, Health: &Probe{Exec: []string{"test", "-d", "/"}, FailureThreshold: 2},
		DependsOn: []string{"db"}, Schedule: "*/5 * * * *", Concurrency: ConcurrencyForbid}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	if err := DecodeSpec([]byte("label: x\npayload: {native: {exec: /bin/true}}\nready: {tpc: a:1}\n"), &c); err == nil ||
		!strings.Contains(err.Error(), "tpc") {
		t.Errorf("a misspelt probe field: %v", err)
	}
}

func TestParseScheduleNext(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		spec string
		want time.Time
	}{
		{"0 3 * * *", time.Date(2026, 1, 3, 3, 0, 0, 0, time.UTC)},
		{"*/10 * * * * *", time.Date(2026, 1, 2, 3, 4, 10, 0, time.UTC)},
		{"@every 1s", at.Add(time.Second)},
		{"@hourly", time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		s, err := ParseSchedule(tt.spec)
		if err != nil {
			t.Fatalf("ParseSchedule(%q) = %v", tt.spec, err)
		}
		if got := s.Next(at); !got.Equal(tt.want) {
			t.Errorf("%q: next after %v = %v, want %v", tt.spec, at, got, tt.want)
		}
	}
}

func TestFindCycle(t *testing.T) {
	tests := []struct {
		deps map[string][]string
		want []string
	}{
		{map[string][]string{"a": {"b"}, "b": {"c"}, "c": nil}, nil},
		{map[string][]string{"a": {"b"}, "b": {"a"}}, []string{"a", "b", "a"}},
		{map[string][]string{"web": {"db"}, "db": {"cache"}, "cache": {"db"}}, []string{"cache", "db", "cache"}},
		{map[string][]string{"x": {"y"}, "y": {"z"}, "z": {"x"}, "w": {"x"}}, []string{"w", "x", "y", "z", "x"}[1:]},
		{map[string][]string{"a": {"missing"}}, nil},
	}
	for _, tt := range tests {
		if got := FindCycle(tt.deps); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("FindCycle(%v) = %v, want %v", tt.deps, got, tt.want)
		}
	}
}

func TestUpFileDependsOn(t *testing.T) {
	cmd := func(label string, deps ...string) CommandRef {
		return CommandRef{Label: label, Payload: Payload{Native: &NativePayload{Exec: "/bin/true"}}, DependsOn: deps}
	}
	tests := []struct {
		name  string
		file  UpFile
		field string
		msg   string
		order []int
	}{
		{"ordered", UpFile{Workspaces: []UpWorkspace{
			{WorkspaceSpec: WorkspaceSpec{Label: "app"}, DependsOn: []string{"db"}},
			{WorkspaceSpec: WorkspaceSpec{Label: "db"}},
		}}, "", "", []int{1, 0}},
		{"unknown workspace", UpFile{Workspaces: []UpWorkspace{
			{WorkspaceSpec: WorkspaceSpec{Label: "app"}, DependsOn: []string{"dbb"}},
		}}, "workspaces[0].depends_on[0]", `no workspace "dbb"`, nil},
		{"workspace cycle", UpFile{Workspaces: []UpWorkspace{
			{WorkspaceSpec: WorkspaceSpec{Label: "a"}, DependsOn: []string{"b"}},
			{WorkspaceSpec: WorkspaceSpec{Label: "b"}, DependsOn: []string{"a"}},
		}}, "workspaces[0].depends_on", "dependency cycle a → b → a", nil},
		{"unknown command", UpFile{Workspaces: []UpWorkspace{
			{WorkspaceSpec: WorkspaceSpec{Label: "a"}, Commands: []CommandRef{cmd("web", "db")}},
		}}, "workspaces[0].commands[0].depends_on[0]", `no command "db"`, nil},
		{"command cycle", UpFile{Workspaces: []UpWorkspace{
			{WorkspaceSpec: WorkspaceSpec{Label: "a"}, Commands: []CommandRef{cmd("web", "db"), cmd("db", "cache"), cmd("cache", "web")}},
		}}, "workspaces[0].commands[2].depends_on", "dependency cycle cache → web → db → cache", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.file.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				if got := tt.file.Order(); !reflect.DeepEqual(got, tt.order) {
					t.Errorf("Order() = %v, want %v", got, tt.order)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Message, tt.msg) {
				t.Fatalf("Validate() = %v, want a field error on %s with %q", err, tt.field, tt.msg)
			}
		})
	}
	w := UpWorkspace{Commands: []CommandRef{cmd("web", "db", "cache"), cmd("db"), cmd("cache", "db")}}
	if got, want := w.CommandOrder(), []int{1, 2, 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("CommandOrder() = %v, want %v", got, want)
	}
}
