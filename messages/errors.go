// This file defines FieldError, the error every validation returns: it names
// the path of the field that is wrong, so users can find it in their file.

package messages

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid spec")

// FieldError says which field of a spec is wrong and why.
type FieldError struct {
	Field   string // path such as "soma.memory_max_bytes" or "edges[2].to"
	Message string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// fieldErr builds a FieldError.
func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// WithPrefix returns err with prefix prepended to its field path when err is
// a *FieldError, and err unchanged otherwise.
func WithPrefix(prefix string, err error) error {
	var fe *FieldError
	if err == nil || prefix == "" || !errors.As(err, &fe) {
		return err
	}
	f := prefix
	if fe.Field != "" {
		if fe.Field[0] == '[' {
			f += fe.Field
		} else {
			f += "." + fe.Field
		}
	}
	return &FieldError{Field: f, Message: fe.Message}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	if b[0] == '[' {
		return a + b
	}
	return a + "." + b
}

// Errors the engine returns; the API maps them to HTTP statuses.
var (
	// ErrNotFound: no workspace, command, pipeline or saved pipeline by that
	// ID or label.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a label is already taken, or the object is in a state
	// that does not allow the operation.
	ErrConflict = errors.New("conflict")
	// ErrRefused: the workspace's permissions refuse the operation.
	ErrRefused = errors.New("refused")
	// ErrStopped: the engine is stopping or stopped.
	ErrStopped = errors.New("engine stopped")
	// ErrExpired: the workspace's TTL deadline has passed.
	ErrExpired = errors.New("expired")
	// ErrNotSaved: the state file could not be written, so a mutation of
	// declared state is not in effect (the cause is wrapped beside it).
	ErrNotSaved = errors.New("state not writable")
)
