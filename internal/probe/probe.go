// Package probe runs one readiness or health probe of a command: an exec
// of argv in the command's workspace, a TCP connect, or an HTTP GET, each
// bounded by the probe's timeout. Probes run in goroutines; their results
// go to the workspace actor as messages.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"golang.org/x/sys/unix"

	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/messages"
)

// Starter starts a process (a *proc.Spawner).
type Starter interface {
	Start(proc.Spec) (*proc.Process, error)
}

// Env is where an exec probe runs: the command's spawner and the spec of
// its processes (environment, workdir, credentials, cgroup); Path and Args
// are set from the probe's argv.
type Env struct {
	Starter Starter
	Spec    proc.Spec
}

// Run runs p once and returns nil when it passes, or why it failed.
func Run(ctx context.Context, p *messages.Probe, env Env) error {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout())
	defer cancel()
	switch {
	case len(p.Exec) > 0:
		return Exec(ctx, env, p.Exec)
	case p.TCP != "":
		return TCP(ctx, p.TCP)
	}
	return HTTP(ctx, p.HTTP)
}

// TCP passes when a connection to addr opens before ctx ends.
func TCP(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("tcp %s: %w", addr, err)
	}
	return c.Close()
}

// client follows no redirect: a 3xx answer passes as it is.
var client = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
}

// HTTP passes when a GET of url answers 2xx or 3xx before ctx ends.
func HTTP(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("http %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("http %s: %w", url, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("http %s: status %d", url, resp.StatusCode)
	}
	return nil
}

// Exec passes when argv, run in env, exits 0 before ctx ends. argv[0] is
// resolved with env's PATH and checked against its allow_exec. A probe
// past its time is killed with its whole process group and waited for.
func Exec(ctx context.Context, env Env, argv []string) error {
	spec := env.Spec
	path, err := proc.Resolve(argv[0], spec.Env)
	if err != nil {
		return fmt.Errorf("exec %s: %w", argv[0], err)
	}
	if err := proc.CheckAllowed(path, spec.AllowExec); err != nil {
		return fmt.Errorf("exec %s: %w", argv[0], err)
	}
	spec.Path, spec.Args = path, argv[1:]
	spec.Stdin, spec.Stdout, spec.Stderr, spec.ExtraFiles = nil, nil, nil, nil
	p, err := env.Starter.Start(spec)
	if err != nil {
		return fmt.Errorf("exec %s: %w", argv[0], err)
	}
	done := make(chan proc.ExitStatus, 1)
	go func() { done <- p.Wait() }()
	var st proc.ExitStatus
	select {
	case st = <-done:
	case <-ctx.Done():
		_ = proc.KillGroup(p.Pid, unix.SIGKILL)
		<-done
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("exec %s: timed out", argv[0])
		}
		return fmt.Errorf("exec %s: %w", argv[0], ctx.Err())
	}
	if st.Err != nil {
		return fmt.Errorf("exec %s: %w", argv[0], st.Err)
	}
	if st.Signal != 0 || st.Code != 0 {
		return fmt.Errorf("exec %s: %s", argv[0], st.String())
	}
	return nil
}
