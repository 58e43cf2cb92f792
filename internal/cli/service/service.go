// This file owns `shipote service install` and `shipote service
// uninstall`: the systemd unit that starts the daemon at boot.

// Package service implements `shipote service`.
package service

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/internal/cli/cmdutil"
)

// UnitName is the name of the systemd unit.
const UnitName = "shipote.service"

// Options are the inputs of `service install` and `service uninstall`.
type Options struct {
	IO *cmdutil.IOStreams
	// User installs a user unit (~/.config/systemd/user, systemctl --user).
	User bool
	// Root is prefixed to every path written; "" = /. systemctl still runs
	// as Systemctl says (it is not given --root).
	Root string
	// Systemctl is the systemctl to run.
	Systemctl string
	// NoStart enables the unit without starting it (install), or disables
	// it without stopping it (uninstall).
	NoStart bool
	// DryRun prints what would be done and does nothing.
	DryRun bool
	// Exec is the shipote binary ExecStart runs; "" = this executable.
	Exec string
	// Socket and State are passed to the daemon when set.
	Socket, State string
	// Grace is the daemon's --grace (TimeoutStopSec leaves room for it).
	Grace time.Duration
	// Home is the user's home directory (for --user); "" = $HOME.
	Home string
}

// NewCmdService returns `service` with its install and uninstall
// subcommands; runF replaces the run for tests (its string is the
// subcommand's name).
func NewCmdService(f *cmdutil.Factory, runF func(string, *Options) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Install or uninstall the systemd unit that runs the daemon at boot",
		Args:  cmdutil.NoArgs,
	}
	cmd.AddCommand(newCmdInstall(f, runF), newCmdUninstall(f, runF))
	return cmd
}

func addCommonFlags(cmd *cobra.Command, o *Options) {
	flags := cmd.Flags()
	flags.BoolVar(&o.User, "user", false, "a user unit (~/.config/systemd/user, systemctl --user) instead of a system one")
	flags.StringVar(&o.Root, "root", "", "write the unit under this directory instead of / (systemctl still runs as --systemctl says)")
	flags.StringVar(&o.Systemctl, "systemctl", "systemctl", "the systemctl to run")
	flags.BoolVar(&o.DryRun, "dry-run", false, "print what would be written and run, change nothing")
}

func newCmdInstall(f *cmdutil.Factory, runF func(string, *Options) error) *cobra.Command {
	o := &Options{IO: f.IO, Grace: 5 * time.Second}
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Write and enable the systemd unit (Type=notify) of the daemon, and start it",
		Long: `Write ` + UnitName + ` (/etc/systemd/system, or ~/.config/systemd/user
with --user) running "shipote daemon" with Type=notify, run systemctl
daemon-reload, then systemctl enable --now (enable only with --no-start).
Each file written and each command run is printed. An existing unit is
replaced.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Grace <= 0 {
				return cmdutil.FlagErrorf("--grace must be above 0")
			}
			if c := cmd.Flag("socket"); c != nil && c.Changed {
				o.Socket = f.Socket
			}
			if runF != nil {
				return runF("install", o)
			}
			return Install(o)
		},
	}
	addCommonFlags(cmd, o)
	flags := cmd.Flags()
	flags.BoolVar(&o.NoStart, "no-start", false, "enable the unit without starting it")
	flags.StringVar(&o.Exec, "exec", "", "the shipote binary the unit runs (default: this one)")
	flags.StringVar(&o.State, "state", "", "the daemon's state file (default: the daemon's default)")
	flags.Var(cmdutil.DurationValue{P: &o.Grace}, "grace", "the daemon's grace between SIGTERM and SIGKILL")
	return cmd
}

func newCmdUninstall(f *cmdutil.Factory, runF func(string, *Options) error) *cobra.Command {
	o := &Options{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Stop, disable and remove the systemd unit of the daemon",
		Long: `Reverse "service install": systemctl disable --now (disable only with
--no-start), remove ` + UnitName + `, then systemctl daemon-reload. Each
command run and each file removed is printed.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF("uninstall", o)
			}
			return Uninstall(o)
		},
	}
	addCommonFlags(cmd, o)
	cmd.Flags().BoolVar(&o.NoStart, "no-stop", false, "disable the unit without stopping the daemon")
	return cmd
}

// UnitPath is where the unit file goes.
func (o *Options) UnitPath() (string, error) {
	dir := "/etc/systemd/system"
	if o.User {
		home := o.Home
		if home == "" {
			home = os.Getenv("HOME")
		}
		if home == "" || !filepath.IsAbs(home) {
			return "", errors.New("--user: $HOME is not set to an absolute path")
		}
		dir = filepath.Join(home, ".config", "systemd", "user")
	}
	root := o.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, dir, UnitName), nil
}

// System units keep their socket and state where systemd makes the
// directories (RuntimeDirectory, StateDirectory): a system service has no
// $XDG_RUNTIME_DIR or $HOME to find the defaults from.
const (
	SystemSocket = "/run/shipote/shipote.sock"
	SystemState  = "/var/lib/shipote/state.json"
)

// daemonPaths are the socket and state file the unit's daemon uses; ""
// leaves the daemon's default (a user unit's $XDG_RUNTIME_DIR and $HOME).
func (o *Options) daemonPaths() (socket, state string) {
	socket, state = o.Socket, o.State
	if !o.User {
		if socket == "" {
			socket = SystemSocket
		}
		if state == "" {
			state = SystemState
		}
	}
	return socket, state
}

// Unit returns the unit file's text.
func (o *Options) Unit() (string, error) {
	bin := o.Exec
	if bin == "" {
		p, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("find the shipote binary: %w", err)
		}
		bin = p
	}
	if !filepath.IsAbs(bin) {
		return "", fmt.Errorf("--exec %q is not an absolute path", bin)
	}
	socket, state := o.daemonPaths()
	args := []string{quote(bin), "daemon", "--log-format", "json"}
	if socket != "" {
		args = append(args, "--socket", quote(socket))
	}
	if state != "" {
		args = append(args, "--state", quote(state))
	}
	if o.Grace > 0 {
		args = append(args, "--grace", o.Grace.String())
	}
	dirs, wanted := "", "default.target"
	if !o.User {
		wanted = "multi-user.target"
		if socket == SystemSocket {
			dirs += "RuntimeDirectory=shipote\nRuntimeDirectoryMode=0700\n"
		}
		if state == SystemState {
			dirs += "StateDirectory=shipote\nStateDirectoryMode=0700\n"
		}
		if dirs != "" {
			dirs = "# The socket and state directories (0700) are made by systemd.\n" + dirs
		}
	}
	// The stop leaves room for the daemon's own grace and its state write.
	stopSec := int((o.Grace + 40*time.Second).Seconds())
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by "shipote service install"; "shipote service uninstall" removes it.
[Unit]
Description=shipote process-workspace daemon
After=network.target

[Service]
Type=notify
# READY=1 comes from the daemon proper, which may be the child of a small
# guard process (see shipote daemon --orphans).
NotifyAccess=all
ExecStart=%s
%s# SIGTERM goes to the daemon only; it stops its own processes (the grace),
# and whatever is left when TimeoutStopSec runs out is killed.
KillMode=mixed
KillSignal=SIGTERM
TimeoutStartSec=60
TimeoutStopSec=%d
Restart=on-failure
RestartSec=2
# A state file written by a newer shipote makes the daemon exit 2: do not
# restart in a loop over it.
RestartPreventExitStatus=2
# Workspaces get cgroups under the daemon's own.
Delegate=yes
LimitNOFILE=65536

[Install]
WantedBy=%s
`, strings.Join(args, " "), dirs, stopSec, wanted)
	return b.String(), nil
}

// quote quotes a word of ExecStart when systemd would split or expand it.
func quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"'\\$%;") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `$$`, `%`, `%%`)
	return `"` + r.Replace(s) + `"`
}

func (o *Options) systemctl(args ...string) []string {
	argv := []string{o.Systemctl}
	if o.User {
		argv = append(argv, "--user")
	}
	return append(argv, args...)
}

// run runs argv (or only prints it with --dry-run) and says so.
func (o *Options) run(argv []string) error {
	line := strings.Join(argv, " ")
	if o.DryRun {
		fmt.Fprintf(o.IO.Out, "would run: %s\n", line)
		return nil
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if msg != "" {
			msg = ": " + msg
		}
		return fmt.Errorf("%s: %w%s", line, err, msg)
	}
	fmt.Fprintf(o.IO.Out, "ran: %s\n", line)
	return nil
}

// Install writes the unit, reloads systemd and enables (and starts) it.
func Install(o *Options) error {
	path, err := o.UnitPath()
	if err != nil {
		return err
	}
	unit, err := o.Unit()
	if err != nil {
		return err
	}
	if o.DryRun {
		fmt.Fprintf(o.IO.Out, "would write %s:\n%s", path, unit)
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("create the unit's directory: %w", err)
		}
		if err := writeFile(path, []byte(unit)); err != nil {
			return err
		}
		fmt.Fprintf(o.IO.Out, "wrote %s\n", path)
	}
	if err := o.run(o.systemctl("daemon-reload")); err != nil {
		return err
	}
	enable := []string{"enable", "--now", UnitName}
	if o.NoStart {
		enable = []string{"enable", UnitName}
	}
	if err := o.run(o.systemctl(enable...)); err != nil {
		return err
	}
	if socket, _ := o.daemonPaths(); socket != "" {
		fmt.Fprintf(o.IO.Out, "clients reach it with: shipote --socket %s ... (or SHIPOTE_SOCKET=%s)\n", socket, socket)
	}
	return nil
}

// writeFile replaces path with data atomically (0644, as units are).
func writeFile(path string, data []byte) error {
	tmp := path + ".tmp-" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write the unit: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write the unit: %w", err)
	}
	return nil
}

// Uninstall disables (and stops) the unit, removes it and reloads systemd.
func Uninstall(o *Options) error {
	path, err := o.UnitPath()
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s is not installed: no %s", UnitName, path)
	} else if err != nil {
		return fmt.Errorf("read the unit: %w", err)
	}
	disable := []string{"disable", "--now", UnitName}
	if o.NoStart {
		disable = []string{"disable", UnitName}
	}
	if err := o.run(o.systemctl(disable...)); err != nil {
		return err
	}
	if o.DryRun {
		fmt.Fprintf(o.IO.Out, "would remove %s\n", path)
	} else {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove the unit: %w", err)
		}
		fmt.Fprintf(o.IO.Out, "removed %s\n", path)
	}
	return o.run(o.systemctl("daemon-reload"))
}
