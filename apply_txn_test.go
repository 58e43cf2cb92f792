// This file tests that an apply is one transaction: one durable write for
// all of its changes, nothing in effect (nor on disk) when that write
// fails, and saved pipelines planned and owned like the rest.

package shipote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/faultfs"
	"github.com/shipote/shipote/messages"
)

func init() {
	if os.Getenv("SHIPOTE_TEST_HELPER") == "applykill" {
		applyKillHelper()
		os.Exit(0)
	}
}

// applyKillHelper applies txnFile to a persistent engine, saying "ready"
// just before, and "applied" once it is acknowledged; it then waits to be
// killed.
func applyKillHelper() {
	eng, err := Start(context.Background(), NewActorSystem(nil), Config{Limits: "none", StatePath: os.Getenv("SHIPOTE_TEST_STATE")})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	if _, err := eng.Apply(context.Background(), messages.ApplyRequest{File: txnFile()}); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("applied")
	select {}
}

// txnFile declares two workspaces with supervised commands (one with two
// instances), a one-shot command, a supervised and a plain pipeline, and
// two saved pipelines.
func txnFile() messages.UpFile {
	workers := sleeper("worker", "1000")
	workers.Instances = 2
	once := native("true")
	once.Label = "init"
	plain := supervisedSleeper("plain")
	plain.RestartOnFailure = false
	return messages.UpFile{Name: "txn", Workspaces: []messages.UpWorkspace{
		{
			WorkspaceSpec: messages.WorkspaceSpec{Label: "txn-web"},
			Commands:      []messages.CommandRef{sleeper("api", "1000"), workers, once},
			Pipelines:     []messages.PipelineSpec{supervisedSleeper("feed"), plain},
		},
		{
			WorkspaceSpec: messages.WorkspaceSpec{Label: "txn-db"},
			Commands:      []messages.CommandRef{sleeper("db", "1000"), sleeper("cache", "1000")},
		},
	}, SavedPipelines: []messages.UpSavedPipeline{
		{Name: "nightly", Spec: supervisedSleeper("nightly")},
		{Name: "report", Spec: supervisedSleeper("report")},
	}}
}

// writes returns how many durable writes (journal appends and snapshots)
// the engine made so far.
func writes(eng *Engine) uint64 {
	s := eng.SnapshotStats()
	return s.JournalAppends + s.Writes
}

// pids maps each running command of ws to its PID.
func pids(t *testing.T, eng *Engine, ws string) map[string]int {
	t.Helper()
	cmds, err := eng.Commands(testCtx(t), ws)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int)
	for _, c := range cmds {
		if !c.State.Ended() && c.Pid > 0 {
			out[c.Label] = c.Pid
		}
	}
	return out
}

func savedNames(t *testing.T, eng *Engine) map[string]string {
	t.Helper()
	saved, err := eng.SavedPipelines(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	for _, s := range saved {
		out[s.Name] = s.Spec.Project
	}
	return out
}

func TestApplyIsOneWrite(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{StatePath: filepath.Join(dir, "state.json")}
	eng := startEngine(t, cfg)
	ctx := testCtx(t)
	f := txnFile()

	before := writes(eng)
	res, err := eng.Apply(ctx, messages.ApplyRequest{File: f})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Plan.Entries); n != 12 {
		t.Fatalf("plan has %d entries, want 12: %s", n, summarize(res.Plan))
	}
	if got := writes(eng) - before; got != 1 {
		t.Fatalf("an apply of %d objects made %d durable writes, want 1", len(res.Plan.Entries), got)
	}
	web, db := pids(t, eng, "txn-web"), pids(t, eng, "txn-db")
	if web["api"] == 0 || web["worker-0"] == 0 || web["worker-1"] == 0 || len(db) != 2 {
		t.Fatalf("running after apply: web %v, db %v", web, db)
	}
	if got := savedNames(t, eng); got["nightly"] != "txn" || got["report"] != "txn" || len(got) != 2 {
		t.Fatalf("saved pipelines %v, want nightly and report of project txn", got)
	}

	// The same file again changes nothing and writes nothing.
	before = writes(eng)
	if res, err := eng.Apply(ctx, messages.ApplyRequest{File: f}); err != nil || !res.Plan.Empty() {
		t.Fatalf("re-apply = %s, %v", summarize(res.Plan), err)
	}
	if got := writes(eng) - before; got != 0 {
		t.Fatalf("a re-apply made %d writes", got)
	}

	// Change one command, remove another, change one saved pipeline and
	// remove the other, add a workspace: one write again.
	f.Workspaces[1].Commands = f.Workspaces[1].Commands[:1]
	f.Workspaces[0].Commands[0] = sleeper("api", "2000") // a new payload: the engine holds the old one
	f.SavedPipelines = f.SavedPipelines[:1]
	f.SavedPipelines[0].Spec.RestartMax = 3
	f.Workspaces = append(f.Workspaces, messages.UpWorkspace{WorkspaceSpec: messages.WorkspaceSpec{Label: "txn-extra"},
		Commands: []messages.CommandRef{sleeper("x", "1000")}})
	before = writes(eng)
	res, err = eng.Apply(ctx, messages.ApplyRequest{File: f})
	if err != nil {
		t.Fatal(err)
	}
	want := "change command txn-web/api; remove command txn-db/cache; create workspace txn-extra; create command txn-extra/x; change saved_pipeline /nightly; remove saved_pipeline /report"
	if got := summarize(res.Plan); got != want {
		t.Fatalf("plan = %s\nwant   %s", got, want)
	}
	if got := writes(eng) - before; got != 1 {
		t.Fatalf("an apply that changes, removes and creates made %d durable writes, want 1", got)
	}
	web2, db2 := pids(t, eng, "txn-web"), pids(t, eng, "txn-db")
	if web2["api"] == web["api"] || web2["worker-0"] != web["worker-0"] || web2["worker-1"] != web["worker-1"] || db2["db"] != db["db"] {
		t.Fatalf("only api should have restarted: before %v %v, after %v %v", web, db, web2, db2)
	}
	if _, ok := db2["cache"]; ok || alive(db["cache"]) {
		t.Fatalf("the removed command still runs: %v", db2)
	}
	if got := savedNames(t, eng); got["nightly"] != "txn" || len(got) != 1 {
		t.Fatalf("saved pipelines %v, want nightly only", got)
	}
	webIDs, extraIDs := ids(t, eng, "txn-web"), ids(t, eng, "txn-extra")
	runs, err := eng.Pipelines(ctx, "txn-web")
	if err != nil {
		t.Fatal(err)
	}
	var feed string
	for _, r := range runs {
		if r.Label == "feed" && !r.State.Ended() {
			feed = r.ID
		}
	}

	// A restart brings back exactly that, with the same IDs.
	if err := eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eng2 := startEngine(t, cfg)
	if got := ids(t, eng2, "txn-web"); got["api"] != webIDs["api"] || got["worker-0"] != webIDs["worker-0"] || len(got) != 3 {
		t.Fatalf("restored commands of txn-web %v, want the supervised ones of %v", got, webIDs)
	}
	if got := ids(t, eng2, "txn-extra"); got["x"] != extraIDs["x"] {
		t.Fatalf("restored commands of txn-extra %v, want %v", got, extraIDs)
	}
	if got := ids(t, eng2, "txn-db"); len(got) != 1 || got["db"] == "" {
		t.Fatalf("restored commands of txn-db %v, want db only", got)
	}
	runs, err = eng2.Pipelines(ctx, "txn-web")
	if err != nil || len(runs) != 1 || runs[0].ID != feed {
		t.Fatalf("restored pipelines %+v, %v; want the supervised run %s", runs, err, feed)
	}
	if got := savedNames(t, eng2); got["nightly"] != "txn" || len(got) != 1 {
		t.Fatalf("restored saved pipelines %v, want nightly of project txn", got)
	}
	// What is not declared state (a one-shot command, a pipeline that does
	// not restart) is not persisted: the apply starts it again.
	if res, err := eng2.Apply(ctx, messages.ApplyRequest{DryRun: true, File: f}); err != nil ||
		summarize(res.Plan) != "create command txn-web/init; create pipeline txn-web/plain" {
		t.Fatalf("plan after a restart = %s, %v; want only what is not persisted", summarize(res.Plan), err)
	}
}

// TestApplyFailedWriteLeavesNothing: when the one write of an apply fails,
// nothing of it is in effect — no workspace, command, pipeline or saved
// pipeline made, nothing removed or killed — nor on disk after a restart.
func TestApplyFailedWriteLeavesNothing(t *testing.T) {
	dir := faultfs.Tmpfs(t, 4<<20)
	cfg := Config{StatePath: filepath.Join(dir, "state.json")}
	eng := startEngine(t, cfg)
	ctx := testCtx(t)
	base := messages.UpFile{Name: "txn", Workspaces: []messages.UpWorkspace{{
		WorkspaceSpec: messages.WorkspaceSpec{Label: "keep"},
		Commands:      []messages.CommandRef{sleeper("a", "1000"), sleeper("b", "1000")},
		Pipelines:     []messages.PipelineSpec{supervisedSleeper("feed")},
	}, {
		WorkspaceSpec: messages.WorkspaceSpec{Label: "old"},
		Commands:      []messages.CommandRef{sleeper("o", "1000")},
	}}, SavedPipelines: []messages.UpSavedPipeline{{Name: "gone", Spec: supervisedSleeper("gone")}}}
	if _, err := eng.Apply(ctx, messages.ApplyRequest{File: base}); err != nil {
		t.Fatal(err)
	}
	keepIDs, keepPids, oldPids := ids(t, eng, "keep"), pids(t, eng, "keep"), pids(t, eng, "old")
	// An empty journal: an append into the slack of a page it holds would
	// need no space.
	if _, err := eng.SaveSnapshot(ctx); err != nil {
		t.Fatal(err)
	}

	// Everything changes: a command changed and one removed, a pipeline
	// removed, a workspace removed and one created, saved pipelines
	// removed and created.
	next := messages.UpFile{Name: "txn", Workspaces: []messages.UpWorkspace{{
		WorkspaceSpec: messages.WorkspaceSpec{Label: "keep"},
		Commands:      []messages.CommandRef{sleeper("a", "2000"), sleeper("c", "1000")},
	}, {
		WorkspaceSpec: messages.WorkspaceSpec{Label: "new"},
		Commands:      []messages.CommandRef{sleeper("n", "1000")},
		Pipelines:     []messages.PipelineSpec{supervisedSleeper("nfeed")},
	}}, SavedPipelines: []messages.UpSavedPipeline{{Name: "fresh", Spec: supervisedSleeper("fresh")}}}

	free, err := faultfs.Fill(dir)
	if err != nil {
		t.Fatal(err)
	}
	freed := false
	defer func() {
		if !freed {
			_ = free()
		}
	}()
	_, err = eng.Apply(ctx, messages.ApplyRequest{File: next})
	if !errors.Is(err, messages.ErrNotSaved) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("apply on a full disk: %v; want ErrNotSaved naming the cause", err)
	}
	check := func(eng *Engine, after string) {
		t.Helper()
		if got := ids(t, eng, "keep"); got["a"] != keepIDs["a"] || got["b"] != keepIDs["b"] || len(got) != 2 {
			t.Fatalf("%s: commands of keep %v, want %v", after, got, keepIDs)
		}
		if _, err := eng.Workspace(ctx, "old"); err != nil {
			t.Fatalf("%s: the workspace the apply removes is gone: %v", after, err)
		}
		if _, err := eng.Workspace(ctx, "new"); !errors.Is(err, messages.ErrNotFound) {
			t.Fatalf("%s: the workspace the apply creates exists: %v", after, err)
		}
		runs, err := eng.Pipelines(ctx, "keep")
		if err != nil || len(runs) != 1 || runs[0].State.Ended() {
			t.Fatalf("%s: pipelines of keep %+v, %v; want feed running", after, runs, err)
		}
		if got := savedNames(t, eng); got["gone"] != "txn" || len(got) != 1 {
			t.Fatalf("%s: saved pipelines %v, want gone only", after, got)
		}
	}
	check(eng, "after the refused apply")
	if got := pids(t, eng, "keep"); got["a"] != keepPids["a"] || got["b"] != keepPids["b"] {
		t.Fatalf("the refused apply restarted commands: %v, was %v", got, keepPids)
	}
	if !alive(oldPids["o"]) {
		t.Fatal("the refused apply killed a command of the workspace it removes")
	}
	// Nothing the apply declared ever ran.
	if cmds, err := eng.Commands(ctx, "keep"); err != nil || len(cmds) != 2 {
		t.Fatalf("commands of keep after the refused apply: %+v, %v", cmds, err)
	}

	if err := free(); err != nil {
		t.Fatal(err)
	}
	freed = true
	eventually(t, 60*time.Second, "writes to work again", func() bool {
		_, err := eng.SaveSnapshot(ctx)
		return err == nil
	})
	if err := eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	eng2 := startEngine(t, cfg)
	check(eng2, "after a restart")
}

func TestApplySavedPipelineOwnership(t *testing.T) {
	eng := startEngine(t, Config{StatePath: filepath.Join(t.TempDir(), "state.json")})
	ctx := testCtx(t)
	if err := eng.SavePipeline(ctx, "byhand", supervisedSleeper("byhand")); err != nil {
		t.Fatal(err)
	}
	other := messages.UpFile{Name: "other", SavedPipelines: []messages.UpSavedPipeline{{Name: "theirs", Spec: supervisedSleeper("theirs")}}}
	if _, err := eng.Apply(ctx, messages.ApplyRequest{File: other}); err != nil {
		t.Fatalf("a file of saved pipelines only: %v", err)
	}
	mine := func(names ...string) messages.UpFile {
		f := messages.UpFile{Name: "mine"}
		for _, n := range names {
			f.SavedPipelines = append(f.SavedPipelines, messages.UpSavedPipeline{Name: n, Spec: supervisedSleeper(n)})
		}
		return f
	}
	for _, tt := range []struct {
		name, msg string
		f         messages.UpFile
	}{
		{"saved by hand", `saved pipeline "byhand" exists and was not saved by an applied file`, mine("ok", "byhand")},
		{"another project", `saved pipeline "theirs" belongs to project "other"`, mine("theirs")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := eng.Apply(ctx, messages.ApplyRequest{File: tt.f})
			if !errors.Is(err, messages.ErrConflict) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Apply() error = %v, want ErrConflict containing %q", err, tt.msg)
			}
			if got := savedNames(t, eng); len(got) != 2 {
				t.Fatalf("a refused apply changed the saved pipelines: %v", got)
			}
		})
	}
	if _, err := eng.Apply(ctx, messages.ApplyRequest{File: mine("ok")}); err != nil {
		t.Fatal(err)
	}
	res, err := eng.Apply(ctx, messages.ApplyRequest{File: messages.UpFile{Name: "mine"}, Down: true})
	if err != nil || summarize(res.Plan) != "remove saved_pipeline /ok" {
		t.Fatalf("down = %s, %v; want the project's saved pipeline only", summarize(res.Plan), err)
	}
	if got := savedNames(t, eng); got["byhand"] != "" || got["theirs"] != "other" || len(got) != 2 {
		t.Fatalf("saved pipelines after down %v, want byhand and theirs", got)
	}
	// pipe start of an applied saved pipeline runs it as the workspace's.
	if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "w"}); err != nil {
		t.Fatal(err)
	}
	run, err := eng.StartSavedPipeline(ctx, "theirs", "w", false)
	if err != nil || run.Spec.Project != "" {
		t.Fatalf("start of a saved pipeline: project %q, %v; want none", run.Spec.Project, err)
	}
}

// TestApplyKilledIsAllOrNothing kills (SIGKILL) an engine at moments
// spread over its apply of txnFile; a restart finds either none of the
// apply or all of it, and all of it whenever the apply was acknowledged.
func TestApplyKilledIsAllOrNothing(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	// Round 0 lets the apply finish and times it; the others kill at
	// eighths of that time, so that kills land before, during and after
	// its one write whatever the machine's load.
	var full time.Duration
	for round := range 8 {
		delay := full * time.Duration(round) / 7
		path := filepath.Join(t.TempDir(), "state.json")
		cmd := exec.Command(self, "-test.run=^$")
		cmd.Env = append(os.Environ(), "SHIPOTE_TEST_HELPER=applykill", "SHIPOTE_TEST_STATE="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 8)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// The pipe is read to its end before Wait, which closes it.
		reaped := false
		kill := func() { _ = cmd.Process.Signal(syscall.SIGKILL) }
		t.Cleanup(func() {
			if !reaped {
				kill()
				for range lines {
				}
				_ = cmd.Wait()
			}
		})
		if l := <-lines; l != "ready" {
			kill()
			t.Fatalf("round %d: helper said %q", round, l)
		}
		acked := false
		if round == 0 {
			t0 := time.Now()
			if l := <-lines; l != "applied" {
				kill()
				t.Fatalf("round 0: helper said %q", l)
			}
			full, acked = time.Since(t0), true
		} else {
			time.Sleep(delay)
		}
		kill()
		for l := range lines {
			if l == "applied" {
				acked = true
			} else if strings.HasPrefix(l, "error") {
				t.Fatalf("round %d: %s", round, l)
			}
		}
		_ = cmd.Wait()
		reaped = true

		when := fmt.Sprintf("kill %v into the apply", delay)
		if round == 0 {
			when = "kill once acknowledged"
		}
		eng := startEngine(t, Config{StatePath: path})
		wss, err := eng.Workspaces(ctx)
		if err != nil {
			t.Fatal(err)
		}
		saved := savedNames(t, eng)
		switch {
		case len(wss) == 0 && len(saved) == 0 && !acked:
			t.Logf("round %d (%s): none of the apply", round, when)
		case len(wss) == 2 && len(saved) == 2:
			web, db := ids(t, eng, "txn-web"), ids(t, eng, "txn-db")
			if web["api"] == "" || web["worker-0"] == "" || web["worker-1"] == "" || db["db"] == "" || db["cache"] == "" {
				t.Fatalf("round %d: half the commands restored: web %v, db %v", round, web, db)
			}
			runs, err := eng.Pipelines(ctx, "txn-web")
			if err != nil || len(runs) != 1 || runs[0].Label != "feed" {
				t.Fatalf("round %d: restored pipelines %+v, %v; want feed", round, runs, err)
			}
			t.Logf("round %d (%s): all of the apply (acknowledged: %v)", round, when, acked)
		default:
			t.Fatalf("round %d (%s, acknowledged %v): half an apply restored: %d workspaces, saved %v",
				round, when, acked, len(wss), saved)
		}
		if err := eng.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
