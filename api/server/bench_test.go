package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/api"
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

// benchListSize is how many workspaces the list benchmarks hold.
const benchListSize = 1000

// BenchmarkListWorkspaces is GET /v1/workspaces through the client while
// the engine holds benchListSize idle workspaces (read once by the
// sampler, their views then stay: lists after the first are answered from
// the cached body).
func BenchmarkListWorkspaces(b *testing.B) {
	d := serve(b, startEngine(b, shipote.Config{}), shortDir(b))
	ctx := context.Background()
	for i := range benchListSize {
		if _, err := d.eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("w%05d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		ws, err := d.c.Workspaces(ctx)
		if err != nil || len(ws) != benchListSize {
			b.Fatal(len(ws), err)
		}
	}
}

// BenchmarkListWorkspacesFloor is net/http giving the bytes of
// BenchmarkListWorkspaces' answer through the same client: its baseline.
func BenchmarkListWorkspacesFloor(b *testing.B) {
	d := serve(b, startEngine(b, shipote.Config{}), shortDir(b))
	ctx := context.Background()
	for i := range benchListSize {
		if _, err := d.eng.CreateWorkspace(ctx, messages.WorkspaceSpec{Label: fmt.Sprintf("w%05d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", d.sock)
	}}
	resp, err := (&http.Client{Transport: tr}).Get("http://shipote/v1/workspaces")
	if err != nil {
		b.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	tr.CloseIdleConnections()
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatal(resp.Status, err)
	}
	body := string(raw)
	sock := shortDir(b) + "/floor.sock"
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = io.WriteString(w, body)
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	defer func() { srv.Close(); <-done }()
	c := api.NewClient(sock)
	defer c.CloseIdleConnections()
	for b.Loop() {
		ws, err := c.Workspaces(ctx)
		if err != nil || len(ws) != benchListSize {
			b.Fatal(len(ws), err)
		}
	}
}
