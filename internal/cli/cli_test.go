// This file tests package cli: the exit-code table and the command tree.

package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/internal/cli/clitest"
	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/messages"
	"github.com/spf13/cobra"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want ExitCode
	}{
		{nil, ExitOK},
		{errors.New("boom"), ExitError},
		{&api.Error{Status: 400, Code: "invalid", Message: "label: must not be empty"}, ExitError},
		{cmdutil.FlagErrorf("bad flag"), ExitUsage},
		{fmt.Errorf("wrapped: %w", cmdutil.FlagErrorf("bad flag")), ExitUsage},
		{fmt.Errorf("list: %w", fmt.Errorf("%w: dial", api.ErrUnreachable)), ExitUnreachable},
		{&cmdutil.ExitError{Code: 2, Err: errors.New("too new")}, ExitUsage},
		{cmdutil.ErrInterrupted, ExitInterrupted},
		{context.Canceled, ExitInterrupted},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestRun(t *testing.T) {
	unreachable := &clitest.FakeClient{Err: fmt.Errorf("%w: dial unix /tmp/test.sock: connect: no such file or directory", api.ErrUnreachable)}
	ws := &clitest.FakeClient{WorkspaceList: []messages.WorkspaceInfo{{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAV", Spec: messages.WorkspaceSpec{Label: "a"}}}}
	tests := []struct {
		name   string
		client *clitest.FakeClient
		args   []string
		code   ExitCode
		stdout string
		stderr string
	}{
		{"ok", ws, []string{"ws", "ls", "-o", "json"}, ExitOK, `"label": "a"`, ""},
		{"unknown command", ws, []string{"nope"}, ExitUsage, "", "shipote: unknown command \"nope\" for \"shipote\"\nRun 'shipote --help' for usage.\n"},
		{"unknown flag", ws, []string{"ws", "ls", "--nope"}, ExitUsage, "", "shipote: unknown flag: --nope\nRun 'shipote ws ls --help' for usage.\n"},
		{"missing argument", ws, []string{"ws", "rm"}, ExitUsage, "", "shipote: ws rm: missing WS\n"},
		{"server error", ws, []string{"ws", "show", "b"}, ExitError, "", "shipote: workspace b: not found\n"},
		{"unreachable", unreachable, []string{"ws", "ls"}, ExitUnreachable, "",
			"shipote: list workspaces: daemon not reachable: dial unix /tmp/test.sock: connect: no such file or directory; is `shipote daemon` running?\n"},
		{"help", ws, []string{"ws"}, ExitOK, "create", ""},
		{"version flag", ws, []string{"--version"}, ExitOK, "shipote 1.2.3 (go", ""},
		{"version command", unreachable, []string{"version"}, ExitOK, "client: shipote 1.2.3 (go", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, out, errOut := clitest.Factory(tt.client, time.Unix(0, 0))
			code := Run(context.Background(), f, tt.args, WithVersion("1.2.3"))
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.code, errOut.String())
			}
			if !strings.Contains(out.String(), tt.stdout) {
				t.Errorf("stdout %q, want %q in it", out.String(), tt.stdout)
			}
			if tt.stderr == "" && errOut.Len() > 0 {
				t.Errorf("stderr %q, want nothing", errOut.String())
			}
			if tt.stderr != "" && !strings.HasPrefix(errOut.String(), tt.stderr) {
				t.Errorf("stderr %q, want %q", errOut.String(), tt.stderr)
			}
		})
	}
}

// TestEveryCommandTakesSocket checks SPEC §3.3: every command takes
// --socket, and list/show commands take -o json.
func TestEveryCommandTakesSocket(t *testing.T) {
	f, _, _ := clitest.Factory(&clitest.FakeClient{}, time.Unix(0, 0))
	root := NewRootCmd(f)
	wantOutput := map[string]bool{
		"shipote ws ls": true, "shipote ws show": true, "shipote ps": true, "shipote pipe ls": true,
		"shipote pipe show": true, "shipote stats": true, "shipote events": true, "shipote snapshot show": true,
	}
	for _, c := range allCommands(root) {
		if c.PersistentFlags().Lookup("socket") == nil && c.InheritedFlags().Lookup("socket") == nil {
			t.Errorf("%s: no --socket", c.CommandPath())
		}
		if wantOutput[c.CommandPath()] && c.Flags().ShorthandLookup("o") == nil {
			t.Errorf("%s: no -o", c.CommandPath())
		}
		delete(wantOutput, c.CommandPath())
	}
	for p := range wantOutput {
		t.Errorf("no command %s", p)
	}
}

// TestCompletion runs the shell's completion request (cobra's hidden
// __complete) through the root: names come from the daemon, and without
// one nothing is offered and nothing is reported as an error.
func TestCompletion(t *testing.T) {
	wsID := "01ARZ3NDEKTSV4RRFFQ69G5FAV"
	daemon := &clitest.FakeClient{
		WorkspaceList: []messages.WorkspaceInfo{{ID: wsID, Spec: messages.WorkspaceSpec{Label: "build"}}},
		CommandList:   []messages.CommandInfo{{ID: "01ARZ3NDEKTSV4RRFFQ69G5FB1", Workspace: wsID, Label: "web"}},
		PipelineList:  []messages.PipelineInfo{{ID: "01ARZ3NDEKTSV4RRFFQ69G5FAX", Label: "fan", WorkspaceLabel: "build", State: messages.PipelineRunning}},
	}
	unreachable := &clitest.FakeClient{Err: fmt.Errorf("%w: dial unix /tmp/test.sock: connect: no such file or directory", api.ErrUnreachable)}
	tests := []struct {
		name   string
		client *clitest.FakeClient
		args   []string
		want   []string // completion lines, before the directive
	}{
		{"workspaces", daemon, []string{"__complete", "stop", ""}, []string{"build/", "build"}},
		{"commands", daemon, []string{"__complete", "restart", "build/"}, []string{"build/web"}},
		{"logs", daemon, []string{"__complete", "logs", "b"}, []string{"build/", "build"}},
		{"ws show", daemon, []string{"__complete", "ws", "show", ""}, []string{"build"}},
		{"runs", daemon, []string{"__complete", "pipe", "restart", "01"}, []string{"01ARZ3NDEKTSV4RRFFQ69G5FAX\tfan in build (running)"}},
		{"no daemon", unreachable, []string{"__complete", "stop", ""}, nil},
		{"no daemon runs", unreachable, []string{"__complete", "pipe", "signal", ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, out, errOut := clitest.Factory(tt.client, time.Unix(0, 0))
			if code := Run(context.Background(), f, tt.args); code != ExitOK {
				t.Fatalf("exit %d; stderr %q", code, errOut.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
				t.Fatalf("stdout %q has no directive line", out.String())
			}
			got := lines[:len(lines)-1]
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("completions %q, want %q", got, tt.want)
			}
			// cobra notes the directive on stderr for debugging; nothing
			// else may appear there.
			for _, l := range strings.Split(strings.TrimSpace(errOut.String()), "\n") {
				if l != "" && !strings.HasPrefix(l, "Completion ended with directive:") {
					t.Errorf("stderr line %q", l)
				}
			}
		})
	}
}

// TestWithCommands: commands added by the caller join the tree in their
// group (or under Additional Commands), built on the same factory, with
// --socket like the others; without them the tree has only the client
// commands.
func TestWithCommands(t *testing.T) {
	f, _, _ := clitest.Factory(&clitest.FakeClient{}, time.Unix(0, 0))
	var built []*cmdutil.Factory
	newCmd := func(use string) NewCmdFunc {
		return func(f *cmdutil.Factory) *cobra.Command {
			built = append(built, f)
			return &cobra.Command{Use: use, Short: "the " + use + " command", RunE: func(cmd *cobra.Command, _ []string) error {
				_, err := fmt.Fprintf(f.IO.Out, "%s ran, socket %s\n", use, f.Socket)
				return err
			}}
		}
	}
	root := NewRootCmd(f, WithCommands("run", newCmd("host")), WithCommands("other", newCmd("extra")))
	if len(built) != 2 || built[0] != f || built[1] != f {
		t.Fatalf("extra commands built on %v, want the root's factory twice", built)
	}
	for use, group := range map[string]string{"host": "run", "extra": ""} {
		c, _, err := root.Find([]string{use})
		if err != nil || c.Name() != use {
			t.Fatalf("%s not in the tree: %v", use, err)
		}
		if c.GroupID != group {
			t.Errorf("%s in group %q, want %q", use, c.GroupID, group)
		}
		if c.InheritedFlags().Lookup("socket") == nil {
			t.Errorf("%s: no --socket", use)
		}
	}

	f, out, errOut := clitest.Factory(&clitest.FakeClient{}, time.Unix(0, 0))
	if code := Run(context.Background(), f, []string{"host", "--socket", "/tmp/other.sock"}, WithCommands("run", newCmd("host"))); code != ExitOK {
		t.Fatalf("exit %d; stderr %q", code, errOut.String())
	}
	if out.String() != "host ran, socket /tmp/other.sock\n" {
		t.Errorf("stdout %q", out.String())
	}

	f, _, _ = clitest.Factory(&clitest.FakeClient{}, time.Unix(0, 0))
	for _, c := range allCommands(NewRootCmd(f)) {
		if name := c.Name(); name == "host" || name == "extra" || name == "daemon" || name == "up" {
			t.Errorf("%s is in the tree without WithCommands", c.CommandPath())
		}
	}
}
