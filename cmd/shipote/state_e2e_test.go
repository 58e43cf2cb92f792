package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/internal/faultfs"
	"github.com/shipote/shipote/messages"
)

// TestE2EStateKeptEntries starts a daemon on a file whose entries do not
// all restore: nothing is erased, `state ls` says why, `ws ls` notes it,
// `state drop` removes one durably.
func TestE2EStateKeptEntries(t *testing.T) {
	dir := shortDir(t)
	state := filepath.Join(t.TempDir(), "state.json")
	src, err := os.ReadFile(filepath.Join("..", "..", "persistence", "testdata", "state-bad-entry.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, src, 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, filepath.Join(dir, "s.sock"), state, newParent(t))

	info := getJSON[api.StateInfo](t, d, "state", "ls")
	if len(info.Kept) == 0 {
		t.Fatalf("state ls -o json: no kept entries\n%+v", info)
	}
	var build api.KeptEntry
	for _, k := range info.Kept {
		if k.Label == "build" && k.Section == "workspaces" {
			build = k
		}
	}
	if build.ID == "" || !strings.Contains(build.Reason, "workdir") || len(build.Entry) == 0 {
		t.Fatalf("build is not listed as kept with its reason: %+v", info.Kept)
	}
	table := d.ok(t, "state", "ls")
	if !strings.Contains(table, build.ID) || !strings.Contains(table, "workdir") {
		t.Fatalf("state ls table:\n%s", table)
	}
	if s := d.stderr.String(); !strings.Contains(s, "kept but not in effect") {
		t.Errorf("no startup line about kept entries in\n%s", tail(s, 3000))
	}

	// A mutation keeps every kept entry on disk.
	d.id(t, "ws", "create", "--label", "fresh")
	onDisk, _ := os.ReadFile(state)
	for _, k := range info.Kept {
		var compact bytes.Buffer
		_ = json.Compact(&compact, k.Entry)
		var diskCompact bytes.Buffer
		_ = json.Compact(&diskCompact, onDisk)
		if !bytes.Contains(diskCompact.Bytes(), compact.Bytes()) {
			t.Errorf("kept entry %s (%s) is gone from the file", k.Ref, k.Section)
		}
	}
	ls := d.run(t, "ws", "ls")
	if ls.code != 0 || !strings.Contains(ls.stderr, "shipote state ls") {
		t.Fatalf("ws ls does not note the kept entries:\n%s", ls)
	}

	if out := d.ok(t, "state", "drop", build.ID); !strings.Contains(out, "dropped") {
		t.Fatalf("state drop: %q", out)
	}
	if r := d.run(t, "state", "drop", build.ID); r.code != 1 || !strings.Contains(r.stderr, "shipote: ") {
		t.Fatalf("dropping it again should fail with exit 1:\n%s", r)
	}
	if r := d.run(t, "state", "drop"); r.code != 2 {
		t.Fatalf("state drop without REF should be a usage error:\n%s", r)
	}
	after := getJSON[api.StateInfo](t, d, "state", "ls")
	if len(after.Kept) != len(info.Kept)-1 {
		t.Fatalf("after a drop %d kept entries, want %d", len(after.Kept), len(info.Kept)-1)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
	// The drop was durable: a new daemon keeps the others only.
	d2 := startDaemon(t, filepath.Join(dir, "s2.sock"), state, newParent(t))
	again := getJSON[api.StateInfo](t, d2, "state", "ls")
	if len(again.Kept) != len(after.Kept) {
		t.Fatalf("after a restart %d kept entries, want %d", len(again.Kept), len(after.Kept))
	}
	if code := d2.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
}

// TestE2EStateNotWritable: while the state directory refuses writes, a
// create fails with the cause, is not listed, and the daemon says it is
// degraded; it recovers by itself.
func TestE2EStateNotWritable(t *testing.T) {
	dir := shortDir(t)
	stateDir := faultfs.Tmpfs(t, 4<<20)
	state := filepath.Join(stateDir, "state.json")
	d := startDaemon(t, filepath.Join(dir, "s.sock"), state, newParent(t))
	d.id(t, "ws", "create", "--label", "before")
	clear := faultfs.Immutable(t, stateDir)
	r := d.run(t, "ws", "create", "--label", "refused")
	if r.code != 1 || !strings.Contains(r.stderr, "operation not permitted") || !strings.Contains(r.stderr, "state not writable") {
		t.Fatalf("create on a refusing disk:\n%s", r)
	}
	list := getJSON[[]messages.WorkspaceInfo](t, d, "ws", "ls")
	for _, w := range list {
		if w.Spec.Label == "refused" {
			t.Fatal("a refused create is listed")
		}
	}
	if v := d.ok(t, "version"); !strings.Contains(v, "degraded: state not writable") {
		t.Fatalf("version does not say degraded:\n%s", v)
	}
	clear()
	poll(t, "recovery", func() bool { return !strings.Contains(d.ok(t, "version"), "degraded") })
	d.id(t, "ws", "create", "--label", "after")
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
}

// TestE2ESupervisedCommandSurvivesKill9: a command started with
// `exec --restart always` is back after kill -9 and a restart, with the
// same ID and a new pid; one the user stopped stays stopped (it is not
// relaunched).
func TestE2ESupervisedCommandSurvivesKill9(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "s.sock")
	state := filepath.Join(t.TempDir(), "state.json")
	parent := newParent(t)
	d := startDaemon(t, sock, state, parent)
	d.id(t, "ws", "create", "--label", "svc")
	webID := d.id(t, "exec", "svc", "--label", "web", "--restart", "always", "--", "sleep", "1000")
	stoppedID := d.id(t, "exec", "svc", "--label", "idle", "--restart", "always", "--", "sleep", "1001")
	oneShot := d.id(t, "exec", "svc", "--label", "once", "--", "sleep", "1002")
	if out := d.ok(t, "stop", "svc/idle"); !strings.Contains(out, "stopped by SIGTERM") {
		t.Fatalf("stop: %q", out)
	}
	cmds := getJSON[[]messages.CommandInfo](t, d, "ps", "svc")
	oldPid := 0
	for _, c := range cmds {
		if c.ID == webID {
			oldPid = c.Pid
		}
	}
	if oldPid == 0 {
		t.Fatalf("web is not running: %+v", cmds)
	}
	if code := d.stop(syscall.SIGKILL); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("kill -9: exit %d", code)
	}
	poll(t, "web to die with the daemon", func() bool { return syscall.Kill(oldPid, 0) != nil })

	d2 := startDaemon(t, sock, state, parent)
	var web messages.CommandInfo
	poll(t, "web to be back", func() bool {
		for _, c := range getJSON[[]messages.CommandInfo](t, d2, "ps", "svc") {
			if c.Label == "web" {
				web = c
			}
		}
		return web.Pid > 0
	})
	if web.ID != webID || web.Pid == oldPid || web.State != messages.CommandRunning {
		t.Fatalf("web after kill -9 and a restart: %+v (was %s pid %d)", web, webID, oldPid)
	}
	for _, c := range getJSON[[]messages.CommandInfo](t, d2, "ps", "svc") {
		if c.ID == stoppedID || c.ID == oneShot {
			t.Errorf("%s (%s) came back after a restart: %+v", c.Label, c.ID, c)
		}
	}
	if code := d2.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("SIGTERM: exit %d", code)
	}
}
