package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLeakcheck runs the built command on commands that leave nothing, fail,
// and leave a setsid grandchild behind (the leak it exists to catch).
func TestLeakcheck(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "leakcheck")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	mark, mark2 := filepath.Join(t.TempDir(), "pid"), filepath.Join(t.TempDir(), "pid2")
	for _, tc := range []struct {
		name   string
		argv   []string
		status int
		stderr string
	}{
		{"clean", []string{"sh", "-c", "sleep 0.1 & wait"}, 0, ""},
		{"failing", []string{"sh", "-c", "exit 3"}, 3, ""},
		{"killed by a signal", []string{"sh", "-c", "kill -TERM $$"}, 143, ""},
		{"setsid grandchild", []string{"sh", "-c", "setsid sleep 1000 & echo $! > " + mark}, 1, "1 processes outlived"},
		{"leak and failure", []string{"sh", "-c", "setsid sleep 1000 & echo $! > " + mark2 + "; exit 4"}, 4, "sleep 1000"},
		// An orphan that exits is reaped at once, as init would, so that
		// kill -0 tells it is gone while the command still runs.
		{"orphan reaped", []string{"sh", "-c", `pid=$(sh -c 'sleep 0.2 >/dev/null 2>&1 & echo $!'); i=0; while kill -0 $pid 2>/dev/null; do i=$((i+1)); [ $i -lt 600 ] || exit 7; sleep 0.05; done`}, 0, ""},
		{"no command", nil, 2, "usage: leakcheck"},
		{"missing program", []string{"/nonexistent/prog"}, 2, "leakcheck:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.argv...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tc.status {
				t.Errorf("status %d, want %d; stderr:\n%s", status, tc.status, stderr.String())
			}
			if tc.stderr != "" && !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, stderr.String())
			}
			if tc.stderr == "" && stderr.Len() > 0 {
				t.Errorf("unexpected stderr:\n%s", stderr.String())
			}
		})
	}
	// The leaked sleepers were killed.
	for _, m := range []string{mark, mark2} {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		var pid int
		if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &pid); err != nil || pid <= 1 {
			t.Fatalf("pid file %q: %v", b, err)
		}
		if state, _, ok := stat(pid); ok && state != "Z" {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("the leaked sleeper %d still runs", pid)
		}
	}
}
