//go:build nocluster

// This file stands in for a member's life in a build with the nocluster
// tag: the package keeps its types (api/server's routing is written
// against them), but links none of protoactor-go's cluster and remote,
// gRPC or the etcd client, and Join refuses. Such a daemon is the
// single-host daemon, smaller on disk and in memory (docs/design.md,
// "A build without the cluster").

package cluster

import (
	"context"
	"net/http"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
)

// Linked tells whether this build can join a cluster: false with the
// nocluster build tag.
const Linked = false

// Member is this process's membership of a cluster. This build makes
// none: Join refuses.
type Member struct{}

// Join refuses in this build: it returns ErrNotLinked.
func Join(*actor.ActorSystem, Config, Server, *zap.Logger) (*Member, error) {
	return nil, ErrNotLinked
}

// The methods below are never reached (no Member is ever made); they keep
// the Member of both builds one shape.

// Leave does nothing.
func (m *Member) Leave() {}

// Self returns "".
func (m *Member) Self() string { return "" }

// SelfAddress returns "".
func (m *Member) SelfAddress() string { return "" }

// Roster returns nothing.
func (m *Member) Roster() []string { return nil }

// Live returns nothing.
func (m *Member) Live() []string { return nil }

// NameOf returns "".
func (m *Member) NameOf(string) string { return "" }

// AddressOf returns ErrNotLinked.
func (m *Member) AddressOf(context.Context, string) (string, error) { return "", ErrNotLinked }

// Info returns ErrNotLinked.
func (m *Member) Info(context.Context, string) (NodeInfo, error) { return NodeInfo{}, ErrNotLinked }

// Forward returns ErrNotLinked.
func (m *Member) Forward(context.Context, string, *Request, time.Duration) (*Response, error) {
	return nil, ErrNotLinked
}

// Stream returns ErrNotLinked.
func (m *Member) Stream(context.Context, string, *Request, http.ResponseWriter) error {
	return ErrNotLinked
}

// Direct returns ErrNotLinked.
func (m *Member) Direct(context.Context, string, *Request, http.ResponseWriter) error {
	return ErrNotLinked
}
