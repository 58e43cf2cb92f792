// This file joins an engine to a cluster through its Config: Membership
// is a shipote.ClusterMembership that serves the other members' requests
// with the engine's own API and routes this member's across the cluster.

package server

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/procfs"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/cluster"
)

// Membership is an engine's membership of a cluster, for
// shipote.Config.Cluster:
//
//	m, err := server.NewMembership(cluster.Config{Name: "prod", Node: "a",
//		Advertise: "127.0.0.1:7400", Peers: []string{"127.0.0.1:7410"}}, server.Options{Logger: log})
//	eng, err := shipote.Start(ctx, system, shipote.Config{StatePath: path, Cluster: m})
//	...
//	http.Serve(ln, m.Server().Handler()) // optional: the API, routed across the cluster
//
// Start joins once the engine has restored; Stop leaves first. A
// Membership joins once: a new engine needs a new one.
type Membership struct {
	cfg  cluster.Config
	opts Options

	mu     sync.Mutex
	used   bool
	srv    *Server
	member *cluster.Member
}

// NewMembership checks cfg and returns a membership whose API server is
// made with opts.
func NewMembership(cfg cluster.Config, opts Options) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Membership{cfg: cfg, opts: opts}, nil
}

// Join joins eng's actor system to the cluster (shipote.Start calls it).
func (m *Membership) Join(eng *shipote.Engine) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used {
		return errors.New("this membership was joined before: make a new one for each engine")
	}
	m.used = true
	srv := New(eng, m.opts)
	member, err := cluster.Join(eng.ActorSystem(), m.cfg, cluster.Server{Handler: srv.Handler(), Info: nodeInfo(eng)}, m.opts.Logger)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", m.cfg.Name, err)
	}
	srv.SetCluster(member)
	m.srv, m.member = srv, member
	return nil
}

// Leave leaves the cluster (shipote's Stop calls it).
func (m *Membership) Leave() {
	m.mu.Lock()
	member := m.member
	m.mu.Unlock()
	if member != nil {
		member.Leave()
	}
}

// Server is the API server over the engine, routing across the cluster;
// nil before Join.
func (m *Membership) Server() *Server {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.srv
}

// Member is this process's membership (the roster, forwarding); nil
// before Join.
func (m *Membership) Member() *cluster.Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.member
}

// nodeInfo says how much memory a new workspace would find on this host:
// MemAvailable less what the workspaces here may still claim (each one's
// memory_max above its RSS).
func nodeInfo(eng *shipote.Engine) func(ctx context.Context) cluster.NodeInfo {
	return func(ctx context.Context) cluster.NodeInfo {
		var info cluster.NodeInfo
		if avail, err := memAvailable(); err == nil {
			info.MemAvailableBytes = avail
		}
		info.HeadroomBytes = int64(info.MemAvailableBytes)
		list, err := eng.Workspaces(ctx)
		if err != nil {
			return info
		}
		info.Workspaces = len(list)
		for _, ws := range list {
			limit := ws.Spec.Soma.MemoryMaxBytes
			if limit <= 0 {
				continue
			}
			var rss int64
			if ws.Stats != nil {
				rss = int64(ws.Stats.RSSBytes)
			}
			if limit > rss {
				info.HeadroomBytes -= limit - rss
			}
		}
		return info
	}
}

// memAvailable reads MemAvailable from /proc/meminfo, in bytes.
func memAvailable() (uint64, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, err
	}
	mi, err := fs.Meminfo()
	if err != nil {
		return 0, err
	}
	if mi.MemAvailableBytes == nil {
		return 0, errors.New("/proc/meminfo has no MemAvailable")
	}
	return *mi.MemAvailableBytes, nil
}
