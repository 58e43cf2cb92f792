package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/shipote/shipote/messages"
)

// BenchmarkHealth is one request round trip over the socket with no
// engine work: the API's own cost.
func BenchmarkHealth(b *testing.B) {
	d := startDaemon(b)
	ctx := context.Background()
	for b.Loop() {
		if err := d.c.Health(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWorkspaceInProcess is the Engine call that
// BenchmarkWorkspaceOverSocket makes through the API: its baseline.
func BenchmarkWorkspaceInProcess(b *testing.B) {
	d := startDaemon(b)
	ctx := context.Background()
	if _, err := d.eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "b"}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := d.eng.Workspace(ctx, "b"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWorkspaceOverSocket is GET /v1/workspaces/{ws} through the
// client.
func BenchmarkWorkspaceOverSocket(b *testing.B) {
	d := startDaemon(b)
	ctx := context.Background()
	if _, err := d.c.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: "b"}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := d.c.Workspace(ctx, "b"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareHTTP is a trivial net/http handler over a Unix socket: the
// baseline of BenchmarkHealth.
func BenchmarkBareHTTP(b *testing.B) {
	sock := shortDir(b) + "/bare.sock"
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok","version":"x"}`+"\n")
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	defer func() { srv.Close(); <-done }()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	for b.Loop() {
		resp, err := hc.Get("http://shipote/healthz")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
