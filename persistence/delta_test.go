package persistence_test

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
	"github.com/shipote/shipote/persistence"
)

// liveWorkspace answers snapshot requests with the supervised pipelines
// and commands it holds at the time.
type liveWorkspace struct {
	id    string
	label string
	live  *atomic.Pointer[[]protocol.LivePipeline]
	cmds  *atomic.Pointer[[]protocol.LiveCommand]
	asked *atomic.Int64
}

func (f *liveWorkspace) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*protocol.SnapshotWorkspace); ok {
		f.asked.Add(1)
		out := &protocol.WorkspaceSnapshot{Gen: m.Gen, ID: f.id, Spec: &messages.WorkspaceSpec{Label: f.label}}
		if l := f.live.Load(); l != nil {
			out.Live = *l
		}
		if c := f.cmds.Load(); c != nil {
			out.Commands = *c
		}
		ctx.Respond(out)
	}
}

func (h *harness) commitChange(t *testing.T, ch *protocol.Change) {
	t.Helper()
	done := make(chan error, 1)
	answer(sendP(h, func(r protocol.Reply[struct{}]) any { return &persistence.Commit{Change: ch, Reply: r} }), func(_ struct{}, err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("commit not answered")
	}
}

// recordsSince returns the journal's records after the first n, as
// "type key" strings, and their payloads by key.
func recordsSince(t *testing.T, h *harness, n int) ([]string, map[string][]byte, int) {
	t.Helper()
	recs, err := persistence.ReadJournal(persistence.JournalPath(h.store.Path()))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	payloads := map[string][]byte{}
	for _, r := range recs[n:] {
		out = append(out, fmt.Sprintf("%d %s", r.Type, r.Key))
		payloads[r.Key] = r.Payload
	}
	return out, payloads, len(recs)
}

func rec(t persistence.RecordType, key string) string { return fmt.Sprintf("%d %s", t, key) }

// A commit that carries its change appends exactly the records of the
// entries it names: nothing of the other workspaces, and the engine is
// not asked for the registry.
func TestCommitAppendsExactlyItsChange(t *testing.T) {
	h := newHarness(t, nil)
	// Many workspaces already declared (and durable): none of them may
	// appear in a later commit's records.
	var created []protocol.WorkspacePID
	for i := range 50 {
		created = append(created, protocol.WorkspacePID{ID: messages.NewID(), Spec: &messages.WorkspaceSpec{Label: fmt.Sprintf("w%d", i)}})
	}
	h.commitChange(t, &protocol.Change{Created: created})
	got, _, n := recordsSince(t, h, 0)
	if len(got) != 50 {
		t.Fatalf("creating 50 workspaces appended %d records: %v", len(got), got)
	}

	// One create: one put of that workspace, its entry without stats.
	one := messages.NewID()
	h.commitChange(t, &protocol.Change{Created: []protocol.WorkspacePID{{ID: one, Spec: &messages.WorkspaceSpec{Label: "one"}}}})
	got, payloads, n2 := recordsSince(t, h, n)
	if want := []string{rec(persistence.RecPutWorkspace, one)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("one create appended %v, want %v", got, want)
	}
	var entry map[string]any
	if err := json.Unmarshal(payloads[one], &entry); err != nil || entry["id"] != one {
		t.Fatalf("put payload %s: %v", payloads[one], err)
	}
	n = n2

	// A workspace whose supervised pipeline and command started: it is
	// asked, and its runs are put (its own entry is not).
	live, cmds, asked := new(atomic.Pointer[[]protocol.LivePipeline]), new(atomic.Pointer[[]protocol.LiveCommand]), new(atomic.Int64)
	pid := h.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &liveWorkspace{id: one, label: "one", live: live, cmds: cmds, asked: asked}
	}))
	run, cmd := messages.NewID(), messages.NewID()
	live.Store(&[]protocol.LivePipeline{{ID: run, Spec: messages.PipelineSpec{Label: "p"}}})
	cmds.Store(&[]protocol.LiveCommand{{ID: cmd, Spec: messages.CommandRef{Label: "c"}}})
	h.commitChange(t, &protocol.Change{Changed: []protocol.WorkspacePID{{ID: one, PID: pid}}})
	got, _, n2 = recordsSince(t, h, n)
	if want := []string{rec(persistence.RecPutLivePipeline, run), rec(persistence.RecPutLiveCommand, cmd)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("a pipeline and a command started appended %v, want %v", got, want)
	}
	if asked.Load() != 1 {
		t.Fatalf("the changed workspace was asked %d times, want 1", asked.Load())
	}
	n = n2

	// Asked again with nothing changed: no record.
	h.commitChange(t, &protocol.Change{Changed: []protocol.WorkspacePID{{ID: one, PID: pid}}})
	if got, _, _ = recordsSince(t, h, n); len(got) != 0 {
		t.Fatalf("an unchanged workspace appended %v", got)
	}

	// The pipeline stopped: its removal only.
	live.Store(nil)
	h.commitChange(t, &protocol.Change{Changed: []protocol.WorkspacePID{{ID: one, PID: pid}}})
	got, _, n = recordsSince(t, h, n)
	if want := []string{rec(persistence.RecDelLivePipeline, run)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("a pipeline stopped appended %v, want %v", got, want)
	}

	// Saved pipelines: set, set to the same spec (nothing), delete.
	spec := messages.PipelineSpec{Label: "saved"}
	h.commitChange(t, &protocol.Change{Saved: []protocol.SavedChange{{Name: "s", Spec: &spec}}})
	h.commitChange(t, &protocol.Change{Saved: []protocol.SavedChange{{Name: "s", Spec: &spec}}})
	h.commitChange(t, &protocol.Change{Saved: []protocol.SavedChange{{Name: "s"}}})
	got, _, n = recordsSince(t, h, n)
	if want := []string{rec(persistence.RecPutSaved, "s"), rec(persistence.RecDelSaved, "s")}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("saved pipeline set, set again, deleted appended %v, want %v", got, want)
	}

	// The workspace removed: its command first, then itself. Removing it
	// again, or a workspace never declared, appends nothing.
	h.commitChange(t, &protocol.Change{Removed: []string{one}})
	h.commitChange(t, &protocol.Change{Removed: []string{one, messages.NewID()}})
	got, _, _ = recordsSince(t, h, n)
	if want := []string{rec(persistence.RecDelLiveCommand, cmd), rec(persistence.RecDelWorkspace, one)}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("a removal appended %v, want %v", got, want)
	}

	h.mu.Lock()
	asks := h.asks
	h.mu.Unlock()
	if asks != 0 {
		t.Errorf("commits that carry their change asked the engine %d times", asks)
	}

	// What the files hold is every change: the 50 workspaces and nothing
	// of the removed one.
	if st := h.load(t); len(st.Workspaces) != 50 || len(st.LivePipelines) != 0 || len(st.LiveCommands) != 0 || len(st.SavedPipelines) != 0 {
		t.Fatalf("restored %d workspaces, %d pipelines, %d commands, %d saved; want 50, 0, 0, 0",
			len(st.Workspaces), len(st.LivePipelines), len(st.LiveCommands), len(st.SavedPipelines))
	}
}

// A create and its removal in the same group leave no record; a failed
// append refuses every change of its group and the next write is a whole
// snapshot gathered from the engine, without the refused entries.
func TestFailedDeltaIsRefusedAndRebuilt(t *testing.T) {
	h := newHarness(t, nil)
	kept := messages.NewID()
	h.addWorkspace(kept, "kept", false)
	h.commitChange(t, &protocol.Change{Created: []protocol.WorkspacePID{{ID: kept, Spec: &messages.WorkspaceSpec{Label: "kept"}}}})

	persistence.SetSaveHook(h.store, func(step string) error {
		if step == "journal-sync" {
			return fmt.Errorf("injected %s failure", step)
		}
		return nil
	})
	refused := messages.NewID()
	done := make(chan error, 1)
	answer(sendP(h, func(r protocol.Reply[struct{}]) any {
		return &persistence.Commit{Change: &protocol.Change{Created: []protocol.WorkspacePID{{ID: refused, Spec: &messages.WorkspaceSpec{Label: "refused"}}}}, Reply: r}
	}), func(_ struct{}, err error) { done <- err })
	if err := <-done; err == nil {
		t.Fatal("a commit whose append failed was acknowledged")
	}
	persistence.SetSaveHook(h.store, nil)
	// The engine (fake) never registered the refused workspace: the next
	// commit asks it for the registry and writes a snapshot without it.
	h.commitChange(t, &protocol.Change{})
	h.mu.Lock()
	asks := h.asks
	h.mu.Unlock()
	if asks == 0 {
		t.Fatal("after a failed append the state was not gathered from the engine again")
	}
	st := h.load(t)
	if len(st.Workspaces) != 1 || st.Workspaces[0].ID != kept {
		t.Fatalf("after a refused create the files hold %+v, want only %s", st.Workspaces, kept)
	}
	recs, err := persistence.ReadJournal(persistence.JournalPath(h.store.Path()))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Key == refused {
			t.Fatalf("the journal holds a record of the refused create: %v", r)
		}
	}
}
