// resolve_test.go checks Resolve and CheckAllowed against the real file system.

package proc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "tool")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		exec    string
		env     []string
		want    string
		wantErr error
		msg     string // exact error message when set
		substr  string // substring of the error message when set
	}{
		{name: "bare name on env PATH", exec: "sleep", env: []string{"PATH=/usr/bin:/bin"}, want: "/usr/bin/sleep"},
		{name: "bare name on default PATH", exec: "sleep", env: []string{"LANG=C"}, want: "/usr/bin/sleep"},
		{name: "bare name in temp dir", exec: "tool", env: []string{"PATH=" + dir}, want: script},
		{name: "last PATH entry wins", exec: "tool", env: []string{"PATH=/usr/bin", "PATH=" + dir}, want: script},
		{name: "absolute", exec: "/usr/bin/true", want: "/usr/bin/true"},
		{name: "absolute through a link", exec: "/bin/sh", want: "/bin/sh"},
		{name: "absolute is cleaned", exec: "/usr/bin/../bin//true", want: "/usr/bin/true"},
		{name: "dot slash refused", exec: "./tool", wantErr: ErrRelativePath,
			msg: `exec "./tool": relative path refused; give an absolute path or a bare name looked up in PATH`},
		{name: "relative with slash refused", exec: "bin/tool", wantErr: ErrRelativePath, substr: "relative path refused"},
		{name: "missing", exec: "nosuch", env: []string{"PATH=/usr/bin:/bin"}, wantErr: ErrNotFound,
			msg: `exec "nosuch": not found in PATH /usr/bin:/bin`},
		{name: "missing on empty PATH", exec: "sleep", env: []string{"PATH="}, wantErr: ErrNotFound,
			msg: `exec "sleep": not found in PATH "" (empty)`},
		{name: "relative PATH elements skipped", exec: "sleep", env: []string{"PATH=.:usr/bin:"}, wantErr: ErrNotFound},
		{name: "bare name not executable", exec: "plain", env: []string{"PATH=" + dir}, wantErr: ErrNotFound,
			msg: `exec "plain": not found in PATH ` + dir + ` (` + plain + ` exists but is not an executable file)`},
		{name: "absolute missing", exec: "/nonexistent/x", wantErr: ErrNotFound, msg: `exec "/nonexistent/x": no such file`},
		{name: "absolute not executable", exec: plain, wantErr: ErrNotExecutable,
			msg: `exec "` + plain + `": not executable (mode -rw-r--r--)`},
		{name: "directory", exec: dir, wantErr: ErrNotExecutable, msg: `exec "` + dir + `": is a directory`},
		{name: "device", exec: "/dev/null", wantErr: ErrNotExecutable, substr: "not a regular file"},
		{name: "empty", exec: "", wantErr: ErrBadName, msg: `exec "": empty executable name`},
		{name: "NUL byte", exec: "sl\x00eep", wantErr: ErrBadName, substr: "NUL byte"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(tc.exec, tc.env)
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Fatalf("Resolve(%q) = %q, %v; want %q", tc.exec, got, err, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Resolve(%q) = %q, %v; want error %v", tc.exec, got, err, tc.wantErr)
			}
			var ee *ExecError
			if !errors.As(err, &ee) || ee.Exec != tc.exec {
				t.Fatalf("error %v is not an *ExecError naming %q", err, tc.exec)
			}
			if tc.msg != "" && err.Error() != tc.msg {
				t.Fatalf("message %q, want %q", err, tc.msg)
			}
			if tc.substr != "" && !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("message %q does not contain %q", err, tc.substr)
			}
		})
	}
}

func TestResolveUnreadableDirInPath(t *testing.T) {
	// A PATH element that does not exist is skipped, not an error.
	got, err := Resolve("true", []string{"PATH=/nonexistent:/usr/bin"})
	if err != nil || got != "/usr/bin/true" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestCheckAllowed(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		allow   []string
		wantErr error
		msg     string
		substr  string
	}{
		{name: "empty allow permits anything", path: "/usr/bin/curl"},
		{name: "directory entry", path: "/usr/bin/env", allow: []string{"/usr/bin/"}},
		{name: "directory entry covers subdirectories", path: "/usr/bin/env", allow: []string{"/usr/"}},
		{name: "root directory entry", path: "/usr/bin/env", allow: []string{"/"}},
		{name: "unclean directory entry", path: "/usr/bin/env", allow: []string{"/usr//bin/./"}},
		{name: "exact entry", path: "/bin/sh", allow: []string{"/usr/bin/", "/bin/sh"}},
		{name: "exact entry matches the resolved path", path: "/bin/sh", allow: []string{"/usr/bin/dash"}},
		{name: "directory entry matches the resolved path", path: "/bin/ls", allow: []string{"/usr/bin/"}},
		{name: "resolved directory entry", path: "/usr/bin/ls", allow: []string{"/bin/"}},
		{name: "exact entry without slash is not a directory", path: "/usr/bin/env", allow: []string{"/usr/bin"},
			wantErr: ErrExecRefused, msg: `exec "/usr/bin/env": refused: not in allow_exec [/usr/bin]`},
		{name: "an allowed link allows its target", path: "/usr/bin/dash", allow: []string{"/bin/sh"}},
		{name: "the given name is not checked, only the resolved one", path: "/bin/sh", allow: []string{"/bin/sh/"},
			wantErr: ErrExecRefused, msg: `exec "/bin/sh": refused (resolves to "/usr/bin/dash"): not in allow_exec [/bin/sh/]`},
		{name: "a path that does not resolve", path: "/nonexistent/x", allow: []string{"/nonexistent/"},
			wantErr: ErrExecRefused, substr: "refused: cannot resolve"},
		{name: "prefix is not a directory", path: "/usr/binx/tool", allow: []string{"/usr/bin/"}, wantErr: ErrExecRefused},
		{name: "names the resolved path", path: "/bin/sh", allow: []string{"/usr/local/bin/"}, wantErr: ErrExecRefused,
			msg: `exec "/bin/sh": refused (resolves to "/usr/bin/dash"): not in allow_exec [/usr/local/bin/]`},
		{name: "dot-dot escape refused", path: "/usr/bin/../../tmp/x", allow: []string{"/usr/bin/"}, wantErr: ErrExecRefused,
			substr: `not an absolute clean path (resolve it first; clean form "/tmp/x")`},
		{name: "relative path refused", path: "bin/x", allow: []string{"/usr/bin/"}, wantErr: ErrExecRefused},
		{name: "relative entry", path: "/usr/bin/env", allow: []string{"usr/bin/"}, wantErr: ErrBadAllow,
			msg: `proc: allow_exec entry "usr/bin/": not an absolute path: proc: invalid allow_exec entry`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckAllowed(tc.path, tc.allow)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("CheckAllowed(%q, %q) = %v", tc.path, tc.allow, err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("CheckAllowed(%q, %q) = %v, want %v", tc.path, tc.allow, err, tc.wantErr)
			}
			if tc.wantErr == ErrExecRefused && !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("message %q does not name %q", err, tc.path)
			}
			if tc.msg != "" && err.Error() != tc.msg {
				t.Fatalf("message %q, want %q", err, tc.msg)
			}
			if tc.substr != "" && !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("message %q does not contain %q", err, tc.substr)
			}
		})
	}
}

// TestCheckAllowedSymlinks: a link inside an allowed directory that points
// outside it is refused; an allowed file reached through a link elsewhere is
// allowed.
func TestCheckAllowedSymlinks(t *testing.T) {
	allowed := t.TempDir()
	elsewhere := t.TempDir()
	echo := mustResolve("echo")
	sum := mustResolve("sha256sum")
	escape := filepath.Join(allowed, "e")
	if err := os.Symlink(echo, escape); err != nil {
		t.Fatal(err)
	}
	tool := filepath.Join(allowed, "tool")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	toTool := filepath.Join(elsewhere, "t")
	if err := os.Symlink(tool, toTool); err != nil {
		t.Fatal(err)
	}
	toSum := filepath.Join(elsewhere, "s")
	if err := os.Symlink(sum, toSum); err != nil {
		t.Fatal(err)
	}
	allow := []string{sum, allowed + "/"}
	if err := CheckAllowed(escape, allow); !errors.Is(err, ErrExecRefused) || !strings.Contains(err.Error(), `resolves to "`+echo) {
		t.Errorf("link out of an allowed directory: %v, want a refusal naming %s", err, echo)
	}
	for _, p := range []string{tool, toTool, toSum, sum} {
		if err := CheckAllowed(p, allow); err != nil {
			t.Errorf("CheckAllowed(%s): %v", p, err)
		}
	}
}
