//go:build !nocluster

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shipote/shipote/api/server"
	"github.com/shipote/shipote/cluster"
	"github.com/shipote/shipote/messages"
)

// TestE2EClusterEmbedded runs examples/embed-cluster, an engine embedded
// in a program that joins a daemon's cluster through shipote.Config (in a
// process of its own: protoactor's cluster is not race-clean in one
// under -race). The daemon's CLI places a workspace on it, runs a command
// there and lists it with its node; the embedder's own API lists the
// daemon's; SIGTERM stops the engine, which leaves the cluster, and the
// daemon then lists the embedder as unreachable.
func TestE2EClusterEmbedded(t *testing.T) {
	// A bad config is refused before any engine starts.
	if _, err := server.NewMembership(cluster.Config{Name: "emb", Node: "bad node", Advertise: "127.0.0.1:7000"}, server.Options{}); err == nil ||
		!strings.Contains(err.Error(), "node name") {
		t.Fatalf("a bad node name: %v", err)
	}

	dir := shortDir(t)
	embBin := filepath.Join(dir, "embed-cluster")
	if out, err := exec.Command("go", "build", "-o", embBin, "../../examples/embed-cluster").CombinedOutput(); err != nil {
		t.Fatalf("go build examples/embed-cluster: %v\n%s", err, out)
	}
	token := writeFile(t, dir, "token", "embed-token\n")
	dAddr := fmt.Sprintf("127.0.0.1:%d", freePortPair(t))
	eAddr := fmt.Sprintf("127.0.0.1:%d", freePortPair(t))
	d := startDaemon(t, filepath.Join(dir, "d.sock"), filepath.Join(dir, "d.json"), newParent(t),
		"--limits", "none", "--cluster", "emb", "--node", "d", "--advertise", dAddr,
		"--peers", eAddr, "--cluster-token-file", token)

	sock := filepath.Join(dir, "e.sock")
	cmd := exec.Command(embBin, "--cluster", "emb", "--node", "e", "--advertise", eAddr, "--peers", dAddr,
		"--cluster-token-file", token, "--socket", sock, "--state", filepath.Join(dir, "e.json"), "--limits", "none")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	emb := &daemonProc{t: t, sock: sock}
	poll(t, "the embedder serving its API", func() bool {
		_, err := os.Stat(sock)
		return err == nil && emb.run(t, "ws", "ls").code == 0
	})
	poll(t, "the daemon reaching the embedded member", func() bool {
		r := d.run(t, "ws", "ls")
		return r.code == 0 && !strings.Contains(r.stderr, "unreachable")
	})

	onE := d.id(t, "ws", "create", "--label", "on-e", "--node", "e")
	onD := emb.id(t, "ws", "create", "--label", "on-d", "--node", "d")
	for _, m := range []*daemonProc{d, emb} {
		nodes := map[string]string{}
		for _, ws := range getJSON[[]messages.WorkspaceInfo](t, m, "ws", "ls") {
			nodes[ws.ID] = ws.Node
		}
		if nodes[onE] != "e" || nodes[onD] != "d" {
			t.Fatalf("ws ls through %s: %v", m.sock, nodes)
		}
	}
	d.ok(t, "exec", "on-e", "--label", "hi", "--", "/bin/sh", "-c", "echo hi from e")
	poll(t, "the command's output on e through the daemon", func() bool {
		r := d.run(t, "logs", "on-e/hi")
		return r.code == 0 && strings.Contains(r.stdout, "hi from e")
	})

	// SIGTERM: the engine stops and leaves first.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("the embedder exited with %v\n%s", err, out.String())
		}
	case <-time.After(deadline):
		t.Fatalf("the embedder did not stop on SIGTERM\n%s", out.String())
	}
	if !strings.Contains(out.String(), "joined cluster emb as e") {
		t.Errorf("the embedder's output:\n%s", out.String())
	}
	poll(t, "e listed as unreachable", func() bool {
		r := d.run(t, "ws", "ls")
		return r.code == 0 && strings.Contains(r.stderr, "unreachable") && strings.Contains(r.stdout, onD)
	})
	if code := d.stop(15); code != 0 {
		t.Errorf("the daemon exited %d", code)
	}
}
