package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/messages"
)

// TestOversizedFields sends every route that takes a body or a name an
// oversized field: each answer is a 4xx naming the field, never a 500, and
// nothing is created.
func TestOversizedFields(t *testing.T) {
	d := startDaemon(t)
	ctx := testCtx(t)
	if _, err := d.c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "big"}); err != nil {
		t.Fatal(err)
	}
	// A workspace whose env alone fits, but not with a large argv.
	bigEnv := map[string]string{}
	for i := range 5 {
		bigEnv[fmt.Sprintf("V%d", i)] = strings.Repeat("e", 120_000)
	}
	if _, err := d.c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "heavy", Permissions: messages.Permissions{Env: bigEnv}}); err != nil {
		t.Fatal(err)
	}
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	many := func(n, size int, prefix string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = prefix + strings.Repeat("a", size)
		}
		return out
	}
	argv15MB := many(12, 125_000, "")                 // 1.5 MB of arguments, each within the per-string limit
	envp3MB := many(24, 125_000, "K=")                // 3 MB of environment
	argv600K := many(5, 120_000, "")                  // fits alone, not with heavy's env
	oneHuge := []string{strings.Repeat("a", 200_000)} // one string above the kernel's 128 KiB
	cmd := func(argv, envp []string) string {
		return js(messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: "true", Argv: argv, Envp: envp}}})
	}
	pipe := func(argv []string) string {
		return js(messages.PipelineSpec{Label: "p", Nodes: []messages.Node{
			{Label: "a", Payload: messages.Payload{Native: &messages.NativePayload{Exec: "cat"}}},
			{Label: "b", Payload: messages.Payload{Native: &messages.NativePayload{Exec: "true", Argv: argv}}}},
			Edges: []messages.Edge{{From: "a", To: "b"}}})
	}
	long := strings.Repeat("x", 5000)
	wsEnv := func(env map[string]string) string {
		return js(messages.WorkspaceSpec{Label: "w", Permissions: messages.Permissions{Env: env}})
	}
	tooMuchEnv := map[string]string{}
	for i := range 12 {
		tooMuchEnv[fmt.Sprintf("V%d", i)] = strings.Repeat("e", 120_000)
	}
	// A saved pipeline that fits alone but not in heavy.
	if resp, body := d.raw(t, "PUT", "/v1/saved-pipelines/fat", pipe(argv600K)); resp.StatusCode != 200 {
		t.Fatalf("save fat: %d %s", resp.StatusCode, body)
	}

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"1.5 MB argv", "POST", "/v1/workspaces/big/commands", cmd(argv15MB, nil), 400, "payload.native.argv"},
		{"3 MB envp", "POST", "/v1/workspaces/big/commands", cmd(nil, envp3MB), 400, "payload.native.envp"},
		{"one argument over 128 KiB", "POST", "/v1/workspaces/big/commands", cmd(oneHuge, nil), 400, "payload.native.argv[0]"},
		{"one variable over 128 KiB", "POST", "/v1/workspaces/big/commands", cmd(nil, []string{"K=" + oneHuge[0]}), 400, "payload.native.envp[0]"},
		{"argv with the workspace's env", "POST", "/v1/workspaces/heavy/commands", cmd(argv600K, nil), 400, "payload.native.argv"},
		{"long exec", "POST", "/v1/workspaces/big/commands", js(messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: "/" + long}}}), 400, "payload.native.exec"},
		{"long bare exec", "POST", "/v1/workspaces/big/commands", js(messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: long}}}), 400, "payload.native.exec"},
		{"long command label", "POST", "/v1/workspaces/big/commands", js(messages.CommandRef{Label: long, Payload: messages.Payload{Native: &messages.NativePayload{Exec: "true"}}}), 400, "label"},
		{"long workspace label", "POST", "/v1/workspaces", js(messages.WorkspaceSpec{Label: long}), 400, "label"},
		{"workspace env over 128 KiB", "POST", "/v1/workspaces", wsEnv(map[string]string{"V": oneHuge[0]}), 400, "permissions.env.V"},
		{"workspace env over 1 MiB", "POST", "/v1/workspaces", wsEnv(tooMuchEnv), 400, "permissions.env"},
		{"long workdir", "POST", "/v1/workspaces", js(messages.WorkspaceSpec{Label: "w", Permissions: messages.Permissions{Workdir: "/" + long}}), 400, "permissions.workdir"},
		{"long flow dir", "POST", "/v1/workspaces", js(messages.WorkspaceSpec{Label: "w", FlowDirs: []string{"/" + long}}), 400, "flow_dirs[0]"},
		{"long allow_exec entry", "POST", "/v1/workspaces", js(messages.WorkspaceSpec{Label: "w", Permissions: messages.Permissions{AllowExec: []string{"/" + long}}}), 400, "permissions.allow_exec[0]"},
		{"pipeline node argv", "POST", "/v1/workspaces/big/pipelines", pipe(argv15MB), 400, "nodes[1].payload.native.argv"},
		{"pipeline node argv with the workspace's env", "POST", "/v1/workspaces/heavy/pipelines", pipe(argv600K), 400, "nodes[1].payload.native.argv"},
		{"long pipeline label", "POST", "/v1/workspaces/big/pipelines", js(messages.PipelineSpec{Label: long}), 400, "label"},
		{"saved pipeline argv", "PUT", "/v1/saved-pipelines/p", pipe(argv15MB), 400, "nodes[1].payload.native.argv"},
		{"long saved pipeline name", "PUT", "/v1/saved-pipelines/" + long, pipe(nil), 400, "name"},
		{"saved pipeline started in a heavy workspace", "POST", "/v1/saved-pipelines/fat/start?workspace=heavy", "", 400, "nodes[1].payload.native.argv"},
		{"long workspace in a path", "GET", "/v1/workspaces/" + long, "", 404, ""},
		{"long run in a path", "GET", "/v1/pipelines/" + long, "", 404, ""},
		{"long query value", "GET", "/v1/workspaces/big/commands/x/logs?tail=" + long, "", 400, "tail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := d.raw(t, tc.method, tc.path, tc.body)
			var ea errorAnswer
			if err := json.Unmarshal([]byte(body), &ea); err != nil {
				t.Fatalf("status %d, body %.200q is not the error shape: %v", resp.StatusCode, body, err)
			}
			if resp.StatusCode != tc.status || ea.Error.Field != tc.field || ea.Error.Code == api.CodeInternal {
				t.Errorf("status %d field %q code %q, want %d %q (message %.300q)", resp.StatusCode, ea.Error.Field, ea.Error.Code, tc.status, tc.field, ea.Error.Message)
			}
		})
	}
	cmds, err := d.c.Commands(ctx, "")
	if err != nil || len(cmds) != 0 {
		t.Errorf("commands after refused requests: %+v, %v", cmds, err)
	}
	ws, err := d.c.Workspaces(ctx)
	if err != nil || len(ws) != 2 {
		t.Errorf("workspaces after refused requests: %d, %v", len(ws), err)
	}
}
