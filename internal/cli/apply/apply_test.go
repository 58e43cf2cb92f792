// This file tests package apply: argument parsing (argv to options, or a
// usage error), the project name, and what each verb prints and sends,
// against a fake daemon.

package apply

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/internal/cli/clitest"
	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
)

func TestNewCmds(t *testing.T) {
	type ctor = func(*cmdutil.Factory, func(*Options) error) *cobra.Command
	tests := []struct {
		name  string
		new   ctor
		args  []string
		want  Options
		usage string
	}{
		{name: "apply", new: NewCmdApply, args: []string{"-f", "s.yaml"}, want: Options{Verb: "apply", File: "s.yaml"}},
		{name: "apply all flags", new: NewCmdApply, args: []string{"-f", "s.yaml", "--dry-run", "--force", "--project", "p", "-o", "json"},
			want: Options{Verb: "apply", File: "s.yaml", DryRun: true, Force: true, Project: "p", Output: "json"}},
		{name: "apply without file", new: NewCmdApply, args: nil, usage: "-f FILE is required"},
		{name: "apply with an argument", new: NewCmdApply, args: []string{"s.yaml"}, usage: `unexpected argument "s.yaml"`},
		{name: "diff", new: NewCmdDiff, args: []string{"--file", "s.yaml"}, want: Options{Verb: "diff", File: "s.yaml"}},
		{name: "diff has no force", new: NewCmdDiff, args: []string{"-f", "s.yaml", "--force"}, usage: "unknown flag: --force"},
		{name: "down", new: NewCmdDown, args: []string{"-f", "s.yaml"}, want: Options{Verb: "down", File: "s.yaml"}},
		{name: "scale", new: NewCmdScale, args: []string{"shop/worker", "3"}, want: Options{Verb: "scale", Workspace: "shop", Command: "worker", Instances: 3}},
		{name: "scale to zero", new: NewCmdScale, args: []string{"shop/worker", "0"}, want: Options{Verb: "scale", Workspace: "shop", Command: "worker"}},
		{name: "scale negative", new: NewCmdScale, args: []string{"shop/worker", "--", "-1"}, usage: `N "-1" is not a number from 0 to 1000`},
		{name: "scale word", new: NewCmdScale, args: []string{"shop/worker", "many"}, usage: `N "many" is not a number`},
		{name: "scale too many", new: NewCmdScale, args: []string{"shop/worker", "1001"}, usage: "from 0 to 1000"},
		{name: "scale no command", new: NewCmdScale, args: []string{"shop", "2"}, usage: "names no command"},
		{name: "scale missing N", new: NewCmdScale, args: []string{"shop/worker"}, usage: "missing N"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := clitest.Parse(t, tt.new, tt.args, tt.usage)
			if got == nil {
				return
			}
			got.IO, got.Client = nil, nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("options = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestProject(t *testing.T) {
	tests := []struct {
		override, name, path, want, err string
	}{
		{path: "/srv/stack.yaml", want: "stack"},
		{path: "shop.prod.json", want: "shop.prod"},
		{name: "named", path: "/srv/stack.yaml", want: "named"},
		{override: "over", name: "named", path: "x.yaml", want: "over"},
		{path: "-", err: "a file read from stdin needs a name: or --project"},
		{path: "/srv/my stack.yaml", err: `project name "my stack" has characters outside [A-Za-z0-9._-]; set name: in the file or --project`},
		{override: "..", path: "x.yaml", err: `project name ".." is not allowed; set name: in the file or --project`},
	}
	for _, tt := range tests {
		got, err := Project(tt.override, &messages.UpFile{Name: tt.name}, tt.path)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("Project(%q, %q, %q) error = %v, want %q", tt.override, tt.name, tt.path, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Project(%q, %q, %q) = %q, %v; want %q", tt.override, tt.name, tt.path, got, err, tt.want)
		}
	}
}

// fakeClient answers Apply and Scale from canned plans and records the
// requests.
type fakeClient struct {
	plan    messages.Plan
	err     error
	applies []messages.ApplyRequest
	scaled  string
}

func (f *fakeClient) Apply(_ context.Context, req messages.ApplyRequest) (messages.ApplyResult, error) {
	f.applies = append(f.applies, req)
	if f.err != nil && !req.DryRun {
		return messages.ApplyResult{}, f.err
	}
	return messages.ApplyResult{Plan: f.plan, Applied: !req.DryRun}, nil
}

func (f *fakeClient) Scale(_ context.Context, ws, cmd string, n int) (messages.Plan, error) {
	f.scaled = ws + "/" + cmd
	return f.plan, f.err
}

const stackYAML = `workspaces:
  - label: web
    commands:
      - label: api
        env_file: [api.env]
        payload: {native: {exec: /bin/sleep, argv: ["100"], envp: ["B=envp"]}}
`

func stackPlan() messages.Plan {
	return messages.Plan{Project: "stack", Entries: []messages.PlanEntry{
		{Action: messages.PlanCreate, Kind: messages.PlanWorkspace, Workspace: "web"},
		{Action: messages.PlanChange, Kind: messages.PlanCommand, Workspace: "web", Name: "api", Fields: []string{"payload.native.argv", "soma.cpu_max"}},
		{Action: messages.PlanReplace, Kind: messages.PlanWorkspace, Workspace: "db", Fields: []string{"permissions.workdir"}},
		{Action: messages.PlanRemove, Kind: messages.PlanCommand, Workspace: "web", Name: "old"},
		{Action: messages.PlanChange, Kind: messages.PlanSaved, Name: "nightly", Fields: []string{"restart_max"}},
		{Action: messages.PlanCreate, Kind: messages.PlanSaved, Name: "weekly"},
	}}
}

const stackOut = `+ create workspace web
~ change command web/api: payload.native.argv, soma.cpu_max
-/+ replace workspace db: permissions.workdir (needs --force)
- remove command web/old
~ change saved_pipeline nightly: restart_max
+ create saved_pipeline weekly
Plan: 2 to create, 2 to change, 1 to replace, 1 to remove.
`

func runOpts(t *testing.T, c *fakeClient, o Options) (string, string, error) {
	t.Helper()
	ios, _, out, errOut := cmdutil.Test()
	o.IO = ios
	o.Client = func() (Client, error) { return c, nil }
	err := run(context.Background(), &o)
	return out.String(), errOut.String(), err
}

func writeStack(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "api.env"), []byte("A=file\nB=file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "stack.yaml")
	if err := os.WriteFile(p, []byte(stackYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunApply(t *testing.T) {
	path := writeStack(t)
	c := &fakeClient{plan: stackPlan()}
	out, errOut, err := runOpts(t, c, Options{Verb: "apply", File: path})
	if err != nil || out != stackOut || errOut != "applied (project stack)\n" {
		t.Fatalf("apply: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	req := c.applies[0]
	if req.Project != "stack" || req.DryRun || req.Down || req.Force {
		t.Fatalf("request = %+v", req)
	}
	cmd := req.File.Workspaces[0].Commands[0]
	if want := []string{"A=file", "B=envp"}; !reflect.DeepEqual(cmd.Payload.Native.Envp, want) || cmd.EnvFile != nil {
		t.Fatalf("sent envp %q env_file %q, want %q and none", cmd.Payload.Native.Envp, cmd.EnvFile, want)
	}

	c = &fakeClient{plan: messages.Plan{Project: "stack"}}
	out, errOut, err = runOpts(t, c, Options{Verb: "diff", File: path})
	if err != nil || out != "No changes.\n" || errOut != "" || !c.applies[0].DryRun {
		t.Fatalf("diff: %v %q %q %+v", err, out, errOut, c.applies)
	}

	c = &fakeClient{plan: stackPlan()}
	if _, _, err = runOpts(t, c, Options{Verb: "down", File: path, Project: "p"}); err != nil {
		t.Fatal(err)
	}
	if r := c.applies[0]; !r.Down || r.Project != "p" || len(r.File.Workspaces) != 0 {
		t.Fatalf("down request = %+v", r)
	}
}

func TestRunApplyRefused(t *testing.T) {
	path := writeStack(t)
	refusal := &api.Error{Status: 409, Code: api.CodeConflict, Message: "the plan replaces workspace db (permissions.workdir)"}
	c := &fakeClient{plan: stackPlan(), err: refusal}
	out, errOut, err := runOpts(t, c, Options{Verb: "apply", File: path})
	if !errors.Is(err, messages.ErrConflict) || !strings.HasPrefix(err.Error(), "apply -f "+path+": ") {
		t.Fatalf("apply refused: error %v", err)
	}
	if out != "" || errOut != stackOut || len(c.applies) != 2 || !c.applies[1].DryRun {
		t.Fatalf("apply refused: stdout %q, stderr %q, requests %+v", out, errOut, c.applies)
	}

	c = &fakeClient{err: errors.New("boom")}
	if _, _, err := runOpts(t, c, Options{Verb: "apply", File: filepath.Join(t.TempDir(), "none.yaml")}); err == nil || len(c.applies) != 0 {
		t.Fatalf("missing file: %v, %d requests", err, len(c.applies))
	}
	bad := filepath.Join(filepath.Dir(path), "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(stackYAML, "api.env", "missing.env", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runOpts(t, c, Options{Verb: "apply", File: bad}); err == nil ||
		!strings.Contains(err.Error(), "workspaces[0].commands[0].env_file[0]: env file: open ") || len(c.applies) != 0 {
		t.Fatalf("missing env file: %v", err)
	}
}

func TestRunScale(t *testing.T) {
	c := &fakeClient{plan: messages.Plan{Entries: []messages.PlanEntry{
		{Action: messages.PlanCreate, Kind: messages.PlanCommand, Workspace: "shop", Name: "worker-2"}}}}
	out, _, err := runOpts(t, c, Options{Verb: "scale", Workspace: "shop", Command: "worker", Instances: 3})
	if err != nil || c.scaled != "shop/worker" || out != "+ create command shop/worker-2\nPlan: 1 to create, 0 to change, 0 to replace, 0 to remove.\n" {
		t.Fatalf("scale: %v %q %q", err, c.scaled, out)
	}
	out, _, err = runOpts(t, c, Options{Verb: "scale", Workspace: "shop", Command: "worker", Instances: 3, Output: "json"})
	if err != nil || !strings.Contains(out, `"name": "worker-2"`) {
		t.Fatalf("scale -o json: %v\n%s", err, out)
	}
}
