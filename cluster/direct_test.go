//go:build !nocluster

package cluster

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// directPair is an offer on loopback, accepted in the background; its
// accepted connection (or error) comes on conn.
type directPair struct {
	off  *offer
	logs *observer.ObservedLogs
	conn chan net.Conn
	err  chan error
}

func newDirectPair(t *testing.T, ctx context.Context, ttl time.Duration, tlsCfg *tls.Config) *directPair {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	off, err := listenOffer("127.0.0.1", tlsCfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	p := &directPair{off: off, logs: logs, conn: make(chan net.Conn, 1), err: make(chan error, 1)}
	go func() {
		c, err := off.accept(ctx, ttl)
		if err != nil {
			p.err <- err
			return
		}
		p.conn <- c
	}()
	return p
}

func (p *directPair) offer() directOffer {
	return directOffer{Node: "owner", Address: p.off.addr, Key: p.off.key}
}

// accepted waits for the accepted connection.
func (p *directPair) accepted(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-p.conn:
		return c
	case err := <-p.err:
		t.Fatalf("accept: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("accept did not return")
	}
	return nil
}

// refusedLogs counts the refusals logged.
func (p *directPair) refusedLogs(want string) int {
	n := 0
	for _, e := range p.logs.FilterMessage("refused a direct stream connection").All() {
		if strings.Contains(fmt.Sprint(e.ContextMap()["error"]), want) {
			n++
		}
	}
	return n
}

// TestDirectHandshake: a wrong key is refused and logged, and the offer
// waits on; the right key is served: header frame, then the body.
func TestDirectHandshake(t *testing.T) {
	// Goroutines of earlier tests (a joined member's gossip throttle
	// lingers for a period) are not this test's.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := newDirectPair(t, context.Background(), 10*time.Second, nil)

	// A wrong key: the owner closes the connection without a byte.
	bad := p.offer()
	bad.Key = bytes.Repeat([]byte{1}, directKeyLen)
	c, err := dialDirect(context.Background(), bad, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("a wrong key was answered: %d bytes, %v", n, err)
	}
	c.Close()
	waitFor(t, "the refusal logged", func() bool { return p.refusedLogs("wrong key") == 1 })
	// A key of the wrong size never leaves the asker.
	short := p.offer()
	short.Key = short.Key[:8]
	if _, err := dialDirect(context.Background(), short, nil); err == nil {
		t.Fatal("a short key was sent")
	}

	// The right key, while a silent connection waits for its key: the
	// offer is taken at once, the silent one closed unlogged.
	silent, err := net.Dial("tcp", p.off.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	t0 := time.Now()
	c, err = dialDirect(context.Background(), p.offer(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := p.accepted(t)
	if took := time.Since(t0); took > directKeyWait/2 {
		t.Fatalf("the offer was taken after %v: it waited for the silent connection", took)
	}
	if n, err := silent.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("the silent connection: %d bytes, %v", n, err)
	}
	if n := len(p.logs.FilterMessage("refused a direct stream connection").All()); n != 1 {
		t.Fatalf("%d refusals logged, want the wrong key's alone", n)
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	served := make(chan struct{})
	go func() {
		defer close(served)
		serveOnConn(context.Background(), sc, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get(ForwardedHeader) != "asker" || r.URL.Query().Get("node") != "gen" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", "12")
			w.WriteHeader(http.StatusAccepted)
			for i := 0; i < len(body); i += 100_000 {
				_, _ = w.Write(body[i:min(i+100_000, len(body))])
				http.NewResponseController(w).Flush()
			}
		}), &Request{Method: http.MethodGet, URL: "/v1/pipelines/r/tap?node=gen", From: "asker"}, "owner")
	}()
	rec := httptest.NewRecorder()
	if err := relayDirect(context.Background(), c, rec); err != nil {
		t.Fatal(err)
	}
	<-served
	if rec.Code != http.StatusAccepted || rec.Header().Get("Content-Type") != "application/octet-stream" ||
		rec.Header().Get("Content-Length") != "" || !bytes.Equal(rec.Body.Bytes(), body) {
		t.Fatalf("relayed %d %v, %d bytes", rec.Code, rec.Header(), rec.Body.Len())
	}

	// The key served once: the listener is gone.
	if c, err := dialDirect(context.Background(), p.offer(), nil); err == nil {
		c.Close()
		t.Fatal("a used offer accepted another dial")
	}
}

// TestDirectExpiry: an offer nobody takes is withdrawn after its time,
// and its listener closed; one whose member leaves, at once.
func TestDirectExpiry(t *testing.T) {
	// Goroutines of earlier tests (a joined member's gossip throttle
	// lingers for a period) are not this test's.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := newDirectPair(t, context.Background(), 100*time.Millisecond, nil)
	select {
	case err := <-p.err:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("expiry: %v", err)
		}
	case <-p.conn:
		t.Fatal("an offer nobody dialled accepted")
	case <-time.After(5 * time.Second):
		t.Fatal("the offer did not expire")
	}
	if c, err := net.Dial("tcp", p.off.addr); err == nil {
		c.Close()
		t.Fatal("an expired offer still listens")
	}

	// A silent connection does not hold the offer past its time.
	p = newDirectPair(t, context.Background(), 200*time.Millisecond, nil)
	silent, err := net.Dial("tcp", p.off.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	select {
	case err := <-p.err:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("expiry with a silent dialler: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a silent dialler held the offer")
	}

	life, leave := context.WithCancel(context.Background())
	p = newDirectPair(t, life, time.Hour, nil)
	leave()
	select {
	case err := <-p.err:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("leave: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the offer outlived its member")
	}
}

// endless writes and flushes until its request's context ends, then
// reports it on stopped.
func endless(stopped chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(stopped)
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				<-r.Context().Done() // a failed write cancels the request
				return
			}
			http.NewResponseController(w).Flush()
		}
	})
}

// flowingPair starts an endless stream: the owner serves it, the asker's
// connection is returned.
func flowingPair(t *testing.T, life context.Context, stopped chan struct{}) (net.Conn, chan struct{}) {
	t.Helper()
	p := newDirectPair(t, context.Background(), 10*time.Second, nil)
	c, err := dialDirect(context.Background(), p.offer(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := p.accepted(t)
	served := make(chan struct{})
	go func() {
		defer close(served)
		serveOnConn(life, sc, endless(stopped), &Request{Method: http.MethodGet, URL: "/tap"}, "owner")
	}()
	return c, served
}

// cutWriter takes limit bytes, then fails as a client that went away.
type cutWriter struct {
	header http.Header
	n      int
	limit  int
	got    chan struct{}
	once   sync.Once
}

func (w *cutWriter) Header() http.Header { return w.header }
func (w *cutWriter) WriteHeader(int)     {}
func (w *cutWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.got) })
	if w.n >= w.limit {
		return 0, errors.New("client gone")
	}
	w.n += len(p)
	return len(p), nil
}

// TestDirectCancel: the asker's context ending, or its client going
// away, cancels the owner's handler; the owner's member leaving ends the
// asker's copy.
func TestDirectCancel(t *testing.T) {
	// Goroutines of earlier tests (a joined member's gossip throttle
	// lingers for a period) are not this test's.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	t.Run("asker context", func(t *testing.T) {
		stopped := make(chan struct{})
		c, served := flowingPair(t, context.Background(), stopped)
		ctx, cancel := context.WithCancel(context.Background())
		w := &cutWriter{header: http.Header{}, limit: 1 << 40, got: make(chan struct{})}
		done := make(chan error, 1)
		go func() { done <- relayDirect(ctx, c, w) }()
		<-w.got
		cancel()
		if err := waitErr(t, done); !errors.Is(err, context.Canceled) {
			t.Fatalf("relay after cancel: %v", err)
		}
		waitClosed(t, "the owner's handler", stopped)
		waitClosed(t, "the owner's serve", served)
	})

	t.Run("client gone", func(t *testing.T) {
		stopped := make(chan struct{})
		c, served := flowingPair(t, context.Background(), stopped)
		w := &cutWriter{header: http.Header{}, limit: 1 << 20, got: make(chan struct{})}
		done := make(chan error, 1)
		go func() { done <- relayDirect(context.Background(), c, w) }()
		if err := waitErr(t, done); err != nil {
			t.Fatalf("relay to a client that went away: %v", err)
		}
		waitClosed(t, "the owner's handler", stopped)
		waitClosed(t, "the owner's serve", served)
	})

	t.Run("owner leaves", func(t *testing.T) {
		stopped := make(chan struct{})
		life, leave := context.WithCancel(context.Background())
		c, served := flowingPair(t, life, stopped)
		w := &cutWriter{header: http.Header{}, limit: 1 << 40, got: make(chan struct{})}
		done := make(chan error, 1)
		go func() { done <- relayDirect(context.Background(), c, w) }()
		<-w.got
		leave()
		if err := waitErr(t, done); err != nil && !strings.Contains(err.Error(), "broke") {
			t.Fatalf("relay after the owner left: %v", err)
		}
		waitClosed(t, "the owner's handler", stopped)
		waitClosed(t, "the owner's serve", served)
	})

	t.Run("asker stops reading", func(t *testing.T) {
		// A handler blocked writing to an asker that reads nothing ends
		// when the asker closes.
		stopped := make(chan struct{})
		c, served := flowingPair(t, context.Background(), stopped)
		time.Sleep(50 * time.Millisecond) // the buffers fill
		c.Close()
		waitClosed(t, "the owner's handler", stopped)
		waitClosed(t, "the owner's serve", served)
	})

	t.Run("bad header frame", func(t *testing.T) {
		a, b := net.Pipe()
		go func() {
			_, _ = b.Write([]byte{0xff, 0xff, 0xff, 0xff})
			b.Close()
		}()
		err := relayDirect(context.Background(), a, httptest.NewRecorder())
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "header frame") {
			t.Fatalf("a header frame too large: %v", err)
		}
	})
}

// TestDirectTLS: over mutual TLS the stream flows; a dialler without a
// certificate the CA signed is refused and logged.
func TestDirectTLS(t *testing.T) {
	// Goroutines of earlier tests (a joined member's gossip throttle
	// lingers for a period) are not this test's.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	server, client := testTLS(t)
	p := newDirectPair(t, context.Background(), 10*time.Second, server)

	// No client certificate: the handshake fails on the owner's side.
	anon := &tls.Config{RootCAs: client.RootCAs, MinVersion: tls.VersionTLS12}
	if c, err := dialDirect(context.Background(), p.offer(), anon); err == nil {
		// TLS 1.3 reports the missing certificate on the first read.
		_, rerr := c.Read(make([]byte, 1))
		c.Close()
		if rerr == nil {
			t.Fatal("a dialler without a certificate was served")
		}
	}
	waitFor(t, "the TLS refusal logged", func() bool { return p.refusedLogs("TLS handshake failed") == 1 })

	c, err := dialDirect(context.Background(), p.offer(), client)
	if err != nil {
		t.Fatal(err)
	}
	sc := p.accepted(t)
	go serveOnConn(context.Background(), sc, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "over TLS")
	}), &Request{Method: http.MethodGet, URL: "/x"}, "owner")
	rec := httptest.NewRecorder()
	if err := relayDirect(context.Background(), c, rec); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK || rec.Body.String() != "over TLS" {
		t.Fatalf("over TLS: %d %q", rec.Code, rec.Body.String())
	}
}

// TestDirectMember: a member negotiates a direct stream through a node
// actor (its own: two members in one process would share gRPC's global
// logger, which remote sets at start); the copy is byte for byte what the
// handler wrote. A member nobody runs is unreachable; Leave ends a stream
// in flight and waits for both of its sides.
func TestDirectMember(t *testing.T) {
	if testing.Short() {
		t.Skip("joins a member")
	}
	payload := make([]byte, 8<<20)
	_, _ = rand.Read(payload)
	want := sha256.Sum256(payload)
	var handler http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(ForwardedHeader) != "solo" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		for i := 0; i < len(payload); i += 32 << 10 {
			if _, err := w.Write(payload[i:min(i+32<<10, len(payload))]); err != nil {
				return
			}
			http.NewResponseController(w).Flush()
		}
	})
	var mu sync.Mutex
	m := joinTest(t, "solo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := handler
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))

	rec := httptest.NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Direct(ctx, m.SelfAddress(), &Request{Method: http.MethodGet, URL: "/v1/pipelines/r/tap"}, rec); err != nil {
		t.Fatal(err)
	}
	if got := sha256.Sum256(rec.Body.Bytes()); got != want || rec.Code != http.StatusOK {
		t.Fatalf("direct stream: %d, %d bytes, sha256 %x want %x", rec.Code, rec.Body.Len(), got, want)
	}

	// Nobody there: the offer is never answered.
	err := m.Direct(ctx, fmt.Sprintf("127.0.0.1:%d", freePort(t)), &Request{Method: http.MethodGet, URL: "/x"}, httptest.NewRecorder())
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("a direct stream to nobody: %v", err)
	}

	// Leave ends a stream in flight and waits for both of its sides.
	stopped := make(chan struct{})
	mu.Lock()
	handler = endless(stopped)
	mu.Unlock()
	w := &cutWriter{header: http.Header{}, limit: 1 << 40, got: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		done <- m.Direct(ctx, m.SelfAddress(), &Request{Method: http.MethodGet, URL: "/tap"}, w)
	}()
	<-w.got
	m.Leave()
	select {
	case <-stopped:
	default:
		t.Fatal("Leave returned before the stream's handler ended")
	}
	select {
	case <-done:
	default:
		t.Fatal("Leave returned before the asker's copy ended")
	}
	if err := m.Direct(ctx, m.SelfAddress(), &Request{Method: http.MethodGet, URL: "/x"}, httptest.NewRecorder()); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("a direct stream asked of a member that left: %v", err)
	}
}

// joinTest joins a member of cluster "test" on loopback serving h; it
// leaves at the end of the test.
func joinTest(t *testing.T, node string, h http.Handler) *Member {
	t.Helper()
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	addr := fmt.Sprintf("127.0.0.1:%d", freePortPair(t))
	m, err := Join(system, Config{Name: "test", Node: node, Advertise: addr, Heartbeat: 200 * time.Millisecond, ForwardTimeout: 2 * time.Second},
		Server{Handler: h, Info: func(context.Context) NodeInfo { return NodeInfo{} }}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Leave()
		system.Shutdown()
	})
	return m
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// freePortPair returns a loopback port P with P and P+1 free a moment ago.
func freePortPair(t *testing.T) int {
	t.Helper()
	for range 50 {
		a, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := a.Addr().(*net.TCPAddr).Port
		b, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		a.Close()
		if err == nil && p < 65534 {
			b.Close()
			return p
		}
	}
	t.Fatal("no two free consecutive ports")
	return 0
}

// testTLS makes a CA and one certificate for 127.0.0.1 it signed, and
// returns a member's server and client configurations.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
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
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "member"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	server = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	client = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
		return nil
	}
}

func waitClosed(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not end", what)
	}
}
