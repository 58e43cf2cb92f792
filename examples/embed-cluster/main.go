// Command embed-cluster shows an engine embedded in a Go program joining a
// cluster of shipote daemons through its Config: the other members' CLIs
// see its workspaces (with its node name), place workspaces on it and run
// every verb on them; its own API, served on a Unix socket, is routed
// across the cluster like a daemon's. It stops on SIGTERM or SIGINT,
// leaving the cluster first.
//
//	embed-cluster --cluster demo --node app --advertise 127.0.0.1:7420 \
//	    --peers 127.0.0.1:7400 --socket /tmp/app.sock --state /tmp/app.json
//	shipote --socket /tmp/app.sock ws ls
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/api/server"
	"github.com/shipote/shipote/cluster"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "embed-cluster:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		cfg                  cluster.Config
		peers, tokenFile     string
		socket, state, limit string
	)
	flag.StringVar(&cfg.Name, "cluster", "demo", "the cluster's name")
	flag.StringVar(&cfg.Node, "node", "app", "this member's name")
	flag.StringVar(&cfg.Advertise, "advertise", "127.0.0.1:7420", "HOST:PORT of this member (PORT+1 carries the heartbeat)")
	flag.StringVar(&peers, "peers", "", "the other members' advertise addresses, comma-separated")
	flag.StringVar(&tokenFile, "cluster-token-file", "", "file holding the cluster's token")
	flag.StringVar(&socket, "socket", "", "serve the API on this Unix socket (optional)")
	flag.StringVar(&state, "state", "", "state file (default: in memory)")
	flag.StringVar(&limit, "limits", "auto", "limits backend")
	flag.Parse()
	if peers != "" {
		cfg.Peers = strings.Split(peers, ",")
	}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return err
		}
		cfg.Token = strings.TrimSpace(string(b))
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// The membership checks the config now; Start joins once the engine
	// has restored, and Stop leaves first.
	membership, err := server.NewMembership(cfg, server.Options{SocketPath: socket})
	if err != nil {
		return err
	}
	system := shipote.NewActorSystem(nil)
	defer system.Shutdown()
	eng, err := shipote.Start(ctx, system, shipote.Config{StatePath: state, Limits: limit, Cluster: membership})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = eng.Stop(sctx)
	}()
	fmt.Printf("joined cluster %s as %s; members: %s\n", cfg.Name, membership.Member().Self(),
		strings.Join(membership.Member().Roster(), " "))

	if socket != "" {
		_ = os.Remove(socket)
		ln, err := net.Listen("unix", socket)
		if err != nil {
			return err
		}
		// The handler does no access control of its own on a listener
		// it did not open: the socket is this user's alone.
		if err := os.Chmod(socket, 0o600); err != nil {
			ln.Close()
			return err
		}
		hs := &http.Server{Handler: membership.Server().Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintln(os.Stderr, "embed-cluster: serve:", err)
			}
		}()
		defer hs.Close()
		fmt.Printf("serving the API on %s\n", socket)
	}
	<-ctx.Done()
	fmt.Println("leaving the cluster")
	return nil
}
