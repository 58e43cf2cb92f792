// This file owns the API's error model: the Error type that both sides use,
// its codes and their statuses.

package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/shipote/shipote/messages"
)

// Error codes. Each has one HTTP status.
const (
	CodeInvalid          = "invalid"            // 400: a field or parameter is wrong (Field names it)
	CodeMalformed        = "malformed"          // 400 (413 for an oversized body): the body is not valid JSON/YAML, or has unknown fields
	CodeRefused          = "refused"            // 403: permissions refuse it, or the peer is another user
	CodeNotFound         = "not_found"          // 404: no such object or route
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeConflict         = "conflict"           // 409: label taken, or a state that does not allow it
	CodeExpired          = "expired"            // 410: the workspace's TTL has passed
	CodeStopped          = "stopped"            // 503: the engine is stopping
	CodeNotSaved         = "state_not_writable" // 503: the state file could not be written; nothing changed
	CodeInternal         = "internal"           // 500
	CodeUnsupported      = "unsupported"        // 501: reserved for what cannot cross cluster members; no route answers it now
	CodeUnreachable      = "unreachable"        // 504: the cluster member holding it did not answer
)

// ErrUnreachable is wrapped by the client's errors when dialing the socket
// fails: no socket there, or nothing listening on it.
var ErrUnreachable = errors.New("daemon not reachable")

// Error is an error answer of the API. The server builds one from every
// failure; the client returns one for every non-2xx answer.
type Error struct {
	Status  int    // HTTP status
	Code    string // one of the Code constants
	Message string // what was wrong, for people
	Field   string // the field or query parameter at fault; "" if none
}

// Error returns Message, prefixed with Field when the message does not
// already name it.
func (e *Error) Error() string {
	if e.Field != "" && !strings.Contains(e.Message, e.Field) {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Unwrap returns the engine error that the code stands for, so that
// errors.Is(err, messages.ErrNotFound) and errors.As(err, &fieldErr) work
// on the client side as they do against an embedded engine. It returns nil
// for codes without one (method_not_allowed, internal).
func (e *Error) Unwrap() error {
	switch e.Code {
	case CodeInvalid:
		if e.Field != "" {
			return &messages.FieldError{Field: e.Field, Message: e.Message}
		}
		return messages.ErrInvalid
	case CodeMalformed:
		return messages.ErrMalformed
	case CodeRefused:
		return messages.ErrRefused
	case CodeNotFound:
		return messages.ErrNotFound
	case CodeConflict:
		return messages.ErrConflict
	case CodeExpired:
		return messages.ErrExpired
	case CodeStopped:
		return messages.ErrStopped
	case CodeNotSaved:
		return messages.ErrNotSaved
	}
	return nil
}

// statusCode is the status each code is sent with.
var statusCode = map[string]int{
	CodeInvalid:          http.StatusBadRequest,
	CodeMalformed:        http.StatusBadRequest,
	CodeRefused:          http.StatusForbidden,
	CodeNotFound:         http.StatusNotFound,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodeConflict:         http.StatusConflict,
	CodeExpired:          http.StatusGone,
	CodeStopped:          http.StatusServiceUnavailable,
	CodeNotSaved:         http.StatusServiceUnavailable,
	CodeInternal:         http.StatusInternalServerError,
	CodeUnsupported:      http.StatusNotImplemented,
	CodeUnreachable:      http.StatusGatewayTimeout,
}

// NewError returns an Error with the status of its code.
func NewError(code, field, message string) *Error {
	return &Error{Status: statusCode[code], Code: code, Message: message, Field: field}
}
