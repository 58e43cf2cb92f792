// cluster.go measures three daemons joined as one cluster on loopback
// (--peers): a request forwarded to the member holding its workspace
// against the same request answered by that member, `ws ls` gathered
// from 3 members holding 1,000 workspaces each against one daemon holding
// 3,000, and the throughput of a tap asked of another member (a direct
// stream between the two) against a tap of the same pipeline asked of the
// member running it. Every daemon runs with --limits none, baseline
// included: the figures are about routing, not cgroups.
//
// It also measures what linking the cluster costs a daemon that does not
// join one: the idle RSS of the default build against the same daemon
// built with the nocluster tag, launched side by side.

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/bench/peers"
	"github.com/shipote/shipote/messages"
)

// ClusterParams size the cluster suite.
type ClusterParams struct {
	Nodes, PerNode int // members, and workspaces on each
	Runs           int // fresh daemons per run
	Seq            int // requests per figure, one client
	// TapRounds taps each way (across members, local) in turn, each
	// read for TapRead after TapWarm.
	TapRounds        int
	TapWarm, TapRead time.Duration
	// LinkRuns launches of the two builds for the idle RSS, read Settle
	// after each launch.
	LinkRuns int
	Settle   time.Duration
}

// ClusterParamsFor returns the sizes of a full or quick run.
func ClusterParamsFor(quick bool) ClusterParams {
	if quick {
		return ClusterParams{Nodes: 3, PerNode: 200, Runs: 1, Seq: 30, TapRounds: 2, TapWarm: 200 * time.Millisecond, TapRead: time.Second,
			LinkRuns: 1, Settle: 2 * time.Second}
	}
	return ClusterParams{Nodes: 3, PerNode: 1000, Runs: 3, Seq: 100, TapRounds: 3, TapWarm: 300 * time.Millisecond, TapRead: 2 * time.Second,
		LinkRuns: 5, Settle: 2 * time.Second}
}

// RunCluster runs the cluster suite with ClusterParamsFor(quick).
func RunCluster(ctx context.Context, r *Report, quick bool) error {
	return MeasureCluster(ctx, r, ClusterParamsFor(quick))
}

type clusterRun struct {
	fwd, local   time.Duration // p50 of `ws show` forwarded / answered where held
	list, single time.Duration // p50 of `ws ls` gathered / of one daemon
	// tapCross, tapLocal are a tap's bytes/s asked of another member / of
	// the member running the pipeline (medians of the rounds).
	tapCross, tapLocal float64
}

// MeasureCluster builds the daemon, runs par.Runs runs and adds the rows.
func MeasureCluster(ctx context.Context, r *Report, par ClusterParams) error {
	root, err := os.MkdirTemp("", "shipote-bench-cluster-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	bin, err := peers.BuildShipote(ctx, root)
	if err != nil {
		return err
	}
	var runs []clusterRun
	for i := range par.Runs {
		run, err := clusterOnce(ctx, bin, filepath.Join(root, fmt.Sprintf("run%d", i)), par)
		if err != nil {
			return fmt.Errorf("cluster run %d: %w", i+1, err)
		}
		runs = append(runs, run)
	}
	spread := func(row *Row, xs []float64) {
		med, lo, hi := Median(xs)
		row.Value = med
		if len(xs) > 1 {
			row.Min, row.Max = lo, hi
		}
	}
	col := func(f func(clusterRun) time.Duration) []float64 {
		xs := make([]float64, len(runs))
		for i, run := range runs {
			xs[i] = float64(f(run).Microseconds()) / 1000
		}
		return xs
	}
	note := fmt.Sprintf("%d members on loopback (--peers, a token), --limits none everywhere; p50 of %d sequential requests from one client; median of %d runs",
		par.Nodes, par.Seq, len(runs))
	fwd := Row{Group: "cluster", Name: "forwarded request p50 (`ws show` of a workspace held by another member)", Unit: "ms",
		Baseline: "the same request answered by the member holding it", Note: note}
	spread(&fwd, col(func(x clusterRun) time.Duration { return x.fwd }))
	fwd.Base, _, _ = Median(col(func(x clusterRun) time.Duration { return x.local }))
	r.Add(fwd)
	ls := Row{Group: "cluster", Name: fmt.Sprintf("`ws ls` p50 over %d members x %d workspaces, asked of one member", par.Nodes, par.PerNode), Unit: "ms",
		Baseline: fmt.Sprintf("one daemon holding %d", par.Nodes*par.PerNode), Note: note}
	spread(&ls, col(func(x clusterRun) time.Duration { return x.list }))
	ls.Base, _, _ = Median(col(func(x clusterRun) time.Duration { return x.single }))
	r.Add(ls)
	rate := func(f func(clusterRun) float64) []float64 {
		xs := make([]float64, len(runs))
		for i, run := range runs {
			xs[i] = f(run) / 1e6
		}
		return xs
	}
	tap := Row{Group: "cluster", Name: "tap throughput asked of another member (direct stream)", Unit: "MB/s",
		Baseline: "a tap of the same pipeline asked of the member running it", HigherIsBetter: true, Target: ">= 0.5x",
		Note: fmt.Sprintf("an unpaced pipeline (`cat /dev/zero` into `cat >/dev/null`, buffer 4 MiB); API client reads of 256 KiB; "+
			"%d rounds of %v each way in turn, median; median of %d runs", par.TapRounds, par.TapRead, len(runs))}
	spread(&tap, rate(func(x clusterRun) float64 { return x.tapCross }))
	tap.Base, _, _ = Median(rate(func(x clusterRun) float64 { return x.tapLocal }))
	tap.Met = Bool(tap.Base > 0 && tap.Value >= 0.5*tap.Base)
	r.Add(tap)
	return measureLinkCost(ctx, r, bin, root, par)
}

// measureLinkCost adds the row of what the cluster's packages cost an idle
// daemon: VmRSS of the default build and of the nocluster build, each
// launched with no state and no cluster flag, side by side (which of the
// two launches first alternates), read par.Settle after both answer.
func measureLinkCost(ctx context.Context, r *Report, bin, root string, par ClusterParams) error {
	nc, err := peers.BuildShipoteNocluster(ctx, root)
	if err != nil {
		return err
	}
	var with, without []float64
	for i := range par.LinkRuns {
		a, b, err := idleRSSPair(ctx, bin, nc, filepath.Join(root, fmt.Sprintf("link%d", i)), par.Settle, i%2 == 1)
		if err != nil {
			return fmt.Errorf("idle RSS, run %d: %w", i+1, err)
		}
		with, without = append(with, a), append(without, b)
	}
	row := Row{Group: "cluster", Name: "daemon RSS, 0 processes, default build (the cluster's packages linked, no cluster joined)", Unit: "MiB",
		Baseline: "the same daemon built with -tags nocluster (make build-nocluster)",
		Note:     fmt.Sprintf("VmRSS read %v after both daemons answer, launched side by side with no state; median of %d runs", par.Settle, len(with))}
	med, lo, hi := Median(with)
	row.Value = med
	if len(with) > 1 {
		row.Min, row.Max = lo, hi
	}
	row.Base, _, _ = Median(without)
	r.Add(row)
	return nil
}

// idleRSSPair launches the daemons of binaries a and b under dir (b first
// when bFirst), waits settle once both answer, and returns their VmRSS in
// MiB.
func idleRSSPair(ctx context.Context, a, b, dir string, settle time.Duration, bFirst bool) (rssA, rssB float64, err error) {
	bins := []string{a, b}
	if bFirst {
		bins = []string{b, a}
	}
	var ds []*peers.ShipoteDaemon
	defer func() {
		for _, d := range ds {
			if cerr := d.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	for i, bin := range bins {
		d, err := peers.NewShipoteDaemon(bin, filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			return 0, 0, err
		}
		d.Parent = fmt.Sprintf("shipote-bench-link-%d-%d", os.Getpid(), i)
		if err := d.Launch(ctx); err != nil {
			return 0, 0, fmt.Errorf("launch %s: %w", bin, err)
		}
		ds = append(ds, d)
	}
	if err := sleepCtx(ctx, settle); err != nil {
		return 0, 0, err
	}
	rss := make([]float64, 2)
	for i, d := range ds {
		n, err := peers.RSS(d.PID())
		if err != nil {
			return 0, 0, err
		}
		rss[i] = float64(n) / mib
	}
	if bFirst {
		return rss[1], rss[0], nil
	}
	return rss[0], rss[1], nil
}

// tapPipeline is the pipeline the tap figures read: unpaced, so that a
// tap gets all its reader takes (a tap never slows its pipeline; what it
// cannot take is dropped).
var tapPipeline = messages.PipelineSpec{
	Label: "tapped",
	Nodes: []messages.Node{
		{Label: "gen", Payload: messages.Payload{Native: &messages.NativePayload{Exec: "cat", Argv: []string{"/dev/zero"}}}},
		{Label: "sink", Payload: messages.Payload{Native: &messages.NativePayload{Exec: "/bin/sh", Argv: []string{"-c", "exec cat >/dev/null"}}}},
	},
	Edges:   []messages.Edge{{From: "gen", To: "sink"}},
	Discern: messages.DiscernPolicy{BufferBytes: 4 << 20},
}

// tapRate taps node gen of run through c and returns the bytes/s read
// over read, after warm.
func tapRate(ctx context.Context, c *api.Client, run string, warm, read time.Duration) (float64, error) {
	var (
		rc  io.ReadCloser
		err error
	)
	for end := time.Now().Add(10 * time.Second); ; {
		rc, err = c.Tap(ctx, run, "gen")
		if err == nil || !errors.Is(err, messages.ErrConflict) || time.Now().After(end) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the run is starting
	}
	if err != nil {
		return 0, fmt.Errorf("tap: %w", err)
	}
	defer rc.Close()
	buf := make([]byte, 256<<10)
	var n int64
	t0 := time.Now()
	started := time.Time{}
	for {
		k, err := rc.Read(buf)
		now := time.Now()
		switch {
		case started.IsZero() && now.Sub(t0) >= warm:
			started = now
		case !started.IsZero():
			n += int64(k)
		}
		if !started.IsZero() && now.Sub(started) >= read {
			return float64(n) / now.Sub(started).Seconds(), nil
		}
		if err != nil {
			return 0, fmt.Errorf("tap ended after %v: %w", now.Sub(t0), err)
		}
	}
}

// tapFigures runs tapPipeline on holder and taps it in turn through
// asker (across members) and holder (local); it returns the medians.
func tapFigures(ctx context.Context, asker, holder *api.Client, par ClusterParams) (cross, local float64, err error) {
	ws, err := holder.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "tapsrc"})
	if err != nil {
		return 0, 0, err
	}
	info, err := holder.RunPipeline(ctx, ws.ID, tapPipeline, false)
	if err != nil {
		return 0, 0, err
	}
	defer func() {
		if _, serr := holder.StopPipeline(context.WithoutCancel(ctx), info.ID); serr != nil && err == nil {
			err = serr
		}
	}()
	var xs, ls []float64
	for range par.TapRounds {
		x, err := tapRate(ctx, asker, info.ID, par.TapWarm, par.TapRead)
		if err != nil {
			return 0, 0, fmt.Errorf("tap across members: %w", err)
		}
		l, err := tapRate(ctx, holder, info.ID, par.TapWarm, par.TapRead)
		if err != nil {
			return 0, 0, fmt.Errorf("local tap: %w", err)
		}
		xs, ls = append(xs, x), append(ls, l)
	}
	cross, _, _ = Median(xs)
	local, _, _ = Median(ls)
	return cross, local, nil
}

// freeLoopbackPair returns a loopback port P with P and P+1 free.
func freeLoopbackPair() (int, error) {
	for range 50 {
		a, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := a.Addr().(*net.TCPAddr).Port
		b, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		a.Close()
		if err == nil {
			b.Close()
			return p, nil
		}
	}
	return 0, fmt.Errorf("no two free consecutive loopback ports")
}

func clusterOnce(ctx context.Context, bin, dir string, par ClusterParams) (run clusterRun, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return run, err
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("bench-token\n"), 0o600); err != nil {
		return run, err
	}
	addrs := make([]string, par.Nodes)
	for i := range addrs {
		p, err := freeLoopbackPair()
		if err != nil {
			return run, err
		}
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	members := make([]*peers.ShipoteDaemon, par.Nodes)
	defer func() {
		for _, m := range members {
			if m != nil {
				if cerr := m.CloseWithin(slowShutdown); cerr != nil && err == nil {
					err = cerr
				}
			}
		}
	}()
	for i := range members {
		var others []string
		for j, a := range addrs {
			if j != i {
				others = append(others, a)
			}
		}
		d, err := peers.NewShipoteDaemon(bin, filepath.Join(dir, fmt.Sprintf("m%d", i)))
		if err != nil {
			return run, err
		}
		d.Parent = fmt.Sprintf("shipote-bench-cluster-%d-%d", os.Getpid(), i)
		d.Args = []string{"--limits", "none", "--cluster", "bench", "--node", fmt.Sprintf("n%d", i),
			"--advertise", addrs[i], "--peers", strings.Join(others, ","), "--cluster-token-file", token}
		if err := d.Launch(ctx); err != nil {
			return run, err
		}
		members[i] = d
	}
	// Each member creates its own workspaces, through its own socket.
	ids := make([][]string, par.Nodes)
	for i, m := range members {
		c := m.Client()
		ids[i] = make([]string, par.PerNode)
		err := parallel(ctx, 12, par.PerNode, func(k int) error {
			info, err := c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("n%d-w%05d", i, k)})
			ids[i][k] = info.ID
			return err
		})
		if err != nil {
			return run, fmt.Errorf("member %d: create: %w", i, err)
		}
	}
	total := par.Nodes * par.PerNode
	a := members[0].Client()
	// Wait until member 0 reaches every other (a list without warnings).
	deadline := time.Now().Add(60 * time.Second)
	for {
		ws, err := a.Workspaces(ctx)
		if err == nil && len(ws) == total {
			break
		}
		if time.Now().After(deadline) {
			return run, fmt.Errorf("member 0 lists %d of %d workspaces after 60 s (%v)", len(ws), total, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	target := ids[1][0]
	held := members[1].Client()
	p50 := func(c *api.Client, f func(*api.Client) error) (time.Duration, error) {
		var d []time.Duration
		for i := range par.Seq + 5 {
			t0 := time.Now()
			if err := f(c); err != nil {
				return 0, err
			}
			if i >= 5 {
				d = append(d, time.Since(t0))
			}
		}
		return time.Duration(pct(d, 50) * float64(time.Millisecond)), nil
	}
	show := func(c *api.Client) error {
		info, err := c.Workspace(ctx, target)
		if err == nil && info.ID != target {
			err = fmt.Errorf("ws show answered %s, want %s", info.ID, target)
		}
		return err
	}
	if run.local, err = p50(held, show); err != nil {
		return run, err
	}
	if run.fwd, err = p50(a, show); err != nil {
		return run, err
	}
	list := func(c *api.Client) error {
		ws, err := c.Workspaces(ctx)
		if err == nil && len(ws) != total {
			err = fmt.Errorf("ws ls: %d workspaces, want %d", len(ws), total)
		}
		return err
	}
	if run.list, err = p50(a, list); err != nil {
		return run, err
	}
	if run.tapCross, run.tapLocal, err = tapFigures(ctx, a, held, par); err != nil {
		return run, err
	}
	for i, m := range members {
		if cerr := m.CloseWithin(slowShutdown); cerr != nil {
			return run, cerr
		}
		members[i] = nil
	}

	// The baseline: one daemon holding as many.
	single, err := peers.NewShipoteDaemon(bin, filepath.Join(dir, "single"))
	if err != nil {
		return run, err
	}
	single.Parent = fmt.Sprintf("shipote-bench-cluster-%d-single", os.Getpid())
	single.Args = []string{"--limits", "none"}
	if err := single.Launch(ctx); err != nil {
		return run, err
	}
	defer func() {
		if cerr := single.CloseWithin(slowShutdown); cerr != nil && err == nil {
			err = cerr
		}
	}()
	sc := single.Client()
	if err := parallel(ctx, 12, total, func(k int) error {
		_, err := sc.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("w%05d", k)})
		return err
	}); err != nil {
		return run, err
	}
	run.single, err = p50(sc, list)
	return run, err
}
