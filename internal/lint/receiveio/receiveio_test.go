package receiveio

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestActorsReceiveNoBlockingCalls is the check itself: no Receive of the
// actors and persistence packages blocks, directly or through the
// package's functions.
func TestActorsReceiveNoBlockingCalls(t *testing.T) {
	found, err := Check(".", "github.com/shipote/shipote/actors", "github.com/shipote/shipote/persistence")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("blocking call inside a Receive: %s", f)
	}
}

// TestCatchesPlantedViolations runs the checker on testdata/bad, whose
// lines marked "// want" must be reported and no other.
func TestCatchesPlantedViolations(t *testing.T) {
	found, err := Check(".", "./testdata/bad")
	if err != nil {
		t.Fatal(err)
	}
	want := wantLines(t, filepath.Join("testdata", "bad", "bad.go"))
	got := make(map[int]Finding)
	for _, f := range found {
		if filepath.Base(f.Pos.Filename) != "bad.go" {
			t.Errorf("finding outside bad.go: %s", f)
			continue
		}
		got[f.Pos.Line] = f
	}
	for line := range want {
		if _, ok := got[line]; !ok {
			t.Errorf("bad.go:%d: planted blocking call not reported", line)
		}
	}
	for line, f := range got {
		if !want[line] {
			t.Errorf("bad.go:%d: reported but not planted: %s", line, f)
		}
	}
	// The chain names how the call is reached.
	for _, f := range found {
		if f.Call == "os/exec.LookPath" && strings.Join(f.Chain, " -> ") != "actor.Receive -> actor.deep -> actor.deeper" {
			t.Errorf("chain of %s: %v", f.Call, f.Chain)
		}
	}
}

func TestCheckBadInput(t *testing.T) {
	for _, pattern := range []string{"./testdata/nosuch", "github.com/shipote/shipote/nosuch"} {
		if _, err := Check(".", pattern); err == nil {
			t.Errorf("Check(%q): no error", pattern)
		}
	}
}

func wantLines(t *testing.T, path string) map[int]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := make(map[int]bool)
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		if strings.HasSuffix(strings.TrimSpace(s.Text()), "// want") {
			want[n] = true
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatal("no planted call in", path)
	}
	return want
}
