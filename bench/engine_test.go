// engine_test.go holds the testing.B side of engine.go (Exec of /bin/true
// through the engine), quick runs of the engine and persistence harness
// entries, and the tests of their helpers.

package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/messages"
)

// BenchmarkEngineExecTrue execs /bin/true through the engine b.N times, one
// Exec after the other, then waits for every exited event.
func BenchmarkEngineExecTrue(b *testing.B) {
	eng, err := shipote.Start(context.Background(), shipote.NewActorSystem(nil), shipote.Config{Limits: "none"})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Stop(context.Background())
	ctx := context.Background()
	ws, err := eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	sub := eng.Events(4*b.N + 64)
	defer sub.Cancel()
	ref := messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: "/bin/true"}}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ref.Label = fmt.Sprintf("t%d", i)
		if _, err := eng.Exec(ctx, ws.ID, ref); err != nil {
			b.Fatal(err)
		}
	}
	if err := awaitExited(ctx, sub.C, ws.ID, b.N, time.Minute); err != nil {
		b.Fatal(err)
	}
}

func TestRunEngineQuick(t *testing.T) {
	r := NewReport(nil)
	if err := RunEngine(context.Background(), r, true); err != nil {
		t.Fatal(err)
	}
	if len(r.Rows()) != 5 {
		t.Fatalf("rows %d", len(r.Rows()))
	}
	for _, row := range r.Rows() {
		if row.Value <= 0 || row.Base <= 0 {
			t.Errorf("row without a figure or a baseline: %s", FormatRow(row))
		}
		t.Log(FormatRow(row))
	}
}

func TestAwaitExited(t *testing.T) {
	ctx := context.Background()
	c := make(chan messages.Event, 8)
	c <- messages.Event{Kind: messages.EventStarted, Workspace: "w"}
	c <- messages.Event{Kind: messages.EventExited, Workspace: "other"}
	c <- messages.Event{Kind: messages.EventExited, Workspace: "w"}
	c <- messages.Event{Kind: messages.EventExited, Workspace: "w"}
	if err := awaitExited(ctx, c, "w", 2, time.Minute); err != nil {
		t.Fatal(err)
	}
	c <- messages.Event{Kind: messages.EventExited, Workspace: "w"}
	if err := awaitExited(ctx, c, "w", 2, 10*time.Millisecond); !errors.Is(err, errNotAllExited) || !strings.Contains(err.Error(), "1 of 2") {
		t.Fatalf("err %v, want 1 of 2 exited", err)
	}
	close(c)
	if err := awaitExited(ctx, c, "w", 1, time.Minute); !errors.Is(err, errNotAllExited) || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("err %v, want subscription closed", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := awaitExited(cctx, make(chan messages.Event), "w", 1, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestRunPersistQuick(t *testing.T) {
	r := NewReport(nil)
	if err := RunPersist(context.Background(), r, true); err != nil {
		t.Fatal(err)
	}
	peers := map[string]bool{}
	for _, row := range r.Rows() {
		t.Log(FormatRow(row))
		if strings.HasPrefix(row.Name, "durable creates/s") {
			if row.Value <= 0 || row.Base <= 0 {
				t.Errorf("row without a figure or a baseline: %s", FormatRow(row))
			}
			peers[row.Baseline] = true
		}
	}
	for _, want := range []string{"one write+fsync per create", "bbolt Batch", "SQLite WAL, synchronous=FULL"} {
		if !peers[want] {
			t.Errorf("no durable-creates row against %q", want)
		}
	}
}

// TestSpawnClocksStopAtExit runs both sides of the engine spawn figure on a
// program that exits at once but leaves its output pipes open for 4 s (a
// background sleep holds them): both clocks stop at the exits, neither at
// the pipes' EOF, so both sides measure the same span.
func TestSpawnClocksStopAtExit(t *testing.T) {
	const hold = 4 * time.Second
	argv := []string{"/bin/sh", "-c", fmt.Sprintf("sleep %d & exit 0", int(hold.Seconds()))}
	const n = 2
	slowest := float64(n) / hold.Seconds() // a clock stopped at EOF gives at most this
	eng, err := shipote.Start(context.Background(), shipote.NewActorSystem(nil), shipote.Config{Limits: "none", Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Stop(context.Background()) })
	e, err := engineSpawnRate(context.Background(), eng, "held", n, argv)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rawCapturedSpawnRate(n, argv)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("engine %.1f spawns/s, os/exec %.1f spawns/s; pipes held %v", e.rate, raw.rate, hold)
	if e.rate <= slowest {
		t.Errorf("engine side %.2f spawns/s: its clock waited for the pipes", e.rate)
	}
	if raw.rate <= slowest {
		t.Errorf("os/exec side %.2f spawns/s: its clock waited for the pipes", raw.rate)
	}
}
