package api_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/shipote/shipote/api"
)

func TestListenModes(t *testing.T) {
	dir := filepath.Join(shortDir(t), "run", "shipote")
	sock := filepath.Join(dir, "shipote.sock")
	ln, err := api.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for path, want := range map[string]os.FileMode{dir: 0o700, sock: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	if fi, _ := os.Stat(sock); fi.Mode().Type() != os.ModeSocket {
		t.Errorf("%s is not a socket: %v", sock, fi.Mode())
	}
}

func TestListenRefusesALiveSocket(t *testing.T) {
	sock := filepath.Join(shortDir(t), "shipote.sock")
	ln, err := api.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ln2, err := api.Listen(sock); err == nil || !strings.Contains(err.Error(), "already in use by a running daemon") {
		if ln2 != nil {
			ln2.Close()
		}
		t.Fatalf("second Listen: %v, want already in use", err)
	}
	// The live socket is still there and answers.
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("the first listener lost its socket: %v", err)
	}
	c.Close()
}

func TestListenReplacesAStaleSocket(t *testing.T) {
	sock := filepath.Join(shortDir(t), "shipote.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // a daemon that died: the file stays, nobody listens
	if _, err := os.Stat(sock); err != nil {
		t.Fatal(err)
	}
	// A client sees an unreachable daemon there.
	if err := api.NewClient(sock).Health(context.Background()); !errors.Is(err, api.ErrUnreachable) {
		t.Errorf("health on a stale socket: %v, want ErrUnreachable", err)
	}
	ln, err = api.Listen(sock)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln.Close()
}

func TestListenBadPaths(t *testing.T) {
	dir := shortDir(t)
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"", "empty socket path"},
		{file, "is not a socket"},
		{filepath.Join(file, "shipote.sock"), "not a directory"},
		{"/tmp/" + strings.Repeat("x", 120) + ".sock", "at most 107"},
	} {
		ln, err := api.Listen(tc.path)
		if err == nil {
			ln.Close()
			t.Errorf("Listen(%q) succeeded", tc.path)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Listen(%q) = %v, want %q", tc.path, err, tc.want)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
		t.Errorf("the regular file was touched: %q, %v", b, err)
	}
}

func TestUnreachable(t *testing.T) {
	c := api.NewClient(filepath.Join(shortDir(t), "none.sock"))
	err := c.Health(context.Background())
	if !errors.Is(err, api.ErrUnreachable) {
		t.Fatalf("health with no daemon: %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), "none.sock") || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("message %q should name the socket and the cause", err)
	}
	if err := c.Logs(context.Background(), "w", "c", api.LogOptions{Follow: true}, nil); !errors.Is(err, api.ErrUnreachable) {
		t.Errorf("logs with no daemon: %v", err)
	}
}

func TestDefaultSocketPath(t *testing.T) {
	t.Setenv("SHIPOTE_SOCKET", "/run/custom.sock")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	if got := api.DefaultSocketPath(); got != "/run/custom.sock" {
		t.Errorf("with SHIPOTE_SOCKET: %q", got)
	}
	t.Setenv("SHIPOTE_SOCKET", "")
	if got := api.DefaultSocketPath(); got != "/run/user/1000/shipote/shipote.sock" {
		t.Errorf("with XDG_RUNTIME_DIR: %q", got)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	if got, want := api.DefaultSocketPath(), "/tmp/shipote-"+strconv.Itoa(os.Getuid())+"/shipote.sock"; got != want {
		t.Errorf("default: %q, want %q", got, want)
	}
}
