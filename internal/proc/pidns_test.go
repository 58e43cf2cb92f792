package proc

import (
	"os"
	"strings"
	"testing"
)

func TestPIDNamespaceQuick(t *testing.T) {
	s := NewSpawner()
	t.Cleanup(s.Close)
	r, w, _ := os.Pipe()
	p, err := s.Start(Spec{Path: "/bin/sh", Args: []string{"-c", "echo $$ $PPID; env; exit 3"}, Stdout: w})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4096)
	n, _ := r.Read(b)
	t.Logf("pid %d out %q orphans %s", p.Pid, strings.TrimSpace(string(b[:n])), s.Orphans())
	t.Log(p.Wait())
}
