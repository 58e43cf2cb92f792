package modules

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// modulePath returns the module line of dir/go.mod.
func modulePath(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return strings.TrimPrefix(string(line), "module ")
}

func TestDirs(t *testing.T) {
	here, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	benchDir := filepath.Dir(filepath.Dir(here)) // bench/internal/modules
	root := filepath.Dir(benchDir)
	for _, wd := range []string{here, benchDir, root, filepath.Join(root, "internal")} {
		t.Run(wd, func(t *testing.T) {
			t.Chdir(wd)
			gotRoot, gotBench, err := Dirs(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if gotRoot != root || gotBench != benchDir {
				t.Fatalf("Dirs = %s, %s; want %s, %s", gotRoot, gotBench, root, benchDir)
			}
			if m := modulePath(t, gotRoot); m != "github.com/shipote/shipote" {
				t.Errorf("root module %q", m)
			}
			if m := modulePath(t, gotBench); m != "github.com/shipote/shipote/bench" {
				t.Errorf("bench module %q", m)
			}
		})
	}
}

func TestDirsOutsideTheRepository(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("GO111MODULE", "on")
	t.Setenv("GOWORK", "off")
	if _, _, err := Dirs(context.Background()); err == nil || !strings.Contains(err.Error(), "no Go module") {
		t.Fatalf("Dirs in %s: %v, want an error naming no Go module", dir, err)
	}
	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(other)
	if _, _, err := Dirs(context.Background()); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Fatalf("Dirs in another module: %v, want an error", err)
	}
}

func TestBuild(t *testing.T) {
	_, benchDir, err := Dirs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "floor")
	if err := Build(context.Background(), benchDir, "./internal/floor", out); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("built %s: %v %v", out, fi, err)
	}
	err = Build(context.Background(), benchDir, "./no/such/package", filepath.Join(t.TempDir(), "x"))
	if err == nil || !strings.Contains(err.Error(), "./no/such/package") {
		t.Fatalf("Build of a missing package: %v", err)
	}
}
