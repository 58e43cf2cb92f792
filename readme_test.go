package shipote

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMETour checks the tour against what it does: it stops its own
// daemon by PID (pkill -f would kill every shipote daemon on the host), the
// top sample lists as workspaces only those the tour creates, and it says
// what comes back after a crash.
func TestREADMETour(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	if strings.Contains(readme, "pkill") || strings.Contains(readme, "killall") {
		t.Error("README stops daemons by name")
	}
	if !strings.Contains(readme, "daemon_pid=$!") || !strings.Contains(readme, "kill -9 $daemon_pid") {
		t.Error("README does not stop the daemon by its own PID")
	}
	created := map[string]bool{}
	for _, m := range regexp.MustCompile(`ws create --label (\S+)`).FindAllStringSubmatch(readme, -1) {
		created[m[1]] = true
	}
	// Workspace rows of the top sample: a label, then an 8-character ID.
	rows := regexp.MustCompile(`(?m)^[▸ ] (\S+)\s+[0-9A-Z]{8}\s+\d+/\d+`).FindAllStringSubmatch(readme, -1)
	if len(rows) == 0 {
		t.Fatal("no workspace row in the top sample")
	}
	for _, r := range rows {
		if !created[r[1]] {
			t.Errorf("top sample shows workspace %q, which the tour does not create (it creates %v)", r[1], created)
		}
	}
	if !strings.Contains(readme, "What comes back after a crash") {
		t.Error("README does not say what comes back after a crash")
	}
}
