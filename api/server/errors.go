// This file owns how engine errors map onto the API's error answers.

package server

import (
	"context"
	"errors"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/messages"
)

// errorFor maps err, from the engine or from request parsing, to the api.Error
// sent to the client. The engine's sentinel decides the code (an exec that
// allow_exec refuses is both refused and a field error: refused wins); a
// *messages.FieldError in the chain gives the field.
func errorFor(err error) *api.Error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae
	}
	var field string
	var fe *messages.FieldError
	if errors.As(err, &fe) {
		field = fe.Field
	}
	code := api.CodeInternal
	switch {
	case errors.Is(err, messages.ErrNotSaved):
		code = api.CodeNotSaved
	case errors.Is(err, messages.ErrRefused):
		code = api.CodeRefused
	case errors.Is(err, messages.ErrNotFound):
		code = api.CodeNotFound
	case errors.Is(err, messages.ErrConflict):
		code = api.CodeConflict
	case errors.Is(err, messages.ErrExpired):
		code = api.CodeExpired
	case errors.Is(err, messages.ErrStopped):
		code = api.CodeStopped
	case errors.Is(err, messages.ErrMalformed):
		code = api.CodeMalformed
	case errors.Is(err, messages.ErrInvalid):
		code = api.CodeInvalid
	case errors.Is(err, context.Canceled):
		// The client went away or the daemon is stopping; the answer is
		// unlikely to be read.
		return api.NewError(api.CodeStopped, "", "request canceled: "+err.Error())
	}
	return api.NewError(code, field, err.Error())
}
