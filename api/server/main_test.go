package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/api/server"
	"github.com/shipote/shipote/messages"
)

// helperEnv makes the test binary act as a client of the socket in
// helperSocketEnv instead of running tests (see TestPeerCredentials).
const (
	helperEnv       = "SHIPOTE_API_TEST_HELPER"
	helperSocketEnv = "SHIPOTE_API_TEST_SOCKET"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "client" {
		os.Exit(clientHelper(os.Getenv(helperSocketEnv)))
	}
	// protoactor's dead-letter throttle parks a goroutine for one period
	// (1 s) after a dead letter; it ends by itself.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// clientHelper asks the daemon at sock for its workspaces and prints what
// came back: "ok", or "error STATUS CODE MESSAGE".
func clientHelper(sock string) int {
	c := api.NewClient(sock)
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Workspaces(ctx)
	var ae *api.Error
	switch {
	case err == nil:
		fmt.Println("ok")
	case errors.As(err, &ae):
		fmt.Printf("error %d %s %s\n", ae.Status, ae.Code, ae.Message)
	default:
		fmt.Println("failed", err)
		return 1
	}
	return 0
}

// testDaemon is an engine served on a real socket.
type testDaemon struct {
	eng  *shipote.Engine
	sock string
	c    *api.Client
	logs *observer.ObservedLogs
	stop func() error // stops serving and returns Serve's error
}

// shortDir returns a fresh directory whose socket path fits in sun_path.
func shortDir(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	if len(d) < 80 {
		return d
	}
	d, err := os.MkdirTemp("/tmp", "sa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func startEngine(t testing.TB, cfg shipote.Config) *shipote.Engine {
	t.Helper()
	cfg.Limits = "none"
	if cfg.Grace == 0 {
		cfg.Grace = 2 * time.Second
	}
	eng, err := shipote.Start(context.Background(), shipote.NewActorSystem(nil), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := eng.Stop(ctx); err != nil {
			t.Errorf("stop engine: %v", err)
		}
	})
	return eng
}

// startDaemon starts an in-memory engine and serves it on a socket in a
// fresh directory; everything stops in Cleanup.
func startDaemon(t testing.TB) *testDaemon {
	t.Helper()
	return serve(t, startEngine(t, shipote.Config{}), shortDir(t))
}

func serve(t testing.TB, eng *shipote.Engine, dir string) *testDaemon {
	t.Helper()
	return serveWith(t, eng, dir, 10*time.Second)
}

func serveWith(t testing.TB, eng *shipote.Engine, dir string, shutdownTimeout time.Duration) *testDaemon {
	t.Helper()
	sock := dir + "/shipote.sock"
	core, logs := observer.New(zap.DebugLevel)
	srv := server.New(eng, server.Options{Logger: zap.New(core), SocketPath: sock, ShutdownTimeout: shutdownTimeout})
	ln, err := api.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	d := &testDaemon{eng: eng, sock: sock, c: api.NewClient(sock), logs: logs}
	var stopped bool
	var serveErr error
	d.stop = func() error {
		if stopped {
			return serveErr
		}
		stopped = true
		cancel()
		select {
		case serveErr = <-done:
		case <-time.After(60 * time.Second):
			serveErr = errors.New("Serve did not return within 60 s")
		}
		d.c.CloseIdleConnections()
		return serveErr
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return d
}

// raw does a request over the socket without the client, for what the
// client never sends; it returns the answer and its body.
func (d *testDaemon) raw(t *testing.T, method, path, body string) (*http.Response, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", d.sock)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(testCtx(t), method, "http://shipote"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp, string(b)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 20 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func native(exec string, argv ...string) messages.CommandRef {
	return messages.CommandRef{Payload: messages.Payload{Native: &messages.NativePayload{Exec: exec, Argv: argv}}}
}
