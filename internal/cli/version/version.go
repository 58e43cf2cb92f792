// This file owns `shipote version`: the client's version and, when the
// daemon answers, the daemon's; and what keeps commands from outliving the
// daemon.

// Package version implements `shipote version`.
package version

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/internal/proc"
)

// Client is the client's version string: v and the Go version.
func Client(v string) string {
	return v + " (" + runtime.Version() + ")"
}

// Options are the inputs of `version`.
type Options struct {
	IO     *cmdutil.IOStreams
	Client func() (cmdutil.Client, error)
	// Version is the client's version.
	Version string
	Output  string
}

// NewCmdVersion returns `version`; runF replaces the run for tests.
func NewCmdVersion(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Client: f.APIClient, Version: f.Version}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client's version and, if it answers, the daemon's",
		Args:  cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			return versionRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

// Info is the JSON form of `version -o json`.
type Info struct {
	Client struct {
		Version   string `json:"version"`
		GoVersion string `json:"go_version"`
	} `json:"client"`
	// Daemon is nil when the daemon did not answer.
	Daemon *api.VersionInfo `json:"daemon"`
	// DaemonError says why the daemon did not answer.
	DaemonError string `json:"daemon_error,omitempty"`
	// Orphans says what keeps commands from outliving the daemon: the
	// daemon's answer, or without one what a daemon started by this user
	// on this host would get.
	Orphans string `json:"orphans"`
}

func versionRun(ctx context.Context, o *Options) error {
	var info Info
	info.Client.Version = o.Version
	info.Client.GoVersion = runtime.Version()
	c, err := o.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := c.Version(ctx)
	if err == nil {
		info.Daemon = &v
	} else {
		info.DaemonError = err.Error()
		if !errors.Is(err, api.ErrUnreachable) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("daemon version: %w", err)
		}
	}
	if info.Daemon != nil && info.Daemon.Orphans != "" {
		info.Orphans = info.Daemon.Orphans
	} else {
		info.Orphans = proc.HostOrphans() + " (for a daemon started by this user)"
	}
	if o.Output == "json" {
		return cmdutil.WriteJSON(o.IO.Out, info)
	}
	fmt.Fprintf(o.IO.Out, "client: shipote %s (%s)\n", info.Client.Version, info.Client.GoVersion)
	if d := info.Daemon; d != nil {
		state := d.StatePath
		if state == "" {
			state = "none"
		}
		fmt.Fprintf(o.IO.Out, "daemon: shipote %s (%s), limits %s, state %s, socket %s\n",
			d.Version, d.GoVersion, d.LimitsBackend, state, d.Socket)
		if d.Degraded != "" {
			fmt.Fprintf(o.IO.Out, "degraded: %s\n", d.Degraded)
		}
	} else {
		fmt.Fprintf(o.IO.Out, "daemon: not reachable (%s)\n", info.DaemonError)
	}
	fmt.Fprintf(o.IO.Out, "orphans: %s\n", info.Orphans)
	return nil
}
