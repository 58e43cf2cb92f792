// This file tests POST /v1/apply and the scale route over the socket: the
// client methods, and each bad input answered with its status and field.

package server_test

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/messages"
)

func TestApplyRoutes(t *testing.T) {
	d := startDaemon(t)
	ctx := testCtx(t)
	if _, err := d.c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "manual"}); err != nil {
		t.Fatal(err)
	}
	sleeper := messages.CommandRef{Label: "w", Payload: messages.Payload{Native: &messages.NativePayload{Exec: "sleep", Argv: []string{"1000"}}}}
	file := messages.UpFile{Name: "proj", Workspaces: []messages.UpWorkspace{{
		WorkspaceSpec: messages.WorkspaceSpec{Label: "applied"}, Commands: []messages.CommandRef{sleeper}}}}

	dry, err := d.c.Apply(ctx, messages.ApplyRequest{File: file, DryRun: true})
	if err != nil || dry.Applied || len(dry.Plan.Entries) != 2 || dry.Plan.Project != "proj" {
		t.Fatalf("dry run = %+v, %v", dry, err)
	}
	res, err := d.c.Apply(ctx, messages.ApplyRequest{File: file})
	if err != nil || !res.Applied {
		t.Fatalf("apply = %+v, %v", res, err)
	}
	p, err := d.c.Scale(ctx, "applied", "w", 2)
	if err != nil || len(p.Entries) != 3 { // two creates, one remove of the plain "w"
		t.Fatalf("scale = %+v, %v", p, err)
	}
	cmds, err := d.c.Commands(ctx, "applied")
	if err != nil {
		t.Fatal(err)
	}
	var running []string
	for _, c := range cmds {
		if !c.State.Ended() {
			running = append(running, c.Label)
		}
	}
	sort.Strings(running)
	if strings.Join(running, ",") != "w-0,w-1" {
		t.Fatalf("running after scale: %q", running)
	}

	withEnvFile := `{"file":{"name":"p","workspaces":[{"label":"x","commands":[{"label":"c","env_file":["/a.env"],"payload":{"native":{"exec":"true"}}}]}]}}`
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, field, message     string
	}{
		{"unknown field", "POST", "/v1/apply", `{"file":{"workspaces":[]},"bogus":true}`, 400, api.CodeMalformed, "", `unknown field "bogus"`},
		{"no project", "POST", "/v1/apply", `{"file":{"workspaces":[{"label":"x"}]}}`, 400, api.CodeInvalid, "project", "required"},
		{"bad project", "POST", "/v1/apply", `{"project":"a b","file":{"workspaces":[{"label":"x"}]}}`, 400, api.CodeInvalid, "project", "characters outside"},
		{"invalid file", "POST", "/v1/apply", `{"project":"p","file":{"workspaces":[{"label":"x","ttl_ms":-1}]}}`, 400, api.CodeInvalid, "file.workspaces[0].ttl_ms", ">= 0"},
		{"unread env file", "POST", "/v1/apply", withEnvFile, 400, api.CodeInvalid, "file.workspaces[0].commands[0].env_file", "read by the client"},
		{"workspace made by hand", "POST", "/v1/apply", `{"project":"p","file":{"workspaces":[{"label":"manual"}]}}`, 409, api.CodeConflict, "", `workspace "manual"`},
		{"another project", "POST", "/v1/apply", `{"project":"other","file":{"workspaces":[{"label":"applied"}]}}`, 409, api.CodeConflict, "", `belongs to project "proj"`},
		{"replace without force", "POST", "/v1/apply", `{"project":"proj","file":{"workspaces":[{"label":"applied","ttl_ms":60000}]}}`, 409, api.CodeConflict, "", "apply with force"},
		{"scale unknown command", "POST", "/v1/workspaces/applied/commands/nope/scale", `{"instances":1}`, 404, api.CodeNotFound, "", `no command "nope"`},
		{"scale unknown workspace", "POST", "/v1/workspaces/nope/commands/w/scale", `{"instances":1}`, 404, api.CodeNotFound, "", "nope"},
		{"scale negative", "POST", "/v1/workspaces/applied/commands/w/scale", `{"instances":-1}`, 400, api.CodeInvalid, "instances", "between 0 and 1000"},
		{"scale bad body", "POST", "/v1/workspaces/applied/commands/w/scale", `{"instances":"two"}`, 400, api.CodeMalformed, "", ""},
		{"apply wrong method", "GET", "/v1/apply", ``, 405, api.CodeMethodNotAllowed, "", "POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := d.raw(t, tc.method, tc.path, tc.body)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d (body %s)", resp.StatusCode, tc.status, body)
			}
			var ea errorAnswer
			if err := json.Unmarshal([]byte(body), &ea); err != nil {
				t.Fatalf("body %q is not the error shape: %v", body, err)
			}
			if ea.Error.Code != tc.code || ea.Error.Field != tc.field || !strings.Contains(ea.Error.Message, tc.message) {
				t.Errorf("error %+v, want code %q field %q message with %q", ea.Error, tc.code, tc.field, tc.message)
			}
		})
	}
	// The refused requests changed nothing.
	if ws, err := d.c.Workspace(ctx, "applied"); err != nil || ws.Spec.TTLMs != 0 || ws.Spec.Project != "proj" {
		t.Fatalf("after refusals: %+v, %v", ws.Spec, err)
	}
	if _, err := d.c.Workspace(ctx, "x"); err == nil {
		t.Fatal("a refused apply created workspace x")
	}
}
