package server_test

import (
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/messages"
)

func pipelineSpec(label string) messages.PipelineSpec {
	return messages.PipelineSpec{
		Label: label,
		Nodes: []messages.Node{
			{Label: "src", Payload: native("sh", "-c", "while :; do echo tick; sleep 0.05; done").Payload},
			{Label: "sink", Payload: native("cat").Payload},
		},
		Edges: []messages.Edge{{From: "src", To: "sink"}},
	}
}

func TestEveryRouteThroughTheClient(t *testing.T) {
	d := startDaemon(t)
	c, ctx := d.c, testCtx(t)

	if err := c.Health(ctx); err != nil {
		t.Fatalf("health: %v", err)
	}
	v, err := c.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := api.VersionInfo{Version: shipote.Version, GoVersion: runtime.Version(), LimitsBackend: "none", Orphans: d.eng.Orphans(), Socket: d.sock}
	if v != want || v.Orphans == "" {
		t.Errorf("version = %+v, want %+v", v, want)
	}

	// Workspaces.
	ws, err := c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "alpha"})
	if err != nil {
		t.Fatal(err)
	}
	if ws.ID == "" || ws.Spec.Label != "alpha" {
		t.Fatalf("created %+v", ws)
	}
	all, err := c.Workspaces(ctx)
	if err != nil || len(all) != 1 || all[0].ID != ws.ID {
		t.Fatalf("workspaces = %+v, %v", all, err)
	}
	for _, ref := range []string{"alpha", ws.ID} {
		got, err := c.Workspace(ctx, ref)
		if err != nil || got.ID != ws.ID {
			t.Errorf("workspace %q = %+v, %v", ref, got, err)
		}
	}

	// Commands and logs.
	cmd := native("sh", "-c", "echo hello; echo oops >&2")
	cmd.Label = "greet"
	ci, err := c.Exec(ctx, "alpha", cmd)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Label != "greet" || ci.Workspace != ws.ID {
		t.Errorf("exec = %+v", ci)
	}
	for _, w := range []string{"alpha", ""} {
		cmds, err := c.Commands(ctx, w)
		if err != nil || len(cmds) != 1 || cmds[0].ID != ci.ID {
			t.Errorf("commands(%q) = %+v, %v", w, cmds, err)
		}
	}
	eventually(t, 10*time.Second, "the command to exit", func() bool {
		got, err := c.Command(ctx, "alpha", "greet")
		return err == nil && got.State == messages.CommandExited
	})
	logs := func(o api.LogOptions) []string {
		t.Helper()
		var lines []string
		if err := c.Logs(ctx, "alpha", ci.ID, o, func(l messages.LogLine) error {
			lines = append(lines, string(l.Stream)+":"+l.Line)
			return nil
		}); err != nil {
			t.Fatalf("logs %+v: %v", o, err)
		}
		slices.Sort(lines)
		return lines
	}
	eventually(t, 10*time.Second, "two log lines", func() bool { return len(logs(api.LogOptions{})) == 2 })
	for _, tc := range []struct {
		o    api.LogOptions
		want []string
	}{
		{api.LogOptions{}, []string{"err:oops", "out:hello"}},
		{api.LogOptions{Stream: messages.Stderr}, []string{"err:oops"}},
		{api.LogOptions{Stream: messages.Stdout}, []string{"out:hello"}},
		{api.LogOptions{Since: 10 * time.Minute}, []string{"err:oops", "out:hello"}},
		{api.LogOptions{Tail: 1, Stream: messages.Stdout}, []string{"out:hello"}},
	} {
		if got := logs(tc.o); !slices.Equal(got, tc.want) {
			t.Errorf("logs %+v = %q, want %q", tc.o, got, tc.want)
		}
	}
	if got := logs(api.LogOptions{Tail: 1}); len(got) != 1 {
		t.Errorf("logs tail 1 = %q", got)
	}

	// Stats are sampled every second.
	eventually(t, 20*time.Second, "a stats sample", func() bool {
		s, err := c.Stats(ctx, "alpha")
		if err != nil {
			t.Fatalf("stats: %v", err)
		}
		return len(s) > 0
	})

	// Pipelines.
	run, err := c.RunPipeline(ctx, "alpha", pipelineSpec("ticker"), false)
	if err != nil {
		t.Fatal(err)
	}
	if run.ID == "" || run.Label != "ticker" || run.Workspace != ws.ID {
		t.Errorf("run = %+v", run)
	}
	for _, w := range []string{"", "alpha"} {
		ps, err := c.Pipelines(ctx, w)
		if err != nil || len(ps) != 1 || ps[0].ID != run.ID {
			t.Errorf("pipelines(%q) = %+v, %v", w, ps, err)
		}
	}
	for _, ref := range []string{run.ID, "ticker"} {
		p, err := c.Pipeline(ctx, ref)
		if err != nil || p.ID != run.ID {
			t.Errorf("pipeline %q = %+v, %v", ref, p, err)
		}
	}
	stopped, err := c.StopPipeline(ctx, "ticker")
	if err != nil {
		t.Fatal(err)
	}
	if stopped.ID != run.ID {
		t.Errorf("stopped %+v", stopped)
	}

	// Saved pipelines.
	if err := c.SavePipeline(ctx, "nightly", pipelineSpec("nightly")); err != nil {
		t.Fatal(err)
	}
	saved, err := c.SavedPipelines(ctx)
	if err != nil || len(saved) != 1 || saved[0].Name != "nightly" || saved[0].Spec.Label != "nightly" {
		t.Fatalf("saved = %+v, %v", saved, err)
	}
	started, err := c.StartSavedPipeline(ctx, "nightly", "alpha", false)
	if err != nil {
		t.Fatal(err)
	}
	if started.Label != "nightly" || started.Workspace != ws.ID {
		t.Errorf("started %+v", started)
	}
	if _, err := c.StopPipeline(ctx, started.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteSavedPipeline(ctx, "nightly"); err != nil {
		t.Fatal(err)
	}
	if saved, err := c.SavedPipelines(ctx); err != nil || len(saved) != 0 {
		t.Errorf("saved after delete = %+v, %v", saved, err)
	}
	if err := c.DeleteSavedPipeline(ctx, "nightly"); !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("second delete: %v, want not found", err)
	}

	// Events (no follow): the recent ones.
	var kinds []messages.EventKind
	if err := c.Events(ctx, false, func(ev messages.Event) error {
		if ev.Workspace == ws.ID {
			kinds = append(kinds, ev.Kind)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(kinds, messages.EventCreated) {
		t.Errorf("events of alpha = %v, want a created event", kinds)
	}

	// Snapshots need a state file.
	if _, err := c.Snapshot(ctx); !errors.Is(err, messages.ErrConflict) {
		t.Errorf("snapshot without a state file: %v, want conflict", err)
	}
	if _, _, err := c.SaveSnapshot(ctx); !errors.Is(err, messages.ErrConflict) {
		t.Errorf("save snapshot without a state file: %v, want conflict", err)
	}

	// Removal.
	removed, err := c.RemoveWorkspace(ctx, "alpha", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if removed.ID != ws.ID {
		t.Errorf("removed %+v", removed)
	}
	if _, err := c.Workspace(ctx, "alpha"); !errors.Is(err, messages.ErrNotFound) {
		t.Errorf("workspace after removal: %v, want not found", err)
	}
}

func TestSnapshotRoutes(t *testing.T) {
	dir := shortDir(t)
	state := dir + "/state.json"
	eng := startEngine(t, shipote.Config{StatePath: state})
	d := serve(t, eng, dir)
	c, ctx := d.c, testCtx(t)
	if _, err := c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "kept"}); err != nil {
		t.Fatal(err)
	}
	if _, path, err := c.SaveSnapshot(ctx); err != nil || path != state {
		t.Fatalf("save snapshot: path %q, %v", path, err)
	}
	st, err := c.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Workspaces) != 1 || st.Workspaces[0].Spec.Label != "kept" {
		t.Errorf("snapshot workspaces = %+v", st.Workspaces)
	}
	saved, _, err := c.SaveSnapshot(ctx)
	if err != nil || saved {
		t.Errorf("second save: saved=%v, %v; want nothing to save", saved, err)
	}
	v, err := c.Version(ctx)
	if err != nil || v.StatePath != state {
		t.Errorf("version state path = %q, %v", v.StatePath, err)
	}
}
