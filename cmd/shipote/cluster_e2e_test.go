//go:build !nocluster

package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shipote/shipote/messages"
)

// member is one daemon of a test cluster.
type member struct {
	*daemonProc
	node, addr string
	args       []string
}

// startCluster starts n members on loopback that know each other by
// --peers (or by the etcd of an --etcd among extra), with a shared token,
// and waits until each sees all the others.
func startCluster(t *testing.T, n int, extra ...string) []*member {
	t.Helper()
	dir := shortDir(t)
	token := writeFile(t, dir, "token", "test-token\n")
	parent := newParent(t)
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", freePortPair(t))
	}
	ms := make([]*member, n)
	for i := range ms {
		node := string(rune('a' + i))
		var peers []string
		for j, a := range addrs {
			if j != i {
				peers = append(peers, a)
			}
		}
		m := &member{node: node, addr: addrs[i]}
		m.args = append([]string{"--limits", "none", "--cluster", "test", "--node", node, "--advertise", addrs[i],
			"--cluster-token-file", token}, extra...)
		if !slices.Contains(extra, "--etcd") {
			m.args = append(m.args, "--peers", strings.Join(peers, ","))
		}
		if err := os.MkdirAll(filepath.Join(dir, node), 0o700); err != nil {
			t.Fatal(err)
		}
		m.daemonProc = startDaemon(t, filepath.Join(dir, node, "sock"), filepath.Join(dir, node, "state.json"),
			parent+"-"+node, m.args...)
		ms[i] = m
	}
	// Each member answers for every other once the others' node actors
	// are up: a list from each shows no warning.
	for _, m := range ms {
		poll(t, "member "+m.node+" reaching every other", func() bool {
			r := m.run(t, "ws", "ls")
			return r.code == 0 && !strings.Contains(r.stderr, "unreachable")
		})
	}
	return ms
}

func TestE2EClusterPeers(t *testing.T) {
	ms := startCluster(t, 3)
	a, b, c := ms[0], ms[1], ms[2]

	// Placement by name, all asked of member a.
	ids := map[string]string{}
	for _, m := range ms {
		ids[m.node] = a.id(t, "ws", "create", "--label", "web-"+m.node, "--node", m.node)
	}
	// Each workspace lives on the member named: its own daemon lists it
	// among those it holds (show by ID on its own socket, no routing).
	for _, m := range ms {
		info := getJSON[messages.WorkspaceInfo](t, m.daemonProc, "ws", "show", ids[m.node])
		if info.Spec.Label != "web-"+m.node {
			t.Fatalf("member %s shows %+v", m.node, info)
		}
	}

	// ws ls from any member: every workspace, with a NODE column.
	for _, m := range ms {
		out := m.ok(t, "ws", "ls")
		if !strings.Contains(out, "NODE") {
			t.Fatalf("ws ls on %s has no NODE column:\n%s", m.node, out)
		}
		for _, n := range ms {
			if !strings.Contains(out, ids[n.node]) {
				t.Fatalf("ws ls on %s misses %s's workspace:\n%s", m.node, n.node, out)
			}
		}
		list := getJSON[[]messages.WorkspaceInfo](t, m.daemonProc, "ws", "ls")
		for _, ws := range list {
			if want := strings.TrimPrefix(ws.Spec.Label, "web-"); ws.Node != want {
				t.Fatalf("workspace %s listed on node %q, want %q", ws.Spec.Label, ws.Node, want)
			}
		}
	}

	// Verbs on a workspace of another member: exec, ps, logs, a pipeline.
	a.ok(t, "exec", "web-c", "--label", "hello", "--", "/bin/sh", "-c", "echo hello from c")
	poll(t, "hello's output through member a", func() bool {
		r := a.run(t, "logs", "web-c/hello")
		return r.code == 0 && strings.Contains(r.stdout, "hello from c")
	})
	if out := b.ok(t, "ps", "web-c"); !strings.Contains(out, "hello") {
		t.Fatalf("ps web-c through b:\n%s", out)
	}
	if out := a.ok(t, "ps"); !strings.Contains(out, "NODE") || !regexp.MustCompile(`web-c +c +hello`).MatchString(out) {
		t.Fatalf("ps of every workspace through a has no NODE column naming c:\n%s", out)
	}
	spec := writeFile(t, shortDir(t), "fan.yaml", `label: fan
nodes:
  - {label: gen, payload: {native: {exec: seq, argv: ["1", "100000"]}}}
  - {label: count, payload: {native: {exec: wc, argv: ["-l"]}}}
edges: [{from: gen, to: count}]
`)
	run := strings.TrimSpace(c.ok(t, "pipe", "run", "web-b", "-f", spec))
	if !strings.Contains(b.ok(t, "pipe", "ls"), "fan") {
		t.Fatal("the run asked of c is not on b")
	}
	poll(t, "the pipeline on b ending, seen through a", func() bool {
		r := a.run(t, "pipe", "show", strings.Fields(run)[0], "-o", "json")
		return r.code == 0 && strings.Contains(r.stdout, `"succeeded"`)
	})

	// A pipeline saved on a, started into a workspace of b through c:
	// the run is b's, of a's saved spec.
	a.ok(t, "pipe", "save", "fanout", "-f", spec)
	saved := strings.Fields(strings.TrimSpace(c.ok(t, "pipe", "start", "fanout", "--ws", "web-b")))[0]
	if got := getJSON[messages.PipelineInfo](t, b.daemonProc, "pipe", "show", saved); got.Label != "fan" || got.Workspace != ids["b"] {
		t.Fatalf("the saved pipeline started through c is %+v on b", got)
	}
	// And into a's own workspace by label@node from b.
	if out := b.ok(t, "pipe", "start", "fanout", "--ws", "web-a@a"); !strings.Contains(a.ok(t, "pipe", "ls"), strings.Fields(out)[0]) {
		t.Fatalf("the run asked of b is not on a:\n%s", a.ok(t, "pipe", "ls"))
	}
	if r := c.run(t, "pipe", "start", "nosuch", "--ws", "web-b"); r.code == 0 || !strings.Contains(r.stderr, "not found on any member") {
		t.Fatalf("an unknown saved pipeline: %s", r)
	}
	// pipe ls and top from any member name each run's member.
	if out := c.ok(t, "pipe", "ls"); !strings.Contains(out, "NODE") || !regexp.MustCompile(`web-b +b +fan`).MatchString(out) {
		t.Fatalf("pipe ls through c has no NODE column naming b:\n%s", out)
	}
	if out := a.ok(t, "top", "-n", "1"); !strings.Contains(out, "NODE") || !strings.Contains(out, "on b") {
		t.Fatalf("top through a names no member:\n%s", out)
	}

	// logs -f of a command on c, followed through a: lines come as c
	// writes them, while the command still runs.
	a.ok(t, "exec", "web-c", "--label", "ticker", "--", "/bin/sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.2; done; exec sleep 1000")
	fctx, cancel := context.WithTimeout(context.Background(), deadline)
	follow := exec.CommandContext(fctx, bin, "--socket", a.sock, "logs", "-f", "web-c/ticker")
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	got := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "tick 3") {
			got = true
			break
		}
	}
	cancel()
	_ = follow.Wait()
	if !got {
		t.Fatal("logs -f through a never showed c's third line")
	}

	// events from any member: every member's, each with its member.
	ev := a.ok(t, "events")
	for _, m := range ms {
		if !strings.Contains(ev, "member="+m.node+" ws=web-"+m.node) {
			t.Fatalf("events through a miss member %s's:\n%s", m.node, ev)
		}
	}
	// events -f through a: an event on c arrives as it happens.
	ectx, ecancel := context.WithTimeout(context.Background(), deadline)
	evf := exec.CommandContext(ectx, bin, "--socket", a.sock, "events", "-f")
	evOut, err := evf.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := evf.Start(); err != nil {
		t.Fatal(err)
	}
	evLines := bufio.NewScanner(evOut)
	evLines.Scan() // the stream is up: the recent events come first
	b.id(t, "ws", "create", "--label", "late", "--node", "c")
	sawLate := false
	for evLines.Scan() {
		if strings.Contains(evLines.Text(), "member=c ws=late") {
			sawLate = true
			break
		}
	}
	ecancel()
	_ = evf.Wait()
	if !sawLate {
		t.Fatal("events -f through a never showed the workspace created on c")
	}

	// A label used on two members is ambiguous; label@node names one.
	a.id(t, "ws", "create", "--label", "dup", "--node", "a")
	dupB := a.id(t, "ws", "create", "--label", "dup", "--node", "b")
	r := c.run(t, "ws", "show", "dup")
	if r.code == 0 || !strings.Contains(r.stderr, "dup@a") || !strings.Contains(r.stderr, "dup@b") {
		t.Fatalf("an ambiguous label: %s", r)
	}
	if got := getJSON[messages.WorkspaceInfo](t, c.daemonProc, "ws", "show", "dup@b"); got.ID != dupB {
		t.Fatalf("dup@b is %s, want %s", got.ID, dupB)
	}
	c.ok(t, "ws", "rm", "dup@b")
	if r := c.run(t, "ws", "show", "nothing-here"); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("an unknown workspace: %s", r)
	}
	if r := a.run(t, "ws", "create", "--label", "x", "--node", "zz"); r.code == 0 || !strings.Contains(r.stderr, `no member named "zz"`) {
		t.Fatalf("an unknown node: %s", r)
	}

	// kill -9 of c: the others keep serving and list it as unreachable
	// within 5 s, exit 0 with a warning.
	killMember(t, a, b, c, ids)

	// c restarts from its own state file: reachable again, same IDs.
	restartMember(t, a, c, ids)

	for _, m := range ms {
		if code := m.stop(15); code != 0 {
			t.Errorf("member %s exited %d\n%s", m.node, code, tail(m.stderr.String(), 3000))
		}
	}
}

// killMember kills c with SIGKILL and checks that, within 5 s, a lists
// it as unreachable (exit 0, a warning) and b still serves a's workspace
// web-a. It returns when c was killed.
func killMember(t *testing.T, a, b, c *member, ids map[string]string) time.Time {
	t.Helper()
	c.kill()
	start := time.Now()
	poll(t, "c listed as unreachable", func() bool {
		r := a.run(t, "ws", "ls")
		return r.code == 0 && strings.Contains(r.stderr, "unreachable") && strings.Contains(r.stdout, ids["a"])
	})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("c was listed unreachable after %v, want within 5s", took)
	}
	if out := b.ok(t, "ps", "web-a"); out == "" {
		t.Fatal("b stopped serving a's workspace")
	}
	return start
}

// restartMember restarts c from its own state file and checks that a
// reaches it again and finds web-c with the same ID.
func restartMember(t *testing.T, a, c *member, ids map[string]string) {
	t.Helper()
	c.daemonProc = startDaemon(t, c.sock, c.state, c.parent, c.args...)
	poll(t, "c reachable again", func() bool {
		r := a.run(t, "ws", "ls")
		return r.code == 0 && !strings.Contains(r.stderr, "unreachable") && strings.Contains(r.stdout, ids["c"])
	})
	if got := getJSON[messages.WorkspaceInfo](t, a.daemonProc, "ws", "show", "web-c"); got.ID != ids["c"] {
		t.Fatalf("web-c came back as %s, want %s", got.ID, ids["c"])
	}
}

// TestE2EClusterTokenRefused starts a member with the wrong token: the
// others refuse it and log it, and it cannot list their workspaces.
func TestE2EClusterTokenRefused(t *testing.T) {
	ms := startCluster(t, 2)
	a := ms[0]
	a.id(t, "ws", "create", "--label", "secret", "--node", "a")

	dir := shortDir(t)
	bad := writeFile(t, dir, "token", "wrong-token\n")
	addr := fmt.Sprintf("127.0.0.1:%d", freePortPair(t))
	intruder := startDaemon(t, filepath.Join(dir, "sock"), filepath.Join(dir, "state.json"), newParent(t),
		"--limits", "none", "--cluster", "test", "--node", "x", "--advertise", addr,
		"--peers", a.addr, "--cluster-token-file", bad)
	poll(t, "a refusing the intruder", func() bool {
		r := intruder.run(t, "ws", "ls")
		return r.code == 0 && strings.Contains(r.stderr, "unreachable")
	})
	if out := intruder.ok(t, "ws", "ls"); strings.Contains(out, "secret") {
		t.Fatalf("a member with the wrong token listed a's workspaces:\n%s", out)
	}
	poll(t, "a's log naming the refusal", func() bool {
		return strings.Contains(a.stderr.String(), "refused a peer without the cluster token")
	})
}

func TestE2EClusterFlags(t *testing.T) {
	dir := shortDir(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cluster", "c", "--node", "a"}, "--advertise is required"},
		{[]string{"--cluster", "c", "--advertise", "127.0.0.1:7000"}, "--node is required"},
		{[]string{"--cluster", "c", "--node", "a", "--advertise", "10.1.2.3:7000"}, "loopback"},
		{[]string{"--cluster", "c", "--node", "a", "--advertise", "127.0.0.1"}, "HOST:PORT"},
		{[]string{"--cluster", "c", "--node", "a@b", "--advertise", "127.0.0.1:7000"}, "node name"},
		{[]string{"--cluster", "c", "--node", "a", "--advertise", "127.0.0.1:7000", "--peers", "example.com:7000"}, "loopback"},
		{[]string{"--cluster", "c", "--node", "a", "--advertise", "127.0.0.1:7000", "--cluster-token-file", filepath.Join(dir, "missing")}, "--cluster-token-file"},
		{[]string{"--cluster", "c", "--node", "a", "--advertise", "127.0.0.1:7000", "--peers", "127.0.0.1:7002", "--etcd", "http://127.0.0.1:2379"}, "--etcd and --peers exclude each other"},
		{[]string{"--cluster", "c", "--node", "a", "--advertise", "127.0.0.1:7000", "--etcd", "127.0.0.1:2379"}, "etcd endpoint"},
	} {
		r := runCLI(t, append([]string{"--socket", filepath.Join(dir, "sock"), "daemon", "--state", filepath.Join(dir, "s.json")}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("daemon %v: want exit 2 naming %q, got %s", tc.args, tc.want, r)
		}
	}
	// A lone daemon refuses --node on a create.
	d := startDaemon(t, filepath.Join(dir, "lone.sock"), filepath.Join(dir, "lone.json"), newParent(t), "--limits", "none")
	if r := d.run(t, "ws", "create", "--label", "x", "--node", "a"); r.code == 0 || !strings.Contains(r.stderr, "not a member of a cluster") {
		t.Errorf("--node on a lone daemon: %s", r)
	}
}

// writeCA makes a CA and a member certificate for 127.0.0.1 signed by it,
// as PEM files in dir; it returns the cert, key and CA paths.
func writeCA(t *testing.T, dir, name string) (certFile, keyFile, caFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) string {
		return writeFile(t, dir, file, string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})))
	}
	return write(name+".crt", "CERTIFICATE", der), write(name+".key", "EC PRIVATE KEY", keyDER), write(name+"-ca.crt", "CERTIFICATE", caDER)
}

// TestE2EClusterTLS: members whose certificates one CA signed serve each
// other over mutual TLS; a member whose certificate another CA signed is
// refused, and the refusal is logged.
func TestE2EClusterTLS(t *testing.T) {
	dir := shortDir(t)
	cert, key, ca := writeCA(t, dir, "good")
	certX, keyX, caX := writeCA(t, dir, "other")
	addrA := fmt.Sprintf("127.0.0.1:%d", freePortPair(t))
	addrB := fmt.Sprintf("127.0.0.1:%d", freePortPair(t))
	addrX := fmt.Sprintf("127.0.0.1:%d", freePortPair(t))
	start := func(node, addr, peer, cert, key, ca string) *daemonProc {
		sub := filepath.Join(dir, node)
		if err := os.MkdirAll(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		return startDaemon(t, filepath.Join(sub, "sock"), filepath.Join(sub, "state.json"), newParent(t),
			"--limits", "none", "--cluster", "tls", "--node", node, "--advertise", addr, "--peers", peer,
			"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca)
	}
	a := start("a", addrA, addrB, cert, key, ca)
	b := start("b", addrB, addrA, cert, key, ca)
	idB := a.id(t, "ws", "create", "--label", "on-b", "--node", "b")
	poll(t, "a listing b's workspace over TLS", func() bool {
		r := a.run(t, "ws", "ls")
		return r.code == 0 && strings.Contains(r.stdout, idB) && !strings.Contains(r.stderr, "unreachable")
	})
	if got := getJSON[messages.WorkspaceInfo](t, b, "ws", "show", "on-b"); got.ID != idB {
		t.Fatalf("b holds %s, want %s", got.ID, idB)
	}
	// A tap through a of a run on b: a direct stream over mutual TLS.
	goFile := filepath.Join(dir, "go")
	spec := writeFile(t, dir, "seqs.yaml", fmt.Sprintf(`label: seqs
nodes:
  - {label: gen, payload: {native: {exec: /bin/sh, argv: ["-c", "while [ ! -e %s ]; do sleep 0.05; done; exec seq 1 10000"]}}}
  - {label: cnt, payload: {native: {exec: wc, argv: ["-l"]}}}
edges: [{from: gen, to: cnt}]
`, goFile))
	run := a.id(t, "pipe", "run", "on-b", "-f", spec)
	tap := startTap(t, a, run)
	poll(t, "the tap through a attached on b", func() bool { n, _ := tapChannels(t, b, run); return n == 1 })
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tap.done:
	case <-time.After(deadline):
		t.Fatal("the tap over TLS did not end")
	}
	var seq strings.Builder
	for i := 1; i <= 10000; i++ {
		fmt.Fprintf(&seq, "%d\n", i)
	}
	if sum := sha256.Sum256([]byte(seq.String())); tap.err != nil || tap.n != int64(seq.Len()) || tap.sum != hex.EncodeToString(sum[:]) {
		t.Fatalf("tap over TLS: %d bytes (want %d), %v", tap.n, seq.Len(), tap.err)
	}

	x := start("x", addrX, addrA, certX, keyX, caX)
	poll(t, "x finding a unreachable", func() bool {
		r := x.run(t, "ws", "ls")
		return r.code == 0 && strings.Contains(r.stderr, "unreachable") && !strings.Contains(r.stdout, idB)
	})
	poll(t, "a logging the refused handshake", func() bool {
		return strings.Contains(a.stderr.String(), "TLS handshake failed")
	})
	// TLS takes the certificate, its key and the CA, or none of them.
	r := runCLI(t, "--socket", filepath.Join(dir, "v.sock"), "daemon", "--state", filepath.Join(dir, "v.json"),
		"--cluster", "tls", "--node", "v", "--advertise", "127.0.0.1:1", "--tls-cert", cert, "--tls-key", key)
	if r.code != 2 || !strings.Contains(r.stderr, "all three") {
		t.Fatalf("TLS without its CA: %s", r)
	}
}
