// control.go owns the Controller side of each driver: restarting,
// stopping and starting again one of the sleepers already started, each
// the way the peer's users do it (an API call for shipote, the pm2 CLI,
// supervisorctl).

package peers

import (
	"context"
	"fmt"
)

// Controller acts on one of the sleepers a Manager started (StartSleepers),
// by its index. Each call returns when the peer's command (or API call)
// returns.
type Controller interface {
	// RestartOne restarts sleeper i.
	RestartOne(ctx context.Context, i int) error
	// StopOne stops sleeper i (it stays known, to be started again).
	StopOne(ctx context.Context, i int) error
	// StartOne starts the stopped sleeper i again.
	StartOne(ctx context.Context, i int) error
}

var (
	_ Controller = (*ShipoteDaemon)(nil)
	_ Controller = (*ShipoteEngine)(nil)
	_ Controller = (*PM2)(nil)
	_ Controller = (*Supervisord)(nil)
)

// SleeperName is the name of sleeper i in every peer.
func SleeperName(i int) string { return fmt.Sprintf("s%03d", i) }

func (w *shipoteWork) control(ctx context.Context, c shipoteAPI, op string, i int) error {
	if w.ws == "" {
		return fmt.Errorf("%s %s: no sleepers started", op, SleeperName(i))
	}
	var err error
	switch op {
	case "restart":
		_, err = c.RestartCommand(ctx, w.ws, SleeperName(i))
	case "stop":
		_, err = c.StopCommand(ctx, w.ws, SleeperName(i))
	default:
		_, err = c.StartCommand(ctx, w.ws, SleeperName(i))
	}
	return err
}

// RestartOne implements Controller: RestartCommand over the API.
func (d *ShipoteDaemon) RestartOne(ctx context.Context, i int) error {
	return d.work.control(ctx, d.client, "restart", i)
}

// StopOne implements Controller: StopCommand over the API.
func (d *ShipoteDaemon) StopOne(ctx context.Context, i int) error {
	return d.work.control(ctx, d.client, "stop", i)
}

// StartOne implements Controller: StartCommand over the API.
func (d *ShipoteDaemon) StartOne(ctx context.Context, i int) error {
	return d.work.control(ctx, d.client, "start", i)
}

// RestartOne implements Controller.
func (e *ShipoteEngine) RestartOne(ctx context.Context, i int) error {
	return e.work.control(ctx, e.eng, "restart", i)
}

// StopOne implements Controller.
func (e *ShipoteEngine) StopOne(ctx context.Context, i int) error {
	return e.work.control(ctx, e.eng, "stop", i)
}

// StartOne implements Controller.
func (e *ShipoteEngine) StartOne(ctx context.Context, i int) error {
	return e.work.control(ctx, e.eng, "start", i)
}

// RestartOne implements Controller: `pm2 restart NAME`.
func (p *PM2) RestartOne(ctx context.Context, i int) error {
	p.kids.note(p.pid)
	err := p.cli(ctx, "restart", SleeperName(i))
	p.kids.note(p.pid)
	return err
}

// StopOne implements Controller: `pm2 stop NAME`.
func (p *PM2) StopOne(ctx context.Context, i int) error { return p.cli(ctx, "stop", SleeperName(i)) }

// StartOne implements Controller: `pm2 start NAME`.
func (p *PM2) StartOne(ctx context.Context, i int) error {
	err := p.cli(ctx, "start", SleeperName(i))
	p.kids.note(p.pid)
	return err
}

// RestartOne implements Controller: `supervisorctl restart NAME`, which
// returns once the new process has stayed up for startsecs (1 s by
// default).
func (s *Supervisord) RestartOne(ctx context.Context, i int) error {
	err := s.ctlRun(ctx, "restart", SleeperName(i))
	s.kids.note(s.PID())
	return err
}

// StopOne implements Controller: `supervisorctl stop NAME`.
func (s *Supervisord) StopOne(ctx context.Context, i int) error {
	return s.ctlRun(ctx, "stop", SleeperName(i))
}

// StartOne implements Controller: `supervisorctl start NAME`.
func (s *Supervisord) StartOne(ctx context.Context, i int) error {
	err := s.ctlRun(ctx, "start", SleeperName(i))
	s.kids.note(s.PID())
	return err
}
