// This file tests package ps: flag parsing (argv to options, or a usage
// error) and what the commands print.

package ps

import (
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/cli/clitest"
	"github.com/shipote/shipote/messages"
)

func TestPsRun(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	one, two := 1, 0
	fc := &clitest.FakeClient{
		WorkspaceList: []messages.WorkspaceInfo{{ID: "W1", Spec: messages.WorkspaceSpec{Label: "build"}}},
		CommandList: []messages.CommandInfo{
			{ID: "C1", Workspace: "W1", Label: "web", Pid: 42, State: messages.CommandRunning, StartedAt: now.Add(-65 * time.Second), Restarts: 2},
			{ID: "C2", Workspace: "W1", Label: "job", State: messages.CommandFailed, ExitCode: &one, GaveUp: true, Restarts: 3},
			{ID: "C3", Workspace: "W9", Label: "x", State: messages.CommandExited, ExitCode: &two},
			{ID: "C4", Workspace: "W1", Label: "k", State: messages.CommandFailed, Signal: "SIGKILL"},
			{ID: "C5", Workspace: "W1", Label: "s", State: messages.CommandStopped, Signal: "SIGTERM", StopReason: messages.StopUser,
				StopResult: "stopped by SIGTERM after 12ms", Restarts: 1},
			{ID: "C6", Workspace: "W1", Label: "g", State: messages.CommandStopped, StopReason: messages.StopGaveUp},
			{ID: "C7", Workspace: "W1", Label: "api", Pid: 43, State: messages.CommandStarting, StartedAt: now.Add(-time.Second),
				Readiness: messages.ReadyStarting},
			{ID: "C8", Workspace: "W1", Label: "db", Pid: 44, State: messages.CommandReady, StartedAt: now.Add(-time.Second),
				Readiness: messages.ReadyOK},
			{ID: "C9", Workspace: "W1", Label: "app", State: messages.CommandStarting, Readiness: messages.ReadyWaiting,
				WaitingOn: []string{"api", "db"}},
			{ID: "CA", Workspace: "W1", Label: "cron", State: messages.CommandScheduled, ExitCode: &two,
				NextRunAt: now.Add(90 * time.Second)},
			{ID: "CB", Workspace: "W1", Label: "nightly", State: messages.CommandScheduled, NextRunAt: now.Add(36 * time.Hour)},
			{ID: "CC", Workspace: "W1", Label: "sick", Pid: 45, State: messages.CommandUnhealthy, StartedAt: now.Add(-time.Minute),
				Readiness: messages.ReadyUnhealthy},
			{ID: "CD", Workspace: "W1", Label: "plain", Pid: 46, State: messages.CommandRunning, StartedAt: now.Add(-2 * time.Second),
				Readiness: messages.ReadyOK},
		},
	}
	f, out, _ := clitest.Factory(fc, now)
	if err := clitest.Run(NewCmdPs(f, nil)); err != nil {
		t.Fatal(err)
	}
	want := `ID  WORKSPACE  LABEL    PID  STATE                RESTARTS  UPTIME  READY           NEXT
C1  build      web      42   running              2         1m05s   -               -
C2  build      job      -    failed (1, gave up)  3         -       -               -
C3  W9         x        -    exited (0)           0         -       -               -
C4  build      k        -    failed (SIGKILL)     0         -       -               -
C5  build      s        -    stopped (user)       1         -       -               -
C6  build      g        -    stopped (gave up)    0         -       -               -
C7  build      api      43   starting             0         1s      starting        -
C8  build      db       44   ready                0         1s      ready           -
C9  build      app      -    starting             0         -       waiting:api,db  -
CA  build      cron     -    scheduled (0)        0         -       -               12:01:30
CB  build      nightly  -    scheduled            0         -       -               2025-01-03T00:00
CC  build      sick     45   unhealthy            0         1m00s   unhealthy       -
CD  build      plain    46   running              0         2s      ready           -
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	if err := clitest.Run(NewCmdPs(f, nil), "build", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"label": "web"`, `"state": "stopped"`, `"stop_reason": "user"`, `"stop_result": "stopped by SIGTERM after 12ms"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("json lacks %s: %s", want, out.String())
		}
	}
	if err := clitest.Run(NewCmdPs(f, nil), "a", "b"); !clitest.IsUsage(err) {
		t.Errorf("two arguments: %v", err)
	}
}

func TestStateNamesWhoKilled(t *testing.T) {
	for _, tc := range []struct {
		c    messages.CommandInfo
		want string
	}{
		{messages.CommandInfo{State: messages.CommandFailed, Signal: "SIGKILL"}, "failed (SIGKILL)"},
		{messages.CommandInfo{State: messages.CommandFailed, Signal: "SIGKILL", KilledBy: "oom"}, "killed (oom)"},
		{messages.CommandInfo{State: messages.CommandFailed, Signal: "SIGKILL", KilledBy: "quota"}, "killed (quota)"},
		{messages.CommandInfo{State: messages.CommandFailed, Signal: "SIGKILL", KilledBy: "oom", GaveUp: true}, "killed (oom, gave up)"},
		{messages.CommandInfo{State: messages.CommandBackoff, Signal: "SIGKILL", KilledBy: "oom"}, "backoff (oom)"},
	} {
		if got := State(tc.c); got != tc.want {
			t.Errorf("State(%+v) = %q, want %q", tc.c, got, tc.want)
		}
	}
}
