package server_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap/zapcore"

	"github.com/shipote/shipote"
)

// TestPeerCredentials runs a client as user nobody (uid 65534) with
// setpriv: the daemon answers 403 and logs the refusal. The same client
// run as this user is served.
func TestPeerCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) is missing")
	}
	// The socket and a copy of the test binary must be reachable by
	// nobody for this test only.
	dir, err := os.MkdirTemp("/tmp", "sapeer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := serve(t, startEngine(t, shipote.Config{}), dir)
	if err := os.Chmod(d.sock, 0o666); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "client.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}

	run := func(prefix ...string) string {
		t.Helper()
		args := append(prefix, bin, "-test.run=^$")
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), helperEnv+"=client", helperSocketEnv+"="+d.sock)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run(); got != "ok" {
		t.Errorf("as root: %q, want ok", got)
	}
	got := run(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")
	if !strings.HasPrefix(got, "error 403 refused ") || !strings.Contains(got, "user 65534") {
		t.Errorf("as nobody: %q, want a 403 refusal naming uid 65534", got)
	}
	warns := d.logs.FilterMessage("refused a request from another user").FilterLevelExact(zapcore.WarnLevel).All()
	if len(warns) != 1 {
		t.Fatalf("%d refusal log lines, want 1", len(warns))
	}
	fields := warns[0].ContextMap()
	if fields["uid"] != int64(65534) || fields["pid"] == int64(0) || fields["path"] != "/v1/workspaces" {
		t.Errorf("refusal log fields = %v", fields)
	}
}
