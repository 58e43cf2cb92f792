//go:build !nocluster

package cluster

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/goleak"
)

func TestValidate(t *testing.T) {
	good := Config{Name: "prod", Node: "a", Advertise: "127.0.0.1:7000", Peers: []string{"127.0.0.1:7002", "localhost:7004", "[::1]:7006"}}
	if err := good.Validate(); err != nil {
		t.Fatalf("a good config: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"no cluster name", func(c *Config) { c.Name = "" }, "cluster name"},
		{"bad node", func(c *Config) { c.Node = "a@b" }, "node name"},
		{"no node", func(c *Config) { c.Node = "" }, "node name"},
		{"advertise without port", func(c *Config) { c.Advertise = "127.0.0.1" }, "HOST:PORT"},
		{"advertise without host", func(c *Config) { c.Advertise = ":7000" }, "no host"},
		{"advertise port 0", func(c *Config) { c.Advertise = "127.0.0.1:0" }, "port must be"},
		{"advertise last port", func(c *Config) { c.Advertise = "127.0.0.1:65535" }, "PORT+1"},
		{"advertise not loopback", func(c *Config) { c.Advertise = "10.0.0.1:7000" }, "loopback"},
		{"peer not loopback", func(c *Config) { c.Peers = []string{"example.com:7000"} }, "loopback"},
		{"peer bad", func(c *Config) { c.Peers = []string{"nope"} }, `peer "nope"`},
		{"negative timeout", func(c *Config) { c.AskTimeout = -time.Second }, "negative"},
		{"peers and etcd", func(c *Config) { c.Etcd = []string{"http://127.0.0.1:2379"} }, "exclude each other"},
		{"etcd without scheme", etcdOnly("127.0.0.1:2379"), "not a URL"},
		{"etcd host without scheme", etcdOnly("localhost:2379"), "http:// or https://"},
		{"etcd bad scheme", etcdOnly("unix://127.0.0.1:2379"), "http:// or https://"},
		{"etcd without port", etcdOnly("http://127.0.0.1"), "HOST:PORT"},
		{"etcd without host", etcdOnly("http://:2379"), "no host"},
		{"etcd port 0", etcdOnly("http://127.0.0.1:0"), "port must be 1-65535"},
		{"etcd port not a number", etcdOnly("http://127.0.0.1:client"), "not a URL"},
		{"etcd path", etcdOnly("http://127.0.0.1:2379/v3"), "no user, path or query"},
		{"etcd user", etcdOnly("http://root@127.0.0.1:2379"), "no user, path or query"},
		{"etcd empty", etcdOnly(""), "http:// or https://"},
		{"etcd not loopback", etcdOnly("http://10.0.0.1:2379"), "loopback"},
		{"etcd mixed schemes", etcdOnly("http://127.0.0.1:2379", "https://127.0.0.1:2380"), "mix http and https"},
		{"etcd advertise without port", func(c *Config) { etcdOnly("http://127.0.0.1:2379")(c); c.Advertise = "127.0.0.1" }, "HOST:PORT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			c.Peers = append([]string(nil), good.Peers...)
			tc.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
	err := Config{Name: "p", Node: "a", Advertise: "10.0.0.1:7000"}.Validate()
	if !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("err = %v, want ErrNotLoopback", err)
	}
	err = Config{Name: "p", Node: "a", Advertise: "127.0.0.1:7000", Etcd: []string{"http://10.0.0.1:2379"}}.Validate()
	if !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("err = %v, want ErrNotLoopback", err)
	}
	// With etcd, PORT+1 is not the heartbeat's: the last port is good;
	// with TLS, any etcd host is.
	for _, c := range []Config{
		{Name: "p", Node: "a", Advertise: "127.0.0.1:65535", Etcd: []string{"http://127.0.0.1:2379", "http://localhost:22379/"}},
		{Name: "p", Node: "a", Advertise: "10.0.0.1:7000", Etcd: []string{"https://etcd.example.com:2379"},
			TLSCert: "c.pem", TLSKey: "k.pem", TLSCA: "ca.pem"},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

// etcdOnly sets the etcd endpoints of a config and drops its peers.
func etcdOnly(endpoints ...string) func(*Config) {
	return func(c *Config) { c.Peers, c.Etcd = nil, endpoints }
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func TestEnvelopeRoundTrip(t *testing.T) {
	msg, err := wrap(kindHTTP, Request{Method: "GET", URL: "/v1/workspaces?limit=1", From: "a"})
	if err != nil {
		t.Fatal(err)
	}
	kind, body, ok := unwrap(msg)
	if !ok || kind != kindHTTP || !strings.Contains(string(body), `"/v1/workspaces?limit=1"`) {
		t.Fatalf("unwrap = %q %s %v", kind, body, ok)
	}
	if _, _, ok := unwrap(&actor.Started{}); ok {
		t.Fatal("unwrap took a message that is not an envelope")
	}
	if _, _, ok := unwrap("text"); ok {
		t.Fatal("unwrap took a string")
	}
}

// TestStreamWriterWindow: a streamed answer's writes are gathered into
// chunks of at most streamChunkMax, each taking a credit; with none left
// the writer waits, and a cancelled stream's writer fails at once.
func TestStreamWriterWindow(t *testing.T) {
	st := &ownedStream{credits: make(chan struct{}, 2)}
	st.credits <- struct{}{}
	st.credits <- struct{}{}
	ctx, cancel := contextWithCancel()
	var sent []streamChunk
	w := &streamWriter{id: "s1", st: st, ctx: ctx, header: http.Header{}, send: func(ch streamChunk) { sent = append(sent, ch) }}
	w.Header().Set("Content-Type", "application/x-ndjson")
	if _, err := w.Write([]byte(strings.Repeat("x", streamChunkMax+10))); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || len(sent[0].Data) != streamChunkMax || sent[0].Status != http.StatusOK ||
		sent[0].Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("after a write past one chunk: %d chunks", len(sent))
	}
	w.Flush()
	if len(sent) != 2 || len(sent[1].Data) != 10 || sent[1].Header != nil {
		t.Fatalf("after a flush: %+v", sent)
	}
	// No credit left: the next chunk waits until the stream is cancelled.
	done := make(chan error, 1)
	go func() { _, err := w.Write([]byte(strings.Repeat("y", streamChunkMax))); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("a write without credit returned %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled stream's write succeeded")
	}
	n := len(sent)
	w.end("")
	if len(sent) != n {
		t.Fatal("a cancelled stream sent its end")
	}
	// A stream that ends: its last chunk says so, without a credit.
	ctx2, cancel2 := contextWithCancel()
	defer cancel2()
	sent = nil
	w2 := &streamWriter{id: "s2", st: &ownedStream{credits: make(chan struct{})}, ctx: ctx2, header: http.Header{},
		send: func(ch streamChunk) { sent = append(sent, ch) }}
	w2.end("")
	if len(sent) != 1 || !sent[0].Done || sent[0].Status != http.StatusOK {
		t.Fatalf("the end of an empty stream: %+v", sent)
	}
}

// TestJoinEtcdUnreachable: an etcd that does not answer makes Join fail
// with an error naming it, within the bound, and leaves no goroutine of
// the etcd client (or of the transport) behind; the transport's port is
// free again.
func TestJoinEtcdUnreachable(t *testing.T) {
	defer func(d time.Duration) { etcdCallTimeout = d }(etcdCallTimeout)
	etcdCallTimeout = 500 * time.Millisecond
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	etcdAddr, advertise := free(), free() // nobody listens there any more
	system := actor.NewActorSystem()
	defer system.Shutdown()
	ignore := goleak.IgnoreCurrent()
	start := time.Now()
	m, err := Join(system, Config{Name: "t", Node: "a", Advertise: advertise, Etcd: []string{"http://" + etcdAddr}},
		Server{Handler: http.NotFoundHandler(), Info: func(context.Context) NodeInfo { return NodeInfo{} }}, nil)
	if err == nil {
		m.Leave()
		t.Fatal("Join succeeded without etcd")
	}
	if !strings.Contains(err.Error(), "etcd at http://"+etcdAddr+" did not answer") {
		t.Fatalf("err = %v, want one naming the etcd that did not answer", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Join took %v to give up, want about %v", took, etcdCallTimeout)
	}
	ln, err := net.Listen("tcp", advertise)
	if err != nil {
		t.Fatalf("the transport still listens after a failed Join: %v", err)
	}
	ln.Close()
	// The gossip, which had started, leaves a throttle's timer that ends
	// by itself. The closed etcd client's connection goroutines end
	// shortly after its Close: they are waited for (up to ~10 s on a
	// loaded machine), so that none is left to race with the next test's
	// start of remote, which sets gRPC's global logger.
	opts := []goleak.Option{ignore, goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/cluster.(*Gossiper).StartGossiping.NewThrottle.func3.1")}
	for wait := time.Now(); goleak.Find(opts...) != nil && time.Since(wait) < 10*time.Second; {
		time.Sleep(100 * time.Millisecond)
	}
	goleak.VerifyNone(t, opts...)
}
