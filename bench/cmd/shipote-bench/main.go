// Command shipote-bench runs shipote's benchmark harness: every figure is
// printed beside a baseline measured in the same run, and the table is
// written to a Markdown file with the machine and the date.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shipote/shipote/bench"
)

type suite struct {
	name string
	run  func(context.Context, *bench.Report, bool) error
}

var (
	charts    = flag.String("charts", "", "write PNG charts, and the peer table, to this directory")
	peerProcs = flag.Int("peer-procs", 0, "sleepers each peer runs in the peers suite (0: the suite's own, 200)")
)

var suites = []suite{
	{"spawn", bench.RunSpawn},
	{"engine", bench.RunEngine},
	{"splitter", bench.RunSplitter},
	{"sampler", bench.RunSampler},
	{"snapshot", bench.RunSnapshot},
	{"persist", bench.RunPersist},
	{"journal", bench.RunJournal},
	{"logs", bench.RunLogs},
	{"daemon", bench.RunDaemon},
	{"api", bench.RunLists},
	{"control", bench.RunControl},
	{"retention", bench.RunRetention},
	{"shutdown", bench.RunShutdown},
	{"apply", bench.RunApply},
	{"cluster", bench.RunCluster},
	// The peer table (peers.md, peers.json) is written beside the charts,
	// so that a quick run leaves the committed tables alone.
	{"peers", func(ctx context.Context, r *bench.Report, quick bool) error {
		peerSuite.TableDir = *charts
		if *peerProcs > 0 {
			peerSuite.Params = bench.PeerParamsFor(quick)
			peerSuite.Params.N = *peerProcs
		}
		return peerSuite.Run(ctx, r, quick)
	}},
}

// peerSuite keeps the last peer run, whose three-way table goes into the
// Markdown report.
var peerSuite = &bench.Peers{}

func main() {
	quick := flag.Bool("quick", false, "a fast subset: smaller sizes, one run each")
	out := flag.String("out", "", "write the results as Markdown to this file")
	only := flag.String("only", "", "comma-separated suites to run ("+names()+")")
	flag.Parse()

	// SIGINT or SIGTERM cancels ctx: the running suite returns, stopping
	// every daemon and process it started (pm2, supervisord, the shipote
	// daemon and their children), and the harness exits 130 or 143 without
	// writing -out. A second signal kills it at once.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got atomic.Value // the first signal
	go func() {
		sig, ok := <-sigs
		if !ok {
			return
		}
		got.Store(sig)
		fmt.Fprintf(os.Stderr, "shipote-bench: %v: stopping what was started (a second signal kills at once)\n", sig)
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		cancel()
	}()
	defer signal.Stop(sigs)
	r := bench.NewReport(os.Stdout)
	started := time.Now()
	var failed []string
	for _, s := range suites {
		if *only != "" && !contains(strings.Split(*only, ","), s.name) {
			continue
		}
		fmt.Printf("== %s\n", s.name)
		t0 := time.Now()
		if err := s.run(ctx, r, *quick); err != nil {
			fmt.Fprintf(os.Stderr, "shipote-bench: %s: %v\n", s.name, err)
			failed = append(failed, s.name)
		}
		fmt.Printf("   (%s took %v)\n", s.name, time.Since(t0).Round(time.Second))
		if ctx.Err() != nil {
			break
		}
	}
	if sig, ok := got.Load().(os.Signal); ok {
		fmt.Fprintf(os.Stderr, "shipote-bench: stopped by %v; no report written\n", sig)
		code := 130
		if sig == syscall.SIGTERM {
			code = 143
		}
		os.Exit(code)
	}
	var chartFiles []string
	if *charts != "" {
		paths, err := bench.WriteCharts(r.Rows(), *charts)
		if err != nil {
			fmt.Fprintln(os.Stderr, "shipote-bench: charts:", err)
		}
		chartFiles = paths
		for _, p := range paths {
			fmt.Println("wrote", p)
		}
	}
	if *out != "" {
		md := markdown(r.Rows(), *quick, time.Since(started))
		if run := peerSuite.Last(); len(run.Systems) > 0 {
			var t strings.Builder
			if err := bench.FormatPeerTable(&t, run); err == nil {
				md += "\n## Peers side by side\n\n" + t.String()
			}
		}
		for _, p := range chartFiles {
			md += fmt.Sprintf("\n![%s](%s)\n", filepath.Base(p), relTo(*out, p))
		}
		if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "shipote-bench:", err)
			os.Exit(1)
		}
		fmt.Println("wrote", *out)
	}
	if len(failed) > 0 {
		fmt.Fprintf(os.Stderr, "shipote-bench: failed suites: %s\n", strings.Join(failed, ", "))
		os.Exit(1)
	}
}

// relTo returns target relative to the directory of file, for links.
func relTo(file, target string) string {
	rel, err := filepath.Rel(filepath.Dir(file), target)
	if err != nil {
		return target
	}
	return rel
}

func names() string {
	var n []string
	for _, s := range suites {
		n = append(n, s.name)
	}
	return strings.Join(n, ",")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0]); len(f) >= 2 {
			mem = f[1] + " kB RAM"
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d cores (%s), %s, %s, %s", runtime.NumCPU(), cpu, mem, kernel, runtime.Version())
}

func markdown(rows []bench.Row, quick bool, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# shipote benchmarks\n\n")
	fmt.Fprintf(&b, "Measured %s on %s; `make bench%s`, %v in all.\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), machine(), map[bool]string{true: "-quick", false: ""}[quick], took.Round(time.Second))
	fmt.Fprintf(&b, "Every figure is beside a baseline measured in the same run; the ratio is figure ÷ baseline, "+
		"and where the baseline is 0 the difference figure − baseline is shown instead. "+
		"Medians of the runs, with min–max where there were several.\n")
	fmt.Fprintf(&b, "The Go side of each figure is also a `testing.B` benchmark, for `benchstat` across commits: "+
		"`go test -run '^$' -bench . ./api/server/ ./internal/proc/`, and in bench/ (a module of its own) `go test -run '^$' -bench . .`.\n\n")
	fmt.Fprintf(&b, "| group | figure | shipote | baseline | baseline value | ratio (or difference) | target | verdict |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		val := fmt.Sprintf("%.3f %s", r.Value, r.Unit)
		if r.Min != 0 || r.Max != 0 {
			val += fmt.Sprintf(" (%.3f–%.3f)", r.Min, r.Max)
		}
		verdict := r.Verdict()
		note := ""
		if r.Note != "" {
			note = " — " + r.Note
		}
		fmt.Fprintf(&b, "| %s | %s%s | %s | %s | %.3f %s | %s | %s | %s |\n",
			cell(r.Group), cell(r.Name), cell(note), val, cell(r.Baseline), r.Base, r.Unit, r.Comparison(), cell(r.Target), verdict)
	}
	b.WriteString(howMeasured)
	return b.String()
}

// howMeasured says how the baselines are kept fair, below the table.
const howMeasured = `
## How the baselines are kept fair

- **Splitter fan-out**: the splitter grows its pipes to 1 MiB, so coreutils tee is shown twice: on default 64 KiB pipes, and with every pipe it touches (its input and each consumer's) grown to 1 MiB with F_SETPIPE_SZ.
- **Engine spawn**: both clocks start before the first start and stop at the same point, once every child's exit has been observed (os/exec: Wait returned; the engine: the exited event). Neither waits for the output pipes' EOF; the os/exec side joins its pipe readers after its clock stops, as the engine's pumps finish after its own.
- **Durable creates**: the same creates from the same 64 concurrent clients on the same disk, each answered once durable: the engine's group commit, one write+fsync per create, go.etcd.io/bbolt's Batch (default batch size and delay, one fsynced transaction per batch), and SQLite (modernc.org/sqlite) in WAL mode with synchronous=FULL on one connection (SQLite admits one writer).
- **API lists**: the floor is net/http answering the daemon's own answer bytes (fetched from it just before), timed through the same api.Client, which decodes both; it runs once the daemon has exited, so it does not share the CPU with the daemon's sampler. The ` + "`api`" + ` suite holds 10,000 idle workspaces and times the whole list and its first page of 100.
- **A baseline of 0** (a throttle error against pv's) has no meaningful ratio: the difference figure − baseline is shown instead.
- **Stopping**: SIGINT or SIGTERM stops the harness after it has stopped every daemon and process it started; it then writes no report.
`

// cell escapes the pipes of a table cell ("yes|head"), which would end it.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
