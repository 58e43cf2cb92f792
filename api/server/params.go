// This file owns request parsing: bodies (JSON or YAML, strict, bounded)
// and query parameters, each bad value answered with the parameter named.

package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/messages"
)

// drainFactor bounds how much of an oversized body is read and dropped
// (drainFactor × the limit), so that the client, still writing, gets the
// 413 answer rather than a broken pipe.
const drainFactor = 8

// decodeBody reads r's body, at most MaxBodyBytes, and decodes it strictly
// (JSON or YAML) into v.
func (s *Server) decodeBody(r *http.Request, v any) error {
	limit := s.opts.MaxBodyBytes
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return api.NewError(api.CodeMalformed, "", "reading the request body: "+err.Error())
	}
	if int64(len(data)) > limit {
		_, _ = io.CopyN(io.Discard, r.Body, drainFactor*limit)
		return &api.Error{Status: http.StatusRequestEntityTooLarge, Code: api.CodeMalformed,
			Message: fmt.Sprintf("request body is larger than the limit of %d bytes", limit)}
	}
	if err := messages.DecodeSpec(data, v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

// boolParam reads a flag parameter: absent = false; "", "1", "true" =
// true; "0", "false" = false.
func boolParam(q url.Values, name string) (bool, error) {
	if !q.Has(name) {
		return false, nil
	}
	v := q.Get(name)
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, api.NewError(api.CodeInvalid, name, fmt.Sprintf("%s must be 1, 0, true or false, got %q", name, v))
	}
	return b, nil
}

// durationParam reads a Go duration (such as 10m or 250ms) that must not
// be negative; absent = 0.
func durationParam(q url.Values, name string) (time.Duration, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, api.NewError(api.CodeInvalid, name, fmt.Sprintf("%s must be a duration such as 10m or 250ms, got %q", name, v))
	}
	if d < 0 {
		return 0, api.NewError(api.CodeInvalid, name, fmt.Sprintf("%s must not be negative, got %q", name, v))
	}
	return d, nil
}

// intParam reads an integer ≥ 0; absent = 0.
func intParam(q url.Values, name string) (int, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, api.NewError(api.CodeInvalid, name, fmt.Sprintf("%s must be an integer ≥ 0, got %q", name, v))
	}
	return n, nil
}

// streamParam reads "out" or "err"; absent = both.
func streamParam(q url.Values, name string) (messages.Stream, error) {
	switch v := q.Get(name); v {
	case "", string(messages.Stdout), string(messages.Stderr):
		return messages.Stream(v), nil
	default:
		return "", api.NewError(api.CodeInvalid, name, fmt.Sprintf("%s must be %q or %q, got %q", name, messages.Stdout, messages.Stderr, v))
	}
}

// listQuery reads a list's paging parameters: limit, after (the cursor:
// the last ID of the previous page) and label_prefix.
func listQuery(v url.Values) (messages.ListQuery, error) {
	limit, err := intParam(v, "limit")
	if err != nil {
		return messages.ListQuery{}, err
	}
	q := messages.ListQuery{Limit: limit, After: v.Get("after"), LabelPrefix: v.Get("label_prefix")}
	if err := q.Validate(); err != nil {
		var fe *messages.FieldError
		if errors.As(err, &fe) {
			return q, api.NewError(api.CodeInvalid, fe.Field, fe.Field+" "+fe.Message)
		}
		return q, err
	}
	return q, nil
}

// setNextLink sets the Link header of a page that has a next one: the same
// request with after set to the cursor (RFC 8288, rel="next").
func setNextLink(w http.ResponseWriter, u *url.URL, next string) {
	q := u.Query()
	q.Set("after", next)
	w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", u.Path, q.Encode()))
}
