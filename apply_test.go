// This file tests Apply and Scale on a real engine with real processes:
// idempotence, a changed command restarting alone, instances, ownership,
// replace needing force, down, and the project surviving a restart.

package shipote

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/faultfs"
	"github.com/shipote/shipote/messages"
)

func sleeper(label, secs string) messages.CommandRef {
	c := native("sleep", secs)
	c.Label = label
	c.Supervision = messages.Supervision{Restart: &messages.RestartPolicy{On: messages.RestartAlways}}
	return c
}

func stackFile() messages.UpFile {
	workers := sleeper("worker", "1000")
	workers.Instances = 2
	return messages.UpFile{Name: "shop", Workspaces: []messages.UpWorkspace{{
		WorkspaceSpec: messages.WorkspaceSpec{Label: "shop-web"},
		Commands:      []messages.CommandRef{sleeper("api", "1000"), workers},
	}}}
}

// ids maps each command label of ws to its ID and whether it has ended.
func ids(t *testing.T, eng *Engine, ws string) map[string]string {
	t.Helper()
	cmds, err := eng.Commands(testCtx(t), ws)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	for _, c := range cmds {
		if !c.State.Ended() {
			out[c.Label] = c.ID
		}
	}
	return out
}

func summarize(p messages.Plan) string {
	var s []string
	for _, e := range p.Entries {
		x := string(e.Action) + " " + string(e.Kind) + " " + e.Workspace
		if e.Name != "" {
			x += "/" + e.Name
		}
		s = append(s, x)
	}
	return strings.Join(s, "; ")
}

func TestApplyLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	eng := startEngine(t, Config{StatePath: path})
	ctx := testCtx(t)
	f := stackFile()

	dry, err := eng.Apply(ctx, messages.ApplyRequest{File: f, DryRun: true})
	if err != nil || dry.Applied || len(dry.Plan.Entries) != 4 {
		t.Fatalf("dry run = %+v, %v; want 4 entries, not applied", dry, err)
	}
	if _, err := eng.Workspace(ctx, "shop-web"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("a dry run created the workspace: %v", err)
	}
	res, err := eng.Apply(ctx, messages.ApplyRequest{File: f})
	if err != nil || !res.Applied {
		t.Fatalf("Apply() = %+v, %v", res, err)
	}
	first := ids(t, eng, "shop-web")
	if len(first) != 3 || first["api"] == "" || first["worker-0"] == "" || first["worker-1"] == "" {
		t.Fatalf("commands after apply: %v", first)
	}
	// Durable before acknowledged: the snapshot on disk has the project.
	snap, err := eng.Snapshot(ctx)
	if err != nil || len(snap.Workspaces) != 1 || snap.Workspaces[0].Spec.Project != "shop" || len(snap.LiveCommands) != 3 {
		t.Fatalf("snapshot after apply: %+v, %v", snap, err)
	}

	again, err := eng.Apply(ctx, messages.ApplyRequest{File: f})
	if err != nil || !again.Plan.Empty() {
		t.Fatalf("second apply = %s, %v; want nothing", summarize(again.Plan), err)
	}
	if got := ids(t, eng, "shop-web"); !equalMaps(got, first) {
		t.Fatalf("the same file twice restarted something: %v then %v", first, got)
	}

	// A new payload: the in-process engine holds the one it was given.
	f.Workspaces[0].Commands[0].Payload.Native = &messages.NativePayload{Exec: "sleep", Argv: []string{"999"}}
	ch, err := eng.Apply(ctx, messages.ApplyRequest{File: f})
	if err != nil || summarize(ch.Plan) != "change command shop-web/api" || strings.Join(ch.Plan.Entries[0].Fields, ",") != "payload.native.argv" {
		t.Fatalf("apply of a changed command = %s %v, %v", summarize(ch.Plan), ch.Plan.Entries, err)
	}
	after := ids(t, eng, "shop-web")
	if after["api"] == first["api"] || after["api"] == "" || after["worker-0"] != first["worker-0"] || after["worker-1"] != first["worker-1"] {
		t.Fatalf("a changed command: before %v, after %v; want only api restarted", first, after)
	}

	if _, err := eng.Scale(ctx, "shop-web", "worker", 3); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, eng, "shop-web"); got["worker-2"] == "" || got["worker-0"] != first["worker-0"] {
		t.Fatalf("after scale 3: %v", got)
	}
	back, err := eng.Apply(ctx, messages.ApplyRequest{File: f})
	if err != nil || summarize(back.Plan) != "remove command shop-web/worker-2" {
		t.Fatalf("apply after scale = %s, %v", summarize(back.Plan), err)
	}

	f.Workspaces[0].Soma.PidsMax = 50
	inPlace, err := eng.Apply(ctx, messages.ApplyRequest{File: f})
	if err != nil || summarize(inPlace.Plan) != "change workspace shop-web" {
		t.Fatalf("apply of new limits = %s, %v", summarize(inPlace.Plan), err)
	}
	if info, err := eng.Workspace(ctx, "shop-web"); err != nil || info.Spec.Soma.PidsMax != 50 {
		t.Fatalf("after a change in place: %+v, %v", info.Spec, err)
	}
	if got := ids(t, eng, "shop-web"); got["api"] != after["api"] || len(got) != 3 {
		t.Fatalf("a change of limits restarted something: %v then %v", after, got)
	}
	if snap, err := eng.Snapshot(ctx); err != nil || snap.Workspaces[0].Spec.Soma.PidsMax != 50 {
		t.Fatalf("the new limits are not durable: %v", err)
	}

	f.Workspaces[0].TTLMs = 3600000
	_, err = eng.Apply(ctx, messages.ApplyRequest{File: f})
	if !errors.Is(err, messages.ErrConflict) || !strings.Contains(err.Error(), "replaces workspace shop-web (ttl_ms)") {
		t.Fatalf("apply of a changed workspace without force: %v", err)
	}
	if got := ids(t, eng, "shop-web"); got["api"] != after["api"] {
		t.Fatalf("a refused replace changed something: %v", got)
	}
	rep, err := eng.Apply(ctx, messages.ApplyRequest{File: f, Force: true})
	if err != nil || !strings.HasPrefix(summarize(rep.Plan), "replace workspace shop-web; create command") {
		t.Fatalf("forced replace = %s, %v", summarize(rep.Plan), err)
	}
	if info, err := eng.Workspace(ctx, "shop-web"); err != nil || info.Spec.TTLMs != 3600000 || len(ids(t, eng, "shop-web")) != 3 {
		t.Fatalf("after replace: %+v, %v", info.Spec, err)
	}

	// The project survives a restart: a second apply finds it and does
	// nothing.
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := eng.Stop(sctx); err != nil {
		t.Fatal(err)
	}
	eng2 := startEngine(t, Config{StatePath: path})
	if info, err := eng2.Workspace(ctx, "shop-web"); err != nil || info.Spec.Project != "shop" {
		t.Fatalf("after restart: %+v, %v", info.Spec, err)
	}
	if again, err := eng2.Apply(ctx, messages.ApplyRequest{File: f}); err != nil || !again.Plan.Empty() {
		t.Fatalf("apply after restart = %s, %v; want nothing", summarize(again.Plan), err)
	}

	down, err := eng2.Apply(ctx, messages.ApplyRequest{File: f, Down: true})
	if err != nil || summarize(down.Plan) != "remove workspace shop-web" {
		t.Fatalf("down = %s, %v", summarize(down.Plan), err)
	}
	if _, err := eng2.Workspace(ctx, "shop-web"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("after down: %v", err)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestApplyRefusals(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "shop-web"}); err != nil {
		t.Fatal(err)
	}
	envFile := stackFile()
	envFile.Workspaces[0].Commands[0].EnvFile = []string{"/etc/app.env"}
	wsDeps := stackFile()
	wsDeps.Workspaces = append(wsDeps.Workspaces, messages.UpWorkspace{WorkspaceSpec: messages.WorkspaceSpec{Label: "shop-db"}})
	wsDeps.Workspaces[0].DependsOn = []string{"shop-db"}
	noName := stackFile()
	noName.Name = ""
	tests := []struct {
		name string
		req  messages.ApplyRequest
		is   error
		msg  string
	}{
		{"name held by hand", messages.ApplyRequest{File: stackFile()}, messages.ErrConflict,
			`workspace "shop-web" (`},
		{"no project", messages.ApplyRequest{File: noName}, messages.ErrInvalid, "project: is required"},
		{"bad project", messages.ApplyRequest{File: stackFile(), Project: "../x"}, messages.ErrInvalid, "project: "},
		{"invalid file", messages.ApplyRequest{File: messages.UpFile{Name: "x"}}, messages.ErrInvalid, "file.workspaces: must list"},
		{"workspace depends_on", messages.ApplyRequest{File: wsDeps}, messages.ErrInvalid, "file.workspaces[0].depends_on: orders the workspaces of `shipote up` only"},
		{"unread env file", messages.ApplyRequest{File: envFile}, messages.ErrInvalid, "file.workspaces[0].commands[0].env_file: is read by the client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := eng.Apply(ctx, tt.req)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Apply() error = %v, want %v containing %q", err, tt.is, tt.msg)
			}
		})
	}
	if cmds, _ := eng.Commands(ctx, "shop-web"); len(cmds) != 0 {
		t.Fatalf("a refused apply started %d commands", len(cmds))
	}
	if _, err := eng.Exec(ctx, "shop-web", func() messages.CommandRef { c := sleeper("x", "1"); c.Instances = 2; return c }()); !errors.Is(err, messages.ErrInvalid) {
		t.Fatalf("Exec with instances: %v", err)
	}
}

func TestUpdateWorkspaceSomaRefusals(t *testing.T) {
	eng := startEngine(t, Config{})
	ctx := testCtx(t)
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "lim", Soma: messages.Soma{PidsMax: 100, NofileMax: 256}}); err != nil {
		t.Fatal(err)
	}
	c := sleeper("big", "1000")
	c.Soma = messages.Soma{PidsMax: 50}
	if _, err := eng.Exec(ctx, "lim", c); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		soma messages.Soma
		msg  string
	}{
		{"nofile", messages.Soma{PidsMax: 100, NofileMax: 512}, "soma.nofile_max: cannot change in place"},
		{"below a command", messages.Soma{PidsMax: 10, NofileMax: 256}, "command big: soma.pids_max: 50 exceeds the workspace's 10"},
		{"negative", messages.Soma{PidsMax: -1, NofileMax: 256}, "soma.pids_max: must be >= 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := eng.UpdateWorkspaceSoma(ctx, "lim", tt.soma)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("UpdateWorkspaceSoma() = %v, want %q", err, tt.msg)
			}
		})
	}
	if _, err := eng.UpdateWorkspaceSoma(ctx, "nope", messages.Soma{}); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("unknown workspace: %v", err)
	}
	info, err := eng.UpdateWorkspaceSoma(ctx, "lim", messages.Soma{PidsMax: 60, MemoryMaxBytes: 1 << 30, NofileMax: 256})
	if err != nil || info.Spec.Soma.PidsMax != 60 || info.Spec.Soma.MemoryMaxBytes != 1<<30 {
		t.Fatalf("UpdateWorkspaceSoma() = %+v, %v", info.Spec.Soma, err)
	}
}

// TestApplyChangesCgroupLimitsInPlace: new limits reach the workspace's
// cgroup while its command keeps running, same pid.
func TestApplyChangesCgroupLimitsInPlace(t *testing.T) {
	cgroupV1Usable(t)
	eng := startEngine(t, Config{Limits: "cgroup1", Grace: time.Second})
	ctx := testCtx(t)
	f := messages.UpFile{Name: "lims", Workspaces: []messages.UpWorkspace{{
		WorkspaceSpec: messages.WorkspaceSpec{Label: "lims", Soma: messages.Soma{PidsMax: 40}},
		Commands:      []messages.CommandRef{sleeper("s", "1000")},
	}}}
	if _, err := eng.Apply(ctx, messages.ApplyRequest{File: f}); err != nil {
		t.Fatal(err)
	}
	before, err := eng.Command(ctx, "lims", "s")
	if err != nil || before.Pid == 0 {
		t.Fatalf("command: %+v, %v", before, err)
	}
	pidsMax := func() string {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", before.Pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && parts[1] == "pids" {
				v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", parts[2], "pids.max"))
				if err != nil {
					t.Fatal(err)
				}
				return strings.TrimSpace(string(v))
			}
		}
		t.Fatalf("no pids cgroup in %s", data)
		return ""
	}
	if got := pidsMax(); got != "40" {
		t.Fatalf("pids.max = %q before, want 40", got)
	}
	f.Workspaces[0].Soma.PidsMax = 80
	res, err := eng.Apply(ctx, messages.ApplyRequest{File: f})
	if err != nil || summarize(res.Plan) != "change workspace lims" {
		t.Fatalf("apply = %s, %v", summarize(res.Plan), err)
	}
	if got := pidsMax(); got != "80" {
		t.Fatalf("pids.max = %q after, want 80", got)
	}
	if after, err := eng.Command(ctx, "lims", "s"); err != nil || after.Pid != before.Pid || after.ID != before.ID {
		t.Fatalf("the command was restarted: %+v then %+v", before, after)
	}
}

// TestApplyNotSavedIsNotInEffect: when the state file refuses the write
// of an apply's starts, the apply fails with the cause and the commands it
// started are killed and forgotten; a later apply starts them.
func TestApplyNotSavedIsNotInEffect(t *testing.T) {
	dir := t.TempDir()
	eng := startEngine(t, Config{StatePath: filepath.Join(dir, "state.json")})
	ctx := testCtx(t)
	// A one-shot command makes the workspace's log directory, which stays
	// writable below the state directory.
	first := native("true")
	first.Label = "init"
	f := messages.UpFile{Name: "ns", Workspaces: []messages.UpWorkspace{{WorkspaceSpec: messages.WorkspaceSpec{Label: "ns"},
		Commands: []messages.CommandRef{first}}}}
	if _, err := eng.Apply(ctx, messages.ApplyRequest{File: f}); err != nil {
		t.Fatal(err)
	}
	f.Workspaces[0].Commands = append(f.Workspaces[0].Commands, sleeper("a", "1000"), sleeper("b", "1000"))
	if err := faultfs.SetImmutable(dir, true); err != nil {
		t.Skipf("cannot make %s refuse writes: %v", dir, err)
	}
	t.Cleanup(func() { _ = faultfs.SetImmutable(dir, false) })
	_, err := eng.Apply(ctx, messages.ApplyRequest{File: f})
	if !errors.Is(err, messages.ErrNotSaved) {
		t.Fatalf("apply on a refusing disk: %v, want ErrNotSaved", err)
	}
	eventually(t, 20*time.Second, "the unsaved commands to be gone", func() bool {
		cmds, err := eng.Commands(ctx, "ns")
		return err == nil && len(cmds) == 1 && cmds[0].Label == "init"
	})
	if err := faultfs.SetImmutable(dir, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "writes to work again", func() bool {
		_, err := eng.SaveSnapshot(ctx)
		return err == nil
	})
	res, err := eng.Apply(ctx, messages.ApplyRequest{File: f})
	if err != nil || summarize(res.Plan) != "create command ns/a; create command ns/b" {
		t.Fatalf("apply once writes work = %s, %v", summarize(res.Plan), err)
	}
}
