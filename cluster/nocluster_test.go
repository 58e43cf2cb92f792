//go:build nocluster

package cluster

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
)

// TestJoinRefusedWithoutTheCluster: a build with the nocluster tag makes
// no member, whatever the config, and says why.
func TestJoinRefusedWithoutTheCluster(t *testing.T) {
	if Linked {
		t.Fatal("Linked is true in a nocluster build")
	}
	system := actor.NewActorSystem()
	defer system.Shutdown()
	srv := Server{Handler: http.NotFoundHandler(), Info: func(context.Context) NodeInfo { return NodeInfo{} }}
	for _, cfg := range []Config{
		{Name: "c", Node: "a", Advertise: "127.0.0.1:7000", Peers: []string{"127.0.0.1:7002"}},
		{Name: "c", Node: "a", Advertise: "127.0.0.1:7000", Etcd: []string{"http://127.0.0.1:2379"}},
		{},
	} {
		m, err := Join(system, cfg, srv, nil)
		if m != nil || !errors.Is(err, ErrNotLinked) {
			t.Errorf("Join(%+v) = %v, %v; want nil, ErrNotLinked", cfg, m, err)
		}
	}
}
