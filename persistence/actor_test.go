package persistence_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/shipote/shipote/internal/askproc"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
	"github.com/shipote/shipote/persistence"
)

// fakeWorkspace answers snapshot requests with its entry, unless silent.
type fakeWorkspace struct {
	id     string
	label  string
	silent bool
	asked  *atomic.Int64
}

func (f *fakeWorkspace) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*protocol.SnapshotWorkspace); ok {
		f.asked.Add(1)
		if !f.silent {
			ctx.Respond(&protocol.WorkspaceSnapshot{Gen: m.Gen, ID: f.id, Spec: &messages.WorkspaceSpec{Label: f.label}})
		}
	}
}

// fakeEngine answers with a fixed registry.
type fakeEngine struct {
	mu   *sync.Mutex
	ws   *[]protocol.WorkspacePID
	asks *int
}

func (f *fakeEngine) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*protocol.SnapshotEngine); ok {
		f.mu.Lock()
		*f.asks++
		ws := append([]protocol.WorkspacePID(nil), (*f.ws)...)
		f.mu.Unlock()
		ctx.Respond(&protocol.EngineSnapshot{Gen: m.Gen, Workspaces: ws})
	}
}

type harness struct {
	system *actor.ActorSystem
	store  *persistence.Store
	pid    *actor.PID
	mu     sync.Mutex
	ws     []protocol.WorkspacePID
	asks   int
	wg     sync.WaitGroup
}

func newHarness(t *testing.T, initial *persistence.State) *harness {
	t.Helper()
	h := &harness{system: actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))}
	store, err := persistence.Open(filepath.Join(t.TempDir(), "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	h.store = store
	engine := h.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &fakeEngine{mu: &h.mu, ws: &h.ws, asks: &h.asks}
	}))
	h.pid = h.system.Root.Spawn(persistence.NewActorProps(persistence.ActorConfig{
		System:  h.system,
		Store:   store,
		Engine:  engine,
		Timeout: 200 * time.Millisecond,
		Initial: initial,
		Go: func(f func()) {
			h.wg.Add(1)
			go func() { defer h.wg.Done(); f() }()
		},
	}))
	t.Cleanup(func() {
		_ = h.system.Root.PoisonFuture(h.pid).Wait()
		_ = h.system.Root.PoisonFuture(engine).Wait()
		h.wg.Wait()
		store.Close()
	})
	return h
}

func (h *harness) addWorkspace(id, label string, silent bool) *atomic.Int64 {
	asked := new(atomic.Int64)
	pid := h.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &fakeWorkspace{id: id, label: label, silent: silent, asked: asked}
	}))
	h.mu.Lock()
	h.ws = append(h.ws, protocol.WorkspacePID{ID: id, PID: pid, Spec: &messages.WorkspaceSpec{Label: label}})
	h.mu.Unlock()
	return asked
}

func (h *harness) commitWorkspaces(t *testing.T, ws ...string) {
	t.Helper()
	done := make(chan error, 1)
	answer(sendP(h, func(r protocol.Reply[struct{}]) any { return &persistence.Commit{Workspaces: ws, Reply: r} }), func(_ struct{}, err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("commit not answered")
	}
}

// A snapshot asks the workspaces a mutation named and new ones; the others
// keep their previous entries. A full save asks everyone.
func TestSnapshotAsksOnlyChangedWorkspaces(t *testing.T) {
	h := newHarness(t, nil)
	a, b := messages.NewID(), messages.NewID()
	askedA, askedB := h.addWorkspace(a, "a", false), h.addWorkspace(b, "b", false)
	h.commit(t)
	if askedA.Load() != 1 || askedB.Load() != 1 {
		t.Fatalf("first snapshot asked a %d, b %d times; want 1 each (new)", askedA.Load(), askedB.Load())
	}
	h.commit(t)
	if askedA.Load() != 1 || askedB.Load() != 1 {
		t.Fatalf("an unchanged workspace was asked again: a %d, b %d", askedA.Load(), askedB.Load())
	}
	h.commitWorkspaces(t, b)
	if askedA.Load() != 1 || askedB.Load() != 2 {
		t.Fatalf("a commit naming b asked a %d, b %d times", askedA.Load(), askedB.Load())
	}
	if st := h.load(t); len(st.Workspaces) != 2 {
		t.Fatalf("snapshot has %d workspaces", len(st.Workspaces))
	}
	h.system.Root.Send(h.pid, &persistence.MarkDirty{})
	done := make(chan bool, 1)
	answer(sendP(h, func(r protocol.Reply[bool]) any { return &persistence.SaveNow{Reply: r} }), func(saved bool, _ error) { done <- saved })
	<-done
	if askedA.Load() != 2 || askedB.Load() != 3 {
		t.Fatalf("a full save asked a %d, b %d times; want everyone once more", askedA.Load(), askedB.Load())
	}
}

func (h *harness) commit(t *testing.T) {
	t.Helper()
	done := make(chan error, 1)
	answer(sendP(h, func(r protocol.Reply[struct{}]) any { return &persistence.Commit{Reply: r} }), func(_ struct{}, err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("commit not answered")
	}
}

func (h *harness) load(t *testing.T) *persistence.State {
	t.Helper()
	st, problems, corrupt, err := h.store.Load()
	if err != nil || corrupt != nil || len(problems) > 0 {
		t.Fatalf("load: %v %v %v", err, corrupt, problems)
	}
	return st
}

func TestSlowWorkspaceKeepsItsEntry(t *testing.T) {
	quiet, loud := messages.NewID(), messages.NewID()
	initial := &persistence.State{Version: persistence.CurrentVersion, Workspaces: []persistence.WorkspaceEntry{
		{ID: quiet, Spec: messages.WorkspaceSpec{Label: "quiet"}, StatsHistory: []messages.Sample{{TimestampMs: 7, Source: "procfs"}}},
	}}
	h := newHarness(t, initial)
	askedQuiet := h.addWorkspace(quiet, "quiet-now", true)
	h.addWorkspace(loud, "loud", false)
	// A full save asks every workspace; the silent one times out.
	h.system.Root.Send(h.pid, &persistence.MarkDirty{})
	done := make(chan error, 1)
	answer(sendP(h, func(r protocol.Reply[bool]) any { return &persistence.SaveNow{Reply: r} }), func(_ bool, err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if askedQuiet.Load() != 1 {
		t.Fatalf("the silent workspace was asked %d times", askedQuiet.Load())
	}
	st := h.load(t)
	if len(st.Workspaces) != 2 {
		t.Fatalf("snapshot has %d workspaces, want 2 (the silent one kept): %+v", len(st.Workspaces), st.Workspaces)
	}
	for _, w := range st.Workspaces {
		if w.ID == quiet && (w.Spec.Label != "quiet" || len(w.StatsHistory) != 1) {
			t.Errorf("silent workspace's entry is not the previous one: %+v", w)
		}
	}
}

func TestGroupCommitSharesWrites(t *testing.T) {
	h := newHarness(t, nil)
	h.addWorkspace(messages.NewID(), "one", false)
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan error, 1)
			answer(sendP(h, func(r protocol.Reply[struct{}]) any { return &persistence.Commit{Reply: r} }), func(_ struct{}, err error) { done <- err })
			errs <- <-done
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	h.mu.Lock()
	asks := h.asks
	h.mu.Unlock()
	if asks >= n {
		t.Errorf("%d commits took %d snapshots; group commit should share them", n, asks)
	}
	t.Logf("%d concurrent commits, %d snapshots written", n, asks)
}

func TestCleanSaveIsSkipped(t *testing.T) {
	h := newHarness(t, nil)
	done := make(chan bool, 1)
	// No file yet: a save is never skipped then.
	answer(sendP(h, func(r protocol.Reply[bool]) any { return &persistence.SaveNow{Reply: r} }), func(saved bool, _ error) { done <- saved })
	if !<-done {
		t.Error("a save with no state file on disk was skipped")
	}
	answer(sendP(h, func(r protocol.Reply[bool]) any { return &persistence.SaveNow{Reply: r} }), func(saved bool, _ error) { done <- saved })
	if <-done {
		t.Error("a save with nothing changed wrote the file")
	}
	h.system.Root.Send(h.pid, &persistence.MarkDirty{})
	answer(sendP(h, func(r protocol.Reply[bool]) any { return &persistence.SaveNow{Reply: r} }), func(saved bool, _ error) { done <- saved })
	if !<-done {
		t.Error("a dirty save did not write")
	}
}

// sendP sends the request mk builds around a Reply to the persister and
// returns the call to wait on.
func sendP[T any](h *harness, mk func(protocol.Reply[T]) any) askproc.Call[T] {
	c := askproc.Begin[T](askproc.New(h.system))
	h.system.Root.Send(h.pid, mk(c.Reply))
	return c
}

// answer hands the answer of c to f, from a goroutine.
func answer[T any](c askproc.Call[T], f func(T, error)) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		f(c.Wait(ctx))
	}()
}

// A save's Gathered is answered once every workspace has answered, before
// the write: the workspaces may stop then (as at shutdown), and the file
// still holds their answers.
func TestSaveGatheredBeforeWorkspacesStop(t *testing.T) {
	h := newHarness(t, nil)
	var pids []*actor.PID
	for _, label := range []string{"a", "b"} {
		id := messages.NewID()
		pid := h.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
			return &fakeWorkspace{id: id, label: label + "-answered", asked: new(atomic.Int64)}
		}))
		pids = append(pids, pid)
		h.mu.Lock()
		h.ws = append(h.ws, protocol.WorkspacePID{ID: id, PID: pid, Spec: &messages.WorkspaceSpec{Label: label + "-registered"}})
		h.mu.Unlock()
	}
	pool := askproc.New(h.system)
	final, gathered := askproc.Begin[bool](pool), askproc.Begin[struct{}](pool)
	h.system.Root.Send(h.pid, &persistence.SaveNow{Reply: final.Reply, Gathered: gathered.Reply})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := gathered.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := h.system.Root.PoisonFuture(pid).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if saved, err := final.Wait(ctx); err != nil || !saved {
		t.Fatalf("save = %v, %v", saved, err)
	}
	labels := map[string]bool{}
	for _, w := range h.load(t).Workspaces {
		labels[w.Spec.Label] = true
	}
	if !labels["a-answered"] || !labels["b-answered"] {
		t.Fatalf("snapshot labels %v, want the workspaces' own answers", labels)
	}
}
