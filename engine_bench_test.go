package shipote

import (
	"context"
	"testing"

	"github.com/shipote/shipote/messages"
)

// BenchmarkEngineRoundTrip measures one Engine API round trip: a request
// to the engine routed to a workspace and its answer.
func BenchmarkEngineRoundTrip(b *testing.B) {
	eng, err := Start(context.Background(), NewActorSystem(nil), Config{Limits: "none"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = eng.Stop(context.Background()) })
	ctx := context.Background()
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Workspace", func(b *testing.B) {
		for b.Loop() {
			if _, err := eng.Workspace(ctx, ws.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Commands", func(b *testing.B) {
		for b.Loop() {
			if _, err := eng.Commands(ctx, ws.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
