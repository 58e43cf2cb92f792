// This file checks examples/stack: it loads (strictly, with its env file),
// validates, and plans as a fresh apply would.

package apply

import (
	"regexp"
	"strings"
	"testing"

	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/internal/plan"
)

// probeFields are the command fields of readiness, health, dependencies
// and schedules; a build without them cannot read the example.
var probeFields = map[string]bool{"ready": true, "health": true, "depends_on": true, "schedule": true, "concurrency": true}

var unknownField = regexp.MustCompile(`unknown field "[^"]*\.([a-z_]+)"`)

func TestStackExample(t *testing.T) {
	ios, _, _, _ := cmdutil.Test()
	const path = "../../../examples/stack/stack.yaml"
	f, err := cmdutil.LoadUpFile(ios, path)
	if err != nil {
		if m := unknownField.FindStringSubmatch(err.Error()); m != nil && probeFields[m[1]] {
			t.Skipf("this build has no %s field: %v", m[1], err)
		}
		t.Fatal(err)
	}
	project, err := Project("", f, path)
	if err != nil || project != "stack" {
		t.Fatalf("project = %q, %v", project, err)
	}
	p, err := plan.Compute(project, f, plan.Current{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range p.Entries {
		got = append(got, string(e.Action)+" "+e.Workspace+"/"+e.Name)
	}
	want := "create stack/ create stack/web create stack/worker-0 create stack/worker-1 create stack/nightly create /stack-logs"
	if strings.Join(got, " ") != want {
		t.Fatalf("plan = %q, want %q", got, want)
	}
	web := p.Entries[1].Command
	if env := strings.Join(web.Payload.Native.Envp, " "); env != "GREETING=hello from shipote PORT=8080 WORKER_INTERVAL_S=5" {
		t.Fatalf("web's envp from stack.env = %q", env)
	}
}
