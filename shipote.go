// Package shipote is a process-workspace runtime: it owns workspaces of
// Linux processes, runs fan-out pipelines between them with rate limits,
// supervises them, samples their stats from the kernel and keeps declared
// state across restarts.
//
// Engine is the embedding API: Start it inside a protoactor-go
// ActorSystem, then create workspaces, run commands and pipelines, read
// logs, taps and stats, and Stop it. The shipote daemon is a thin layer
// over this API.
package shipote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/shipote/shipote/actors"
	"github.com/shipote/shipote/internal/askproc"
	"github.com/shipote/shipote/internal/eventhub"
	"github.com/shipote/shipote/internal/limits"
	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
	"github.com/shipote/shipote/persistence"
)

// Config configures an Engine. The zero value is an in-memory engine with
// default settings.
type Config struct {
	// Logger receives the engine's logs; nil = no logs.
	Logger *zap.Logger
	// Grace is the time between SIGTERM and SIGKILL when stopping
	// processes; 0 = 5 s.
	Grace time.Duration
	// SampleInterval is the stats sampling period; 0 = 1 s.
	SampleInterval time.Duration
	// Limits picks the resource-limit backend: "" or "auto" (cgroup v2,
	// then cgroup v1, then rlimits), "cgroup2", "cgroup1", "rlimit", or
	// "none" (no kernel limits, process groups only).
	Limits string
	// CgroupParent is the cgroup subtree for workspaces, nested under the
	// engine's own cgroup unless absolute. At start every group left under
	// it is killed and removed, so each engine needs its own: "" means
	// "shipote/state-<hash of the state path>" for a persistent engine (its
	// next start cleans up after a crash) and "shipote/mem-<pid>-<n>" for
	// an in-memory one.
	CgroupParent string
	// Orphans picks what keeps the engine's processes from outliving it:
	// "" or "auto" (a PID namespace where this process may create one,
	// else PDEATHSIG only), "pid-namespace" (refuse to start without one),
	// "watchdog" (this process runs under a parent that kills its process
	// tree when it dies, as `shipote daemon` arranges: the engine becomes
	// a child subreaper so that the tree stays whole), or "pdeathsig"
	// (direct children only). Engine.Orphans says which holds.
	Orphans string
	// LogRingBytes bounds each command's in-memory log; 0 = 1 MiB.
	LogRingBytes int
	// StatePath is the state file; "" = an in-memory engine that persists
	// nothing. With a path, Start takes the file's lock, restores what it
	// declares, and every mutation of declared state is answered only once
	// a snapshot containing it is on disk.
	StatePath string
	// SnapshotInterval is how often stats-only changes are saved; 0 = 60 s.
	SnapshotInterval time.Duration
	// SnapshotTimeout is how long a snapshot waits for an actor's answer
	// before keeping its previous entry; 0 = 2 s.
	SnapshotTimeout time.Duration
	// JournalMaxBytes and JournalMaxRecords are the journal's size and
	// record count past which the snapshot is rewritten in the background;
	// 0 = 64 MiB and 250,000.
	JournalMaxBytes   int64
	JournalMaxRecords int
	// LogDir holds every command's log files
	// (<LogDir>/<workspace-id>/<label>.log, rotated by size). "" means
	// "logs" beside the state file for a persistent engine, and no files
	// (output in memory only) for an in-memory one.
	LogDir string
	// LogMaxBytes and LogMaxFiles are the rotation defaults (10 MiB, 5
	// files); a workspace's spec may set its own.
	LogMaxBytes int64
	LogMaxFiles int
	// LogRetention is how long a removed workspace's logs are kept; 0 =
	// 24 h.
	LogRetention time.Duration
	// KeepEnded is how many ended commands, and how many ended pipeline
	// runs, a workspace remembers (the oldest are forgotten first); 0 =
	// 100. KeepEndedFor is how long it remembers each; 0 = 1 h. A
	// forgotten command's in-memory log is freed; its log file stays.
	// Supervised commands that have not ended are never forgotten.
	KeepEnded    int
	KeepEndedFor time.Duration
	// Cluster, when set, joins the engine to a cluster once it has
	// restored its state, and leaves it first thing in Stop. The API
	// server's Membership (api/server.NewMembership, over a cluster.Config)
	// is the one to use: it serves the other members' requests with the
	// engine's API and routes this member's across the cluster.
	Cluster ClusterMembership

	// limitsBackend, when set (by tests), is used in place of the backend
	// Limits picks.
	limitsBackend limits.Backend
}

// ClusterMembership is how an engine takes part in a cluster: Join is
// called once by Start, after the restore (an error fails the Start);
// Leave is called once by Stop, before anything stops, and by a Start
// that fails after Join.
type ClusterMembership interface {
	Join(e *Engine) error
	Leave()
}

// Engine runs workspaces inside an actor system.
type Engine struct {
	cfg     Config
	system  *actor.ActorSystem
	rt      *actors.Runtime
	pid     *actor.PID
	log     *zap.Logger
	deadSub *eventStreamSub
	backend string
	// stopping is closed when Stop begins: from then on every call
	// returns ErrStopped at once. stopDone is closed when Stop has
	// finished, with its outcome in stopErr.
	stopping chan struct{}
	stopOnce sync.Once
	stopDone chan struct{}
	stopErr  error
	persist  *persistState
	sweeper  chan struct{} // closed to stop the log sweeper
	applyMu  sync.Mutex    // one Apply or Scale at a time: each plans from what the last left
	joined   atomic.Bool   // Config.Cluster joined: Stop leaves it
	txnSeq   uint64        // the last transaction's ID; guarded by applyMu
}

// NewActorSystem returns an actor system whose own logs go to log (nil
// discards them), so that a program has one log stream.
func NewActorSystem(log *zap.Logger) *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		if log == nil {
			return slog.New(slog.DiscardHandler)
		}
		return slog.New(zapslog.NewHandler(log.Named("actor").Core()))
	}))
}

// Start starts an engine in system. ctx bounds the restore of a state
// file (the workspaces, pipelines and commands it declares): if it ends
// before the restore is done, Start stops what it restored, leaves the
// file untouched and returns ctx's error. Cancelling ctx after Start
// returned has no effect.
func Start(ctx context.Context, system *actor.ActorSystem, cfg Config) (*Engine, error) {
	if ctx == nil {
		return nil, errors.New("shipote: Start needs a context")
	}
	if system == nil {
		return nil, errors.New("shipote: Start needs an actor system")
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Second
	}
	if cfg.SampleInterval <= 0 {
		cfg.SampleInterval = time.Second
	}
	var (
		store *persistence.Store
		state *persistence.State
		rep   *RestoreReport
	)
	if cfg.StatePath != "" {
		var err error
		if store, state, rep, err = openState(cfg.StatePath, log); err != nil {
			return nil, fmt.Errorf("shipote: state file: %w", err)
		}
	}
	if cfg.LogDir == "" && cfg.StatePath != "" {
		cfg.LogDir = filepath.Join(filepath.Dir(cfg.StatePath), "logs")
	}
	if cfg.LogRetention <= 0 {
		cfg.LogRetention = 24 * time.Hour
	}
	rt := &actors.Runtime{
		System:       system,
		Asks:         askproc.New(system),
		Events:       eventhub.New(1000),
		Log:          log,
		Grace:        cfg.Grace,
		LogRingBytes: cfg.LogRingBytes,
		LogDir:       cfg.LogDir,
		LogMaxBytes:  cfg.LogMaxBytes,
		LogMaxFiles:  cfg.LogMaxFiles,
		KeepEnded:    cfg.KeepEnded,
		KeepEndedFor: cfg.KeepEndedFor,
	}
	backend := "none"
	if b := cfg.limitsBackend; b != nil {
		rt.Limits, backend = b, b.Name()
	} else if cfg.Limits != "none" {
		b, reason, err := limits.Detect(limits.Options{Force: forceName(cfg.Limits), Parent: cgroupParent(cfg)})
		if err != nil {
			if store != nil {
				store.Close()
			}
			return nil, fmt.Errorf("shipote: limits backend: %w", err)
		}
		rt.Limits = b
		backend = b.Name()
		log.Info("limits backend", zap.String("backend", backend), zap.String("why", reason))
		if ids, err := b.Sweep(context.Background()); err != nil {
			log.Warn("sweeping groups left by an earlier run", zap.Error(err))
		} else if len(ids) > 0 {
			log.Warn("killed processes left by an earlier run", zap.Strings("workspaces", ids))
		}
		sweepDeadDaemons(log, b, store)
	}
	sopts, err := spawnerOptions(cfg.Orphans)
	if err != nil {
		if store != nil {
			store.Close()
		}
		return nil, err
	}
	rt.Spawner = proc.NewSpawnerOptions(sopts)
	log.Info("orphans", zap.String("guarantee", rt.Spawner.Orphans()))
	if pids, err := proc.SweepStrayInits(); err != nil {
		log.Warn("sweeping pid namespaces left by an earlier run", zap.Error(err))
	} else if len(pids) > 0 {
		log.Warn("killed pid namespaces left by an earlier run", zap.Ints("inits", pids))
	}
	e := &Engine{cfg: cfg, system: system, rt: rt, log: log, backend: backend,
		stopping: make(chan struct{}), stopDone: make(chan struct{}), sweeper: make(chan struct{})}
	if cfg.LogDir != "" {
		rt.Go(e.sweepLogs)
	}
	e.deadSub = subscribeDeadLetters(system, rt)
	ecfg := actors.EngineConfig{Runtime: rt}
	// The engine's top-level actors are resumed after a panic (see
	// actors.ResumeOnPanic): a restart would lose the registry or the
	// persistence state, and with them declared state.
	guard := actor.WithGuardian(actors.ResumeOnPanic(log, "engine"))
	spid, err := system.Root.SpawnNamed(actors.NewSamplerProps(actors.SamplerConfig{Runtime: rt, Interval: cfg.SampleInterval}).Configure(guard),
		"shipote-sampler-"+messages.NewID())
	if err != nil {
		e.deadSub.cancel()
		rt.Spawner.Close()
		if store != nil {
			store.Close()
		}
		return nil, fmt.Errorf("shipote: spawn sampler actor: %w", err)
	}
	rt.Sampler = spid
	if store != nil {
		ps := &persistState{store: store, report: *rep}
		e.persist = ps
		rt.Dirty = func() {
			if ps.enabled.Load() {
				system.Root.Send(ps.pid, &persistence.MarkDirty{})
			}
		}
		rt.StatsChanged = func() {
			if ps.enabled.Load() {
				system.Root.Send(ps.pid, &persistence.StatsChanged{})
			}
		}
		ecfg.Commit = func(ch *protocol.Change, reply actors.Reply[struct{}]) {
			if ps.enabled.Load() {
				system.Root.Send(ps.pid, &persistence.Commit{Change: ch, Reply: reply})
			} else {
				reply.OK(struct{}{})
			}
		}
	}
	pid, err := system.Root.SpawnNamed(actors.NewEngineProps(ecfg).Configure(guard), "shipote-"+messages.NewID())
	if err != nil {
		e.deadSub.cancel()
		rt.Spawner.Close()
		if store != nil {
			store.Close()
		}
		return nil, fmt.Errorf("shipote: spawn engine actor: %w", err)
	}
	e.pid = pid
	if store != nil {
		e.restore(ctx, state, &e.persist.report)
		if err := ctx.Err(); err != nil {
			// Nothing is written: persistence is not hooked up yet.
			_ = e.Stop(context.Background())
			return nil, fmt.Errorf("shipote: restore state: %w", err)
		}
		if r := e.persist.report; r.Kept > 0 || r.Original || len(r.Skipped) > 0 {
			// A restore that did not take everything in, or a file of the
			// original daemon: keep the file as read before overwriting it.
			store.KeepCopyBeforeWrite()
			e.persist.snapshotFirst = true
		}
		ps := e.persist
		ppid, err := system.Root.SpawnNamed(persistence.NewActorProps(persistence.ActorConfig{
			System:        system,
			Store:         store,
			Engine:        pid,
			Timeout:       cfg.SnapshotTimeout,
			Interval:      cfg.SnapshotInterval,
			CheckInterval: cfg.SampleInterval,
			Log:           log,
			Initial:       state,
			Go:            rt.Go,
			Stats:         ps.record,
			KeptChanged:   func(n int) { ps.kept.Store(int64(n)) },
			Degraded: func(err error) {
				ev := messages.Event{Kind: messages.EventStateWritable, Message: "the state file is writable again"}
				if err != nil {
					ps.degraded.Store(&err)
					ev = messages.Event{Kind: messages.EventStateDegraded, Message: "state not writable: " + err.Error()}
				} else {
					ps.degraded.Store(nil)
				}
				ev.Time = time.Now()
				rt.Events.Publish(ev)
			},
			JournalMaxBytes:   cfg.JournalMaxBytes,
			JournalMaxRecords: cfg.JournalMaxRecords,
			SnapshotFirst:     ps.snapshotFirst,
		}).Configure(guard), "shipote-persistence-"+messages.NewID())
		if err != nil {
			_ = e.Stop(context.Background())
			return nil, fmt.Errorf("shipote: spawn persistence actor: %w", err)
		}
		e.persist.pid = ppid
		e.persist.enabled.Store(true)
		r := e.persist.report
		log.Info("state restored", zap.String("path", cfg.StatePath), zap.Int("workspaces", r.Workspaces),
			zap.Int("saved_pipelines", r.SavedPipelines), zap.Int("live_pipelines", r.LivePipelines), zap.Int("live_commands", r.LiveCommands),
			zap.Strings("expired", r.Expired), zap.Int("kept_not_restored", r.Kept), zap.Bool("original_format", r.Original))
		if r.Kept > 0 {
			log.Warn("entries of the state file are kept but not in effect; see 'shipote state ls'",
				zap.Int("count", r.Kept), zap.Strings("entries", r.Skipped))
			rt.Events.Publish(messages.Event{Time: time.Now(), Kind: messages.EventUnrestored,
				Message: fmt.Sprintf("%d entries of the state file are kept but not restored (shipote state ls)", r.Kept)})
		}
	}
	if cfg.Cluster != nil {
		if err := cfg.Cluster.Join(e); err != nil {
			_ = e.Stop(context.Background())
			return nil, fmt.Errorf("shipote: join the cluster: %w", err)
		}
		e.joined.Store(true)
	}
	return e, nil
}

var memEngines atomic.Int64

// cgroupParent picks the engine's cgroup subtree (see Config.CgroupParent).
func cgroupParent(cfg Config) string {
	if cfg.CgroupParent != "" {
		return cfg.CgroupParent
	}
	if cfg.StatePath != "" {
		abs, err := filepath.Abs(cfg.StatePath)
		if err != nil {
			abs = cfg.StatePath
		}
		sum := sha256.Sum256([]byte(abs))
		return "shipote/state-" + hex.EncodeToString(sum[:6])
	}
	return fmt.Sprintf("shipote/mem-%d-%d", os.Getpid(), memEngines.Add(1))
}

func forceName(s string) string {
	if s == "auto" {
		return ""
	}
	return s
}

// LimitsBackend names the resource-limit backend in use.
func (e *Engine) LimitsBackend() string { return e.backend }

// sweepDeadDaemons marks the engine's cgroup subtree with its owner (the
// state file's lock, or this process for an in-memory engine), then kills
// and removes the subtrees beside it whose owners are gone: daemons on
// other state files that died, and in-memory engines of ended processes.
func sweepDeadDaemons(log *zap.Logger, b limits.Backend, store *persistence.Store) {
	owner := limits.Owner{}
	if store != nil {
		owner.LockPath = store.LockPath()
	} else if o, err := limits.SelfOwner(); err == nil {
		owner = o
	} else {
		log.Warn("marking the cgroup subtree's owner", zap.Error(err))
		return
	}
	if err := limits.MarkOwner(b, owner); err != nil {
		log.Warn("marking the cgroup subtree's owner: other daemons will not sweep it after a crash", zap.Error(err))
	}
	dirs, err := limits.SweepDead(context.Background(), b)
	if err != nil {
		log.Warn("sweeping the cgroup subtrees of dead daemons", zap.Error(err))
	}
	if len(dirs) > 0 {
		log.Warn("removed the cgroup subtrees of dead daemons", zap.Strings("subtrees", dirs))
	}
}

// spawnerOptions maps Config.Orphans to the Spawner's options.
func spawnerOptions(orphans string) (proc.Options, error) {
	switch orphans {
	case "", "auto":
		return proc.Options{}, nil
	case "pid-namespace":
		if err := proc.PIDNamespaceSupport(); err != nil {
			return proc.Options{}, fmt.Errorf("shipote: orphans pid-namespace: %w", err)
		}
		return proc.Options{}, nil
	case "watchdog":
		return proc.Options{NoPIDNamespace: true, Watchdog: true}, nil
	case "pdeathsig":
		return proc.Options{NoPIDNamespace: true}, nil
	default:
		return proc.Options{}, fmt.Errorf("shipote: orphans %q: want auto, pid-namespace, watchdog or pdeathsig", orphans)
	}
}

// Orphans says what keeps the engine's processes from outliving it:
// proc.OrphansPIDNamespace, or proc.OrphansPdeathsig and why.
func (e *Engine) Orphans() string { return e.rt.Spawner.Orphans() }

// PID is the engine actor's PID, for programs that send it messages of
// package actors directly.
func (e *Engine) PID() *actor.PID { return e.pid }

// live returns ErrStopped once Stop has begun.
func (e *Engine) live() error {
	select {
	case <-e.stopping:
		return errStopped
	default:
		return nil
	}
}

// ActorSystem is the actor system the engine runs in.
func (e *Engine) ActorSystem() *actor.ActorSystem { return e.system }

// Stop stops every process (SIGTERM, grace, SIGKILL), removes the limits
// groups and stops the engine's actors. Declared state is not removed: a
// persistent engine has saved it before. Once Stop has begun, every other
// call returns ErrStopped at once. Stop may be called from many goroutines:
// the first does the work, the others wait for it (or for their ctx) and
// return its outcome. If ctx ends early, the stop goes on without waiting
// for the processes' grace.
func (e *Engine) Stop(ctx context.Context) error {
	first := false
	e.stopOnce.Do(func() {
		first = true
		close(e.stopping)
	})
	if !first {
		select {
		case <-e.stopDone:
			return e.stopErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if e.joined.Load() {
		// The others stop sending requests before the engine stops.
		e.cfg.Cluster.Leave()
	}
	e.stopErr = e.stop(ctx)
	close(e.stopDone)
	return e.stopErr
}

// stop is the work of the first Stop.
func (e *Engine) stop(ctx context.Context) error {
	var errs []error
	began := time.Now()
	var saved, workspaces time.Duration
	defer func() {
		e.log.Info("engine stopped", zap.Duration("took", time.Since(began)),
			zap.Duration("final_snapshot", saved), zap.Duration("workspaces", workspaces))
	}()
	// The final snapshot is gathered first, while every workspace still
	// answers; its encoding and write then overlap with the workspaces'
	// shutdown (cgroup removal is the kernel's work, the write is ours),
	// and it is waited for before the persistence actor stops. Nothing the
	// shutdown does reaches the state file: persistence is off by then.
	var final askproc.Call[bool]
	finalAsked := false
	if e.persist != nil && e.persist.enabled.Load() {
		var err error
		final, finalAsked, err = e.gatherFinal(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("final snapshot: %w", err))
		}
		e.persist.enabled.Store(false)
	}
	saved = time.Since(began)
	begin := newCall[[]*actor.PID](e)
	e.system.Root.RequestWithCustomSender(e.pid, &actors.BeginShutdown{Reply: begin.Reply}, begin.Sender())
	pids, err := begin.Wait(ctx)
	if err != nil {
		// Go on: stopping the engine actor stops its workspaces too.
		errs = append(errs, err)
	}
	replies := make([]askproc.Call[messages.WorkspaceInfo], len(pids))
	for i, pid := range pids {
		replies[i] = newCall[messages.WorkspaceInfo](e)
		e.system.Root.RequestWithCustomSender(pid, actors.ShutdownWorkspace(e.cfg.Grace, replies[i].Reply), replies[i].Sender())
	}
	for _, r := range replies {
		if _, err := r.Wait(ctx); err != nil && !errors.Is(err, messages.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	workspaces = time.Since(began) - saved
	if finalAsked {
		if _, err := final.Wait(ctx); err != nil {
			errs = append(errs, fmt.Errorf("final snapshot: %w", err))
		}
		saved = time.Since(began) - workspaces
	}
	if err := e.system.Root.PoisonFuture(e.pid).Wait(); err != nil {
		errs = append(errs, fmt.Errorf("stop engine actor: %w", err))
	}
	if err := e.system.Root.PoisonFuture(e.rt.Sampler).Wait(); err != nil {
		errs = append(errs, fmt.Errorf("stop sampler actor: %w", err))
	}
	if e.persist != nil && e.persist.pid != nil {
		if err := e.system.Root.PoisonFuture(e.persist.pid).Wait(); err != nil {
			errs = append(errs, fmt.Errorf("stop persistence actor: %w", err))
		}
	}
	close(e.sweeper)
	e.rt.Spawner.Close()
	// Every workspace has stopped and closed its log files, and released
	// the ones on their way to it; any file still open is closed here, a
	// last guard.
	e.rt.CloseLogsLeft()
	// The runtime's goroutines first: a group created or killed there
	// must be gone before the parent can be removed.
	if !e.rt.WaitGoroutines(10 * time.Second) {
		errs = append(errs, errors.New("shipote: some process goroutines did not end"))
	}
	if e.rt.Limits != nil {
		if err := limits.RemoveParent(e.rt.Limits); err != nil {
			e.log.Warn("removing the engine's cgroup parent", zap.Error(err))
		}
	}
	e.rt.Events.Close()
	e.deadSub.cancel()
	if e.persist != nil {
		if err := e.persist.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("release state lock: %w", err))
		}
	}
	return errors.Join(errs...)
}

// gatherFinal asks for the snapshot Stop begins with and returns once it
// is gathered (every workspace has answered); the returned call ends when
// it is durable. asked is false when the request could not be made.
func (e *Engine) gatherFinal(ctx context.Context) (final askproc.Call[bool], asked bool, err error) {
	final = newCall[bool](e)
	gathered := newCall[struct{}](e)
	msg := &persistence.SaveNow{Reply: final.Reply, Gathered: gathered.Reply}
	e.system.Root.RequestWithCustomSender(e.persist.pid, msg, final.Sender())
	// Not wait: Stop has begun, and these answers are the ones it waits for.
	if _, err := gathered.Wait(ctx); err != nil {
		return final, true, err
	}
	return final, true, nil
}

// Version is shipote's version, set at build time with
// -ldflags "-X github.com/shipote/shipote.Version=...".
var Version = "0.1.0-dev"
