// daemon.go measures the shipote daemon as its clients see it, holding N
// workspaces with one process each: its memory per idle workspace and per
// managed process (RSS delta / N), and the API round trip of `ws ls` and
// `ps` over the socket, from one client and under 64 concurrent clients.
// The baselines run in a separate Go process too (bench/internal/floor):
// protoactor actors holding the same specs, os/exec children with their
// output piped, and net/http answering the daemon's own answer bytes.

package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/bench/internal/modules"
	"github.com/shipote/shipote/bench/peers"
	"github.com/shipote/shipote/messages"
)

// DaemonParams size the daemon suite.
type DaemonParams struct {
	N         int           // workspaces, one process each
	Runs      int           // fresh daemon per run
	Settle    time.Duration // before reading RSS
	Seq       int           // requests per figure from one client
	Clients   int           // concurrent clients
	PerClient int           // requests per concurrent client
}

// DaemonParamsFor returns the sizes of a full or quick run.
func DaemonParamsFor(quick bool) DaemonParams {
	if quick {
		return DaemonParams{N: 200, Runs: 1, Settle: time.Second, Seq: 50, Clients: 64, PerClient: 3}
	}
	return DaemonParams{N: 1000, Runs: 5, Settle: time.Second, Seq: 50, Clients: 64, PerClient: 3}
}

// RunDaemon runs the daemon suite with DaemonParamsFor(quick).
func RunDaemon(ctx context.Context, r *Report, quick bool) error {
	return MeasureDaemon(ctx, r, DaemonParamsFor(quick))
}

// daemonRun is one run's figures: memory in bytes per item, latencies in
// ms keyed by figure name.
type daemonRun struct {
	wsBytes, procBytes           float64
	floorWSBytes, floorProc      float64
	lat, floorLat                map[string]float64
	rate, floorRate              map[string]float64 // requests/s under the concurrent clients
	wsAnswerBytes, psAnswerBytes int
}

// MeasureDaemon builds the daemon and the floor program, runs par.Runs
// runs and adds the rows.
func MeasureDaemon(ctx context.Context, r *Report, par DaemonParams) error {
	runs, err := floorRuns(ctx, "daemon", par.Runs, func(bin, floor, dir string) (daemonRun, error) {
		return daemonOnce(ctx, bin, floor, dir, par)
	})
	if err != nil {
		return err
	}
	addDaemonRows(r, par, runs)
	return nil
}

// floorRuns builds the daemon and the floor program in a temporary
// directory, then calls once n times, each with a directory of its own.
func floorRuns[T any](ctx context.Context, suite string, n int, once func(bin, floor, dir string) (T, error)) ([]T, error) {
	root, err := os.MkdirTemp("", "shipote-bench-"+suite+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	bin, err := peers.BuildShipote(ctx, root)
	if err != nil {
		return nil, err
	}
	floor, err := buildFloor(ctx, root)
	if err != nil {
		return nil, err
	}
	var runs []T
	for i := range n {
		dir := filepath.Join(root, fmt.Sprintf("run%d", i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		run, err := once(bin, floor, dir)
		if err != nil {
			return nil, fmt.Errorf("%s run %d: %w", suite, i+1, err)
		}
		runs = append(runs, run)
	}
	return runs, nil
}

// buildFloor builds bench/internal/floor into dir.
func buildFloor(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "floor")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	_, benchDir, err := modules.Dirs(ctx)
	if err != nil {
		return "", fmt.Errorf("build floor: %w", err)
	}
	if err := modules.Build(ctx, benchDir, "./internal/floor", bin); err != nil {
		return "", err
	}
	return bin, nil
}

// API figures, in the order of the rows.
var daemonAPIFigures = []string{"ws ls", "ps"}

// daemonAPITargets are the targets of API figures, as at most this many
// times the floor, by key ("NAME p50", "NAME p99 64").
var daemonAPITargets = map[string]float64{"ws ls p50": 1.3, "ws ls p99 64": 2}

func daemonOnce(ctx context.Context, bin, floor, dir string, par DaemonParams) (run daemonRun, err error) {
	d, err := peers.NewShipoteDaemon(bin, dir)
	if err != nil {
		return run, err
	}
	if err := d.Launch(ctx); err != nil {
		return run, err
	}
	defer func() {
		if cerr := d.CloseWithin(slowShutdown); cerr != nil && err == nil {
			err = cerr
		}
	}()
	pid, c := d.PID(), d.Client()

	// The memory floors grow beside the daemon: RSS does not mind the
	// company, and the run is shorter.
	actorsFloor, err := startFloor(ctx, floor, []string{"actors", fmt.Sprint(par.N)})
	if err != nil {
		return run, err
	}
	defer actorsFloor.close()
	procsFloor, err := startFloor(ctx, floor, append([]string{"procs", fmt.Sprint(par.N)}, peers.SleeperArgv...))
	if err != nil {
		return run, err
	}
	defer procsFloor.close()

	// rss settles, then reads the RSS of each pid.
	rss := func(pids ...int) ([]float64, error) {
		if err := sleepCtx(ctx, par.Settle); err != nil {
			return nil, err
		}
		out := make([]float64, len(pids))
		for i, p := range pids {
			v, err := peers.RSS(p)
			if err != nil {
				return nil, err
			}
			out[i] = float64(v)
		}
		return out, nil
	}
	aPid, pPid := actorsFloor.cmd.Process.Pid, procsFloor.cmd.Process.Pid
	before, err := rss(pid, aPid, pPid)
	if err != nil {
		return run, err
	}

	ids := make([]string, par.N)
	err = parallel(ctx, par.Clients, par.N, func(i int) error {
		info, err := c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("w%05d", i)})
		ids[i] = info.ID
		return err
	})
	if err != nil {
		return run, fmt.Errorf("create %d workspaces: %w", par.N, err)
	}
	if err := actorsFloor.step(ctx); err != nil {
		return run, err
	}
	withWS, err := rss(pid, aPid)
	if err != nil {
		return run, err
	}

	ref := messages.CommandRef{Label: "sleep", Payload: messages.Payload{Native: &messages.NativePayload{
		Exec: peers.SleeperArgv[0], Argv: peers.SleeperArgv[1:]}}}
	err = parallel(ctx, par.Clients, par.N, func(i int) error {
		_, err := c.Exec(ctx, ids[i], ref)
		return err
	})
	if err != nil {
		return run, fmt.Errorf("exec %d processes: %w", par.N, err)
	}
	count := func() (int, error) { return peers.CountChildren(pid, peers.SleeperArgv) }
	if err := waitCount(ctx, count, par.N, 2*time.Minute); err != nil {
		return run, err
	}
	if err := procsFloor.step(ctx); err != nil {
		return run, err
	}
	withProcs, err := rss(pid, pPid)
	if err != nil {
		return run, err
	}
	n := float64(par.N)
	run.wsBytes, run.floorWSBytes = (withWS[0]-before[0])/n, (withWS[1]-before[1])/n
	run.procBytes, run.floorProc = (withProcs[0]-withWS[0])/n, (withProcs[1]-before[2])/n
	actorsFloor.close()
	procsFloor.close()

	// The daemon's answers, for the floor server to give back.
	sock := c.SocketPath()
	routes := map[string]string{"ws ls": "/v1/workspaces", "ps": "/v1/commands"}
	var args []string
	for _, name := range daemonAPIFigures {
		file := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
		n, err := fetchTo(ctx, sock, routes[name], file)
		if err != nil {
			return run, err
		}
		if name == "ws ls" {
			run.wsAnswerBytes = n
		} else {
			run.psAnswerBytes = n
		}
		args = append(args, routes[name]+"="+file)
	}
	run.lat, run.rate, err = apiLatencies(ctx, sock, par)
	if err != nil {
		return run, err
	}
	// Stopping a daemon that runs N processes on a loaded machine may take
	// longer than the 30 s of Close; how it stops is not timed here, so a
	// failed stop is reported and the figures are kept.
	if err := d.CloseWithin(slowShutdown); err != nil {
		fmt.Fprintf(os.Stderr, "shipote-bench: daemon: stopping the daemon holding %d workspaces: %v\n", par.N, err)
	}

	// The API floor, with the daemon gone.
	fsock := filepath.Join(dir, "floor.sock")
	srv, err := startFloor(ctx, floor, append([]string{"http", fsock}, args...))
	if err != nil {
		return run, err
	}
	defer srv.close()
	run.floorLat, run.floorRate, err = apiLatencies(ctx, fsock, par)
	if err != nil {
		return run, fmt.Errorf("floor http: %w", err)
	}
	return run, nil
}

// parallel runs fn(0..n-1) from workers goroutines; the first error wins.
func parallel(ctx context.Context, workers, n int, fn func(int) error) error {
	var (
		mu   sync.Mutex
		next int
		ferr error
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := ferr != nil || i >= n || ctx.Err() != nil
				mu.Unlock()
				if stop {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if ferr == nil {
						ferr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if ferr != nil {
		return ferr
	}
	return ctx.Err()
}

// fetchTo GETs path from the daemon at sock and writes the answer to file.
func fetchTo(ctx context.Context, sock, path, file string) (int, error) {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://shipote"+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return len(b), os.WriteFile(file, b, 0o600)
}

// apiLatencies measures each API figure through api.Client at sock: p50
// and p99 in ms from one client ("NAME p50", "NAME p99"), and under
// par.Clients concurrent clients ("NAME p50 64", ...), with the request
// rate the concurrent clients reached.
func apiLatencies(ctx context.Context, sock string, par DaemonParams) (map[string]float64, map[string]float64, error) {
	lat, rate := map[string]float64{}, map[string]float64{}
	call := func(c *api.Client, name string) error {
		var err error
		switch name {
		case "ws ls":
			var ws []messages.WorkspaceInfo
			ws, err = c.Workspaces(ctx)
			if err == nil && len(ws) != par.N {
				err = fmt.Errorf("ws ls: %d workspaces, want %d", len(ws), par.N)
			}
		case "ps":
			var cmds []messages.CommandInfo
			cmds, err = c.Commands(ctx, "")
			if err == nil && len(cmds) != par.N {
				err = fmt.Errorf("ps: %d commands, want %d", len(cmds), par.N)
			}
		}
		return err
	}
	for _, name := range daemonAPIFigures {
		c := api.NewClient(sock)
		var d []time.Duration
		for i := range par.Seq + 5 {
			t0 := time.Now()
			if err := call(c, name); err != nil {
				c.CloseIdleConnections()
				return nil, nil, err
			}
			if i >= 5 { // the first calls warm the connection
				d = append(d, time.Since(t0))
			}
		}
		c.CloseIdleConnections()
		lat[name+" p50"], lat[name+" p99"] = pct(d, 50), pct(d, 99)

		clients := make([]*api.Client, par.Clients)
		for i := range clients {
			clients[i] = api.NewClient(sock)
		}
		// Every client connects and makes one call before the clock starts.
		if err := parallel(ctx, par.Clients, par.Clients, func(i int) error { return call(clients[i], name) }); err != nil {
			return nil, nil, err
		}
		var (
			mu  sync.Mutex
			all []time.Duration
		)
		t0 := time.Now()
		err := parallel(ctx, par.Clients, par.Clients, func(i int) error {
			mine := make([]time.Duration, 0, par.PerClient)
			for range par.PerClient {
				t := time.Now()
				if err := call(clients[i], name); err != nil {
					return err
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
			return nil
		})
		took := time.Since(t0)
		for _, c := range clients {
			c.CloseIdleConnections()
		}
		if err != nil {
			return nil, nil, err
		}
		k := fmt.Sprintf(" %d", par.Clients)
		lat[name+" p50"+k], lat[name+" p99"+k] = pct(all, 50), pct(all, 99)
		rate[name] = float64(len(all)) / took.Seconds()
	}
	return lat, rate, nil
}

// floorProc is a running floor program driven over its stdin and stdout.
type floorProc struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	done   chan struct{}
	closed bool
}

func startFloor(ctx context.Context, bin string, args []string) (*floorProc, error) {
	cmd := exec.Command(bin, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("floor %s: %w", args[0], err)
	}
	f := &floorProc{cmd: cmd, in: in, out: bufio.NewScanner(out), done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(f.done) }()
	if err := f.expect(ctx, "ready"); err != nil {
		f.close()
		return nil, fmt.Errorf("floor %s: %w: %s", args[0], err, stderr.String())
	}
	return f, nil
}

// expect waits for the line want.
func (f *floorProc) expect(ctx context.Context, want string) error {
	got := make(chan bool, 1)
	go func() { got <- f.out.Scan() && f.out.Text() == want }()
	select {
	case ok := <-got:
		if !ok {
			return fmt.Errorf("no %q line", want)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("no %q line after 2 minutes", want)
	}
}

// close closes stdin (the floor undoes its work and exits) and waits,
// killing it after 30 s.
func (f *floorProc) close() {
	if f.closed {
		return
	}
	f.closed = true
	_ = f.in.Close()
	select {
	case <-f.done:
	case <-time.After(30 * time.Second):
		_ = f.cmd.Process.Kill()
		<-f.done
	}
}

// step tells a staged floor to do its work and waits until it is done.
func (f *floorProc) step(ctx context.Context) error {
	if _, err := io.WriteString(f.in, "go\n"); err != nil {
		return fmt.Errorf("floor %s: %w", f.cmd.Args[1], err)
	}
	if err := f.expect(ctx, "done"); err != nil {
		return fmt.Errorf("floor %s: %w", f.cmd.Args[1], err)
	}
	return nil
}

func addDaemonRows(r *Report, par DaemonParams, runs []daemonRun) {
	if len(runs) == 0 {
		return
	}
	col := func(f func(daemonRun) float64) []float64 {
		xs := make([]float64, len(runs))
		for i, run := range runs {
			xs[i] = f(run)
		}
		return xs
	}
	spread := func(row *Row, xs []float64) {
		med, lo, hi := Median(xs)
		row.Value = med
		if len(xs) > 1 {
			row.Min, row.Max = lo, hi
		}
	}
	runsNote := fmt.Sprintf("median of %d runs", len(runs))
	if len(runs) == 1 {
		runsNote = "1 run"
	}
	sizes := fmt.Sprintf("%d workspaces, 1 process each", par.N)
	wsBytes, _, _ := Median(col(func(x daemonRun) float64 { return float64(x.wsAnswerBytes) }))
	psBytes, _, _ := Median(col(func(x daemonRun) float64 { return float64(x.psAnswerBytes) }))
	answer := map[string]string{
		"ws ls": fmt.Sprintf("GET /v1/workspaces, %.0f KiB answer", wsBytes/1024),
		"ps":    fmt.Sprintf("GET /v1/commands (every workspace), %.0f KiB answer", psBytes/1024),
	}
	for _, name := range daemonAPIFigures {
		for _, conc := range []string{"", fmt.Sprintf(" %d", par.Clients)} {
			for _, p := range []string{"p50", "p99"} {
				key := name + " " + p + conc
				who := "1 client, sequential"
				if conc != "" {
					who = fmt.Sprintf("%d concurrent clients x %d requests", par.Clients, par.PerClient)
				}
				row := Row{Group: "api", Name: fmt.Sprintf("`%s` round trip %s, %s", name, p, who), Unit: "ms",
					Baseline: "net/http giving the same bytes", HigherIsBetter: false}
				spread(&row, col(func(x daemonRun) float64 { return x.lat[key] }))
				row.Base, _, _ = Median(col(func(x daemonRun) float64 { return x.floorLat[key] }))
				if t, ok := daemonAPITargets[key]; ok {
					row.Target, row.Met = fmt.Sprintf("<= %gx", t), Bool(row.Base > 0 && row.Value <= t*row.Base)
				}
				note := []string{sizes, answer[name], "same api.Client decoding both"}
				if conc != "" && p == "p50" {
					rate, _, _ := Median(col(func(x daemonRun) float64 { return x.rate[name] }))
					frate, _, _ := Median(col(func(x daemonRun) float64 { return x.floorRate[name] }))
					note = append(note, fmt.Sprintf("%.0f requests/s (floor %.0f/s)", rate, frate))
				}
				row.Note = strings.Join(append(note, runsNote), "; ")
				r.Add(row)
			}
		}
	}
	ws := Row{Group: "memory", Name: "daemon RSS per idle workspace", Unit: "KiB",
		Baseline: "protoactor actor holding the spec", Target: "<= 12 KiB",
		Note: fmt.Sprintf("(RSS after creating %d workspaces - RSS before) / %d, %v after; both sides a separate Go process, growing side by side; %s",
			par.N, par.N, par.Settle, runsNote)}
	spread(&ws, col(func(x daemonRun) float64 { return x.wsBytes / 1024 }))
	ws.Base, _, _ = Median(col(func(x daemonRun) float64 { return x.floorWSBytes / 1024 }))
	ws.Met = Bool(ws.Value <= 12)
	r.Add(ws)
	proc := Row{Group: "memory", Name: "daemon RSS per managed process", Unit: "KiB",
		Baseline: "os/exec, output piped, Wait goroutine",
		Note: fmt.Sprintf("(RSS after one `sleep` in each of the %d workspaces - RSS before) / %d, %v after; log ring, log file, stats sampling included; %s",
			par.N, par.N, par.Settle, runsNote)}
	spread(&proc, col(func(x daemonRun) float64 { return x.procBytes / 1024 }))
	proc.Base, _, _ = Median(col(func(x daemonRun) float64 { return x.floorProc / 1024 }))
	r.Add(proc)
}
