// This file owns the CLI's error taxonomy: usage errors (exit 2), errors
// that carry their own exit code, and the cancellation of a command by
// Ctrl-C.

// Package cmdutil holds what every shipote command shares: I/O streams, the
// client factory, the error taxonomy that maps to exit codes, flag values
// (sizes, durations, K=V), the JSON exporter and human formatting.
package cmdutil

import (
	"errors"
	"fmt"
)

// FlagError is a usage error: an unknown or missing flag, a bad flag value,
// or wrong arguments. The CLI exits 2 on it.
type FlagError struct {
	// not struct{error}: only *FlagError should satisfy error.
	err error
}

func (e *FlagError) Error() string { return e.err.Error() }

// Unwrap returns the wrapped error.
func (e *FlagError) Unwrap() error { return e.err }

// FlagErrorf returns a *FlagError with a formatted message.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{err: fmt.Errorf(format, args...)}
}

// FlagErrorWrap wraps err in a *FlagError; nil stays nil.
func FlagErrorWrap(err error) error {
	if err == nil {
		return nil
	}
	return &FlagError{err: err}
}

// ExitError makes the CLI exit with Code. Err, when set, is printed as
// usual; a nil Err prints nothing (the command has already said why).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

// Unwrap returns the wrapped error.
func (e *ExitError) Unwrap() error { return e.Err }

// ErrInterrupted is returned by a command stopped by SIGINT or SIGTERM
// where the contract says so (shipote up: exit 130).
var ErrInterrupted = errors.New("interrupted")
