package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// clusterOnlyPackages are packages that only the cluster's transport and
// membership bring in: a build with the nocluster tag links none of them.
var clusterOnlyPackages = []string{
	"github.com/asynkron/protoactor-go/cluster",
	"github.com/asynkron/protoactor-go/remote",
	"google.golang.org/grpc",
	"go.etcd.io/etcd/client/v3",
	"github.com/labstack/echo",
}

// TestE2ENoclusterBuild builds the daemon with the nocluster tag: it links
// none of the cluster's packages, refuses the cluster flags with a clear
// error and exit 2, and otherwise serves as the default build does.
func TestE2ENoclusterBuild(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-deps", "-tags", "nocluster", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps -tags nocluster: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, p := range clusterOnlyPackages {
		if slices.Contains(deps, p) {
			t.Errorf("the nocluster build links %s", p)
		}
	}
	// The default build does link them: the list above names real
	// packages, and the test would catch one coming back.
	out, err = exec.CommandContext(ctx, "go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps = strings.Fields(string(out))
	for _, p := range clusterOnlyPackages {
		if !slices.Contains(deps, p) {
			t.Errorf("the default build does not link %s: clusterOnlyPackages is out of date", p)
		}
	}

	dir := shortDir(t)
	nc := filepath.Join(dir, "shipote-nocluster")
	if b, err := exec.CommandContext(ctx, "go", "build", "-tags", "nocluster", "-o", nc, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags nocluster: %v\n%s", err, b)
	}

	for _, flags := range [][]string{
		{"--cluster", "c", "--node", "a", "--advertise", "127.0.0.1:7000", "--peers", "127.0.0.1:7002"},
		{"--cluster", "c", "--node", "a", "--advertise", "127.0.0.1:7000", "--etcd", "http://127.0.0.1:2379"},
		{"--cluster-token-file", filepath.Join(dir, "token")},
	} {
		cmd := exec.CommandContext(ctx, nc, append([]string{"daemon", "--socket", filepath.Join(dir, "refused.sock"),
			"--state", filepath.Join(dir, "refused.json")}, flags...)...)
		b, err := cmd.CombinedOutput()
		if code := exitCodeOf(err); code != 2 || !strings.Contains(string(b), "built with the nocluster tag") {
			t.Errorf("daemon %v: exit %d, want 2 with the nocluster error; output:\n%s", flags, code, b)
		}
	}

	sock, state := filepath.Join(dir, "s.sock"), filepath.Join(dir, "state.json")
	d := launchDaemonOf(t, nc, nil, sock, state, newParent(t))
	if err := waitHealthy(sock, d.done); err != nil {
		d.kill()
		t.Fatalf("nocluster daemon not healthy: %v\nstderr:\n%s", err, d.stderr.String())
	}
	// Its version says which build it is; the default client reads it.
	if out := d.ok(t, "version"); !strings.Contains(out, "daemon: shipote ") || !strings.Contains(out, "+nocluster") {
		t.Errorf("version of the nocluster daemon does not say nocluster:\n%s", out)
	}
	id := d.id(t, "ws", "create", "--label", "single")
	if ls := d.ok(t, "ws", "ls"); !strings.Contains(ls, id) || !strings.Contains(ls, "single") {
		t.Fatalf("ws ls of the nocluster daemon lacks %s:\n%s", id, ls)
	}
	if out := d.ok(t, "exec", id, "--", "/bin/echo", "from the single-host build"); out == "" {
		t.Fatalf("exec printed nothing")
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("nocluster daemon exit %d\nstderr:\n%s", code, d.stderr.String())
	}
	// Restarted, it restores the workspace with its ID.
	d = launchDaemonOf(t, nc, nil, sock, state, d.parent)
	if err := waitHealthy(sock, d.done); err != nil {
		d.kill()
		t.Fatalf("restarted nocluster daemon not healthy: %v\nstderr:\n%s", err, d.stderr.String())
	}
	if ls := d.ok(t, "ws", "ls"); !strings.Contains(ls, id) {
		t.Fatalf("restored ws ls lacks %s:\n%s", id, ls)
	}
	if code := d.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("nocluster daemon exit %d\nstderr:\n%s", code, d.stderr.String())
	}
}
