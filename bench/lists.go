// lists.go measures the daemon's lists at scale: `ws ls` over the socket
// while the daemon holds 10,000 idle workspaces (the whole list, from one
// client and under 64 concurrent clients) and the first page of 100
// (GET /v1/workspaces?limit=100). Each figure stands beside net/http
// giving the daemon's own answer bytes (bench/internal/floor), measured
// in the same run through the same api.Client.

package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/bench/peers"
	"github.com/shipote/shipote/messages"
)

// ListParams size the lists suite.
type ListParams struct {
	N         int // idle workspaces
	Page      int // the first page's limit
	Runs      int // fresh daemon per run
	Seq       int // requests per figure from one client
	Clients   int // concurrent clients
	PerClient int // requests per concurrent client
}

// ListParamsFor returns the sizes of a full or quick run.
func ListParamsFor(quick bool) ListParams {
	if quick {
		return ListParams{N: 2000, Page: 100, Runs: 1, Seq: 30, Clients: 64, PerClient: 2}
	}
	return ListParams{N: 10000, Page: 100, Runs: 3, Seq: 30, Clients: 64, PerClient: 2}
}

// RunLists runs the lists suite with ListParamsFor(quick).
func RunLists(ctx context.Context, r *Report, quick bool) error {
	return MeasureLists(ctx, r, ListParamsFor(quick))
}

// listFigure is one request the suite times, with the check of its answer.
type listFigure struct {
	name string // "ws ls", "first page"
	path string // the request URI the floor answers
	call func(ctx context.Context, c *api.Client) error
}

func listFigures(par ListParams) []listFigure {
	return []listFigure{
		{name: "ws ls", path: "/v1/workspaces", call: func(ctx context.Context, c *api.Client) error {
			ws, err := c.Workspaces(ctx)
			if err == nil && len(ws) != par.N {
				err = fmt.Errorf("ws ls: %d workspaces, want %d", len(ws), par.N)
			}
			return err
		}},
		{name: "first page", path: fmt.Sprintf("/v1/workspaces?limit=%d", par.Page), call: func(ctx context.Context, c *api.Client) error {
			ws, _, err := c.WorkspacePage(ctx, messages.ListQuery{Limit: par.Page})
			if err == nil && len(ws) != par.Page {
				err = fmt.Errorf("first page: %d workspaces, want %d", len(ws), par.Page)
			}
			return err
		}},
	}
}

// listRun is one run's latencies in ms, keyed "NAME p50", "NAME p99 64",
// and the answer sizes in bytes.
type listRun struct {
	lat, floorLat map[string]float64
	bytes         map[string]int
	shutdown      time.Duration // SIGTERM to exit of the daemon
}

// slowShutdown is how long the suite waits for a daemon holding
// ListParams.N workspaces to exit after SIGTERM.
const slowShutdown = 5 * time.Minute

// MeasureLists builds the daemon and the floor program, runs par.Runs
// runs and adds the rows.
func MeasureLists(ctx context.Context, r *Report, par ListParams) error {
	runs, err := floorRuns(ctx, "lists", par.Runs, func(bin, floor, dir string) (listRun, error) {
		return listsOnce(ctx, bin, floor, dir, par)
	})
	if err != nil {
		return err
	}
	addListRows(r, par, runs)
	return nil
}

func listsOnce(ctx context.Context, bin, floor, dir string, par ListParams) (run listRun, err error) {
	d, err := peers.NewShipoteDaemon(bin, dir)
	if err != nil {
		return run, err
	}
	if err := d.Launch(ctx); err != nil {
		return run, err
	}
	// Stopping thousands of workspaces (each with its limits group) takes
	// longer than the 30 s Close allows; it is not what this suite times.
	defer func() {
		if cerr := d.CloseWithin(slowShutdown); cerr != nil && err == nil {
			err = cerr
		}
	}()
	c := d.Client()
	err = parallel(ctx, par.Clients, par.N, func(i int) error {
		_, err := c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("w%05d", i)})
		return err
	})
	if err != nil {
		return run, fmt.Errorf("create %d workspaces: %w", par.N, err)
	}
	figs := listFigures(par)
	sock := c.SocketPath()
	run.bytes = map[string]int{}
	var routes []string
	for i, f := range figs {
		file := filepath.Join(dir, fmt.Sprintf("answer%d.json", i))
		n, err := fetchTo(ctx, sock, f.path, file)
		if err != nil {
			return run, err
		}
		run.bytes[f.name] = n
		routes = append(routes, f.path+"="+file)
	}
	if run.lat, err = listLatencies(ctx, sock, par, figs); err != nil {
		return run, err
	}
	// How the daemon stops is not what this suite times: a failed stop is
	// reported and the figures are kept.
	t0 := time.Now()
	if err := d.CloseWithin(slowShutdown); err != nil {
		fmt.Printf("   (lists: stopping the daemon holding %d workspaces: %v)\n", par.N, err)
	}
	run.shutdown = time.Since(t0)

	// The floor, with the daemon gone.
	fsock := filepath.Join(dir, "floor.sock")
	srv, err := startFloor(ctx, floor, append([]string{"http", fsock}, routes...))
	if err != nil {
		return run, err
	}
	defer srv.close()
	if run.floorLat, err = listLatencies(ctx, fsock, par, figs); err != nil {
		return run, fmt.Errorf("floor http: %w", err)
	}
	return run, nil
}

// listLatencies times each figure at sock: p50 and p99 in ms from one
// client ("NAME p50"), and under par.Clients concurrent clients
// ("NAME p99 64").
func listLatencies(ctx context.Context, sock string, par ListParams, figs []listFigure) (map[string]float64, error) {
	lat := map[string]float64{}
	for _, f := range figs {
		c := api.NewClient(sock)
		var d []time.Duration
		for i := range par.Seq + 5 {
			t0 := time.Now()
			if err := f.call(ctx, c); err != nil {
				c.CloseIdleConnections()
				return nil, err
			}
			if i >= 5 { // the first calls warm the connection
				d = append(d, time.Since(t0))
			}
		}
		c.CloseIdleConnections()
		lat[f.name+" p50"], lat[f.name+" p99"] = pct(d, 50), pct(d, 99)

		clients := make([]*api.Client, par.Clients)
		for i := range clients {
			clients[i] = api.NewClient(sock)
		}
		var (
			mu  sync.Mutex
			all []time.Duration
		)
		// Every client connects and makes one call before the clock starts.
		err := parallel(ctx, par.Clients, par.Clients, func(i int) error { return f.call(ctx, clients[i]) })
		if err == nil {
			err = parallel(ctx, par.Clients, par.Clients, func(i int) error {
				mine := make([]time.Duration, 0, par.PerClient)
				for range par.PerClient {
					t := time.Now()
					if err := f.call(ctx, clients[i]); err != nil {
						return err
					}
					mine = append(mine, time.Since(t))
				}
				mu.Lock()
				all = append(all, mine...)
				mu.Unlock()
				return nil
			})
		}
		for _, c := range clients {
			c.CloseIdleConnections()
		}
		if err != nil {
			return nil, err
		}
		k := fmt.Sprintf(" %d", par.Clients)
		lat[f.name+" p50"+k], lat[f.name+" p99"+k] = pct(all, 50), pct(all, 99)
	}
	return lat, nil
}

// listTarget is a figure's target: at most ratio times the floor, or (ratio
// 0) at most ms milliseconds.
type listTarget struct {
	ratio, ms float64
}

func addListRows(r *Report, par ListParams, runs []listRun) {
	if len(runs) == 0 {
		return
	}
	col := func(f func(listRun) float64) []float64 {
		xs := make([]float64, len(runs))
		for i, run := range runs {
			xs[i] = f(run)
		}
		return xs
	}
	shut, _, _ := Median(col(func(x listRun) float64 { return x.shutdown.Seconds() }))
	fmt.Printf("   (lists: the daemon holding %d workspaces took %.1f s to exit after SIGTERM, median)\n", par.N, shut)
	runsNote := fmt.Sprintf("median of %d runs", len(runs))
	if len(runs) == 1 {
		runsNote = "1 run"
	}
	conc := fmt.Sprintf(" %d", par.Clients)
	targets := map[string]listTarget{
		"ws ls p50":        {ratio: 1.3},
		"ws ls p99" + conc: {ratio: 2},
		"first page p50":   {ms: 10},
		"first page p99":   {ms: 10},
	}
	for _, f := range listFigures(par) {
		size, _, _ := Median(col(func(x listRun) float64 { return float64(x.bytes[f.name]) }))
		for _, k := range []string{"", conc} {
			for _, p := range []string{"p50", "p99"} {
				key := f.name + " " + p + k
				who := "1 client, sequential"
				if k != "" {
					who = fmt.Sprintf("%d concurrent clients x %d requests", par.Clients, par.PerClient)
				}
				what := "`ws ls`"
				if f.name == "first page" {
					what = fmt.Sprintf("first page of %d (`ws ls --limit %d`)", par.Page, par.Page)
				}
				row := Row{Group: "api", Name: fmt.Sprintf("%s round trip %s at %d workspaces, %s", what, p, par.N, who), Unit: "ms",
					Baseline: "net/http giving the same bytes"}
				med, lo, hi := Median(col(func(x listRun) float64 { return x.lat[key] }))
				row.Value = med
				if len(runs) > 1 {
					row.Min, row.Max = lo, hi
				}
				row.Base, _, _ = Median(col(func(x listRun) float64 { return x.floorLat[key] }))
				switch t := targets[key]; {
				case t.ratio > 0:
					row.Target, row.Met = fmt.Sprintf("<= %gx", t.ratio), Bool(row.Base > 0 && row.Value <= t.ratio*row.Base)
				case t.ms > 0:
					row.Target, row.Met = fmt.Sprintf("<= %g ms", t.ms), Bool(row.Value <= t.ms)
				}
				row.Note = strings.Join([]string{
					fmt.Sprintf("%d idle workspaces", par.N),
					fmt.Sprintf("GET %s, %.0f KiB answer", f.path, size/1024),
					"same api.Client decoding both", runsNote}, "; ")
				r.Add(row)
			}
		}
	}
}
