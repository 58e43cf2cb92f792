package shipote

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/faultfs"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/persistence"
)

// copyFixture copies a persistence testdata file to dir/state.json.
func copyFixture(t *testing.T, name, dir string) (path string, data []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("persistence", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "state.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func TestUnrestorableEntriesAreKept(t *testing.T) {
	dir := t.TempDir()
	path, original := copyFixture(t, "state-bad-entry.json", dir)
	ctx := testCtx(t)

	eng := startEngine(t, Config{StatePath: path})
	rep := eng.RestoreReport()
	kept, err := eng.KeptEntries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) == 0 || rep.Kept != len(kept) {
		t.Fatalf("kept %d entries, report says %d: %+v", len(kept), rep.Kept, rep)
	}
	for _, k := range kept {
		if k.Reason == "" || len(k.Raw) == 0 {
			t.Errorf("kept entry without reason or bytes: %+v", k)
		}
	}
	// The build workspace's workdir does not exist: kept, with that reason.
	var build *persistence.KeptEntry
	for i := range kept {
		if kept[i].Label == "build" {
			build = &kept[i]
		}
	}
	if build == nil || !strings.Contains(build.Reason, "workdir") {
		t.Fatalf("build workspace not kept with its reason: %+v", kept)
	}

	// Any write keeps every kept entry byte for byte, and a copy of the
	// file as read.
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "fresh"}); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kept {
		if !bytes.Contains(after, k.Raw) {
			t.Errorf("kept %s entry %s is not in the file byte for byte after a write", k.Section, k.ID)
		}
	}
	copies, _ := filepath.Glob(path + ".pre-*")
	if len(copies) != 1 {
		t.Fatalf("want one copy of the file as read, got %v", copies)
	}
	if b, _ := os.ReadFile(copies[0]); !bytes.Equal(b, original) {
		t.Fatal("the .pre copy is not the file as read")
	}

	// Dropping one is durable.
	dropped, err := eng.DropKept(ctx, build.ID)
	if err != nil {
		t.Fatal(err)
	}
	if dropped.ID != build.ID {
		t.Fatalf("dropped %+v, want %s", dropped, build.ID)
	}
	if b, _ := os.ReadFile(path); bytes.Contains(b, build.Raw) {
		t.Fatal("a dropped entry is still in the file")
	}
	if _, err := eng.DropKept(ctx, build.ID); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("dropping it again: %v, want not found", err)
	}
	if _, err := eng.DropKept(ctx, "no-such-entry"); !errors.Is(err, messages.ErrNotFound) {
		t.Fatalf("dropping an unknown entry: %v, want not found", err)
	}

	// A restart keeps the rest, and restores the same workspaces.
	before, _ := eng.Workspaces(ctx)
	if err := eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eng2 := startEngine(t, Config{StatePath: path})
	kept2, err := eng2.KeptEntries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept2) != len(kept)-1 {
		t.Fatalf("after a restart %d kept entries, want %d", len(kept2), len(kept)-1)
	}
	again, _ := eng2.Workspaces(ctx)
	if len(again) != len(before) {
		t.Fatalf("restored %d workspaces, had %d", len(again), len(before))
	}
	for _, w := range again {
		if w.Spec.Label == "fresh" {
			continue
		}
		samples, err := eng2.Stats(ctx, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range samples {
			if s.TimestampMs < time.Now().Add(-time.Hour).UnixMilli() && s.Source != messages.SourcePersisted {
				t.Errorf("restored sample of %s has source %q, want persisted", w.Spec.Label, s.Source)
			}
		}
	}
}

func TestDeletedOrReplacedStateFileIsRewritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	ctx := testCtx(t)
	eng := startEngine(t, Config{StatePath: path, SampleInterval: 50 * time.Millisecond})
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "keepme"})
	if err != nil {
		t.Fatal(err)
	}
	holds := func() bool {
		b, err := os.ReadFile(path)
		return err == nil && bytes.Contains(b, []byte(ws.ID))
	}
	// Mutations go to the journal; a save writes the snapshot.
	if _, err := eng.SaveSnapshot(ctx); err != nil || !holds() {
		t.Fatalf("save: %v, file holds the workspace: %v", err, holds())
	}

	// A save with nothing changed is not skipped when the file is gone.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	saved, err := eng.SaveSnapshot(ctx)
	if err != nil || !saved || !holds() {
		t.Fatalf("save after the file was deleted: saved=%v err=%v, file holds the workspace: %v", saved, err, holds())
	}
	// Nor while nobody asks: the periodic check notices.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the deleted state file rewritten", holds)
	// A file put in its place is replaced by the state in effect.
	if err := os.WriteFile(path+".other", []byte(`{"version":4,"timestamp_ms":0,"workspaces":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".other", path); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the replaced state file rewritten", holds)
}

// breakDisk makes dir refuse writes and returns the function that undoes it.
type breakDisk func(t *testing.T, dir string) (fix func())

func TestFailedWriteIsNotInEffect(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cause string
		brk   breakDisk
	}{
		{"ENOSPC", "no space left on device", func(t *testing.T, dir string) func() {
			free, err := faultfs.Fill(dir)
			if err != nil {
				t.Fatal(err)
			}
			return func() {
				if err := free(); err != nil {
					t.Error(err)
				}
			}
		}},
		{"EPERM", "operation not permitted", func(t *testing.T, dir string) func() {
			return faultfs.Immutable(t, dir)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := faultfs.Tmpfs(t, 4<<20)
			path := filepath.Join(dir, "state.json")
			ctx := testCtx(t)
			cfg := Config{StatePath: path, SampleInterval: 50 * time.Millisecond}
			eng := startEngine(t, cfg)

			a, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "a"})
			if err != nil {
				t.Fatal(err)
			}
			sleeper, err := eng.Exec(ctx, "a", native("sleep", "1000"))
			if err != nil {
				t.Fatal(err)
			}
			if err := eng.SavePipeline(ctx, "p1", supervisedSleeper("p1")); err != nil {
				t.Fatal(err)
			}
			live0, err := eng.RunPipeline(ctx, "a", supervisedSleeper("live0"), false)
			if err != nil {
				t.Fatal(err)
			}
			// Start from an empty journal: an append into the slack of a
			// page the journal already holds needs no space (and is
			// durable), so it would not be refused.
			if _, err := eng.SaveSnapshot(ctx); err != nil {
				t.Fatal(err)
			}

			fix := tc.brk(t, dir)
			fixed := false
			defer func() {
				if !fixed {
					fix()
				}
			}()
			refused := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, messages.ErrNotSaved) || !strings.Contains(err.Error(), tc.cause) {
					t.Fatalf("%s while the disk refuses writes: %v; want ErrNotSaved naming %q", what, err, tc.cause)
				}
			}
			_, err = eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "b"})
			refused("create", err)
			if _, err := eng.Workspace(ctx, "b"); !errors.Is(err, messages.ErrNotFound) {
				t.Fatalf("a refused create is in effect: %v", err)
			}
			if eng.Degraded() == nil {
				t.Fatal("not degraded while writes fail")
			}
			_, err = eng.RemoveWorkspace(ctx, "a", time.Second)
			refused("remove", err)
			if _, err := eng.Workspace(ctx, "a"); err != nil {
				t.Fatalf("a refused remove took the workspace: %v", err)
			}
			if !alive(sleeper.Pid) {
				t.Fatal("a refused remove killed the workspace's process")
			}
			refused("save pipeline", eng.SavePipeline(ctx, "p2", supervisedSleeper("p2")))
			refused("delete saved pipeline", eng.DeleteSavedPipeline(ctx, "p1"))
			saved, err := eng.SavedPipelines(ctx)
			if err != nil || len(saved) != 1 || saved[0].Name != "p1" {
				t.Fatalf("saved pipelines after refused changes: %+v %v", saved, err)
			}
			_, err = eng.RunPipeline(ctx, "a", supervisedSleeper("live"), false)
			refused("start a supervised pipeline", err)
			eventually(t, 20*time.Second, "the refused pipeline stopped", func() bool {
				ps, err := eng.Pipelines(ctx, "a")
				if err != nil {
					return false
				}
				for _, p := range ps {
					if p.Label == "live" && !p.State.Ended() {
						return false
					}
				}
				return true
			})
			_, err = eng.StopPipeline(ctx, live0.ID)
			refused("stop a supervised pipeline", err)
			if p, err := eng.Pipeline(ctx, live0.ID); err != nil || p.State.Ended() {
				t.Fatalf("a refused stop stopped the pipeline: %+v %v", p.State, err)
			}
			// Reads go on.
			if _, err := eng.Workspaces(ctx); err != nil {
				t.Fatalf("reads while degraded: %v", err)
			}

			fix()
			fixed = true
			eventually(t, 60*time.Second, "recovery once the disk takes writes", func() bool { return eng.Degraded() == nil })
			if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "c"}); err != nil {
				t.Fatalf("create after recovery: %v", err)
			}
			if err := eng.Stop(ctx); err != nil {
				t.Fatal(err)
			}

			// A restart brings back exactly what was acknowledged.
			eng2 := startEngine(t, cfg)
			got, err := eng2.Workspaces(ctx)
			if err != nil {
				t.Fatal(err)
			}
			labels := map[string]string{}
			for _, w := range got {
				labels[w.Spec.Label] = w.ID
			}
			if labels["a"] != a.ID || labels["c"] == "" || labels["b"] != "" || len(labels) != 2 {
				t.Fatalf("restored %v; want a (%s) and c, not b", labels, a.ID)
			}
			saved, _ = eng2.SavedPipelines(ctx)
			if len(saved) != 1 || saved[0].Name != "p1" {
				t.Fatalf("restored saved pipelines %+v; want p1 only", saved)
			}
			ps, _ := eng2.Pipelines(ctx, "a")
			if len(ps) != 1 || ps[0].ID != live0.ID {
				t.Fatalf("restored pipelines %+v; want live0 (%s) only, the refused start not", ps, live0.ID)
			}
		})
	}
}

func TestStateDirectoryIsMadePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	eng := startEngine(t, Config{StatePath: filepath.Join(dir, "state.json")})
	_ = eng
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("state directory is %04o, want 0700", fi.Mode().Perm())
	}
}

func TestStateDirectoryThatCannotBeMadePrivateRefusesStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer faultfs.Immutable(t, dir)()
	_, err := Start(context.Background(), NewActorSystem(nil), Config{Limits: "none", StatePath: filepath.Join(dir, "state.json")})
	if err == nil || !strings.Contains(err.Error(), "0700") {
		t.Fatalf("start on a state directory that cannot be made 0700: %v", err)
	}
}
