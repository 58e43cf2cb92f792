package layering

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const (
	module = "github.com/shipote/shipote"
	actors = module + "/actors"
	root   = module
)

// graph returns every package the patterns depend on (with test imports
// of the matched packages), each with its imports.
func graph(t *testing.T, patterns ...string) (targets []string, imports map[string][]string) {
	t.Helper()
	args := append([]string{"list", "-deps", "-test", "-f", "{{.ImportPath}}|{{.Module}}|{{join .Imports \",\"}}|{{.DepOnly}}"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = "../../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	imports = make(map[string][]string)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) != 4 {
			t.Fatalf("go list line %q", sc.Text())
		}
		path := f[0]
		if f[2] != "" {
			imports[path] = strings.Split(f[2], ",")
		}
		if f[3] == "false" && strings.HasPrefix(path, module) {
			targets = append(targets, path)
		}
	}
	if len(targets) == 0 {
		t.Fatalf("go list %v matched no package", patterns)
	}
	return targets, imports
}

// reaches reports the import path from pkg to target that does not go
// through a package in skip, or nil.
func reaches(imports map[string][]string, pkg, target string, skip map[string]bool) []string {
	prev := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == target {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append([]string{p}, path...)
			}
			return path
		}
		for _, im := range imports[p] {
			// A test variant is listed as "pkg [pkg.test]".
			if _, seen := prev[im]; seen || skip[strings.Fields(im)[0]] {
				continue
			}
			prev[im] = p
			queue = append(queue, im)
		}
	}
	return nil
}

// TestProtocolUsersDoNotImportActors: persistence does not depend on the
// actors at all; the API and the CLI reach them only through the root
// package, the Engine that the API's server serves and the daemon runs.
func TestProtocolUsersDoNotImportActors(t *testing.T) {
	for _, c := range []struct {
		pattern string
		skip    map[string]bool
	}{
		{"./persistence/...", nil},
		{"./api/...", map[string]bool{root: true}},
		{"./internal/cli/...", map[string]bool{root: true}},
	} {
		targets, imports := graph(t, c.pattern)
		for _, pkg := range targets {
			if path := reaches(imports, pkg, actors, c.skip); path != nil {
				t.Errorf("%s depends on %s: %s", pkg, actors, strings.Join(path, " -> "))
			}
		}
	}
}

// TestReachesFindsAnImport checks the graph walk on the module itself:
// the root package imports actors.
func TestReachesFindsAnImport(t *testing.T) {
	_, imports := graph(t, ".")
	if reaches(imports, root, actors, nil) == nil {
		t.Fatalf("no path from %s to %s found", root, actors)
	}
	if path := reaches(imports, root, actors, map[string]bool{actors: true}); path != nil {
		t.Fatalf("skipped package reached: %v", path)
	}
}
