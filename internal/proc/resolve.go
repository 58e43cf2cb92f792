// resolve.go owns the checks made before anything is spawned: turning a
// command's exec (a bare name or an absolute path) into an absolute path with
// the command's own PATH, and checking that path against allow_exec.

package proc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultPath is the search path used when a command's environment has no
// PATH entry.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin"

var (
	// ErrRelativePath is returned by Resolve for an exec such as "./x" or
	// "bin/x": only absolute paths and bare names are accepted.
	ErrRelativePath = errors.New("proc: relative exec path")
	// ErrBadName is returned by Resolve for an empty exec or one holding a NUL byte.
	ErrBadName = errors.New("proc: malformed exec name")
	// ErrNotFound is returned by Resolve when nothing executable is found.
	ErrNotFound = errors.New("proc: executable not found")
	// ErrNotExecutable is returned by Resolve for a directory, a special file
	// or a file with no execute bit.
	ErrNotExecutable = errors.New("proc: not an executable file")
	// ErrExecRefused is returned by CheckAllowed when allow_exec refuses a path.
	ErrExecRefused = errors.New("proc: exec refused by allow_exec")
	// ErrBadAllow is returned by CheckAllowed for an allow_exec entry that is
	// not an absolute path.
	ErrBadAllow = errors.New("proc: invalid allow_exec entry")
)

// ExecError describes why an exec was not resolved or not allowed. Its
// message reads `exec "nosuch": not found in PATH /usr/bin:/bin`.
type ExecError struct {
	Exec   string // the exec as given
	Reason string // what was wrong, in words
	Err    error  // one of the sentinels above
	Cause  error  // the underlying error, if any (e.g. from stat); may be nil
}

func (e *ExecError) Error() string {
	return fmt.Sprintf("exec %q: %s", e.Exec, e.Reason)
}

// Unwrap returns the sentinel and the cause, for errors.Is and errors.As.
func (e *ExecError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// Resolve returns the absolute path of exec. exec is either an absolute path
// or a bare name (no '/') looked up on the PATH found in env (the last
// "PATH=..." entry; DefaultPath when there is none). Relative paths with a
// slash ("./x", "bin/x") are refused with ErrRelativePath, and so are empty
// or relative PATH elements, which are skipped. The result is filepath.Clean'd
// and names an existing regular file with an execute bit; that exact string
// is what CheckAllowed must check and what Spawner.Start executes.
func Resolve(exec string, env []string) (string, error) {
	if exec == "" {
		return "", &ExecError{Exec: exec, Reason: "empty executable name", Err: ErrBadName}
	}
	if strings.IndexByte(exec, 0) >= 0 {
		return "", &ExecError{Exec: exec, Reason: "name contains a NUL byte", Err: ErrBadName}
	}
	if filepath.IsAbs(exec) {
		p := filepath.Clean(exec)
		if err := checkExecutable(exec, p); err != nil {
			return "", err
		}
		return p, nil
	}
	if strings.Contains(exec, "/") {
		return "", &ExecError{Exec: exec,
			Reason: "relative path refused; give an absolute path or a bare name looked up in PATH",
			Err:    ErrRelativePath}
	}
	path, ok := lookupEnv(env, "PATH")
	if !ok {
		path = DefaultPath
	}
	var notExec string // the first match that exists but cannot be executed
	for _, dir := range filepath.SplitList(path) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // "" and relative elements would resolve against the cwd
		}
		cand := filepath.Join(dir, exec)
		fi, err := os.Stat(cand)
		if err != nil {
			continue
		}
		if fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return cand, nil
		}
		if notExec == "" {
			notExec = cand
		}
	}
	reason := fmt.Sprintf("not found in PATH %s", path)
	if path == "" {
		reason = `not found in PATH "" (empty)`
	}
	if notExec != "" {
		reason += fmt.Sprintf(" (%s exists but is not an executable file)", notExec)
	}
	return "", &ExecError{Exec: exec, Reason: reason, Err: ErrNotFound}
}

// checkExecutable checks that p (the cleaned form of exec) is an existing
// regular file with an execute bit.
func checkExecutable(exec, p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		reason := "no such file"
		if !errors.Is(err, os.ErrNotExist) {
			reason = fmt.Sprintf("cannot stat: %v", errors.Unwrap(err))
		}
		return &ExecError{Exec: exec, Reason: reason, Err: ErrNotFound, Cause: err}
	}
	switch m := fi.Mode(); {
	case m.IsDir():
		return &ExecError{Exec: exec, Reason: "is a directory", Err: ErrNotExecutable}
	case !m.IsRegular():
		return &ExecError{Exec: exec, Reason: fmt.Sprintf("not a regular file (mode %v)", m), Err: ErrNotExecutable}
	case m.Perm()&0o111 == 0:
		return &ExecError{Exec: exec, Reason: fmt.Sprintf("not executable (mode %v)", m), Err: ErrNotExecutable}
	}
	return nil
}

// lookupEnv returns the value of the last "key=" entry of env.
func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// CheckAllowed reports whether path may be executed under allow (the
// workspace's permissions.allow_exec). An empty allow permits anything. An
// entry ending in "/" permits that directory and everything below it; any
// other entry permits exactly that file. Entries are cleaned first and must
// be absolute (else an error wrapping ErrBadAllow).
//
// path must be absolute and clean (as Resolve returns it); otherwise it is
// refused, since "/usr/bin/../../tmp/x" would pass a prefix test. Only its
// fully resolved form (filepath.EvalSymlinks) is checked, against the
// resolved form of each entry: a link inside an allowed directory that
// points outside it is refused, and an allowed file reached through a link
// elsewhere is allowed ("/bin/sh" allows /usr/bin/dash, by either name). A
// path that does not resolve is refused. Allowing a multi-call binary
// (busybox) allows every applet, since they are the same file.
//
// This is the early check, made when a command is accepted; the Spawner
// checks again on the file it opens and executes (see Spec.AllowExec).
//
// A refusal wraps ErrExecRefused and names the path.
func CheckAllowed(path string, allow []string) error {
	if len(allow) == 0 {
		return nil
	}
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return &ExecError{Exec: path,
			Reason: fmt.Sprintf("refused: not an absolute clean path (resolve it first; clean form %q)", filepath.Clean(path)),
			Err:    ErrExecRefused}
	}
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return &ExecError{Exec: path, Reason: fmt.Sprintf("refused: cannot resolve: %v", errors.Unwrap(err)),
			Err: ErrExecRefused, Cause: err}
	}
	return checkResolved(path, resolved, allow)
}

// checkResolved checks resolved, the symlink-free form of path, against
// allow; path only names the exec in the error.
func checkResolved(path, resolved string, allow []string) error {
	for _, entry := range allow {
		if !filepath.IsAbs(entry) {
			return fmt.Errorf("proc: allow_exec entry %q: not an absolute path: %w", entry, ErrBadAllow)
		}
		e := filepath.Clean(entry)
		if re, err := filepath.EvalSymlinks(e); err == nil {
			e = re
		}
		if !strings.HasSuffix(entry, "/") {
			if resolved == e {
				return nil
			}
			continue
		}
		if under(resolved, e) {
			return nil
		}
	}
	reason := fmt.Sprintf("refused: not in allow_exec %v", allow)
	if resolved != path {
		reason = fmt.Sprintf("refused (resolves to %q): not in allow_exec %v", resolved, allow)
	}
	return &ExecError{Exec: path, Reason: reason, Err: ErrExecRefused}
}

// under reports whether p lies below directory dir (both clean and absolute).
func under(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return strings.HasPrefix(p, dir+"/")
}
