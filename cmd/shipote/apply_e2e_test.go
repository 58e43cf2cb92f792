// This file tests apply, diff, scale and down end to end: the binary as a
// daemon and as the CLI, a file with an env file and instances.

package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/shipote/shipote/messages"
)

func TestE2EApply(t *testing.T) {
	dir := shortDir(t)
	d := startDaemon(t, filepath.Join(dir, "s.sock"), filepath.Join(dir, "state.json"), newParent(t))
	work := t.TempDir()
	writeFile(t, work, "app.env", "# settings\nGREETING=hello from env\nPORT=8080\n")
	stack := `name: e2e
workspaces:
  - label: e2e-app
    commands:
      - label: api
        env_file: [app.env]
        payload: {native: {exec: /bin/sh, argv: ["-c", "echo $GREETING $PORT; exec sleep 1000"], envp: ["PORT=9090"]}}
        supervision: {restart: {on: always}}
      - label: worker
        instances: 2
        payload: {native: {exec: sleep, argv: ["1000"]}}
        supervision: {restart: {on: always}}
`
	f := writeFile(t, work, "stack.yaml", stack)

	diff := d.ok(t, "diff", "-f", f)
	want := "+ create workspace e2e-app\n+ create command e2e-app/api\n+ create command e2e-app/worker-0\n+ create command e2e-app/worker-1\nPlan: 4 to create, 0 to change, 0 to replace, 0 to remove.\n"
	if diff != want {
		t.Fatalf("diff =\n%s\nwant\n%s", diff, want)
	}
	d.ok(t, "apply", "-f", f)
	api := waitRunning(t, d, "e2e-app", "api")
	poll(t, "the env file's variable in the log", func() bool {
		return strings.Contains(d.run(t, "logs", "e2e-app/api").stdout, "hello from env 9090")
	})
	ws := getJSON[messages.WorkspaceInfo](t, d, "ws", "show", "e2e-app")
	if ws.Spec.Project != "e2e" {
		t.Fatalf("ws show: project %q, want e2e", ws.Spec.Project)
	}
	if out := d.ok(t, "ws", "show", "e2e-app"); !strings.Contains(out, "Project:      e2e (managed by shipote apply)\n") {
		t.Fatalf("ws show:\n%s", out)
	}

	if out := d.ok(t, "apply", "-f", f); out != "No changes.\n" {
		t.Fatalf("second apply printed %q", out)
	}
	if again := commandInfo(t, d, "e2e-app", "api"); again.ID != api.ID || again.Pid != api.Pid {
		t.Fatalf("the same file twice restarted api: %+v then %+v", api, again)
	}

	d.ok(t, "scale", "e2e-app/worker", "3")
	waitRunning(t, d, "e2e-app", "worker-2")
	if out := d.ok(t, "diff", "-f", f); !strings.Contains(out, "- remove command e2e-app/worker-2\n") {
		t.Fatalf("diff after scale:\n%s", out)
	}

	writeFile(t, work, "stack.yaml", strings.Replace(stack, "instances: 2", "instances: 2\n        stop_timeout_ms: 500", 1))
	out := d.ok(t, "apply", "-f", f)
	for _, w := range []string{"~ change command e2e-app/worker-0: stop_timeout_ms", "- remove command e2e-app/worker-2",
		"Plan: 0 to create, 2 to change, 0 to replace, 1 to remove."} {
		if !strings.Contains(out, w) {
			t.Fatalf("apply of a change: no %q in\n%s", w, out)
		}
	}
	if again := commandInfo(t, d, "e2e-app", "api"); again.ID != api.ID {
		t.Fatalf("a change of the workers restarted api")
	}

	writeFile(t, work, "stack.yaml", strings.Replace(stack, "label: e2e-app", "label: e2e-app\n    ttl_ms: 3600000", 1))
	r := d.run(t, "apply", "-f", f)
	if r.code != 1 || !strings.Contains(r.stderr, "-/+ replace workspace e2e-app: ttl_ms (needs --force)") ||
		!strings.Contains(r.stderr, "apply with force") {
		t.Fatalf("apply of a workspace change without --force: %s", r)
	}

	writeFile(t, work, "bad.env", "OK=1\nNOT OK\n")
	writeFile(t, work, "bad.yaml", strings.Replace(stack, "app.env", "bad.env", 1))
	r = d.run(t, "diff", "-f", filepath.Join(work, "bad.yaml"))
	if r.code != 1 || !strings.Contains(r.stderr, "workspaces[0].commands[0].env_file[0]: "+filepath.Join(work, "bad.env")+":2: ") {
		t.Fatalf("a bad env file: %s", r)
	}

	out = d.ok(t, "down", "-f", f)
	if out != "- remove workspace e2e-app\nPlan: 0 to create, 0 to change, 0 to replace, 1 to remove.\n" {
		t.Fatalf("down printed %q", out)
	}
	if r := d.run(t, "ws", "show", "e2e-app"); r.code != 1 {
		t.Fatalf("after down: %s", r)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("daemon exit %d\n%s", code, tail(d.stderr.String(), 3000))
	}
}
