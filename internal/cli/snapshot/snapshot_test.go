// This file tests package snapshot: flag parsing (argv to options, or a usage
// error) and what the commands print.

package snapshot

import (
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/cli/clitest"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/persistence"
)

func TestSnapshotRun(t *testing.T) {
	fc := &clitest.FakeClient{State: &persistence.State{Version: 4,
		Workspaces:     []persistence.WorkspaceEntry{{ID: "W1", Spec: messages.WorkspaceSpec{Label: "build"}}},
		SavedPipelines: []persistence.SavedPipeline{{Name: "fan", Spec: messages.PipelineSpec{Label: "fan"}}},
	}}
	f, out, _ := clitest.Factory(fc, time.Now())
	root := NewCmdSnapshot(f)
	if err := clitest.Run(root, "save"); err != nil || out.String() != "saved /state.json\n" {
		t.Errorf("save: %v %q", err, out.String())
	}
	out.Reset()
	if err := clitest.Run(NewCmdShow(f, nil)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Version:   4", "workspace       W1       build  0 samples", "saved pipeline  fan      fan    0 nodes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
	if err := clitest.Run(NewCmdSnapshot(f), "load"); !clitest.IsUsage(err) {
		t.Errorf("unknown subcommand: %v", err)
	}
}
