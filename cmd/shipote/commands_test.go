// This file checks the command tree that main builds: the client commands
// of package cli, and the engine-hosting ones that main adds.

package main

import (
	"strings"
	"testing"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/internal/cli"
	"github.com/shipote/shipote/internal/cli/cmdutil"
)

func TestCommandTree(t *testing.T) {
	ios, _, out, _ := cmdutil.Test()
	f := &cmdutil.Factory{IO: ios, Socket: "/tmp/test.sock"}
	root := cli.NewRootCmd(f, options()...)
	for _, name := range []string{"daemon", "up"} {
		c, _, err := root.Find([]string{name})
		if err != nil || c.Name() != name {
			t.Fatalf("%s is not in the tree: %v", name, err)
		}
		if c.GroupID != "run" {
			t.Errorf("%s in group %q, want run", name, c.GroupID)
		}
		if c.InheritedFlags().Lookup("socket") == nil {
			t.Errorf("%s: no --socket", name)
		}
	}
	if want := shipote.Version + " ("; !strings.HasPrefix(root.Version, want) {
		t.Errorf("root version %q, want %q...", root.Version, want)
	}
	root.SetArgs([]string{"--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	run, _, _ := strings.Cut(out.String(), "Inspecting:")
	for _, line := range []string{"\n  daemon ", "\n  up ", "\n  ws "} {
		if !strings.Contains(run, line) {
			t.Errorf("help lists no %q under Running:\n%s", strings.TrimSpace(line), out.String())
		}
	}
}
