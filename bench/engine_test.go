package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/messages"
)

func BenchmarkEngineExecTrue(b *testing.B) {
	eng, err := shipote.Start(shipote.NewActorSystem(nil), shipote.Config{Limits: "none"})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Stop(context.Background())
	ctx := context.Background()
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	ref := messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: "/bin/true"}}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ref.Label = fmt.Sprintf("t%d", i)
		if _, err := eng.Exec(ctx, ws.ID, ref); err != nil {
			b.Fatal(err)
		}
	}
	for {
		info, _ := eng.Workspace(ctx, ws.ID)
		if info.CommandsAlive == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRunEngineQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark harness smoke test")
	}
	r := NewReport(nil)
	if err := RunEngine(context.Background(), r, true); err != nil {
		t.Fatal(err)
	}
	if len(r.Rows()) != 3 {
		t.Fatalf("rows %d", len(r.Rows()))
	}
	for _, row := range r.Rows() {
		t.Log(FormatRow(row))
	}
}

func TestRunPersistQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark harness smoke test")
	}
	r := NewReport(nil)
	if err := RunPersist(context.Background(), r, true); err != nil {
		t.Fatal(err)
	}
	for _, row := range r.Rows() {
		t.Log(FormatRow(row))
	}
}
