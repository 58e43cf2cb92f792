// This file tests package exec: flag parsing (argv to options, or a usage
// error) and what the commands print.

package exec

import (
	"reflect"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/cli/clitest"
	"github.com/shipote/shipote/messages"
)

func TestNewCmdExec(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		want  messages.CommandRef
		ws    string
		usage string
	}{
		{
			name: "one shot",
			args: []string{"build", "--", "/bin/echo", "hi", "-n"},
			ws:   "build",
			want: messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: "/bin/echo", Argv: []string{"hi", "-n"}}}},
		},
		{
			name: "without --",
			args: []string{"build", "true"},
			ws:   "build",
			want: messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: "true", Argv: []string{}}}},
		},
		{
			name: "restart on failure with every flag",
			args: []string{"build", "--label", "web", "--restart", "on-failure", "--backoff", "100ms", "--max-backoff", "5s",
				"--max-restarts", "3", "--env", "PORT=8000", "--env", "X=", "--", "python3", "-m", "http.server"},
			ws: "build",
			want: messages.CommandRef{
				Label: "web",
				Payload: messages.Payload{Native: &messages.NativePayload{Exec: "python3", Argv: []string{"-m", "http.server"},
					Envp: []string{"PORT=8000", "X="}}},
				Supervision: messages.Supervision{Restart: &messages.RestartPolicy{On: messages.RestartOnFailure,
					BackoffMs: 100, MaxBackoffMs: 5000, Max: 3}},
			},
		},
		{
			name: "restart always with defaults",
			args: []string{"w", "--restart", "always", "--", "sleep", "1"},
			ws:   "w",
			want: messages.CommandRef{
				Payload: messages.Payload{Native: &messages.NativePayload{Exec: "sleep", Argv: []string{"1"}}},
				Supervision: messages.Supervision{Restart: &messages.RestartPolicy{On: messages.RestartAlways,
					BackoffMs: 200, MaxBackoffMs: 30000}},
			},
		},
		{name: "flags after -- belong to the command", args: []string{"w", "--", "ls", "--label", "x"}, ws: "w",
			want: messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: "ls", Argv: []string{"--label", "x"}}}}},
		{name: "depends on and schedule", args: []string{"w", "--label", "job", "--depends-on", "db,cache", "--depends-on", "queue",
			"--schedule", "*/5 * * * *", "--concurrency", "forbid", "--", "backup"}, ws: "w",
			want: messages.CommandRef{Label: "job", Payload: messages.Payload{Native: &messages.NativePayload{Exec: "backup", Argv: []string{}}},
				DependsOn: []string{"db", "cache", "queue"}, Schedule: "*/5 * * * *", Concurrency: messages.ConcurrencyForbid}},
		{name: "bad concurrency", args: []string{"w", "--concurrency", "queue", "--", "ls"}, usage: "queue"},
		{name: "no workspace", args: []string{"--", "ls"}, usage: "missing WS"},
		{name: "nothing", args: nil, usage: "missing WS"},
		{name: "no command", args: []string{"w"}, usage: "missing the command"},
		{name: "no command after --", args: []string{"w", "--"}, usage: "missing the command"},
		{name: "two words before --", args: []string{"w", "x", "--", "ls"}, usage: `unexpected argument "x" before --`},
		{name: "bad restart", args: []string{"w", "--restart", "on-error", "--", "ls"}, usage: `"on-error" is not one of never, on-failure or always`},
		{name: "backoff with never", args: []string{"w", "--backoff", "1s", "--", "ls"}, usage: "--backoff needs --restart"},
		{name: "max-restarts with never", args: []string{"w", "--max-restarts", "2", "--", "ls"}, usage: "--max-restarts needs"},
		{name: "backoff above max", args: []string{"w", "--restart", "always", "--backoff", "1m", "--max-backoff", "1s", "--", "ls"}, usage: "above --max-backoff"},
		{name: "negative max-restarts", args: []string{"w", "--restart", "always", "--max-restarts", "-1", "--", "ls"}, usage: "--max-restarts"},
		{name: "bad env", args: []string{"w", "--env", "=1", "--", "ls"}, usage: "empty variable name"},
		{name: "bad backoff", args: []string{"w", "--restart", "always", "--backoff", "fast", "--", "ls"}, usage: "not a duration"},
		{
			name: "stop and success fields",
			args: []string{"w", "--restart", "on-failure", "--stop-signal", "INT", "--stop-timeout", "1500ms",
				"--success-codes", "0,143", "--success-codes", "2, 143", "--", "sleep", "9"},
			ws: "w",
			want: messages.CommandRef{
				Payload:          messages.Payload{Native: &messages.NativePayload{Exec: "sleep", Argv: []string{"9"}}},
				StopSignal:       "INT",
				StopTimeoutMs:    1500,
				SuccessExitCodes: []int{0, 143, 2},
				Supervision: messages.Supervision{Restart: &messages.RestartPolicy{On: messages.RestartOnFailure,
					BackoffMs: 200, MaxBackoffMs: 30000}},
			},
		},
		{name: "stop signal by number", args: []string{"w", "--stop-signal", "15", "--", "ls"}, ws: "w",
			want: messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: "ls"}}, StopSignal: "15"}},
		{name: "success codes one", args: []string{"w", "--success-codes", "3", "--", "ls"}, ws: "w",
			want: messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: "ls"}}, SuccessExitCodes: []int{3}}},
		{name: "bad stop signal", args: []string{"w", "--stop-signal", "TERMINATE", "--", "ls"}, usage: `--stop-signal: "TERMINATE" is not a signal name or number`},
		{name: "stop signal out of range", args: []string{"w", "--stop-signal", "65", "--", "ls"}, usage: "signal 65 is out of range"},
		{name: "empty stop signal", args: []string{"w", "--stop-signal", " ", "--", "ls"}, usage: "--stop-signal: empty signal"},
		{name: "bad stop timeout", args: []string{"w", "--stop-timeout", "soon", "--", "ls"}, usage: "not a duration"},
		{name: "zero stop timeout", args: []string{"w", "--stop-timeout", "0s", "--", "ls"}, usage: "--stop-timeout must be at least 1ms"},
		{name: "negative stop timeout", args: []string{"w", "--stop-timeout", "-1s", "--", "ls"}, usage: "stop-timeout"},
		{name: "success code too big", args: []string{"w", "--success-codes", "0,256", "--", "ls"}, usage: "256 is not an exit code (0 to 255)"},
		{name: "success code negative", args: []string{"w", "--success-codes", "-1", "--", "ls"}, usage: "-1 is not an exit code"},
		{name: "success code word", args: []string{"w", "--success-codes", "ok", "--", "ls"}, usage: `"ok" is not an exit code`},
		{name: "success code empty item", args: []string{"w", "--success-codes", "0,,1", "--", "ls"}, usage: "empty exit code"},
		{name: "success code empty", args: []string{"w", "--success-codes", "", "--", "ls"}, usage: "empty exit code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := clitest.Parse(t, NewCmdExec, tt.args, tt.usage)
			if got == nil {
				return
			}
			if got.Workspace != tt.ws {
				t.Errorf("workspace %q, want %q", got.Workspace, tt.ws)
			}
			ref := got.Command()
			if ref.Payload.Native.Argv == nil {
				ref.Payload.Native.Argv = []string{}
			}
			if tt.want.Payload.Native.Argv == nil {
				tt.want.Payload.Native.Argv = []string{}
			}
			if !reflect.DeepEqual(ref, tt.want) {
				t.Errorf("command = %+v %+v %+v\nwant      %+v %+v %+v", ref, ref.Payload.Native, ref.Supervision.Restart,
					tt.want, tt.want.Payload.Native, tt.want.Supervision.Restart)
			}
		})
	}
}

func TestExecRun(t *testing.T) {
	fc := &clitest.FakeClient{}
	f, out, _ := clitest.Factory(fc, time.Now())
	if err := clitest.Run(NewCmdExec(f, nil), "w", "--label", "x", "--", "true"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "01ARZ3NDEKTSV4RRFFQ69G5FAW\n" || fc.ExecRef.Label != "x" {
		t.Errorf("stdout %q, sent %+v", out.String(), fc.ExecRef)
	}
}
