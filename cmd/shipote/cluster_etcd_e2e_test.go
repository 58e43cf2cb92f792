//go:build !nocluster

package main

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/shipote/shipote/messages"
)

// startEtcd starts a one-member etcd in this process, on loopback ports
// that were free a moment ago and a data directory of its own, with its
// logs dropped. It stops at the end of the test; it returns its client
// URL.
func startEtcd(t *testing.T) string {
	t.Helper()
	freeURL := func() url.URL {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return url.URL{Scheme: "http", Host: ln.Addr().String()}
	}
	cfg := embed.NewConfig()
	cfg.Name = "shipote-test"
	cfg.Dir = t.TempDir()
	client, peer := freeURL(), freeURL()
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("embedded etcd: %v", err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatalf("embedded etcd: %v", err)
	case <-time.After(deadline):
		t.Fatal("embedded etcd not ready")
	}
	return client.String()
}

// logged says whether a daemon's JSON log has a line with msg naming addr.
func logged(d *daemonProc, msg, addr string) bool {
	for line := range strings.Lines(d.stderr.String()) {
		if strings.Contains(line, `"msg":"`+msg+`"`) && strings.Contains(line, `"address":"`+addr+`"`) {
			return true
		}
	}
	return false
}

// TestE2EClusterEtcd: three members whose membership is etcd's (leases)
// see each other and serve each other's workspaces; a member killed with
// -9 is listed unreachable, and leaves the others' topology within 5 s
// (its lease expires); restarted from its state file it is back with the
// same IDs; a member that stops leaves at once (it deregisters).
func TestE2EClusterEtcd(t *testing.T) {
	endpoint := startEtcd(t)
	ms := startCluster(t, 3, "--etcd", endpoint)
	a, b, c := ms[0], ms[1], ms[2]

	// Each member's workspace, placed by name through the next member
	// (which may still be learning of the last to join: a refused create
	// creates nothing, so it is asked again).
	ids := map[string]string{}
	for i, m := range ms {
		via := ms[(i+1)%len(ms)]
		poll(t, "a workspace on "+m.node+" created through "+via.node, func() bool {
			r := via.run(t, "ws", "create", "--label", "web-"+m.node, "--node", m.node)
			if r.code != 0 {
				return false
			}
			ids[m.node] = strings.TrimSpace(r.stdout)
			return true
		})
	}
	for _, m := range ms {
		info := getJSON[messages.WorkspaceInfo](t, m.daemonProc, "ws", "show", ids[m.node])
		if info.Spec.Label != "web-"+m.node {
			t.Fatalf("member %s shows %+v", m.node, info)
		}
	}

	// ws ls from any member: every workspace, with a NODE column and
	// each one's member.
	for _, m := range ms {
		poll(t, "ws ls on "+m.node+" listing every member's workspace", func() bool {
			r := m.run(t, "ws", "ls")
			if r.code != 0 || strings.Contains(r.stderr, "unreachable") || !strings.Contains(r.stdout, "NODE") {
				return false
			}
			for _, n := range ms {
				if !strings.Contains(r.stdout, ids[n.node]) {
					return false
				}
			}
			return true
		})
		for _, ws := range getJSON[[]messages.WorkspaceInfo](t, m.daemonProc, "ws", "ls") {
			if want := strings.TrimPrefix(ws.Spec.Label, "web-"); ws.Node != want {
				t.Fatalf("workspace %s listed on node %q, want %q", ws.Spec.Label, ws.Node, want)
			}
		}
	}
	a.ok(t, "exec", "web-c", "--label", "hello", "--", "/bin/sh", "-c", "echo hello from c")
	poll(t, "hello's output through member a", func() bool {
		r := a.run(t, "logs", "web-c/hello")
		return r.code == 0 && strings.Contains(r.stdout, "hello from c")
	})

	// kill -9 of c: the others keep serving and list it as unreachable
	// within 5 s, exit 0 with a warning; its lease expires and it leaves
	// their topology within 5 s too.
	start := killMember(t, a, b, c, ids)
	poll(t, "a and b seeing c leave", func() bool {
		return logged(a.daemonProc, "member left", c.addr) && logged(b.daemonProc, "member left", c.addr)
	})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("c left the others' topology after %v, want within 5s", took)
	} else {
		t.Logf("c killed: it left the others' topology after %v", took)
	}

	// c restarts from its own state file: reachable again, same IDs.
	restartMember(t, a, c, ids)

	// b stops: it deregisters, so a sees it leave well before its lease
	// could have expired (its last renewal was at most a third of the TTL
	// before it stopped).
	if code := b.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("member b exited %d\n%s", code, tail(b.stderr.String(), 3000))
	}
	stopped := time.Now()
	poll(t, "a seeing b leave", func() bool { return logged(a.daemonProc, "member left", b.addr) })
	if took := time.Since(stopped); took > 1500*time.Millisecond {
		t.Errorf("a saw b leave %v after it stopped: not at once", took)
	} else {
		t.Logf("b stopped: a saw it leave after %v", took)
	}

	for _, m := range []*member{a, c} {
		if code := m.stop(syscall.SIGTERM); code != 0 {
			t.Errorf("member %s exited %d\n%s", m.node, code, tail(m.stderr.String(), 3000))
		}
	}
}

// TestE2EClusterEtcdUnreachable: a daemon whose etcd does not answer
// does not start: it says so and exits 1, within the bound, leaving its
// transport's port free.
func TestE2EClusterEtcdUnreachable(t *testing.T) {
	dir := shortDir(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	etcdAddr := ln.Addr().String()
	ln.Close() // nobody listens there any more
	addr := fmt.Sprintf("127.0.0.1:%d", freePortPair(t))
	d := launchDaemon(t, nil, filepath.Join(dir, "sock"), filepath.Join(dir, "state.json"), newParent(t),
		"--limits", "none", "--cluster", "test", "--node", "a", "--advertise", addr, "--etcd", "http://"+etcdAddr)
	start := time.Now()
	if code := d.wait(); code != 1 {
		t.Fatalf("daemon exited %d, want 1\n%s", code, tail(d.stderr.String(), 3000))
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the daemon gave up after %v", took)
	}
	if want := "etcd at http://" + etcdAddr + " did not answer within 5s"; !strings.Contains(d.stderr.String(), want) {
		t.Fatalf("stderr does not say %q:\n%s", want, tail(d.stderr.String(), 3000))
	}
}
