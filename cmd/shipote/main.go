// Command shipote is the shipote CLI: the daemon, the client commands that
// drive it over its Unix socket, and `up`, which runs a file of workspaces
// and pipelines in an in-process engine. See docs/cli.md.
//
// The binary is also the init of the daemon's PID namespace: re-executed
// as pid 1 with argv[0] "shipote: pid-namespace init", it never reaches
// main (package internal/proc recognises it in its init function).
package main

import (
	"os"

	"github.com/shipote/shipote/internal/cli"
)

func main() {
	os.Exit(int(cli.Main()))
}
