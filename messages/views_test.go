// This file tests the helpers and JSON form of the engine's views.

package messages

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestCommandStatePredicates(t *testing.T) {
	for _, tt := range []struct {
		s              CommandState
		ended, running bool
	}{
		{CommandStarting, false, false},
		{CommandRunning, false, true},
		{CommandReady, false, true},
		{CommandUnhealthy, false, true},
		{CommandBackoff, false, false},
		{CommandScheduled, false, false},
		{CommandExited, true, false},
		{CommandFailed, true, false},
		{CommandStopped, true, false},
	} {
		if got := tt.s.Ended(); got != tt.ended {
			t.Errorf("%s.Ended() = %v, want %v", tt.s, got, tt.ended)
		}
		if got := tt.s.Running(); got != tt.running {
			t.Errorf("%s.Running() = %v, want %v", tt.s, got, tt.running)
		}
	}
}

func TestCommandInfoAlive(t *testing.T) {
	for _, tt := range []struct {
		c    CommandInfo
		want bool
	}{
		{CommandInfo{State: CommandRunning, Pid: 7}, true},
		{CommandInfo{State: CommandReady, Pid: 7}, true},
		{CommandInfo{State: CommandUnhealthy, Pid: 7}, true},
		// Its ready probe has not passed: it runs.
		{CommandInfo{State: CommandStarting, Pid: 7}, true},
		// Being spawned, or waiting for its dependencies.
		{CommandInfo{State: CommandStarting}, false},
		{CommandInfo{State: CommandStarting, Readiness: ReadyWaiting, WaitingOn: []string{"db"}}, false},
		{CommandInfo{State: CommandBackoff}, false},
		{CommandInfo{State: CommandScheduled}, false},
		{CommandInfo{State: CommandExited}, false},
		{CommandInfo{State: CommandStopped}, false},
	} {
		if got := tt.c.Alive(); got != tt.want {
			t.Errorf("Alive() of %s (pid %d) = %v, want %v", tt.c.State, tt.c.Pid, got, tt.want)
		}
	}
}

func TestCommandInfoUptime(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start.Add(90 * time.Second)
	tests := []struct {
		c    CommandInfo
		want time.Duration
	}{
		{CommandInfo{State: CommandRunning, StartedAt: start}, 90 * time.Second},
		{CommandInfo{State: CommandRunning}, 0},
		{CommandInfo{State: CommandReady, Pid: 7, StartedAt: start}, 90 * time.Second},
		{CommandInfo{State: CommandUnhealthy, Pid: 7, StartedAt: start}, 90 * time.Second},
		{CommandInfo{State: CommandStarting, Pid: 7, StartedAt: start}, 90 * time.Second},
		{CommandInfo{State: CommandStarting, StartedAt: start}, 0}, // an earlier run's start
		{CommandInfo{State: CommandExited, StartedAt: start}, 0},
		{CommandInfo{State: CommandBackoff, StartedAt: start}, 0},
	}
	for _, tt := range tests {
		if got := tt.c.Uptime(now); got != tt.want {
			t.Errorf("Uptime() of %s = %v, want %v", tt.c.State, got, tt.want)
		}
	}
}

func TestViewsJSON(t *testing.T) {
	info := WorkspaceInfo{ID: NewID(), Spec: WorkspaceSpec{Label: "w"}, CreatedAt: time.Unix(1, 0).UTC()}
	b, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, absent := range []string{"deadline", "stats", "soma", "permissions", "limits_backend"} {
		if strings.Contains(s, `"`+absent+`"`) {
			t.Errorf("%s has %q, which should be omitted when zero", s, absent)
		}
	}
	var back WorkspaceInfo
	if err := DecodeJSON(b, &back); err != nil {
		t.Fatalf("DecodeJSON(%s) = %v", b, err)
	}
	if back.ID != info.ID || back.Spec.Label != "w" || !back.CreatedAt.Equal(info.CreatedAt) {
		t.Errorf("round trip gave %+v", back)
	}

	code := 3
	c := CommandInfo{ID: NewID(), Label: "c", Spec: webCommand(), State: CommandExited, ExitCode: &code}
	b, err = json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"supervision"`) {
		t.Errorf("one_shot supervision should be omitted: %s", b)
	}
	var cb CommandInfo
	if err := DecodeJSON(b, &cb); err != nil || cb.ExitCode == nil || *cb.ExitCode != 3 || cb.Spec.Payload.Native.Exec != "/usr/bin/python3" {
		t.Errorf("round trip of %s gave %+v, %v", b, cb, err)
	}
}

func TestPipelineStateEnded(t *testing.T) {
	for s, want := range map[PipelineState]bool{
		PipelineRunning: false, PipelineBackoff: false,
		PipelineSucceeded: true, PipelineFailed: true, PipelineGaveUp: true, PipelineStopped: true,
	} {
		if got := s.Ended(); got != want {
			t.Errorf("%s.Ended() = %v, want %v", s, got, want)
		}
	}
}
