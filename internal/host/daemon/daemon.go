// This file owns `shipote daemon`: the engine with its state file, served
// on the Unix socket until SIGTERM or SIGINT.

// Package daemon implements `shipote daemon`. It hosts an engine, so it
// lives apart from internal/cli, whose commands link none; cmd/shipote
// adds it to the command tree (cli.WithCommands).
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/api/server"
	"github.com/shipote/shipote/cluster"
	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/internal/memtrim"
	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/persistence"
)

// Options are the inputs of `daemon`.
type Options struct {
	IO             *cmdutil.IOStreams
	Socket         func() string
	StatePath      string // "" = $SHIPOTE_STATE, else persistence.DefaultPath()
	MetricsAddr    string
	SampleInterval time.Duration
	Grace          time.Duration
	LogLevel       string
	LogFormat      string // auto | json | console
	Limits         string // auto | cgroup2 | cgroup1 | rlimit | none
	CgroupParent   string
	LogDir         string // "" = logs/ beside the state file
	LogMaxBytes    int64  // 0 = 10 MiB
	LogMaxFiles    int    // 0 = 5
	LogRetention   time.Duration
	Orphans        string // auto | pid-namespace | watchdog | pdeathsig

	// engineOrphans is the engine's Config.Orphans, and guard what a
	// daemon run by its guard knows of it (see guard.go).
	engineOrphans string
	guard         *guarded
	KeepEnded     int           // ended commands (and pipeline runs) kept per workspace
	KeepEndedFor  time.Duration // and for how long
	Cluster       ClusterOptions

	clusterCfg *cluster.Config
}

// NewCmdDaemon returns `daemon`; runF replaces the run for tests.
func NewCmdDaemon(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{
		IO:             f.IO,
		Socket:         func() string { return f.Socket },
		SampleInterval: time.Second,
		Grace:          5 * time.Second,
		LogRetention:   24 * time.Hour,
		KeepEnded:      100,
		KeepEndedFor:   time.Hour,
	}
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the shipote daemon",
		Long: `Run the engine, restore the state file, and serve the API on the Unix socket
until SIGTERM or SIGINT: then the state is saved, every process is stopped
(SIGTERM, the grace period, SIGKILL) and the daemon exits 0. Every
command's output is written to log files beside the state file (logs/,
rotated by size) as well as kept in memory; SIGHUP reopens them, for an
external logrotate. With NOTIFY_SOCKET set, it tells systemd READY=1 once
it serves.

No process of a command outlives the daemon, even after kill -9 (see
--orphans): as root its commands live in a PID namespace whose init dies
with it; without root this process stays as a small guard and runs the
daemon proper as its child, in a user namespace of its own where the host
allows one, else under the guard's watch; killing either process ends every
command. ` + "`shipote version`" + ` says which guarantee holds.

Exit codes: 0 after SIGTERM/SIGINT, 1 on an error (state file locked by
another daemon, socket in use), 2 on usage errors and when the state file
was written by a newer shipote.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.LogMaxFiles < 0 {
				return cmdutil.FlagErrorf("--log-max-files must be >= 0")
			}
			if opts.SampleInterval <= 0 {
				return cmdutil.FlagErrorf("--sample-interval must be above 0")
			}
			if opts.KeepEnded < 1 {
				return cmdutil.FlagErrorf("--keep-ended must be >= 1")
			}
			if opts.KeepEndedFor <= 0 {
				return cmdutil.FlagErrorf("--keep-ended-for must be above 0")
			}
			if _, err := parseLevel(opts.LogLevel); err != nil {
				return cmdutil.FlagErrorf("invalid argument %q for \"--log-level\" flag: %v", opts.LogLevel, err)
			}
			if cfg, ok, err := opts.Cluster.config(); err != nil {
				return err
			} else if ok {
				opts.clusterCfg = &cfg
			}
			if runF != nil {
				return runF(opts)
			}
			g, err := takeGuardEnv()
			if err != nil {
				return err
			}
			if g != nil {
				opts.guard, opts.engineOrphans = g, g.engineOrphans()
				return Run(cmd.Context(), opts)
			}
			modes, engine, err := guardPlan(opts.Orphans, proc.PIDNamespaceSupport(), proc.UserNamespaceSupport())
			if err != nil {
				return guardFlagError(err)
			}
			if len(modes) > 0 {
				return runGuard(opts.IO.ErrOut, modes)
			}
			opts.engineOrphans = engine
			return Run(cmd.Context(), opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.StatePath, "state", "", "state file (default $SHIPOTE_STATE, else "+persistence.DefaultPath()+")")
	flags.StringVar(&opts.MetricsAddr, "metrics-addr", "", "serve Prometheus /metrics on this TCP address (like 127.0.0.1:9464)")
	flags.Var(cmdutil.DurationValue{P: &opts.SampleInterval}, "sample-interval", "stats sampling period")
	flags.Var(cmdutil.DurationValue{P: &opts.Grace}, "grace", "time between SIGTERM and SIGKILL when stopping processes")
	flags.StringVar(&opts.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	cmdutil.EnumVarP(cmd, &opts.LogFormat, "log-format", "", "auto", []string{"auto", "json", "console"},
		"log format: auto (console on a terminal, else json), json or console")
	cmdutil.EnumVarP(cmd, &opts.Limits, "limits", "", "auto", []string{"auto", "cgroup2", "cgroup1", "rlimit", "none"},
		"resource-limit backend: auto, cgroup2, cgroup1, rlimit or none")
	flags.StringVar(&opts.LogDir, "log-dir", "", "directory of the commands' log files (default: logs/ beside the state file)")
	flags.Var(cmdutil.SizeValue{P: &opts.LogMaxBytes}, "log-max-size", "rotate a command's log file at this size (default 10M)")
	flags.IntVar(&opts.LogMaxFiles, "log-max-files", 0, "rotated log files kept per command (default 5)")
	flags.Var(cmdutil.DurationValue{P: &opts.LogRetention}, "log-retention", "how long a removed workspace's logs are kept")
	cmdutil.EnumVarP(cmd, &opts.Orphans, "orphans", "", "auto", orphanChoices,
		"what keeps commands from outliving the daemon: auto, pid-namespace, watchdog or pdeathsig")
	flags.IntVar(&opts.KeepEnded, "keep-ended", opts.KeepEnded, "ended commands, and ended pipeline runs, remembered per workspace")
	flags.Var(cmdutil.DurationValue{P: &opts.KeepEndedFor}, "keep-ended-for", "how long an ended command or pipeline run is remembered")
	flags.StringVar(&opts.CgroupParent, "cgroup-parent", "", "cgroup subtree for workspaces (default shipote, under the daemon's cgroup); one per daemon")
	addClusterFlags(cmd, &opts.Cluster)
	return cmd
}

// statePath resolves --state, then $SHIPOTE_STATE, then the default.
func (o *Options) statePath() string {
	if o.StatePath != "" {
		return o.StatePath
	}
	if p := os.Getenv("SHIPOTE_STATE"); p != "" {
		return p
	}
	return persistence.DefaultPath()
}

// restoreTimeout bounds the restore of the state file at start.
const restoreTimeout = 5 * time.Minute

// daemonGCPercent is the daemon's GOGC unless the environment sets one.
const daemonGCPercent = 50

// Run runs the daemon until ctx ends (the CLI cancels it on SIGTERM and
// SIGINT), then stops it cleanly.
func Run(ctx context.Context, o *Options) error {
	log, err := newLogger(o.IO, o.LogLevel, o.LogFormat)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // stderr may not sync

	if _, set := os.LookupEnv("GOGC"); !set {
		// Half the heap headroom of Go's default (100): the daemon holds
		// many small, long-lived actors and takes bursts of requests
		// whose garbage would otherwise stay resident (RSS per idle
		// workspace); a GC cycle more often costs it little CPU.
		debug.SetGCPercent(daemonGCPercent)
	}
	// Heap freed by a burst of requests goes back to the kernel once the
	// burst is over (internal/memtrim), so an idle daemon's RSS is what
	// it holds, not its peak. Each API request ends the trimmer's idle
	// wait (server.Options.OnRequest).
	trimmer := &memtrim.Trimmer{}
	trimCtx, stopTrim := context.WithCancel(context.Background())
	trimmed := make(chan struct{})
	go func() { trimmer.Run(trimCtx); close(trimmed) }()
	defer func() { stopTrim(); <-trimmed }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	socket := o.Socket()
	state := o.statePath()
	log.Info("starting", zap.String("version", shipote.Version), zap.Int("pid", os.Getpid()),
		zap.String("socket", socket), zap.String("state", state))
	if g := o.guard; g != nil && g.mode == guardWatchdog {
		err := g.watchGuard(func() {
			log.Error("the daemon's guard process died: killing every process of the daemon and exiting",
				zap.Int("guard_pid", g.pid))
			if _, err := proc.KillTree(2*time.Second, false); err != nil {
				log.Error("killing the daemon's processes", zap.Error(err))
			}
			_ = log.Sync()
			os.Exit(1)
		})
		if err != nil {
			return err
		}
	}
	system := shipote.NewActorSystem(log)
	defer func() {
		if !system.IsStopped() {
			system.Shutdown()
		}
	}()
	// The restore of the state file gets five minutes, and ends early on
	// SIGTERM or SIGINT.
	rctx, cancelRestore := context.WithTimeout(ctx, restoreTimeout)
	defer cancelRestore()
	// A cluster member joins once the engine has restored (Start does it)
	// and leaves first thing in Stop.
	var membership *server.Membership
	srvOpts := server.Options{Logger: log, SocketPath: socket, OnRequest: trimmer.Kick}
	if o.clusterCfg != nil {
		if membership, err = server.NewMembership(*o.clusterCfg, srvOpts); err != nil {
			return cmdutil.FlagErrorf("%v", err)
		}
	}
	var clusterCfg shipote.ClusterMembership
	if membership != nil {
		clusterCfg = membership
	}
	eng, err := shipote.Start(rctx, system, shipote.Config{
		Cluster:        clusterCfg,
		Logger:         log,
		Grace:          o.Grace,
		SampleInterval: o.SampleInterval,
		Limits:         o.Limits,
		Orphans:        o.engineOrphans,
		CgroupParent:   o.CgroupParent,
		StatePath:      state,
		LogDir:         o.LogDir,
		LogMaxBytes:    o.LogMaxBytes,
		LogMaxFiles:    o.LogMaxFiles,
		LogRetention:   o.LogRetention,
		KeepEnded:      o.KeepEnded,
		KeepEndedFor:   o.KeepEndedFor,
	})
	switch {
	case errors.Is(err, persistence.ErrTooNew):
		log.Error("state file is too new; it was left untouched", zap.String("state", state), zap.Error(err))
		return &cmdutil.ExitError{Code: 2, Err: tooNew(state, err)}
	case err != nil:
		log.Error("cannot start the engine", zap.Error(err))
		return err
	}
	stopEngine := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), o.Grace+30*time.Second)
		defer cancel()
		if err := eng.Stop(sctx); err != nil {
			log.Error("stopping the engine", zap.Error(err))
			return fmt.Errorf("stop engine: %w", err)
		}
		return nil
	}
	reportRestore(log, eng.RestoreReport())

	ln, err := api.Listen(socket)
	if err != nil {
		log.Error("cannot listen", zap.String("socket", socket), zap.Error(err))
		return errors.Join(fmt.Errorf("listen on %s: %w", socket, err), stopEngine())
	}
	var srv *server.Server
	if membership != nil {
		srv = membership.Server() // routes across the cluster
	} else {
		srv = server.New(eng, srvOpts)
	}

	var metrics *metricsServer
	if o.MetricsAddr != "" {
		if metrics, err = startMetrics(o.MetricsAddr, eng, log); err != nil {
			ln.Close()
			return errors.Join(err, stopEngine())
		}
	}

	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	log.Info("ready", zap.String("socket", socket), zap.String("limits", eng.LimitsBackend()))
	if err := notify("READY=1\nSTATUS=serving on " + socket); err != nil {
		log.Warn("sd_notify READY=1", zap.Error(err))
	}

	var serveErr error
loop:
	for {
		select {
		case <-hup:
			if err := eng.ReopenLogs(); err != nil {
				log.Warn("reopening the commands' log files (SIGHUP)", zap.Error(err))
			} else {
				log.Info("reopened the commands' log files (SIGHUP)")
			}
		case <-ctx.Done():
			log.Info("stopping: saving state, then stopping every process")
			_ = notify("STOPPING=1")
			stopServing()
			if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("stopping the API server", zap.Error(err))
			}
			break loop
		case err := <-served:
			serveErr = err
			if serveErr == nil {
				serveErr = errors.New("the API server stopped")
			}
			log.Error("serving failed", zap.Error(serveErr))
			_ = notify("STOPPING=1")
			break loop
		}
	}
	var errs []error
	if serveErr != nil {
		errs = append(errs, fmt.Errorf("serve: %w", serveErr))
	}
	if metrics != nil {
		if err := metrics.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := stopEngine(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		log.Info("stopped")
	}
	return errors.Join(errs...)
}

// reportRestore logs what was restored; expired and skipped entries and a
// corrupt file are logged one by one, loudly.
func reportRestore(log *zap.Logger, r shipote.RestoreReport) {
	if r.CorruptMovedTo != "" || r.CorruptJournalMovedTo != "" {
		log.Error("STATE FILE WAS CORRUPT: moved aside, started empty",
			zap.String("state", r.Path), zap.String("moved_to", r.CorruptMovedTo),
			zap.String("journal_moved_to", r.CorruptJournalMovedTo))
	}
	for _, e := range r.Expired {
		log.Warn("NOT RESTORED: workspace expired while the daemon was down", zap.String("workspace", e))
	}
	for _, s := range r.Skipped {
		log.Warn("NOT RESTORED: invalid state entry skipped", zap.String("entry", s))
	}
	log.Info("restore report", zap.String("state", r.Path), zap.Int("workspaces", r.Workspaces),
		zap.Int("saved_pipelines", r.SavedPipelines), zap.Int("live_pipelines", r.LivePipelines),
		zap.Int("expired", len(r.Expired)), zap.Int("skipped", len(r.Skipped)))
}

// tooNewError is the one sentence `daemon` ends with on a state file of a
// newer shipote; it wraps the persistence error.
type tooNewError struct {
	msg string
	err error
}

func (e *tooNewError) Error() string { return e.msg }
func (e *tooNewError) Unwrap() error { return e.err }

// tooNew says that the state file at path was written by a newer shipote,
// naming its version when the file says it.
func tooNew(path string, err error) error {
	version := ""
	if data, rerr := os.ReadFile(path); rerr == nil {
		var v struct {
			Version int `json:"version"`
		}
		if json.Unmarshal(data, &v) == nil && v.Version > 0 {
			version = fmt.Sprintf(" (version %d; this one reads 1 to %d)", v.Version, persistence.CurrentVersion)
		}
	}
	return &tooNewError{err: err, msg: fmt.Sprintf(
		"state file %s was written by a newer shipote%s and was left untouched: upgrade shipote or start with another --state", path, version)}
}
