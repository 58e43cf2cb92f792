package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/persistence"
)

// BenchmarkDurableCreate creates workspaces from 64 goroutines (on 2 cores)
// on a persistent engine, each answered once durable: the group-commit
// figure of `make bench`. BenchmarkPlainSavePerCreate is its baseline.
func BenchmarkDurableCreate(b *testing.B) {
	eng, err := shipote.Start(context.Background(), shipote.NewActorSystem(nil), shipote.Config{Limits: "none", StatePath: filepath.Join(b.TempDir(), "state.json")})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Stop(context.Background())
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("c%d", n.Add(1))}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPlainSavePerCreate appends a workspace to a state and writes and
// fsyncs the whole document, once per create.
func BenchmarkPlainSavePerCreate(b *testing.B) {
	path := filepath.Join(b.TempDir(), "plain.json")
	st := &persistence.State{Version: persistence.CurrentVersion}
	i := 0
	for b.Loop() {
		st.Workspaces = append(st.Workspaces, persistence.WorkspaceEntry{ID: messages.NewID(), Spec: messages.WorkspaceSpec{Label: fmt.Sprintf("n%d", i)}})
		i++
		if _, err := PlainSave(path, st); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestore1k starts an engine from a state of 1,000 workspaces
// (16 samples each) until it is ready, and stops it.
func BenchmarkRestore1k(b *testing.B) {
	_, data, err := RestorableState(1000)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "state.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		eng, err := shipote.Start(context.Background(), shipote.NewActorSystem(nil), shipote.Config{Limits: "none", StatePath: path})
		if err != nil {
			b.Fatal(err)
		}
		if got := eng.RestoreReport().Workspaces; got != 1000 {
			b.Fatalf("restored %d of 1000 workspaces", got)
		}
		b.StopTimer()
		if err := eng.Stop(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
