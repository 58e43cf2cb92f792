//go:build !nocluster

// This file is a member's life: joining (remote, the cluster, the
// membership provider, the node actor), leaving, and the roster of
// members it knows.

package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
)

// nodeActorName is the name of every member's node actor, so that a
// member's is {address, nodeActorName} without a lookup.
const nodeActorName = "shipote-node"

// Linked tells whether this build can join a cluster: false with the
// nocluster build tag.
const Linked = true

// Member is this process's membership of a cluster.
type Member struct {
	cfg     Config
	log     *zap.Logger
	system  *actor.ActorSystem
	c       *pcluster.Cluster
	prov    membership
	nodePID *actor.PID
	srv     Server

	// serving counts the node actor's goroutines; Leave waits for them.
	serving sync.WaitGroup
	// directs counts the direct streams this member asked for (Direct);
	// Leave ends them and waits.
	directs sync.WaitGroup
	// life ends when the member leaves: direct streams and their offers
	// are cancelled by it.
	life    context.Context
	endLife context.CancelFunc
	// tlsServer and tlsClient are the transport's TLS configurations
	// (nil without TLS), which direct streams use too.
	tlsServer, tlsClient *tls.Config

	mu sync.Mutex
	// names maps member addresses to node names, as learnt from their
	// answers; seen lists every address ever in the topology.
	names  map[string]string
	seen   map[string]bool
	left   bool
	unsubs []func()
}

// Join makes system a member of the cluster cfg describes and serves srv
// to the other members. system must not have started remote already.
// It returns once this member's transport listens and its provider runs:
// with Peers its heartbeat listens, and the others see it within one
// heartbeat; with Etcd it is registered, and the others see it at once.
// An etcd that does not answer within 5 s is an error.
func Join(system *actor.ActorSystem, cfg Config, srv Server, log *zap.Logger) (*Member, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if envelopeRegisterError != nil {
		return nil, envelopeRegisterError
	}
	if srv.Handler == nil || srv.Info == nil {
		return nil, errors.New("cluster: Join needs a handler and an info function")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.AskTimeout == 0 {
		cfg.AskTimeout = DefaultAskTimeout
	}
	if cfg.ForwardTimeout == 0 {
		cfg.ForwardTimeout = DefaultForwardTimeout
	}
	host, port, _ := parseAddr(cfg.Advertise, len(cfg.Etcd) == 0) // validated
	m := &Member{cfg: cfg, log: log.Named("cluster"), system: system, srv: srv,
		names: map[string]string{cfg.Advertise: cfg.Node}, seen: map[string]bool{cfg.Advertise: true}}
	m.life, m.endLife = context.WithCancel(context.Background())

	prov, err := m.newProvider()
	if err != nil {
		return nil, err
	}
	m.prov = prov
	// The transport's port must be free too: remote panics when it
	// cannot listen, so check first (and recover, for a port taken in
	// between).
	probe, err := net.Listen("tcp", cfg.Advertise)
	if err != nil {
		prov.abort()
		return nil, fmt.Errorf("cluster: transport listener: %w", err)
	}
	probe.Close()

	sopts, dopts, err := m.transportOptions()
	if err != nil {
		prov.abort()
		return nil, err
	}
	rcfg := remote.Configure(host, port, remote.WithServerOptions(sopts...), remote.WithDialOptions(dopts...))
	m.c = pcluster.New(system, pcluster.Configure(cfg.Name, prov, disthash.New(), rcfg))
	if err := startMember(m.c); err != nil {
		prov.abort()
		return nil, err
	}

	sub := system.EventStream.Subscribe(func(evt any) {
		if t, ok := evt.(*pcluster.ClusterTopology); ok {
			m.onTopology(t)
		}
	})
	m.unsubs = append(m.unsubs, func() { system.EventStream.Unsubscribe(sub) })
	// The members the provider knew at start (the etcd provider publishes
	// them before this subscription) are on the roster too.
	m.onTopology(&pcluster.ClusterTopology{Members: m.c.MemberList.Members().Members()})

	pid, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &nodeActor{m: m} }), nodeActorName)
	if err != nil {
		m.Leave()
		return nil, fmt.Errorf("cluster: spawn the node actor: %w", err)
	}
	m.nodePID = pid
	m.log.Info("joined", zap.String("cluster", cfg.Name), zap.String("node", cfg.Node),
		zap.String("advertise", cfg.Advertise), zap.Strings("peers", cfg.Peers), zap.Strings("etcd", cfg.Etcd),
		zap.Bool("token", cfg.Token != ""))
	return m, nil
}

// transportOptions are the gRPC options of the transport: mutual TLS
// when configured (else plaintext, on loopback), and the token check.
func (m *Member) transportOptions() ([]grpc.ServerOption, []grpc.DialOption, error) {
	cfg := m.cfg
	var (
		sopts []grpc.ServerOption
		dopts []grpc.DialOption
	)
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: TLS certificate: %w", err)
		}
		caPEM, err := os.ReadFile(cfg.TLSCA)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, nil, fmt.Errorf("cluster: TLS CA %s holds no PEM certificate", cfg.TLSCA)
		}
		server := &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
		client := &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
		m.tlsServer, m.tlsClient = server, client
		sopts = append(sopts, grpc.Creds(&loggedCreds{TransportCredentials: credentials.NewTLS(server), m: m}))
		dopts = append(dopts, grpc.WithTransportCredentials(credentials.NewTLS(client)))
	} else {
		dopts = append(dopts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if cfg.Token != "" {
		sopts = append(sopts, grpc.ChainStreamInterceptor(m.checkToken), grpc.ChainUnaryInterceptor(m.checkTokenUnary))
		dopts = append(dopts, grpc.WithPerRPCCredentials(tokenCreds(cfg.Token)))
	}
	return sopts, dopts, nil
}

// startMember starts protoactor's member, turning its panics (a port it
// cannot listen on, a provider that fails to start) into an error. What
// had started by then (gossip, the transport) is stopped.
func startMember(c *pcluster.Cluster) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if e, ok := r.(error); ok {
			err = fmt.Errorf("cluster: start member: %w", e)
		} else {
			err = fmt.Errorf("cluster: start member: %v", r)
		}
		stopStarted(c)
	}()
	c.StartMember()
	return nil
}

// stopStarted stops the gossip and the transport of a member that failed
// to start, as far as they started.
func stopStarted(c *pcluster.Cluster) {
	defer func() { _ = recover() }() // a transport that never listened has no server to stop
	c.Gossip.Shutdown()
	if c.Remote != nil {
		c.Remote.Shutdown(false)
	}
}

// onTopology records the members in the topology and logs who joined and
// left. It runs on the publisher's goroutine: no I/O.
func (m *Member) onTopology(t *pcluster.ClusterTopology) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mem := range t.Members {
		m.seen[mem.Address()] = true
	}
	for _, mem := range t.Joined {
		m.log.Info("member joined", zap.String("address", mem.Address()), zap.String("node", m.names[mem.Address()]))
	}
	for _, mem := range t.Left {
		m.log.Warn("member left", zap.String("address", mem.Address()), zap.String("node", m.names[mem.Address()]))
	}
}

// Leave stops serving the others and leaves the cluster: the others see
// it gone at once (it says it left) and its transport closes. The actor
// system stays up; its owner shuts it down.
func (m *Member) Leave() {
	m.mu.Lock()
	if m.left {
		m.mu.Unlock()
		return
	}
	m.left = true
	unsubs := m.unsubs
	m.mu.Unlock()
	for _, u := range unsubs {
		u()
	}
	if m.nodePID != nil {
		_ = m.system.Root.StopFuture(m.nodePID).Wait()
	}
	// Direct streams, served and asked for, and their pending offers end
	// with the member's life; then every goroutine of theirs is waited for.
	m.endLife()
	m.serving.Wait()
	m.directs.Wait()
	// protoactor's Cluster.Shutdown would also shut the actor system
	// down, which belongs to its owner: its parts are done here instead.
	m.c.Gossip.SetState(pcluster.GracefullyLeftKey, &emptypb.Empty{})
	m.c.Gossip.Shutdown()
	// Stops the provider: its polling and the heartbeat listener, or its
	// etcd registration (deleted: the others see this member gone at once)
	// and client.
	if err := m.prov.Shutdown(false); err != nil {
		m.log.Warn("stopping the membership provider", zap.Error(err))
	}
	m.c.Remote.Shutdown(false)
	m.log.Info("left the cluster")
}

// Self is this member's node name.
func (m *Member) Self() string { return m.cfg.Node }

// SelfAddress is this member's advertise address.
func (m *Member) SelfAddress() string { return m.cfg.Advertise }

// Roster lists the addresses of every member this one knows of: itself
// first, then its peers and every member ever in the topology, sorted.
// A member that left stays on it, so that it is reported unreachable
// rather than forgotten.
func (m *Member) Roster() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for a := range m.seen {
		if a != m.cfg.Advertise {
			out = append(out, a)
		}
	}
	for _, p := range m.cfg.Peers {
		if p != m.cfg.Advertise && !m.seen[p] {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return append([]string{m.cfg.Advertise}, out...)
}

// Live lists the addresses of the members in the provider's topology now
// (this one included).
func (m *Member) Live() []string {
	out := []string{m.cfg.Advertise}
	for _, mem := range m.c.MemberList.Members().Members() {
		if a := mem.Address(); a != m.cfg.Advertise {
			out = append(out, a)
		}
	}
	slices.Sort(out[1:])
	return out
}

// NameOf returns the node name of the member at addr, once learnt; else
// addr itself.
func (m *Member) NameOf(addr string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.names[addr]; ok {
		return n
	}
	return addr
}

// AddressOf returns the address of the member named node, asking every
// member it does not know the name of yet.
func (m *Member) AddressOf(ctx context.Context, node string) (string, error) {
	find := func() (string, bool) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for a, n := range m.names {
			if n == node {
				return a, true
			}
		}
		return "", false
	}
	if a, ok := find(); ok {
		return a, nil
	}
	var wg sync.WaitGroup
	for _, a := range m.Roster() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = m.Info(ctx, a) // records the name
		}()
	}
	wg.Wait()
	if a, ok := find(); ok {
		return a, nil
	}
	var names []string
	m.mu.Lock()
	for _, n := range m.names {
		names = append(names, n)
	}
	m.mu.Unlock()
	slices.Sort(names)
	return "", fmt.Errorf("no member named %q (known: %v): %w", node, names, ErrNoSuchNode)
}

// ErrNoSuchNode is wrapped by AddressOf's error for a name no member has.
var ErrNoSuchNode = errors.New("no such member")

// ErrUnreachable is wrapped by the error of a question a member did not
// answer in time, or could not be sent.
var ErrUnreachable = errors.New("member unreachable")

func (m *Member) learn(addr, node string) {
	if node == "" {
		return
	}
	m.mu.Lock()
	m.names[addr] = node
	m.mu.Unlock()
}

// Info asks the member at addr what it says of itself, within the ask
// timeout.
func (m *Member) Info(ctx context.Context, addr string) (NodeInfo, error) {
	var info NodeInfo
	if addr == m.cfg.Advertise {
		info = m.srv.Info(ctx)
		info.Node, info.Address = m.cfg.Node, m.cfg.Advertise
		return info, nil
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.AskTimeout)
	defer cancel()
	if _, err := m.ask(ctx, addr, kindInfo, struct{}{}, nil, kindInfoResp, &info); err != nil {
		return NodeInfo{}, err
	}
	info.Address = addr
	m.learn(addr, info.Node)
	return info, nil
}

// Forward sends req to the member at addr and returns its answer. timeout
// bounds the wait (0 = the forward timeout).
func (m *Member) Forward(ctx context.Context, addr string, req *Request, timeout time.Duration) (*Response, error) {
	if timeout <= 0 {
		timeout = m.cfg.ForwardTimeout
	}
	req.From = m.cfg.Node
	if addr == m.cfg.Advertise {
		return m.serveHTTP(ctx, req), nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		if req.Header == nil {
			req.Header = http.Header{}
		}
		req.Header.Set(deadlineHeader, strconv.FormatInt(time.Until(dl).Milliseconds(), 10))
	}
	var resp Response
	data, err := m.ask(ctx, addr, kindHTTP, req, req.Body, kindHTTPResp, &resp)
	if err != nil {
		return nil, err
	}
	resp.Body = data
	m.learn(addr, resp.Node)
	return &resp, nil
}

// deadlineHeader carries how long the forwarding member waits, in ms.
const deadlineHeader = "Shipote-Forward-Deadline-Ms"

// ask sends an envelope of kind to addr's node actor and decodes the
// answer of wantKind into out. A one-shot actor sends it (so the answer
// has a sender to come back to over remote) and hands the answer over.
func (m *Member) ask(ctx context.Context, addr, kind string, body any, data []byte, wantKind string, out any) ([]byte, error) {
	msg, err := wrapData(kind, body, data)
	if err != nil {
		return nil, err
	}
	target := actor.NewPID(addr, nodeActorName)
	answer := make(chan any, 1)
	asker := actor.PropsFromFunc(func(c actor.Context) {
		switch r := c.Message().(type) {
		case *actor.Started:
			c.Request(target, msg)
		case *actor.DeadLetterResponse:
			select {
			case answer <- r:
			default:
			}
		default:
			if _, _, ok := unwrap(r); ok {
				select {
				case answer <- r:
				default:
				}
			}
		}
	})
	pid := m.system.Root.Spawn(asker)
	defer m.system.Root.Stop(pid)
	select {
	case r := <-answer:
		if _, dead := r.(*actor.DeadLetterResponse); dead {
			return nil, fmt.Errorf("member %s: %w (no node actor answers there)", m.NameOf(addr), ErrUnreachable)
		}
		k, b, _ := unwrap(r)
		switch k {
		case wantKind:
			if err := json.Unmarshal(b, out); err != nil {
				return nil, fmt.Errorf("member %s: decoding its answer: %w", m.NameOf(addr), err)
			}
			return dataOf(r), nil
		case kindError:
			var e errorBody
			_ = json.Unmarshal(b, &e)
			return nil, fmt.Errorf("member %s: %s", m.NameOf(addr), e.Message)
		default:
			return nil, fmt.Errorf("member %s answered %q to %q", m.NameOf(addr), k, kind)
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("member %s (%s) did not answer: %w", m.NameOf(addr), addr, ErrUnreachable)
	}
}
