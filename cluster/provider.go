//go:build !nocluster

// This file builds a member's membership provider: protoactor's
// automanaged one, which polls the heartbeat listener every member serves
// (Config.Peers), or its etcd one, with which every member registers
// itself under a lease (Config.Etcd).

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/labstack/echo"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// EtcdLeaseTTL is the lease under which protoactor's etcd provider
// registers a member. The provider fixes it; the etcd client renews it
// every third of it. A member that dies without leaving (kill -9) leaves
// the others' topology once its lease expires: within the TTL, plus the
// etcd leader's expiry sweep (every 500 ms).
const EtcdLeaseTTL = 3 * time.Second

// etcdCallTimeout bounds every etcd request: the check that etcd answers
// at Join, and each request of the provider (which asks without a
// deadline, and would otherwise wait forever for an etcd that is down).
// A variable for the tests.
var etcdCallTimeout = 5 * time.Second

// etcdBaseKey, followed by the cluster's name, is the base key given to
// the provider. It keys a member BASE/NAME/ID and watches the prefix
// BASE/NAME, with no slash after it: were NAME not in BASE too, cluster
// "prod" would see the members of cluster "prod2".
const etcdBaseKey = "/shipote/clusters/"

// membership is the provider a member runs.
type membership interface {
	pcluster.ClusterProvider
	// abort releases what the provider holds when the member does not
	// start; Shutdown is for a member that did.
	abort()
}

// newProvider builds the provider cfg asks for. The automanaged one
// listens on the heartbeat port at once; the etcd one reaches etcd when
// the member starts.
func (m *Member) newProvider() (membership, error) {
	if len(m.cfg.Etcd) > 0 {
		return m.newEtcdProvider()
	}
	return m.newAutomanagedProvider()
}

// automanagedProvider is protoactor's automanaged provider with the
// heartbeat listener it serves.
type automanagedProvider struct {
	*automanaged.AutoManagedProvider
	ln net.Listener
}

func (p *automanagedProvider) abort() { p.ln.Close() }

// newAutomanagedProvider listens on the heartbeat port and returns the
// provider polling every peer's (and this member's).
func (m *Member) newAutomanagedProvider() (membership, error) {
	cfg := m.cfg
	_, port, _ := splitAddr(cfg.Advertise) // validated
	// The heartbeat listener is ours, bound to the advertise host: the
	// provider's own would bind 0.0.0.0.
	ln, err := net.Listen("tcp", heartbeatAddr(cfg.Advertise))
	if err != nil {
		return nil, fmt.Errorf("cluster: heartbeat listener: %w", err)
	}
	hb := echo.New()
	hb.HideBanner, hb.HidePort = true, true
	hb.Listener = ln
	hb.GET("/_health", func(c echo.Context) error { return c.JSON(http.StatusOK, m.nodeModel()) })
	hosts := []string{heartbeatAddr(cfg.Advertise)}
	for _, p := range cfg.Peers {
		if h := heartbeatAddr(p); !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return &automanagedProvider{AutoManagedProvider: automanaged.NewWithTesting(cfg.Heartbeat, port+1, hb, hosts...), ln: ln}, nil
}

// heartbeatAddr is the heartbeat listener's address of the member that
// advertises addr.
func heartbeatAddr(addr string) string {
	h, p, err := splitAddr(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(h, strconv.Itoa(p+1))
}

// nodeModel is what the heartbeat answers: the provider's node model.
func (m *Member) nodeModel() *automanaged.NodeModel {
	host, port, _ := splitAddr(m.cfg.Advertise)
	return automanaged.NewNode(m.cfg.Name, m.system.ID, host, port, port+1, m.c.GetClusterKinds())
}

// etcdProvider is protoactor's etcd provider, made when the member
// starts, with the etcd client it makes for itself: the provider never
// closes it (its connection, lease keep-alive and watch goroutines would
// outlive the member), so Shutdown does.
//
// Neither is made before StartMember: protoactor's remote, which starts
// first, sets gRPC's global logger, and an etcd client made earlier
// would already be logging through it from its own goroutines.
type etcdProvider struct {
	cfg       clientv3.Config
	baseKey   string
	endpoints string
	log       *zap.Logger

	p      *etcd.Provider   // nil until StartMember
	client *clientv3.Client // p's
	once   sync.Once
}

// newEtcdProvider returns the provider for cfg.Etcd, not started.
func (m *Member) newEtcdProvider() (membership, error) {
	return &etcdProvider{
		cfg: clientv3.Config{
			Endpoints:   m.cfg.Etcd,
			DialTimeout: etcdCallTimeout,
			DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(boundEtcdRequest)},
			Logger:      m.log.Named("etcd"),
		},
		baseKey:   etcdBaseKey + m.cfg.Name,
		endpoints: strings.Join(m.cfg.Etcd, ","),
		log:       m.log,
	}, nil
}

// StartMember makes the provider, checks that etcd answers (within
// etcdCallTimeout) and starts it: it reads the members, registers this
// one under a lease and watches the others.
func (e *etcdProvider) StartMember(c *pcluster.Cluster) error {
	p, err := etcd.NewWithConfig(e.baseKey, e.cfg)
	if err != nil {
		return fmt.Errorf("etcd client for %s: %w", e.endpoints, err)
	}
	client, err := etcdClientOf(p)
	if err != nil {
		return err
	}
	e.client = client
	ctx, cancel := context.WithTimeout(context.Background(), etcdCallTimeout)
	defer cancel()
	if _, err := client.Get(ctx, e.baseKey, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		return fmt.Errorf("etcd at %s did not answer within %v: %w", e.endpoints, etcdCallTimeout, err)
	}
	e.p = p
	return p.StartMember(c)
}

// StartClient is not used: every process that joins is a member.
func (e *etcdProvider) StartClient(*pcluster.Cluster) error {
	return errors.New("cluster: the etcd provider starts members only")
}

// Shutdown deregisters this member (the others see it gone at once),
// stops watching and closes the etcd client, once. The provider's
// keep-alive goroutine ends within a second (its retry pause).
func (e *etcdProvider) Shutdown(graceful bool) error {
	var err error
	e.once.Do(func() {
		if e.p != nil {
			err = shutdownEtcd(e.p, graceful)
		}
		if e.client != nil {
			if cerr := e.client.Close(); cerr != nil && !errors.Is(cerr, context.Canceled) {
				e.log.Debug("closing the etcd client", zap.Error(cerr))
			}
		}
	})
	return err
}

// abort is Shutdown: a provider that started watching must stop (it
// would retry a closed client's watch without end).
func (e *etcdProvider) abort() { _ = e.Shutdown(false) }

// shutdownEtcd is the provider's Shutdown, its panics (a member it never
// started) turned into an error.
func shutdownEtcd(p *etcd.Provider, graceful bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cluster: etcd provider shutdown: %v", r)
		}
	}()
	if err := p.Shutdown(graceful); err != nil {
		return fmt.Errorf("cluster: deregister from etcd: %w", err)
	}
	return nil
}

// etcdClientOf returns the client p made for itself. The provider keeps
// it in an unexported field and never closes it; this is the one way to.
func etcdClientOf(p *etcd.Provider) (*clientv3.Client, error) {
	f := reflect.ValueOf(p).Elem().FieldByName("client")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*clientv3.Client]() {
		return nil, errors.New("protoactor's etcd provider holds no etcd client where expected: it could not be closed")
	}
	return *(**clientv3.Client)(unsafe.Pointer(f.UnsafeAddr())), nil
}

// boundEtcdRequest gives an etcd request that has no deadline (every one
// of the provider's) etcdCallTimeout, and makes running out of it final:
// the etcd client retries a request whose own deadline passed, up to 100
// times, so the error it gets is not one it takes for a deadline.
func boundEtcdRequest(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if _, ok := ctx.Deadline(); ok {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	bctx, cancel := context.WithTimeout(ctx, etcdCallTimeout)
	defer cancel()
	err := invoker(bctx, method, req, reply, cc, opts...)
	if err != nil && bctx.Err() != nil && ctx.Err() == nil {
		return fmt.Errorf("etcd %s: no answer within %v (%v): %w", method, etcdCallTimeout, err, errEtcdTimeout)
	}
	return err
}

// errEtcdTimeout is wrapped by the error of an etcd request of the
// provider that got no answer in time.
var errEtcdTimeout = errors.New("etcd request timed out")
