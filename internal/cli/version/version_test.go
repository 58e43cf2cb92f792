// This file tests package version: flag parsing (argv to options, or a usage
// error) and what the commands print.

package version

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/internal/cli/clitest"
	"github.com/shipote/shipote/internal/proc"
)

func TestVersionRun(t *testing.T) {
	fc := &clitest.FakeClient{VersionInfo: &api.VersionInfo{Version: "9.9", GoVersion: "go1.26", LimitsBackend: "cgroup1", Orphans: "pid-namespace (kernel)", Socket: "/s"}}
	f, out, _ := clitest.Factory(fc, time.Now())
	f.Version = "1.2.3"
	if err := clitest.Run(NewCmdVersion(f, nil)); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "client: shipote 1.2.3 ("+runtime.Version()+")\n") || !strings.Contains(out.String(), "daemon: shipote 9.9 (go1.26), limits cgroup1, state none, socket /s\norphans: pid-namespace (kernel)\n") {
		t.Errorf("got %q", out.String())
	}
	down := &clitest.FakeClient{Err: fmt.Errorf("%w: dial", api.ErrUnreachable)}
	f, out, _ = clitest.Factory(down, time.Now())
	if err := clitest.Run(NewCmdVersion(f, nil)); err != nil {
		t.Fatalf("an unreachable daemon is not an error for version: %v", err)
	}
	if !strings.Contains(out.String(), "daemon: not reachable") ||
		!strings.Contains(out.String(), "\norphans: "+proc.HostOrphans()+" (for a daemon started by this user)\n") {
		t.Errorf("got %q", out.String())
	}
}
