// Command shipote is the shipote CLI: the daemon, the client commands that
// drive it over its Unix socket, and `up`, which runs a file of workspaces
// and pipelines in an in-process engine. See docs/cli.md.
//
// The client commands (internal/cli) link no engine; main adds the two
// that host one (internal/host: daemon, up) and the version it was built
// with.
//
// The binary is also the init of the daemon's PID namespace: re-executed
// as pid 1 with argv[0] "shipote: pid-namespace init", it never reaches
// main (package internal/proc recognises it in its init function).
package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/internal/cli"
	"github.com/shipote/shipote/internal/cli/cmdutil"
	"github.com/shipote/shipote/internal/host/daemon"
	"github.com/shipote/shipote/internal/host/up"
)

func main() {
	os.Exit(int(cli.Main(options()...)))
}

// options completes the client command tree of package cli into the
// shipote CLI.
func options() []cli.Option {
	return []cli.Option{
		cli.WithVersion(shipote.Version),
		cli.WithCommands("run",
			func(f *cmdutil.Factory) *cobra.Command { return daemon.NewCmdDaemon(f, nil) },
			func(f *cmdutil.Factory) *cobra.Command { return up.NewCmdUp(f, nil) },
		),
	}
}
