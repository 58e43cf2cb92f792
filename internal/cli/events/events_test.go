// This file tests package events: flag parsing (argv to options, or a usage
// error) and what the commands print.

package events

import (
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/cli/clitest"
	"github.com/shipote/shipote/messages"
)

func TestEventsRun(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.Local)
	fc := &clitest.FakeClient{EventList: []messages.Event{
		{Time: t0, Kind: messages.EventCreated, Workspace: "W1", Label: "build"},
		{Time: t0.Add(time.Second), Kind: messages.EventExited, Label: "build", Command: "web", Message: "exit 1"},
	}}
	f, out, _ := clitest.Factory(fc, t0)
	if err := clitest.Run(NewCmdEvents(f, nil)); err != nil {
		t.Fatal(err)
	}
	want := "12:00:00.000  created   ws=build\n12:00:01.000  exited    ws=build cmd=web  exit 1\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	out.Reset()
	if err := clitest.Run(NewCmdEvents(f, nil), "-o", "json"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "[\n") {
		t.Errorf("-o json: want an array, got %s", out.String())
	}
	out.Reset()
	if err := clitest.Run(NewCmdEvents(f, nil), "-f", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], `{"time":`) {
		t.Errorf("-f -o json: want one object per line, got %s", out.String())
	}
	if err := clitest.Run(NewCmdEvents(f, nil), "x"); !clitest.IsUsage(err) {
		t.Errorf("argument: %v", err)
	}
}
