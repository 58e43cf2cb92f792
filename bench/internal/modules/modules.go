// Package modules finds the two Go modules of the repository from the
// working directory, so that the harness can build their commands with
// `go -C DIR build`: bench/ is a module of its own (github.com/shipote/shipote
// replaced by ../), and the shipote command is built in the main module,
// whose go.mod holds the requirements of the daemon and the CLI.
package modules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Dirs returns the directories of the main module (root) and of the bench
// module. The working directory must be inside either of them: anywhere in
// the repository.
func Dirs(ctx context.Context) (root, bench string, err error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := string(bytes.TrimSpace(out))
	if gomod == "" || gomod == os.DevNull {
		return "", "", errors.New("modules: the working directory is in no Go module; run from the shipote repository")
	}
	dir := filepath.Dir(gomod)
	if _, err := os.Stat(filepath.Join(dir, "bench", "go.mod")); err == nil {
		return dir, filepath.Join(dir, "bench"), nil
	}
	if _, err := os.Stat(filepath.Join(dir, "..", "go.mod")); err == nil && filepath.Base(dir) == "bench" {
		return filepath.Dir(dir), dir, nil
	}
	return "", "", fmt.Errorf("modules: %s is neither the shipote module nor its bench module", gomod)
}

// Build builds the package pkg (a path relative to dir, like ./cmd/shipote)
// of the module in dir into the file out, with the build tags given.
func Build(ctx context.Context, dir, pkg, out string, tags ...string) error {
	out, err := filepath.Abs(out) // -C would make a relative out relative to dir
	if err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	args := []string{"-C", dir, "build", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	b, err := exec.CommandContext(ctx, "go", append(args, pkg)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s in %s: %w: %s", pkg, dir, err, b)
	}
	return nil
}
