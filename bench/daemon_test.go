package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/bench/peers"
	"github.com/shipote/shipote/messages"
)

func TestParallelRunsEveryIndexOnce(t *testing.T) {
	var seen [100]atomic.Int32
	if err := parallel(context.Background(), 7, len(seen), func(i int) error {
		seen[i].Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range seen {
		if n := seen[i].Load(); n != 1 {
			t.Errorf("index %d ran %d times", i, n)
		}
	}
	boom := errors.New("boom")
	err := parallel(context.Background(), 3, 50, func(i int) error {
		if i == 10 {
			return fmt.Errorf("item %d: %w", i, boom)
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("parallel with a failing item = %v, want boom", err)
	}
}

func TestDaemonRows(t *testing.T) {
	par := DaemonParams{N: 1000, Runs: 2, Settle: time.Second, Seq: 10, Clients: 64, PerClient: 2}
	run := func(k float64) daemonRun {
		lat, floor := map[string]float64{}, map[string]float64{}
		for _, name := range daemonAPIFigures {
			for _, suffix := range []string{" p50", " p99", " p50 64", " p99 64"} {
				lat[name+suffix], floor[name+suffix] = 4*k, 2*k
			}
		}
		return daemonRun{wsBytes: 30 * 1024 * k, procBytes: 20 * 1024 * k, floorWSBytes: 10 * 1024, floorProc: 40 * 1024,
			lat: lat, floorLat: floor, rate: map[string]float64{"ws ls": 100, "ps": 200}, floorRate: map[string]float64{"ws ls": 300, "ps": 400},
			wsAnswerBytes: 400 << 10, psAnswerBytes: 300 << 10}
	}
	r := NewReport(nil)
	addDaemonRows(r, par, []daemonRun{run(1), run(2)})
	rows := r.Rows()
	if len(rows) != 10 {
		t.Fatalf("%d rows, want 10", len(rows))
	}
	for _, row := range rows[:8] {
		if row.Group != "api" || row.Unit != "ms" || row.Value != 6 || row.Min != 4 || row.Max != 8 || row.Base != 3 {
			t.Errorf("api row %+v", row)
		}
		if !strings.Contains(row.Note, "1000 workspaces") || !strings.Contains(row.Note, "median of 2 runs") {
			t.Errorf("api row note %q", row.Note)
		}
	}
	if !strings.Contains(rows[2].Note, "requests/s") || !strings.Contains(rows[2].Name, "64 concurrent clients") {
		t.Errorf("concurrent row %+v", rows[2])
	}
	ws, proc := rows[8], rows[9]
	if ws.Name != "daemon RSS per idle workspace" || ws.Value != 45 || ws.Base != 10 || ws.Unit != "KiB" {
		t.Errorf("workspace memory row %+v", ws)
	}
	if proc.Name != "daemon RSS per managed process" || proc.Value != 30 || proc.Base != 40 {
		t.Errorf("process memory row %+v", proc)
	}
	if got := proc.Verdict(); got != "no target; 1.33x better than the baseline" {
		t.Errorf("process memory verdict %q", got)
	}
}

// TestFloor runs the baseline program's three modes on a few items.
func TestFloor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, err := buildFloor(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"actors", "5"}, append([]string{"procs", "5"}, peers.SleeperArgv...)} {
		f, err := startFloor(ctx, bin, args)
		if err != nil {
			t.Fatalf("%s: %v", args[0], err)
		}
		if err := f.step(ctx); err != nil {
			t.Errorf("%s: %v", args[0], err)
		}
		if args[0] == "procs" {
			if n, err := peers.CountChildren(f.cmd.Process.Pid, peers.SleeperArgv); err != nil || n != 5 {
				t.Errorf("floor procs runs %d sleepers (%v), want 5", n, err)
			}
		}
		f.close()
		f.close() // idempotent
	}
	if n, err := peers.CountChildren(os.Getpid(), peers.SleeperArgv); err == nil && n != 0 {
		t.Errorf("%d sleepers left", n)
	}

	body := filepath.Join(dir, "ws.json")
	if err := os.WriteFile(body, []byte(`[{"id":"01JABCDEF","spec":{"label":"a"}}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "f.sock")
	srv, err := startFloor(ctx, bin, []string{"http", sock, "/v1/workspaces=" + body})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	c := api.NewClient(sock)
	defer c.CloseIdleConnections()
	ws, err := c.Workspaces(ctx)
	if err != nil || len(ws) != 1 || ws[0].Spec.Label != "a" {
		t.Fatalf("Workspaces from the floor = %v, %v", ws, err)
	}
	if _, err := c.Commands(ctx, ""); err == nil {
		t.Error("a path the floor does not serve answered")
	}

	for _, bad := range [][]string{{"procs", "0", "/bin/true"}, {"actors", "x"}, {"nope", "1"}, {"http", sock + "2", "no-equals"}} {
		if _, err := startFloor(ctx, bin, bad); err == nil {
			t.Errorf("floor %v started", bad)
		}
	}
}

// TestMeasureDaemonSmall runs the whole suite on a few workspaces.
func TestMeasureDaemonSmall(t *testing.T) {
	r := NewReport(nil)
	par := DaemonParams{N: 20, Runs: 1, Settle: 100 * time.Millisecond, Seq: 5, Clients: 4, PerClient: 2}
	if err := MeasureDaemon(context.Background(), r, par); err != nil {
		t.Fatal(err)
	}
	for _, row := range r.Rows() {
		if row.Value <= 0 && row.Group == "api" || row.Base <= 0 && row.Group == "api" {
			t.Errorf("row without a figure: %+v", row)
		}
	}
}

// BenchmarkDaemonWsLs is `ws ls` over the socket of a daemon holding 1,000
// workspaces; BenchmarkFloorWsLs is its baseline.
func BenchmarkDaemonWsLs(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	bin, err := peers.BuildShipote(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	d, err := peers.NewShipoteDaemon(bin, dir)
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Launch(ctx); err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	if err := parallel(ctx, 16, 1000, func(i int) error {
		_, err := d.Client().CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("w%04d", i)})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	if _, err := fetchTo(ctx, d.Client().SocketPath(), "/v1/workspaces", filepath.Join(dir, "ws.json")); err != nil {
		b.Fatal(err)
	}
	b.Run("daemon", func(b *testing.B) {
		for b.Loop() {
			if _, err := d.Client().Workspaces(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	floor, err := buildFloor(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := startFloor(ctx, floor, []string{"http", filepath.Join(dir, "f.sock"), "/v1/workspaces=" + filepath.Join(dir, "ws.json")})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.close()
	c := api.NewClient(filepath.Join(dir, "f.sock"))
	defer c.CloseIdleConnections()
	b.Run("floor", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Workspaces(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
