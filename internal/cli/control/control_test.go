// This file tests package control: argument parsing (argv to options, or
// a usage error) and what each verb prints, against a fake daemon.

package control

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

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
		{name: "stop", new: NewCmdStop, args: []string{"build/web"}, want: Options{Verb: "stop", Workspace: "build", Command: "web"}},
		{name: "stop all", new: NewCmdStop, args: []string{"build", "--all"}, want: Options{Verb: "stop", Workspace: "build", All: true}},
		{name: "stop json", new: NewCmdStop, args: []string{"build/web", "-o", "json"}, want: Options{Verb: "stop", Workspace: "build", Command: "web", Output: "json"}},
		{name: "stop without command", new: NewCmdStop, args: []string{"build"}, usage: "want WS/CMD, or WS --all"},
		{name: "stop all with a command", new: NewCmdStop, args: []string{"build/web", "--all"}, usage: "--all takes a workspace"},
		{name: "stop nothing", new: NewCmdStop, args: nil, usage: "missing WS/CMD"},
		{name: "stop two", new: NewCmdStop, args: []string{"a/b", "c/d"}, usage: `unexpected argument "c/d"`},
		{name: "start", new: NewCmdStart, args: []string{"build/01ARZ3NDEKTSV4RRFFQ69G5FAW"}, want: Options{Verb: "start", Workspace: "build", Command: "01ARZ3NDEKTSV4RRFFQ69G5FAW"}},
		{name: "start without workspace", new: NewCmdStart, args: []string{"/web"}, usage: "names no workspace"},
		{name: "start trailing slash", new: NewCmdStart, args: []string{"build/"}, usage: "names no command"},
		{name: "start two slashes", new: NewCmdStart, args: []string{"a/b/c"}, usage: "more than one /"},
		{name: "start --all", new: NewCmdStart, args: []string{"a", "--all"}, usage: "unknown flag: --all"},
		{name: "restart", new: NewCmdRestart, args: []string{"build/web"}, want: Options{Verb: "restart", Workspace: "build", Command: "web"}},
		{name: "restart bare", new: NewCmdRestart, args: []string{"web"}, usage: "names no command"},
		{name: "signal name", new: NewCmdSignal, args: []string{"build/web", "HUP"}, want: Options{Verb: "signal", Workspace: "build", Command: "web", Signal: "HUP"}},
		{name: "signal number", new: NewCmdSignal, args: []string{"build/web", "9"}, want: Options{Verb: "signal", Workspace: "build", Command: "web", Signal: "9"}},
		{name: "signal SIG name", new: NewCmdSignal, args: []string{"build/web", "sigusr1"}, want: Options{Verb: "signal", Workspace: "build", Command: "web", Signal: "sigusr1"}},
		{name: "signal bad name", new: NewCmdSignal, args: []string{"build/web", "NOPE"}, usage: `"NOPE" is not a signal name or number`},
		{name: "signal out of range", new: NewCmdSignal, args: []string{"build/web", "99"}, usage: "out of range"},
		{name: "signal zero", new: NewCmdSignal, args: []string{"build/web", "0"}, usage: "out of range"},
		{name: "signal missing", new: NewCmdSignal, args: []string{"build/web"}, usage: "missing SIG"},
		{name: "rm", new: NewCmdRm, args: []string{"build/web"}, want: Options{Verb: "rm", Workspace: "build", Command: "web"}},
		{name: "rm bad output", new: NewCmdRm, args: []string{"build/web", "-o", "yaml"}, usage: `"yaml" is not one of json`},
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

const wsID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"

func fake() *clitest.FakeClient {
	return &clitest.FakeClient{
		WorkspaceList: []messages.WorkspaceInfo{{ID: wsID, Spec: messages.WorkspaceSpec{Label: "build"}}},
		CommandList: []messages.CommandInfo{
			{ID: "01ARZ3NDEKTSV4RRFFQ69G5FB1", Workspace: wsID, Label: "web", State: messages.CommandRunning, Pid: 100},
			{ID: "01ARZ3NDEKTSV4RRFFQ69G5FB2", Workspace: wsID, Label: "test", State: messages.CommandExited},
			{ID: "01ARZ3NDEKTSV4RRFFQ69G5FB3", Workspace: wsID, Label: "db", State: messages.CommandRunning, Pid: 200},
		},
		NextPid: 300,
	}
}

func TestRun(t *testing.T) {
	tests := []struct {
		name      string
		new       func(*cmdutil.Factory, func(*Options) error) *cobra.Command
		args      []string
		stdout    string
		stderr    string
		errSubstr string
		status    int // of the api.Error, when errSubstr is set
	}{
		{name: "stop", new: NewCmdStop, args: []string{"build/web"}, stdout: "web: stopped by SIGTERM after 120ms\n"},
		{name: "stop ended", new: NewCmdStop, args: []string{"build/test"}, errSubstr: "stop build/test: command test is not running (exited)", status: 409},
		{name: "stop unknown", new: NewCmdStop, args: []string{"build/nope"}, errSubstr: "stop build/nope: command nope", status: 404},
		{name: "stop unknown workspace", new: NewCmdStop, args: []string{"other", "--all"}, errSubstr: "stop other --all: workspace other: not found", status: 404},
		{name: "stop all", new: NewCmdStop, args: []string{"build", "--all"}, stdout: "web: stopped by SIGTERM after 120ms\ndb: stopped by SIGTERM after 120ms\n"},
		{name: "start", new: NewCmdStart, args: []string{"build/test"}, stdout: "01ARZ3NDEKTSV4RRFFQ69G5FB2 pid 300\n"},
		{name: "start running", new: NewCmdStart, args: []string{"build/web"}, errSubstr: "command web is already running", status: 409},
		{name: "restart", new: NewCmdRestart, args: []string{"build/web"}, stdout: "01ARZ3NDEKTSV4RRFFQ69G5FB1 pid 300\n"},
		{name: "signal", new: NewCmdSignal, args: []string{"build/web", "hup"}, stdout: "sent SIGHUP to web (process group 100)\n"},
		{name: "signal number", new: NewCmdSignal, args: []string{"build/db", "10"}, stdout: "sent SIGUSR1 to db (process group 200)\n"},
		{name: "signal ended", new: NewCmdSignal, args: []string{"build/test", "TERM"}, errSubstr: "not running (exited)", status: 409},
		{name: "rm", new: NewCmdRm, args: []string{"build/test"}, stdout: "01ARZ3NDEKTSV4RRFFQ69G5FB2\n"},
		{name: "rm running", new: NewCmdRm, args: []string{"build/web"}, errSubstr: "stop it first", status: 409},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, out, errOut := clitest.Factory(fake(), time.Now())
			err := clitest.Run(tt.new(f, nil), tt.args...)
			if tt.errSubstr != "" {
				var ae *api.Error
				if err == nil || !strings.Contains(err.Error(), tt.errSubstr) || !errors.As(err, &ae) || ae.Status != tt.status {
					t.Fatalf("err = %v, want a %d error with %q", err, tt.status, tt.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.stdout || errOut.String() != tt.stderr {
				t.Errorf("stdout %q stderr %q, want %q and %q", out.String(), errOut.String(), tt.stdout, tt.stderr)
			}
		})
	}
}

func TestStopAllWithNothingRunning(t *testing.T) {
	fc := fake()
	fc.CommandList = fc.CommandList[1:2]
	f, out, errOut := clitest.Factory(fc, time.Now())
	if err := clitest.Run(NewCmdStop(f, nil), "build", "--all"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "" || errOut.String() != "no command of build was running\n" {
		t.Errorf("stdout %q stderr %q", out.String(), errOut.String())
	}
}

func TestJSONOutput(t *testing.T) {
	f, out, _ := clitest.Factory(fake(), time.Now())
	if err := clitest.Run(NewCmdStop(f, nil), "build/web", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"state": "stopped"`, `"stop_reason": "user"`, `"stop_result": "stopped by SIGTERM after 120ms"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("json %s lacks %s", out.String(), want)
		}
	}
}

func TestSignalRecorded(t *testing.T) {
	fc := fake()
	f, _, _ := clitest.Factory(fc, time.Now())
	if err := clitest.Run(NewCmdSignal(f, nil), "build/web", "USR2"); err != nil {
		t.Fatal(err)
	}
	if len(fc.Signals) != 1 || fc.Signals[0] != "build/web USR2" {
		t.Errorf("signals = %q", fc.Signals)
	}
}

func TestCompletion(t *testing.T) {
	fc := fake()
	f, _, _ := clitest.Factory(fc, time.Now())
	complete := func(cmd *cobra.Command, args []string, toComplete string) []string {
		got, _ := cmd.ValidArgsFunction(cmd, args, toComplete)
		return got
	}
	stop := NewCmdStop(f, nil)
	if got := strings.Join(complete(stop, nil, "bu"), " "); got != "build/ build" {
		t.Errorf("stop bu = %q", got)
	}
	if got := strings.Join(complete(NewCmdStart(f, nil), nil, ""), " "); got != "build/" {
		t.Errorf("start '' = %q", got)
	}
	if got := strings.Join(complete(stop, nil, "build/"), " "); got != "build/web build/test build/db" {
		t.Errorf("stop build/ = %q", got)
	}
	if got := strings.Join(complete(stop, nil, "build/t"), " "); got != "build/test" {
		t.Errorf("stop build/t = %q", got)
	}
	if got := complete(stop, []string{"build/web"}, ""); len(got) != 0 {
		t.Errorf("second argument = %q", got)
	}
	if got := strings.Join(complete(NewCmdSignal(f, nil), []string{"build/web"}, "u"), " "); got != "USR1 USR2" {
		t.Errorf("signal build/web u = %q", got)
	}
	// Without a daemon: nothing, and no error.
	fc.Err = &api.Error{Status: 503, Code: api.CodeStopped, Message: "down"}
	if got := complete(stop, nil, ""); len(got) != 0 {
		t.Errorf("completion without a daemon = %q", got)
	}
}
