package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shipote/shipote/internal/proc"
	"github.com/shipote/shipote/messages"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newEnv(t *testing.T, allow ...string) Env {
	t.Helper()
	sp := proc.NewSpawner()
	t.Cleanup(sp.Close)
	return Env{Starter: sp, Spec: proc.Spec{Env: []string{"PATH=" + messages.DefaultPath, "WANT=yes"}, Dir: t.TempDir(), AllowExec: allow}}
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if err := Run(context.Background(), &messages.Probe{TCP: ln.Addr().String()}, Env{}); err != nil {
		t.Errorf("open port: %v", err)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	err = Run(context.Background(), &messages.Probe{TCP: addr}, Env{})
	if err == nil || !strings.Contains(err.Error(), "tcp "+addr) {
		t.Errorf("closed port: %v", err)
	}
}

func TestHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if code == 0 {
			code = 200
		}
		if code == 302 {
			w.Header().Set("Location", "/500")
		}
		w.WriteHeader(code)
	}))
	defer srv.Close()
	tests := []struct {
		path string
		ok   bool
	}{
		{"/", true}, {"/204", true}, {"/302", true}, {"/404", false}, {"/503", false},
	}
	for _, tt := range tests {
		err := Run(context.Background(), &messages.Probe{HTTP: srv.URL + tt.path}, Env{})
		if (err == nil) != tt.ok {
			t.Errorf("GET %s: %v, want ok=%v", tt.path, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "status") {
			t.Errorf("GET %s: %v does not give the status", tt.path, err)
		}
	}
}

func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	err := Run(context.Background(), &messages.Probe{HTTP: srv.URL, TimeoutMs: 50}, Env{})
	if err == nil {
		t.Fatal("a server that never answers passed")
	}
}

func TestExec(t *testing.T) {
	env := newEnv(t)
	tests := []struct {
		argv []string
		want string // "" = passes
	}{
		{[]string{"true"}, ""},
		{[]string{"sh", "-c", `test "$WANT" = yes && test "$(pwd)" = "` + env.Spec.Dir + `"`}, ""},
		{[]string{"false"}, "exec false: exit"},
		{[]string{"sh", "-c", "exit 3"}, "3"},
		{[]string{"no-such-probe-binary"}, "exec no-such-probe-binary"},
	}
	for _, tt := range tests {
		err := Run(context.Background(), &messages.Probe{Exec: tt.argv}, env)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v, want a pass", tt.argv, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%q: %v, want an error with %q", tt.argv, err, tt.want)
		}
	}
}

func TestExecRefused(t *testing.T) {
	env := newEnv(t, "/usr/bin/true")
	err := Run(context.Background(), &messages.Probe{Exec: []string{"/bin/sh", "-c", "true"}}, env)
	if err == nil || !strings.Contains(err.Error(), "exec /bin/sh") {
		t.Fatalf("a probe outside allow_exec: %v", err)
	}
}

// TestExecTimeoutKillsGroup: a probe past its timeout is killed with
// what it started, and reported as timed out.
func TestExecTimeoutKillsGroup(t *testing.T) {
	env := newEnv(t)
	marker := filepath.Join(env.Spec.Dir, "started")
	// A sleep nobody else runs, to find it in /proc.
	nap := "61." + strconv.Itoa(os.Getpid())
	err := Run(context.Background(), &messages.Probe{TimeoutMs: 300,
		Exec: []string{"sh", "-c", "sleep " + nap + " & touch " + marker + "; wait"}}, env)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("Run() = %v, want a timeout", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the probe did not start its child: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for sleeping(nap) {
		if time.Now().After(deadline) {
			t.Fatal("the probe's child survived its timeout")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sleeping reports whether a live process runs "sleep arg".
func sleeping(arg string) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || string(b) != "sleep\x00"+arg+"\x00" {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err == nil && !strings.Contains(string(st), ") Z ") {
			return true
		}
	}
	return false
}
