// shipote.go owns the shipote drivers: the daemon binary driven over its
// API client, and the engine embedded in the calling process. Both run the
// same workloads through the same calls.

package peers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/bench/internal/modules"
	"github.com/shipote/shipote/messages"
)

// shipoteAPI is what both the engine and the API client offer.
type shipoteAPI interface {
	CreateWorkspace(ctx context.Context, spec messages.WorkspaceSpec) (messages.WorkspaceInfo, error)
	Exec(ctx context.Context, ws string, cmd messages.CommandRef) (messages.CommandInfo, error)
	RemoveWorkspace(ctx context.Context, ref string, grace time.Duration) (messages.WorkspaceInfo, error)
	Command(ctx context.Context, ws, cmd string) (messages.CommandInfo, error)
	StopCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error)
	StartCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error)
	RestartCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error)
}

// shipoteWork runs the workloads through a shipoteAPI.
type shipoteWork struct {
	n               int
	ws, crWS, crCmd string
	crash           messages.CommandRef
}

// startInFlight is how many Execs startSleepers keeps in flight: pm2 and
// supervisord start their n programs from one file in one request, so the
// client sends them together too, and group commit shares the durable
// writes of the supervised commands between them.
const startInFlight = 16

// startSleepers creates a workspace and starts the sleepers, startInFlight
// Execs at a time; each answer comes once the process has started and the
// supervised command is on disk.
func (w *shipoteWork) startSleepers(ctx context.Context, c shipoteAPI) error {
	info, err := c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "sleepers"})
	if err != nil {
		return err
	}
	w.ws = info.ID
	ref := messages.CommandRef{
		Payload: messages.Payload{Native: &messages.NativePayload{Exec: SleeperArgv[0], Argv: SleeperArgv[1:]}},
		// Restarted on any exit, like pm2's autorestart and supervisord's
		// autorestart=true.
		Supervision: messages.Supervision{Restart: &messages.RestartPolicy{On: messages.RestartAlways}},
	}
	sem := make(chan struct{}, startInFlight)
	errs := make(chan error, w.n)
	var wg sync.WaitGroup
	for i := range w.n {
		r := ref
		r.Label = SleeperName(i)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := c.Exec(ctx, w.ws, r); err != nil {
				errs <- fmt.Errorf("exec %s: %w", r.Label, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs // nil when none failed
}

func (w *shipoteWork) stopSleepers(ctx context.Context, c shipoteAPI) error {
	if w.ws == "" {
		return nil
	}
	_, err := c.RemoveWorkspace(ctx, w.ws, 0)
	w.ws = ""
	return err
}

// prepareCrasher sets the probe to give up after restarts+1 restarts, so
// that stopCrasher removes a workspace with no spawn under way.
func (w *shipoteWork) prepareCrasher(file string, restarts int) {
	w.crash = messages.CommandRef{
		Label:   "crash",
		Payload: messages.Payload{Native: &messages.NativePayload{Exec: "/bin/sh", Argv: []string{"-c", CrashScript(file)}}},
		Supervision: messages.Supervision{Restart: &messages.RestartPolicy{
			On: messages.RestartAlways, BackoffMs: 1, MaxBackoffMs: 1, Max: int64(restarts) + 1,
		}},
	}
}

func (w *shipoteWork) startCrasher(ctx context.Context, c shipoteAPI) error {
	info, err := c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "crash"})
	if err != nil {
		return err
	}
	w.crWS = info.ID
	cmd, err := c.Exec(ctx, w.crWS, w.crash)
	w.crCmd = cmd.ID
	return err
}

// stopCrasher waits for the probe to give up, then removes its workspace.
// (Removing a workspace while the engine is forking into it can, with the
// cgroup v1 backend, signal the engine's own process: the forking thread is
// in the workspace's cgroup for that moment.)
func (w *shipoteWork) stopCrasher(ctx context.Context, c shipoteAPI) error {
	if w.crWS == "" {
		return nil
	}
	var errs []error
	if w.crCmd != "" {
		deadline := time.Now().Add(30 * time.Second)
		for {
			info, err := c.Command(ctx, w.crWS, w.crCmd)
			if err == nil && info.GaveUp {
				break
			}
			if time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("crash probe: not given up 30 s after its last restart (%v)", err))
				break
			}
			if err := SleepCtx(ctx, 10*time.Millisecond); err != nil {
				return err
			}
		}
	}
	_, err := c.RemoveWorkspace(ctx, w.crWS, 0)
	w.crWS, w.crCmd = "", ""
	return errors.Join(append(errs, err)...)
}

const shipoteBackoff = "shipote: restart always, backoff_ms=1 (its minimum; 0 means the 200 ms default)"

// BuildShipote returns the shipote binary: $SHIPOTE_BIN when set, else one
// built into dir from the main module (the caller's working directory must
// be inside the repository).
func BuildShipote(ctx context.Context, dir string) (string, error) {
	return shipoteBinary(ctx, "SHIPOTE_BIN", filepath.Join(dir, "shipote"))
}

// BuildShipoteNocluster returns the shipote binary built with the
// nocluster tag (no cluster transport linked): $SHIPOTE_BIN_NOCLUSTER when
// set, else one built into dir from the main module.
func BuildShipoteNocluster(ctx context.Context, dir string) (string, error) {
	return shipoteBinary(ctx, "SHIPOTE_BIN_NOCLUSTER", filepath.Join(dir, "shipote-nocluster"), "nocluster")
}

// shipoteBinary returns the binary named by the environment variable env,
// else builds ./cmd/shipote with tags into bin.
func shipoteBinary(ctx context.Context, env, bin string, tags ...string) (string, error) {
	if b := os.Getenv(env); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("%s: %w", env, err)
		}
		return filepath.Abs(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	root, _, err := modules.Dirs(ctx)
	if err != nil {
		return "", fmt.Errorf("build shipote %v: %w", tags, err)
	}
	if err := modules.Build(ctx, root, "./cmd/shipote", bin, tags...); err != nil {
		return "", err
	}
	return bin, nil
}

// ShipoteDaemon drives `shipote daemon` over its API socket, with its own
// state file and cgroup parent.
type ShipoteDaemon struct {
	// Args are more daemon flags (a cluster's, say); Parent, when set,
	// replaces CgroupParent (several daemons at once need one each).
	Args   []string
	Parent string

	bin, dir, version string
	client            *api.Client
	cmd               *exec.Cmd
	done              chan struct{}
	work              shipoteWork
}

// NewShipoteDaemon returns a driver for the daemon binary bin, keeping its
// socket, state and log under dir.
func NewShipoteDaemon(bin, dir string) (*ShipoteDaemon, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &ShipoteDaemon{bin: bin, dir: dir}, nil
}

// Name implements Manager.
func (d *ShipoteDaemon) Name() string { return "shipote daemon" }

// Version implements Manager.
func (d *ShipoteDaemon) Version() string { return d.version }

// PID implements Manager.
func (d *ShipoteDaemon) PID() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Launch implements Manager: the daemon with its default settings (limits
// backend auto, 1 s stats sampling), ready once /v1/version answers.
func (d *ShipoteDaemon) Launch(ctx context.Context) error {
	sock := filepath.Join(d.dir, "shipote.sock")
	logf, err := os.Create(filepath.Join(d.dir, "daemon.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	args := append([]string{"daemon", "--socket", sock,
		"--state", filepath.Join(d.dir, "state.json"),
		"--cgroup-parent", d.CgroupParent(),
		"--log-level", "warn", "--log-format", "json"}, d.Args...)
	d.cmd = exec.Command(d.bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		d.cmd = nil
		return err
	}
	d.done = make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	d.client = api.NewClient(sock)
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := d.client.Version(ctx)
		if err == nil {
			d.version = v.Version
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("shipote daemon exited at start: %s", logTail(logf.Name(), 0))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("shipote daemon: no answer on %s after 30 s: %w", sock, err)
		}
		if err := SleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// CgroupParent is the name of the daemon's cgroup parent, made under its
// own cgroup in each hierarchy.
func (d *ShipoteDaemon) CgroupParent() string {
	if d.Parent != "" {
		return d.Parent
	}
	return fmt.Sprintf("shipote-peers-%d", os.Getpid())
}

// Client returns the API client of the launched daemon (nil before Launch).
func (d *ShipoteDaemon) Client() *api.Client { return d.client }

// PrepareSleepers implements Manager.
func (d *ShipoteDaemon) PrepareSleepers(_ context.Context, n int) error {
	d.work.n = n
	return nil
}

// StartSleepers implements Manager.
func (d *ShipoteDaemon) StartSleepers(ctx context.Context) error {
	return d.work.startSleepers(ctx, d.client)
}

// StopSleepers implements Manager: the workspace is removed.
func (d *ShipoteDaemon) StopSleepers(ctx context.Context) error {
	return d.work.stopSleepers(ctx, d.client)
}

// PrepareCrasher implements Manager.
func (d *ShipoteDaemon) PrepareCrasher(_ context.Context, file string, restarts int) error {
	d.work.prepareCrasher(file, restarts)
	return nil
}

// StartCrasher implements Manager.
func (d *ShipoteDaemon) StartCrasher(ctx context.Context) error {
	return d.work.startCrasher(ctx, d.client)
}

// StopCrasher implements Manager.
func (d *ShipoteDaemon) StopCrasher(ctx context.Context) error {
	return d.work.stopCrasher(ctx, d.client)
}

// Backoff implements Manager.
func (d *ShipoteDaemon) Backoff() string { return shipoteBackoff }

// Close implements Manager: SIGTERM (the daemon stops its processes and
// exits), SIGKILL after 30 s.
func (d *ShipoteDaemon) Close() error { return d.CloseWithin(30 * time.Second) }

// CloseWithin is Close waiting up to wait for the daemon to exit after
// SIGTERM before it is killed (an error).
func (d *ShipoteDaemon) CloseWithin(wait time.Duration) error {
	if d.cmd == nil {
		return nil
	}
	if d.client != nil {
		d.client.CloseIdleConnections()
	}
	var err error
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		if d.cmd.ProcessState != nil && !d.cmd.ProcessState.Success() {
			err = fmt.Errorf("shipote daemon: %v: %s", d.cmd.ProcessState, logTail(filepath.Join(d.dir, "daemon.log"), 0))
		}
	case <-time.After(wait):
		_ = d.cmd.Process.Kill()
		<-d.done
		err = fmt.Errorf("shipote daemon: still running %v after SIGTERM (killed)", wait)
	}
	d.cmd = nil
	return err
}

// ShipoteEngine drives a shipote engine embedded in this process (the
// embedding API); its PID is this process.
type ShipoteEngine struct {
	eng  *shipote.Engine
	work shipoteWork
}

// NewShipoteEngine returns a driver for an embedded engine.
func NewShipoteEngine() *ShipoteEngine { return &ShipoteEngine{} }

// Name implements Manager.
func (e *ShipoteEngine) Name() string { return "shipote embedded" }

// Version implements Manager.
func (e *ShipoteEngine) Version() string { return shipote.Version }

// PID implements Manager.
func (e *ShipoteEngine) PID() int { return os.Getpid() }

// Launch implements Manager: an in-memory engine with the default config.
func (e *ShipoteEngine) Launch(ctx context.Context) error {
	eng, err := shipote.Start(ctx, shipote.NewActorSystem(nil), shipote.Config{})
	if err != nil {
		return err
	}
	e.eng = eng
	return nil
}

// PrepareSleepers implements Manager.
func (e *ShipoteEngine) PrepareSleepers(_ context.Context, n int) error {
	e.work.n = n
	return nil
}

// StartSleepers implements Manager.
func (e *ShipoteEngine) StartSleepers(ctx context.Context) error {
	return e.work.startSleepers(ctx, e.eng)
}

// StopSleepers implements Manager.
func (e *ShipoteEngine) StopSleepers(ctx context.Context) error {
	return e.work.stopSleepers(ctx, e.eng)
}

// PrepareCrasher implements Manager.
func (e *ShipoteEngine) PrepareCrasher(_ context.Context, file string, restarts int) error {
	e.work.prepareCrasher(file, restarts)
	return nil
}

// StartCrasher implements Manager.
func (e *ShipoteEngine) StartCrasher(ctx context.Context) error {
	return e.work.startCrasher(ctx, e.eng)
}

// StopCrasher implements Manager.
func (e *ShipoteEngine) StopCrasher(ctx context.Context) error {
	return e.work.stopCrasher(ctx, e.eng)
}

// Backoff implements Manager.
func (e *ShipoteEngine) Backoff() string { return shipoteBackoff }

// Close implements Manager: Engine.Stop stops every process.
func (e *ShipoteEngine) Close() error {
	if e.eng == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := e.eng.Stop(ctx)
	e.eng = nil
	return err
}
