// Command shipote is the shipote CLI: the daemon, the client commands that
// drive it over its Unix socket, and `up`, which runs a file of workspaces
// and pipelines in an in-process engine. See docs/cli.md.
package main

import (
	"os"

	"github.com/shipote/shipote/internal/cli"
)

func main() {
	os.Exit(int(cli.Main()))
}
