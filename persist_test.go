package shipote

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipote/shipote/internal/testproc"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/persistence"
)

// readState reads the state file and replays its journal.
func readState(t *testing.T, path string) *persistence.State {
	t.Helper()
	st, problems, err := persistence.ReadFiles(path)
	if err != nil || len(problems) > 0 {
		t.Fatalf("state file and journal do not read: %v %v", err, problems)
	}
	return st
}

func supervisedSleeper(label string) messages.PipelineSpec {
	return messages.PipelineSpec{
		Label:            label,
		Nodes:            []messages.Node{{Label: "idle", Payload: messages.Payload{Native: &messages.NativePayload{Exec: "sleep", Argv: []string{"1000"}}}}},
		RestartOnFailure: true,
		RestartBackoffMs: 50,
	}
}

func TestPersistenceRoundTripKeepsIDs(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	ctx := testCtx(t)

	eng, err := Start(context.Background(), NewActorSystem(nil), Config{Limits: "none", StatePath: path, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "keep", TTLMs: 3_600_000,
		Soma: messages.Soma{PidsMax: 50}, Permissions: messages.Permissions{Env: map[string]string{"K": "V"}}})
	if err != nil {
		t.Fatal(err)
	}
	// Durable before acknowledged: the file holds it now.
	if st := readState(t, path); len(st.Workspaces) != 1 || st.Workspaces[0].ID != ws.ID {
		t.Fatalf("acknowledged workspace not on disk: %+v", st.Workspaces)
	}
	if err := eng.SavePipeline(ctx, "saved-one", supervisedSleeper("later")); err != nil {
		t.Fatal(err)
	}
	run, err := eng.RunPipeline(ctx, "keep", supervisedSleeper("live"), false)
	if err != nil {
		t.Fatal(err)
	}
	st := readState(t, path)
	if len(st.SavedPipelines) != 1 || len(st.LivePipelines) != 1 || st.LivePipelines[0].ID != run.ID {
		t.Fatalf("state after mutations: saved %+v live %+v", st.SavedPipelines, st.LivePipelines)
	}
	// Mutations went to the journal: a save writes the snapshot, which
	// then holds them all.
	if saved, err := eng.SaveSnapshot(ctx); err != nil || !saved {
		t.Fatalf("save after mutations: saved=%v err=%v", saved, err)
	}
	if fi, err := os.Stat(persistence.JournalPath(path)); err != nil || fi.Size() != 0 {
		t.Fatalf("journal after a save: %v, %v; want it empty", fi, err)
	}
	// A save with nothing changed is skipped and leaves the file alone.
	fi1, _ := os.Stat(path)
	time.Sleep(20 * time.Millisecond)
	if saved, err := eng.SaveSnapshot(ctx); err != nil || saved {
		t.Fatalf("clean save: saved=%v err=%v", saved, err)
	}
	fi2, _ := os.Stat(path)
	if !fi1.ModTime().Equal(fi2.ModTime()) {
		t.Errorf("clean save touched the file: %v -> %v", fi1.ModTime(), fi2.ModTime())
	}
	if fi2.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi2.Mode().Perm())
	}
	if err := eng.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	eng2, err := Start(context.Background(), NewActorSystem(nil), Config{Limits: "none", StatePath: path, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer eng2.Stop(context.Background())
	rep := eng2.RestoreReport()
	if rep.Workspaces != 1 || rep.SavedPipelines != 1 || rep.LivePipelines != 1 || len(rep.Skipped) != 0 {
		t.Fatalf("restore report %+v", rep)
	}
	got, err := eng2.Workspace(ctx, "keep")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ws.ID || got.Spec.Soma.PidsMax != 50 || got.Spec.Permissions.Env["K"] != "V" || !got.Deadline.Equal(ws.Deadline) {
		t.Errorf("restored workspace %+v, want ID %s and the same spec and deadline", got, ws.ID)
	}
	p, err := eng2.Pipeline(ctx, run.ID)
	if err != nil {
		t.Fatalf("live pipeline not restored with its ID: %v", err)
	}
	if p.Label != "live" || p.State != messages.PipelineRunning {
		t.Errorf("restored pipeline %+v", p)
	}
	saved, _ := eng2.SavedPipelines(ctx)
	if len(saved) != 1 || saved[0].Name != "saved-one" {
		t.Errorf("saved pipelines %+v", saved)
	}
	// Restoring leaves the state clean.
	if ok, err := eng2.SaveSnapshot(ctx); err != nil || ok {
		t.Errorf("save right after restore: saved=%v err=%v, want a skipped save", ok, err)
	}
	// Stopping the live pipeline is durable too.
	if _, err := eng2.StopPipeline(ctx, run.ID); err != nil {
		t.Fatal(err)
	}
	if st := readState(t, path); len(st.LivePipelines) != 0 {
		t.Errorf("stopped pipeline still live on disk: %+v", st.LivePipelines)
	}
	if _, err := eng2.RemoveWorkspace(ctx, "keep", time.Second); err != nil {
		t.Fatal(err)
	}
	if st := readState(t, path); len(st.Workspaces) != 0 {
		t.Errorf("removed workspace still on disk: %+v", st.Workspaces)
	}
}

func TestSecondEngineOnSameStateIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	eng := startEngine(t, Config{StatePath: path})
	_ = eng
	_, err := Start(context.Background(), NewActorSystem(nil), Config{Limits: "none", StatePath: path})
	if err == nil || !strings.Contains(err.Error(), "lock") {
		t.Fatalf("second engine: %v, want a lock error", err)
	}
}

func TestExpiredWorkspaceIsNotRestored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	old := messages.NewIDAt(time.Now().Add(-time.Hour))
	fresh := messages.NewID()
	st := &persistence.State{Version: persistence.CurrentVersion, Workspaces: []persistence.WorkspaceEntry{
		{ID: old, Spec: messages.WorkspaceSpec{Label: "stale", TTLMs: 60_000}},
		{ID: fresh, Spec: messages.WorkspaceSpec{Label: "fresh", TTLMs: 3_600_000}},
		{ID: messages.NewID(), Spec: messages.WorkspaceSpec{Label: "bad label!"}},
	}}
	b, err := persistence.Encode(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	eng := startEngine(t, Config{StatePath: path})
	rep := eng.RestoreReport()
	if rep.Workspaces != 1 || len(rep.Expired) != 1 || len(rep.Skipped) != 1 {
		t.Fatalf("report %+v", rep)
	}
	if _, err := eng.Workspace(testCtx(t), fresh); err != nil {
		t.Errorf("fresh workspace: %v", err)
	}
}

// The fault-injection test: a child process runs a persistent engine and
// acknowledges mutations; it is SIGKILLed at random moments (during journal
// appends and background compactions, which tiny thresholds make frequent)
// and started again. Every acknowledged mutation must be in the restored
// state, the file must always parse, the journal must never be damaged
// but at its tail, and no process of a killed generation may live:
// each workspace runs testproc.OrphanScript, and after each kill no child,
// grandchild, setsid'd grandchild or double-forked process may survive.

func init() {
	if os.Getenv("SHIPOTE_TEST_HELPER") == "faults" {
		faultChild()
		os.Exit(0)
	}
}

// faultChild reads "create LABEL" / "remove LABEL" lines and answers "ack
// ..." once the engine acknowledged; at start it prints "restored L1,L2".
func faultChild() {
	path := os.Getenv("SHIPOTE_TEST_STATE")
	base, _ := strconv.Atoi(os.Getenv("SHIPOTE_TEST_ORPHAN_BASE"))
	script := native("sh", "-c", testproc.OrphanScript(base))
	// Tiny journal thresholds: the snapshot is rewritten in the background
	// every few appends, so kills land during appends and compactions.
	eng, err := Start(context.Background(), NewActorSystem(nil), Config{Limits: "none", StatePath: path, JournalMaxBytes: 2048, JournalMaxRecords: 4})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ctx := context.Background()
	wss, _ := eng.Workspaces(ctx)
	var labels []string
	for _, w := range wss {
		labels = append(labels, w.Spec.Label+"="+w.ID)
		if c, err := eng.Exec(ctx, w.ID, script); err == nil {
			fmt.Println("pid", c.Pid)
		}
	}
	fmt.Println("restored", strings.Join(labels, ","))
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		switch f[0] {
		case "create":
			ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: f[1]})
			if err != nil {
				fmt.Println("nack", f[1], err)
				continue
			}
			if c, err := eng.Exec(ctx, ws.ID, script); err == nil {
				fmt.Println("pid", c.Pid)
			}
			fmt.Println("ack create", f[1], ws.ID)
		case "remove":
			if _, err := eng.RemoveWorkspace(ctx, f[1], 100*time.Millisecond); err != nil {
				fmt.Println("nack", f[1], err)
				continue
			}
			fmt.Println("ack remove", f[1])
		}
	}
	select {}
}

func TestFaultInjectionKill9(t *testing.T) {
	kills := 6
	if os.Getenv("SHIPOTE_SOAK") != "" {
		kills = 200
	}
	path := filepath.Join(t.TempDir(), "state.json")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	want := map[string]string{}    // acknowledged: label -> ID ("" = removed)
	uncertain := map[string]bool{} // removes sent but not acknowledged when killed
	next := 0
	var oldPids []int
	var bases []int
	t.Cleanup(func() { // whatever happens, leave nothing behind
		for _, b := range bases {
			for _, pids := range testproc.Sleepers(b) {
				for _, pid := range pids {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	})
	var cleanups []time.Duration // from each kill to the last process gone
	withJournal := 0             // kills after which the journal held records
	for gen := 0; gen <= kills; gen++ {
		base := testproc.OrphanBase()
		bases = append(bases, base)
		cmd := exec.Command(self, "-test.run=^$")
		cmd.Env = append(os.Environ(), "SHIPOTE_TEST_HELPER=faults", "SHIPOTE_TEST_STATE="+path,
			"SHIPOTE_TEST_ORPHAN_BASE="+strconv.Itoa(base))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 256)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		var pids []int
		// Wait for the restore line and check it.
		var restored map[string]string
		for restored == nil {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("generation %d exited before restoring", gen)
				}
				if strings.HasPrefix(l, "error") {
					t.Fatalf("generation %d: %s", gen, l)
				}
				if p, ok := strings.CutPrefix(l, "pid "); ok {
					n, _ := strconv.Atoi(p)
					pids = append(pids, n)
				}
				if r, ok := strings.CutPrefix(l, "restored"); ok {
					restored = map[string]string{}
					for _, kv := range strings.Split(strings.TrimSpace(r), ",") {
						if k, v, ok := strings.Cut(kv, "="); ok {
							restored[k] = v
						}
					}
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("generation %d: no restore line", gen)
			}
		}
		for label, id := range want {
			if uncertain[label] {
				// The remove was in flight: either outcome is right.
				want[label] = restored[label]
				continue
			}
			if id == "" {
				if _, ok := restored[label]; ok {
					t.Fatalf("generation %d: removed workspace %s came back", gen, label)
				}
				continue
			}
			if restored[label] != id {
				t.Fatalf("generation %d: acknowledged workspace %s (%s) missing or changed: %q", gen, label, id, restored[label])
			}
		}
		// No process of the killed generation survives.
		for _, pid := range oldPids {
			deadline := time.Now().Add(5 * time.Second)
			for alive(pid) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if alive(pid) {
				t.Fatalf("generation %d: process %d of the killed generation is alive", gen, pid)
			}
		}
		if gen == kills {
			killed := time.Now()
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			cleanups = append(cleanups, noSurvivors(t, gen, base, killed))
			break
		}
		clear(uncertain)
		// Issue mutations; kill at a random moment.
		killAfter := time.Duration(rng.Intn(150)) * time.Millisecond
		timer := time.After(killAfter)
		inflight := 0
	mutate:
		for {
			if inflight < 4 {
				next++
				label := fmt.Sprintf("w%d", next)
				op := "create"
				if next%5 == 0 {
					for l, id := range want {
						if id != "" && !uncertain[l] {
							label, op = l, "remove"
							uncertain[l] = true
							break
						}
					}
				}
				fmt.Fprintf(stdin, "%s %s\n", op, label)
				inflight++
			}
			select {
			case l := <-lines:
				f := strings.Fields(l)
				switch {
				case len(f) >= 2 && f[0] == "pid":
					n, _ := strconv.Atoi(f[1])
					pids = append(pids, n)
				case len(f) == 4 && f[0] == "ack" && f[1] == "create":
					want[f[2]] = f[3]
					inflight--
				case len(f) == 3 && f[0] == "ack" && f[1] == "remove":
					want[f[2]] = ""
					delete(uncertain, f[2])
					inflight--
				case len(f) > 0 && f[0] == "nack":
					if len(f) > 1 {
						delete(uncertain, f[1])
					}
					inflight--
				}
			case <-timer:
				break mutate
			}
		}
		killed := time.Now()
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		for range lines {
		}
		cleanups = append(cleanups, noSurvivors(t, gen, base, killed))
		oldPids = pids
		// The file always parses, and the journal is damaged at most at
		// its tail (a torn append).
		if b, err := os.ReadFile(path); err == nil {
			var v map[string]any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("generation %d left a torn state file: %v", gen, err)
			}
		}
		if _, _, err := persistence.ReadFiles(path); err != nil {
			t.Fatalf("generation %d left a torn state: %v", gen, err)
		}
		if fi, err := os.Stat(persistence.JournalPath(path)); err == nil && fi.Size() > 0 {
			withJournal++
		}
	}
	acked := 0
	for range want {
		acked++
	}
	slices.Sort(cleanups)
	within := 0
	for _, d := range cleanups {
		if d <= time.Second {
			within++
		}
	}
	t.Logf("%d kills (%d with records in the journal), %d acknowledged mutations checked; 0 survivors of any kind (%s); every process gone %v after a kill (median), %v at worst, within 1s after %d of %d kills",
		kills, withJournal, acked, strings.Join(testproc.OrphanKinds, ", "), cleanups[len(cleanups)/2].Round(time.Millisecond),
		cleanups[len(cleanups)-1].Round(time.Millisecond), within, len(cleanups))
}

// noSurvivors fails the test unless every process of
// testproc.OrphanScript(base) is gone within 10 s of killed, and returns
// how long it took.
func noSurvivors(t *testing.T, gen, base int, killed time.Time) time.Duration {
	t.Helper()
	for {
		left := testproc.Sleepers(base)
		if len(left) == 0 {
			return time.Since(killed)
		}
		if time.Since(killed) > 10*time.Second {
			n := 0
			for _, pids := range left {
				n += len(pids)
			}
			t.Fatalf("generation %d: %d survivors 10s after kill -9: %v", gen, n, left)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCorruptJournalIsReported: a journal damaged in its middle is moved
// aside with the state file, the engine starts empty, and the restore
// report names both new places; a torn last record is only ignored.
func TestCorruptJournalIsReported(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt bool
	}{{"damaged middle", true}, {"torn tail", false}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			ctx := testCtx(t)
			eng := startEngine(t, Config{StatePath: path})
			if _, err := eng.SaveSnapshot(ctx); err != nil { // a snapshot, then journal records
				t.Fatal(err)
			}
			for _, l := range []string{"a", "b", "c"} {
				if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: l}); err != nil {
					t.Fatal(err)
				}
			}
			// What is on disk now, as a kill -9 would leave it.
			jpath := persistence.JournalPath(path)
			data, err := os.ReadFile(jpath)
			if err != nil {
				t.Fatal(err)
			}
			snap, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := eng.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if tc.corrupt {
				data[20] ^= 0xff // inside the first record
			} else {
				data = data[:len(data)-5]
			}
			if err := os.WriteFile(path, snap, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(jpath, data, 0o600); err != nil {
				t.Fatal(err)
			}
			eng2 := startEngine(t, Config{StatePath: path})
			rep := eng2.RestoreReport()
			if !tc.corrupt {
				if rep.CorruptJournalMovedTo != "" || rep.Workspaces != 2 {
					t.Fatalf("torn tail: report %+v; want the first two workspaces and nothing moved", rep)
				}
				return
			}
			if !strings.HasPrefix(rep.CorruptJournalMovedTo, jpath+".corrupt-") || !strings.HasPrefix(rep.CorruptMovedTo, path+".corrupt-") {
				t.Fatalf("report %+v does not name where the files went", rep)
			}
			if rep.Workspaces != 0 {
				t.Fatalf("restored %d workspaces from a damaged journal", rep.Workspaces)
			}
			for _, p := range []string{rep.CorruptJournalMovedTo, rep.CorruptMovedTo} {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("moved file: %v", err)
				}
			}
		})
	}
}
