// pm2.go owns the pm2 driver: a private PM2_HOME, ecosystem files for the
// sleepers and the crash probe, and the God daemon's pid.

package peers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PM2 drives a pm2 God daemon with its own PM2_HOME under a directory.
type PM2 struct {
	bin, version string
	dir, home    string
	env          []string
	pid          int
	kids         tracked
}

// FindPM2 returns the pm2 CLI and its version: the one setup.sh installed
// under PeersDir, else pm2 on PATH. The error wraps ErrNotInstalled.
func FindPM2() (bin, version string, err error) {
	if _, err := exec.LookPath("node"); err != nil {
		return "", "", fmt.Errorf("%w: node not on PATH (run bench/peers/setup.sh)", ErrNotInstalled)
	}
	bin = filepath.Join(PeersDir(), "pm2", "node_modules", ".bin", "pm2")
	if _, err := os.Stat(bin); err != nil {
		p, lerr := exec.LookPath("pm2")
		if lerr != nil {
			return "", "", fmt.Errorf("%w: no %s and no pm2 on PATH (run bench/peers/setup.sh)", ErrNotInstalled, bin)
		}
		bin = p
	}
	// The CLI is <pkg>/bin/pm2, possibly behind symlinks.
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrNotInstalled, err)
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(real), "..", "package.json"))
	if err != nil {
		return "", "", fmt.Errorf("%w: pm2 version: %w", ErrNotInstalled, err)
	}
	var pkg struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil || pkg.Name != "pm2" || pkg.Version == "" {
		return "", "", fmt.Errorf("%w: %s is not pm2's package.json", ErrNotInstalled, real)
	}
	return bin, pkg.Version, nil
}

// NewPM2 returns a driver keeping its PM2_HOME and files under dir.
func NewPM2(dir string) (*PM2, error) {
	bin, version, err := FindPM2()
	if err != nil {
		return nil, err
	}
	home := filepath.Join(dir, "pm2home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	return &PM2{
		bin: bin, version: version, dir: dir, home: home,
		env:  append(os.Environ(), "PM2_HOME="+home),
		kids: tracked{},
	}, nil
}

// Name implements Manager.
func (p *PM2) Name() string { return "pm2" }

// Version implements Manager.
func (p *PM2) Version() string { return p.version }

// PID implements Manager: the God daemon.
func (p *PM2) PID() int { return p.pid }

func (p *PM2) cli(ctx context.Context, args ...string) error {
	return run(ctx, p.env, filepath.Join(p.dir, "pm2-cli.log"), p.bin, args...)
}

// Launch implements Manager: `pm2 ping` starts the daemon.
func (p *PM2) Launch(ctx context.Context) error {
	if err := p.cli(ctx, "ping"); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(p.home, "pm2.pid"))
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && Alive(pid) {
				p.pid = pid
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pm2: no live daemon pid in %s/pm2.pid", p.home)
		}
		if err := SleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

type pm2App struct {
	Name         string   `json:"name"`
	Script       string   `json:"script"`
	Args         []string `json:"args"`
	Interpreter  string   `json:"interpreter"`
	ExecMode     string   `json:"exec_mode"`
	Autorestart  bool     `json:"autorestart"`
	RestartDelay *int     `json:"restart_delay,omitempty"`
	MaxRestarts  int      `json:"max_restarts,omitempty"`
}

func writeEcosystem(path string, apps []pm2App) error {
	b, err := json.MarshalIndent(map[string]any{"apps": apps}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// PrepareSleepers implements Manager: an ecosystem file of n apps.
func (p *PM2) PrepareSleepers(_ context.Context, n int) error {
	apps := make([]pm2App, n)
	for i := range apps {
		apps[i] = pm2App{
			Name: fmt.Sprintf("s%03d", i), Script: SleeperArgv[0], Args: SleeperArgv[1:],
			Interpreter: "none", ExecMode: "fork", Autorestart: true,
		}
	}
	return writeEcosystem(filepath.Join(p.dir, "sleepers.json"), apps)
}

// StartSleepers implements Manager: `pm2 start sleepers.json`.
func (p *PM2) StartSleepers(ctx context.Context) error {
	err := p.cli(ctx, "start", filepath.Join(p.dir, "sleepers.json"))
	p.kids.note(p.pid)
	return err
}

// StopSleepers implements Manager: `pm2 delete all`.
func (p *PM2) StopSleepers(ctx context.Context) error {
	p.kids.note(p.pid)
	return p.cli(ctx, "delete", "all")
}

// PrepareCrasher implements Manager: restart_delay 0 (pm2's default and
// minimum) and max_restarts raised so that pm2 does not mark the app
// errored after 16 unstable restarts.
func (p *PM2) PrepareCrasher(_ context.Context, file string, _ int) error {
	zero := 0
	return writeEcosystem(filepath.Join(p.dir, "crash.json"), []pm2App{{
		Name: "crash", Script: "/bin/sh", Args: []string{"-c", CrashScript(file)},
		Interpreter: "none", ExecMode: "fork", Autorestart: true,
		RestartDelay: &zero, MaxRestarts: 1000000,
	}})
}

// StartCrasher implements Manager.
func (p *PM2) StartCrasher(ctx context.Context) error {
	return p.cli(ctx, "start", filepath.Join(p.dir, "crash.json"))
}

// StopCrasher implements Manager.
func (p *PM2) StopCrasher(ctx context.Context) error { return p.cli(ctx, "delete", "all") }

// Backoff implements Manager.
func (p *PM2) Backoff() string {
	return "pm2: restart_delay 0 (default, no minimum), max_restarts raised (16 unstable restarts within min_uptime 1 s mark an app errored)"
}

// Close implements Manager: `pm2 kill`, then SIGKILL for the daemon and
// anything it left behind.
func (p *PM2) Close() error {
	var err error
	if p.pid == 0 {
		// Launch may have failed after the CLI forked a daemon.
		if b, rerr := os.ReadFile(filepath.Join(p.home, "pm2.pid")); rerr == nil {
			p.pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	if p.pid != 0 {
		p.kids.note(p.pid)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err = p.cli(ctx, "kill")
		cancel()
		if !waitGone(p.pid, 10*time.Second) {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
			waitGone(p.pid, 5*time.Second)
		}
	}
	if n := p.kids.kill(); n > 0 && err == nil {
		err = fmt.Errorf("pm2: %d processes outlived the daemon (killed)", n)
	}
	return err
}

// SleepCtx waits d, or until ctx ends (its error).
func SleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
