package layering

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	module = "github.com/shipote/shipote"
	actors = module + "/actors"
	root   = module
)

// clientSide are the packages that must not link the actor runtime: the
// patterns of `go list -deps ./persistence ./api ./internal/cli/...`.
var clientSide = []string{"./persistence", "./api", "./internal/cli/..."}

// goList runs go list at the module's root with args, and an overlay of
// the files in overlay (path from the module root -> content) when it is
// not empty.
func goList(t *testing.T, overlay map[string]string, args ...string) []byte {
	t.Helper()
	modRoot, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if len(overlay) > 0 {
		dir := t.TempDir()
		replace := make(map[string]string)
		for path, content := range overlay {
			file := filepath.Join(dir, strings.ReplaceAll(path, "/", "_"))
			if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			replace[filepath.Join(modRoot, path)] = file
		}
		data, err := json.Marshal(map[string]any{"Replace": replace})
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"-overlay", file}, args...)
	}
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = modRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v: %s", args, err, stderr.String())
	}
	return out
}

// actorPackages returns the packages that match /actors in `go list -deps
// patterns` (with -test, the dependencies of their tests too).
func actorPackages(t *testing.T, overlay map[string]string, test bool, patterns ...string) []string {
	t.Helper()
	args := []string{"-deps"}
	if test {
		args = append(args, "-test")
	}
	var found []string
	sc := bufio.NewScanner(bytes.NewReader(goList(t, overlay, append(args, patterns...)...)))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "/actors") {
			found = append(found, sc.Text())
		}
	}
	return found
}

// graph returns every package the patterns depend on (with test imports
// of the matched packages), each with its imports.
func graph(t *testing.T, overlay map[string]string, patterns ...string) (targets []string, imports map[string][]string) {
	t.Helper()
	out := goList(t, overlay, append([]string{"-deps", "-test", "-f", "{{.ImportPath}}|{{join .Imports \",\"}}|{{.DepOnly}}"}, patterns...)...)
	imports = make(map[string][]string)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) != 3 {
			t.Fatalf("go list line %q", sc.Text())
		}
		path := f[0]
		if f[1] != "" {
			imports[path] = strings.Split(f[1], ",")
		}
		if f[2] == "false" && strings.HasPrefix(path, module) {
			targets = append(targets, path)
		}
	}
	if len(targets) == 0 {
		t.Fatalf("go list %v matched no package", patterns)
	}
	return targets, imports
}

// reaches reports the import path from pkg to target, or nil.
func reaches(imports map[string][]string, pkg, target string) []string {
	prev := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		// A test variant is listed as "pkg [pkg.test]".
		if strings.Fields(p)[0] == target {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append([]string{p}, path...)
			}
			return path
		}
		for _, im := range imports[p] {
			if _, seen := prev[im]; seen {
				continue
			}
			prev[im] = p
			queue = append(queue, im)
		}
	}
	return nil
}

// violations checks the client side (with the files of overlay added) and
// returns what is wrong: each package of the module that reaches actors,
// with the chain of imports, or the bare package list when no chain
// explains it.
func violations(t *testing.T, overlay map[string]string, test bool) []string {
	t.Helper()
	found := actorPackages(t, overlay, test, clientSide...)
	if len(found) == 0 {
		return nil
	}
	var out []string
	targets, imports := graph(t, overlay, clientSide...)
	for _, pkg := range targets {
		if path := reaches(imports, pkg, actors); path != nil {
			out = append(out, pkg+": "+strings.Join(path, " -> "))
		}
	}
	if len(out) == 0 {
		out = append(out, "go list -deps lists "+strings.Join(found, ", "))
	}
	return out
}

// TestClientSideLinksNoActors is the layering rule: `go list -deps
// ./persistence ./api ./internal/cli/...` lists no package matching
// /actors, and neither do the tests of those packages.
func TestClientSideLinksNoActors(t *testing.T) {
	for _, test := range []bool{false, true} {
		for _, v := range violations(t, nil, test) {
			t.Errorf("client side (-test=%v) links the actor runtime: %s", test, v)
		}
	}
}

// TestReaddedImportIsCaught adds, through a go list overlay, a file that
// brings the actors back into a client-side package: directly, or through
// the root package (the Engine) that hosts them. The rule must catch each
// and name the chain.
func TestReaddedImportIsCaught(t *testing.T) {
	for _, tc := range []struct {
		name, file, content, via string
	}{
		{"api through the engine", "api/zz_layering.go", "package api\n\nimport _ \"" + root + "\"\n", root},
		{"cli command through the engine", "internal/cli/version/zz_layering.go", "package version\n\nimport _ \"" + root + "\"\n", root},
		{"cli command directly", "internal/cli/ps/zz_layering.go", "package ps\n\nimport _ \"" + actors + "\"\n", actors},
		{"cli test", "internal/cli/zz_layering_test.go", "package cli\n\nimport _ \"" + root + "\"\n", root},
	} {
		t.Run(tc.name, func(t *testing.T) {
			test := strings.HasSuffix(tc.file, "_test.go")
			vs := violations(t, map[string]string{tc.file: tc.content}, test)
			if len(vs) == 0 {
				t.Fatalf("adding %s went unnoticed", tc.file)
			}
			dir := module + "/" + filepath.Dir(tc.file)
			var named bool
			for _, v := range vs {
				named = named || (strings.HasPrefix(v, dir) && strings.Contains(v, " -> "+tc.via))
			}
			if !named {
				t.Errorf("violations %q do not name %s and its import of %s", vs, dir, tc.via)
			}
			if !test && len(actorPackages(t, map[string]string{tc.file: tc.content}, false, clientSide...)) == 0 {
				t.Errorf("go list -deps %v lists no actors package with %s", clientSide, tc.file)
			}
		})
	}
}
