// supervisord.go owns the supervisord driver: a private config with a unix
// socket in its own directory, one include file per program, and the
// daemon run in the foreground as our child.

package peers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Supervisord drives a private supervisord (never the system service).
type Supervisord struct {
	bin, ctl, version string
	dir, conf         string
	cmd               *exec.Cmd
	done              chan struct{} // closed once cmd has been waited for
	kids              tracked
}

// FindSupervisord returns supervisord, supervisorctl and the version. The
// error wraps ErrNotInstalled.
func FindSupervisord(ctx context.Context) (bin, ctl, version string, err error) {
	bin, err = exec.LookPath("supervisord")
	if err != nil {
		return "", "", "", fmt.Errorf("%w: no supervisord on PATH (run bench/peers/setup.sh)", ErrNotInstalled)
	}
	ctl, err = exec.LookPath("supervisorctl")
	if err != nil {
		return "", "", "", fmt.Errorf("%w: no supervisorctl on PATH (run bench/peers/setup.sh)", ErrNotInstalled)
	}
	version, err = output(ctx, bin, "--version")
	if err != nil {
		return "", "", "", fmt.Errorf("%w: %w", ErrNotInstalled, err)
	}
	return bin, ctl, version, nil
}

// NewSupervisord returns a driver keeping its config, socket and logs under
// dir.
func NewSupervisord(ctx context.Context, dir string) (*Supervisord, error) {
	bin, ctl, version, err := FindSupervisord(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"conf.d", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	s := &Supervisord{bin: bin, ctl: ctl, version: version, dir: dir,
		conf: filepath.Join(dir, "supervisord.conf"), kids: tracked{}}
	// Default settings everywhere but the paths; nodaemon keeps it our child.
	conf := fmt.Sprintf(`[unix_http_server]
file=%[1]s/supervisor.sock
chmod=0700

[supervisord]
logfile=%[1]s/supervisord.log
pidfile=%[1]s/supervisord.pid
childlogdir=%[1]s/log
nodaemon=true

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%[1]s/supervisor.sock

[include]
files = %[1]s/conf.d/*.conf
`, dir)
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

// Name implements Manager.
func (s *Supervisord) Name() string { return "supervisord" }

// Version implements Manager.
func (s *Supervisord) Version() string { return s.version }

// PID implements Manager.
func (s *Supervisord) PID() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *Supervisord) ctlRun(ctx context.Context, args ...string) error {
	return run(ctx, os.Environ(), filepath.Join(s.dir, "supervisorctl.log"), s.ctl, append([]string{"-c", s.conf}, args...)...)
}

// Launch implements Manager: supervisord in the foreground, ready once
// `supervisorctl pid` answers with its pid.
func (s *Supervisord) Launch(ctx context.Context) error {
	out, err := os.Create(filepath.Join(s.dir, "supervisord.out"))
	if err != nil {
		return err
	}
	defer out.Close()
	s.cmd = exec.Command(s.bin, "-c", s.conf)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return err
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	want := strconv.Itoa(s.cmd.Process.Pid)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := output(ctx, s.ctl, "-c", s.conf, "pid")
		if err == nil && got == want {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("supervisord exited at start: %s", logTail(out.Name(), 0))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("supervisord: not answering on its socket after 30 s (pid %q, %v)", got, err)
		}
		if err := SleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// PrepareSleepers implements Manager: one include file per program, with
// supervisord's defaults (autostart, startsecs=1).
func (s *Supervisord) PrepareSleepers(_ context.Context, n int) error {
	for i := range n {
		conf := fmt.Sprintf("[program:s%03d]\ncommand=%s\nautorestart=true\n", i, strings.Join(SleeperArgv, " "))
		if err := os.WriteFile(filepath.Join(s.dir, "conf.d", fmt.Sprintf("s%03d.conf", i)), []byte(conf), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// StartSleepers implements Manager: `supervisorctl update` adds and starts
// every new program.
func (s *Supervisord) StartSleepers(ctx context.Context) error {
	err := s.ctlRun(ctx, "update")
	s.kids.note(s.PID())
	return err
}

// StopSleepers implements Manager: `supervisorctl stop all`.
func (s *Supervisord) StopSleepers(ctx context.Context) error {
	s.kids.note(s.PID())
	return s.ctlRun(ctx, "stop", "all")
}

// PrepareCrasher implements Manager: the sleepers' programs are removed and
// the probe added, not started (autostart=false); startsecs=0 so that a
// quick exit is not a failed start (which would back off by 1, 2, 3 s).
func (s *Supervisord) PrepareCrasher(ctx context.Context, file string, _ int) error {
	old, err := filepath.Glob(filepath.Join(s.dir, "conf.d", "*.conf"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	// '%' is supervisord's expansion character.
	script := strings.ReplaceAll(CrashScript(file), "%", "%%")
	conf := fmt.Sprintf("[program:crash]\ncommand=/bin/sh -c '%s'\nautostart=false\nautorestart=true\nstartsecs=0\nstartretries=1000000\n", script)
	if err := os.WriteFile(filepath.Join(s.dir, "conf.d", "crash.conf"), []byte(conf), 0o600); err != nil {
		return err
	}
	return s.ctlRun(ctx, "update")
}

// StartCrasher implements Manager.
func (s *Supervisord) StartCrasher(ctx context.Context) error { return s.ctlRun(ctx, "start", "crash") }

// StopCrasher implements Manager.
func (s *Supervisord) StopCrasher(ctx context.Context) error { return s.ctlRun(ctx, "stop", "crash") }

// Backoff implements Manager.
func (s *Supervisord) Backoff() string {
	return "supervisord: startsecs=0, startretries raised; no delay setting, but a restart waits for the next main-loop pass (poll timeout 1 s)"
}

// Close implements Manager: `supervisorctl shutdown`, then SIGKILL for the
// daemon and anything it left behind.
func (s *Supervisord) Close() error {
	if s.cmd == nil {
		return nil
	}
	var errs []error
	s.kids.note(s.PID())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := s.ctlRun(ctx, "shutdown"); err != nil {
		errs = append(errs, err)
	}
	cancel()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		errs = append(errs, errors.New("supervisord: still running 30 s after shutdown (killed)"))
	}
	if n := s.kids.kill(); n > 0 {
		errs = append(errs, fmt.Errorf("supervisord: %d processes outlived the daemon (killed)", n))
	}
	s.cmd = nil
	return errors.Join(errs...)
}
