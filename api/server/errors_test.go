package server_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/messages"
)

type errorAnswer struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

func TestErrorMapping(t *testing.T) {
	d := startDaemon(t)
	ctx := testCtx(t)
	if _, err := d.c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "dup"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.c.Exec(ctx, "dup", native("sleep", "1000")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "strict",
		Permissions: messages.Permissions{AllowExec: []string{"/nonexistent/"}}}); err != nil {
		t.Fatal(err)
	}
	validPipeline := `{"label":"p","nodes":[{"label":"a","payload":{"native":{"exec":"true"}}}]}`
	huge := `{"label":"` + strings.Repeat("x", 5<<20) + `"}`

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, field, message     string // message: a part of it
	}{
		{"bad JSON", "POST", "/v1/workspaces", `{"label": `, 400, api.CodeMalformed, "", "malformed"},
		{"empty body", "POST", "/v1/workspaces", ``, 400, api.CodeMalformed, "", "empty"},
		{"unknown field", "POST", "/v1/workspaces", `{"label":"x","bogus":1}`, 400, api.CodeMalformed, "", `unknown field "bogus"`},
		{"wrong case field", "POST", "/v1/workspaces", `{"Label":"x"}`, 400, api.CodeMalformed, "", "case-sensitive"},
		{"bad YAML", "POST", "/v1/workspaces", "label: [x\n", 400, api.CodeMalformed, "", "malformed"},
		{"invalid label", "POST", "/v1/workspaces", `{"label":"bad label"}`, 400, api.CodeInvalid, "label", "label"},
		{"invalid nested field", "POST", "/v1/workspaces", `{"label":"x","soma":{"memory_max_bytes":-1}}`, 400, api.CodeInvalid, "soma.memory_max_bytes", "memory_max_bytes"},
		{"duplicate label", "POST", "/v1/workspaces", `{"label":"dup"}`, 409, api.CodeConflict, "", "dup"},
		{"body too large", "POST", "/v1/workspaces", huge, 413, api.CodeMalformed, "", "larger than the limit"},
		{"command without payload", "POST", "/v1/workspaces/dup/commands", `{"payload":{}}`, 400, api.CodeInvalid, "payload.native", "required"},
		{"exec refused by allow_exec", "POST", "/v1/workspaces/strict/commands", `{"payload":{"native":{"exec":"/bin/true"}}}`, 403, api.CodeRefused, "payload.native.exec", "refused"},
		{"exec in unknown workspace", "POST", "/v1/workspaces/nope/commands", `{"payload":{"native":{"exec":"true"}}}`, 404, api.CodeNotFound, "", "nope"},
		{"unknown workspace", "GET", "/v1/workspaces/nope", ``, 404, api.CodeNotFound, "", "nope"},
		{"unknown command", "GET", "/v1/workspaces/dup/commands/nope", ``, 404, api.CodeNotFound, "", "nope"},
		{"logs of unknown command", "GET", "/v1/workspaces/dup/commands/nope/logs?follow=1", ``, 404, api.CodeNotFound, "", "nope"},
		{"unknown pipeline", "GET", "/v1/pipelines/nope", ``, 404, api.CodeNotFound, "", "nope"},
		{"tap of unknown pipeline", "GET", "/v1/pipelines/nope/tap", ``, 404, api.CodeNotFound, "", "nope"},
		{"start unknown saved pipeline", "POST", "/v1/saved-pipelines/nope/start?workspace=dup", ``, 404, api.CodeNotFound, "", "nope"},
		{"bad saved pipeline name", "PUT", "/v1/saved-pipelines/bad%20name", validPipeline, 400, api.CodeInvalid, "name", ""},
		{"pipeline cycle", "POST", "/v1/workspaces/dup/pipelines",
			`{"label":"c","nodes":[{"label":"a","payload":{"native":{"exec":"cat"}}},{"label":"b","payload":{"native":{"exec":"cat"}}}],"edges":[{"from":"a","to":"b"},{"from":"b","to":"a"}]}`,
			400, api.CodeInvalid, "edges", "cycle"},
		{"wrong method", "PATCH", "/v1/workspaces", ``, 405, api.CodeMethodNotAllowed, "", "GET, POST"},
		{"wrong method on a leaf", "DELETE", "/v1/version", ``, 405, api.CodeMethodNotAllowed, "", "allowed: GET"},
		{"unknown route", "GET", "/v2/workspaces", ``, 404, api.CodeNotFound, "", "no such route"},
		{"unknown sub-route", "GET", "/v1/workspaces/dup/bogus", ``, 404, api.CodeNotFound, "", "no such route"},
		{"unknown query parameter", "GET", "/v1/workspaces?verbose=1", ``, 400, api.CodeInvalid, "verbose", "unknown query parameter"},
		{"negative tail", "GET", "/v1/workspaces/dup/commands/sleep/logs?tail=-1", ``, 400, api.CodeInvalid, "tail", "integer"},
		{"tail not a number", "GET", "/v1/workspaces/dup/commands/sleep/logs?tail=ten", ``, 400, api.CodeInvalid, "tail", "ten"},
		{"since not a duration", "GET", "/v1/workspaces/dup/commands/sleep/logs?since=yesterday", ``, 400, api.CodeInvalid, "since", "yesterday"},
		{"negative since", "GET", "/v1/workspaces/dup/commands/sleep/logs?since=-5m", ``, 400, api.CodeInvalid, "since", "negative"},
		{"bad stream", "GET", "/v1/workspaces/dup/commands/sleep/logs?stream=both", ``, 400, api.CodeInvalid, "stream", "both"},
		{"bad follow", "GET", "/v1/events?follow=maybe", ``, 400, api.CodeInvalid, "follow", "maybe"},
		{"bad grace", "DELETE", "/v1/workspaces/dup?grace=soon", ``, 400, api.CodeInvalid, "grace", "soon"},
		{"bad tap flag", "POST", "/v1/workspaces/dup/pipelines?tap=yes", validPipeline, 400, api.CodeInvalid, "tap", "yes"},
		{"bad query string", "GET", "/v1/events?follow=%zz", ``, 400, api.CodeMalformed, "", "query"},
		{"snapshot without state", "GET", "/v1/snapshot", ``, 409, api.CodeConflict, "", "no state file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := d.raw(t, tc.method, tc.path, tc.body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d (body %s)", resp.StatusCode, tc.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			var ea errorAnswer
			if err := json.Unmarshal([]byte(body), &ea); err != nil {
				t.Fatalf("body %q is not the error shape: %v", body, err)
			}
			if ea.Error.Code != tc.code || ea.Error.Field != tc.field {
				t.Errorf("code %q field %q, want %q %q (message %q)", ea.Error.Code, ea.Error.Field, tc.code, tc.field, ea.Error.Message)
			}
			if ea.Error.Message == "" || !strings.Contains(ea.Error.Message, tc.message) {
				t.Errorf("message %q, want it to contain %q", ea.Error.Message, tc.message)
			}
		})
	}
	if resp, _ := d.raw(t, "PATCH", "/v1/workspaces", ""); resp.Header.Get("Allow") != "GET, POST" {
		t.Errorf("Allow = %q", resp.Header.Get("Allow"))
	}
	// Nothing above changed anything.
	ws, err := d.c.Workspaces(ctx)
	if err != nil || len(ws) != 2 {
		t.Errorf("workspaces after bad requests = %+v, %v", ws, err)
	}
}

func TestYAMLBody(t *testing.T) {
	d := startDaemon(t)
	resp, body := d.raw(t, "POST", "/v1/workspaces", "label: from-yaml\nttl_ms: 60000\n")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/v1/workspaces/") {
		t.Errorf("Location %q", loc)
	}
	var info messages.WorkspaceInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil || info.Spec.Label != "from-yaml" || info.Spec.TTLMs != 60000 {
		t.Errorf("created %+v, %v", info, err)
	}
}

func TestClientErrors(t *testing.T) {
	d := startDaemon(t)
	c, ctx := d.c, testCtx(t)

	_, err := c.Workspace(ctx, "nope")
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != api.CodeNotFound {
		t.Fatalf("unknown workspace: %#v", err)
	}
	if !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("errors.Is(%v, ErrNotFound) = false", err)
	}

	_, err = c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "bad label"})
	var fe *messages.FieldError
	if !errors.As(err, &fe) || fe.Field != "label" {
		t.Fatalf("bad label: %#v", err)
	}
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != api.CodeInvalid || !strings.HasPrefix(err.Error(), "label") {
		t.Errorf("bad label: %#v (%q)", ae, err)
	}

	if _, err := c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "one"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "one"}); !errors.Is(err, messages.ErrConflict) {
		t.Errorf("duplicate: %v", err)
	}

	for name, call := range map[string]func() error{
		"empty workspace": func() error { _, err := c.Workspace(ctx, ""); return err },
		"dot workspace":   func() error { _, err := c.Workspace(ctx, ".."); return err },
		"empty command":   func() error { _, err := c.Command(ctx, "one", ""); return err },
		"empty run":       func() error { _, err := c.Pipeline(ctx, ""); return err },
	} {
		if err := call(); !errors.As(err, &ae) || ae.Code != api.CodeInvalid {
			t.Errorf("%s: %v, want an invalid error", name, err)
		}
	}

	// Error() names the field when the message does not.
	e := &api.Error{Status: 400, Code: api.CodeInvalid, Field: "tail", Message: "must be ≥ 0"}
	if e.Error() != "tail: must be ≥ 0" {
		t.Errorf("Error() = %q", e.Error())
	}
	e.Message = "tail must be ≥ 0"
	if e.Error() != "tail must be ≥ 0" {
		t.Errorf("Error() = %q", e.Error())
	}
}
