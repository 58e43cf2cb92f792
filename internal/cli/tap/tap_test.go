// This file tests package tap: flag parsing (argv to options, or a usage
// error) and what the commands print.

package tap

import (
	"testing"
	"time"

	"github.com/shipote/shipote/internal/cli/clitest"
)

func TestTapRun(t *testing.T) {
	fc := &clitest.FakeClient{TapData: "a\nb\n"}
	f, out, _ := clitest.Factory(fc, time.Now())
	if err := clitest.Run(NewCmdTap(f, nil), "fan", "--node", "gen"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "a\nb\n" {
		t.Errorf("got %q", out.String())
	}
	if err := clitest.Run(NewCmdTap(f, nil)); !clitest.IsUsage(err) {
		t.Errorf("no run: %v", err)
	}
}
