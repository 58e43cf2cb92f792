// Package cluster joins shipote daemons, or engines embedded in other
// programs, into one cluster with protoactor-go's own cluster package:
// its automanaged provider (or its etcd provider) keeps the membership,
// its remote carries the messages. Each member runs one actor that serves
// the others: it answers who the member is and how much memory it has to
// spare, and it serves API requests forwarded to it with the member's own
// API handler, so that every verb works from any member for any workspace
// (see api/server's routing and docs/design.md, "Cluster").
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/shipote/shipote/messages"
)

// Config says how a member joins its cluster.
type Config struct {
	// Name is the cluster's name; members of other clusters are ignored.
	Name string
	// Node is this member's name, unique in the cluster (a label:
	// [A-Za-z0-9._-], at most 64 characters). Workspaces are named
	// label@node.
	Node string
	// Advertise is HOST:PORT where the other members reach this one.
	// PORT carries actor messages and, without Etcd, PORT+1 the
	// membership heartbeat. Without TLS, HOST must be a loopback address.
	Advertise string
	// Peers are the other members' Advertise addresses (the automanaged
	// provider polls every one of them, and this member).
	Peers []string
	// Etcd are etcd client endpoints (http://HOST:PORT or
	// https://HOST:PORT): membership is then protoactor's etcd provider's
	// (each member registers itself under a lease), not the automanaged
	// one. Set Peers or Etcd, not both. Without TLS, HOST must be a
	// loopback address.
	Etcd []string
	// Token, when set, is a secret every member must present: a peer
	// without it is refused.
	Token string
	// TLSCert, TLSKey and TLSCA are PEM files: this member's certificate
	// and key, and the CA that signed every member's. Set all three for
	// mutual TLS on the transport (a peer whose certificate that CA did
	// not sign is refused); then any address may be advertised.
	TLSCert, TLSKey, TLSCA string
	// Heartbeat is how often members poll each other; 0 = 1 s. The etcd
	// provider does not use it (see EtcdLeaseTTL).
	Heartbeat time.Duration
	// AskTimeout bounds a question to one member (a list's fan-out, a
	// lookup); 0 = 1 s. A member that does not answer in time is reported
	// unreachable.
	AskTimeout time.Duration
	// ForwardTimeout bounds a forwarded request; 0 = 60 s.
	ForwardTimeout time.Duration
}

// Defaults.
const (
	DefaultHeartbeat      = time.Second
	DefaultAskTimeout     = time.Second
	DefaultForwardTimeout = 60 * time.Second
)

// ErrNotLoopback is wrapped by Validate's error for an advertise host
// that is not loopback, on a cluster without TLS.
var ErrNotLoopback = errors.New("without TLS a member binds loopback addresses only")

// ErrNotLinked is Join's error in a build with the nocluster tag, which
// links none of the cluster's transport.
var ErrNotLinked = errors.New("this shipote was built with the nocluster tag and cannot join a cluster")

// Validate checks c and returns an error naming the first bad field.
func (c Config) Validate() error {
	if err := messages.ValidateLabel(c.Name); err != nil {
		return fmt.Errorf("cluster name: %w", err)
	}
	if err := messages.ValidateLabel(c.Node); err != nil {
		return fmt.Errorf("node name: %w", err)
	}
	if len(c.Peers) > 0 && len(c.Etcd) > 0 {
		return errors.New("peers and etcd endpoints exclude each other: membership comes from one provider")
	}
	host, _, err := parseAddr(c.Advertise, len(c.Etcd) == 0)
	if err != nil {
		return fmt.Errorf("advertise address: %w", err)
	}
	tlsFiles := 0
	for _, f := range []string{c.TLSCert, c.TLSKey, c.TLSCA} {
		if f != "" {
			tlsFiles++
		}
	}
	if tlsFiles != 0 && tlsFiles != 3 {
		return errors.New("TLS needs a certificate, its key and the CA (all three)")
	}
	secure := tlsFiles == 3
	if !secure && !isLoopback(host) {
		return fmt.Errorf("advertise address %s: %w (127.0.0.0/8, ::1 or localhost)", c.Advertise, ErrNotLoopback)
	}
	seen := map[string]bool{c.Advertise: true}
	for _, p := range c.Peers {
		h, _, err := splitAddr(p)
		if err != nil {
			return fmt.Errorf("peer %q: %w", p, err)
		}
		if !secure && !isLoopback(h) {
			return fmt.Errorf("peer %s: %w", p, ErrNotLoopback)
		}
		if seen[p] {
			continue // this member, or a peer named twice
		}
		seen[p] = true
	}
	scheme := ""
	for _, e := range c.Etcd {
		u, err := parseEtcdEndpoint(e)
		if err != nil {
			return fmt.Errorf("etcd endpoint %q: %w", e, err)
		}
		if !secure && !isLoopback(u.Hostname()) {
			return fmt.Errorf("etcd endpoint %s: %w", e, ErrNotLoopback)
		}
		if scheme != "" && u.Scheme != scheme {
			return fmt.Errorf("etcd endpoint %s: endpoints mix http and https", e)
		}
		scheme = u.Scheme
	}
	if c.Heartbeat < 0 || c.AskTimeout < 0 || c.ForwardTimeout < 0 {
		return errors.New("cluster: timeouts must not be negative")
	}
	return nil
}

// splitAddr parses HOST:PORT; PORT must leave room for the heartbeat's
// PORT+1.
func splitAddr(addr string) (host string, port int, err error) {
	return parseAddr(addr, true)
}

// parseAddr parses HOST:PORT; with heartbeat, PORT must leave room for
// the heartbeat's PORT+1.
func parseAddr(addr string, heartbeat bool) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not HOST:PORT: %w", addr, err)
	}
	if h == "" {
		return "", 0, fmt.Errorf("%q has no host", addr)
	}
	n, err := strconv.Atoi(p)
	switch {
	case heartbeat && (err != nil || n < 1 || n > 65534):
		return "", 0, fmt.Errorf("%q: port must be 1-65534 (PORT+1 carries the heartbeat)", addr)
	case err != nil || n < 1 || n > 65535:
		return "", 0, fmt.Errorf("%q: port must be 1-65535", addr)
	}
	return h, n, nil
}

// parseEtcdEndpoint parses an etcd client endpoint: http or https, a
// host and a port, nothing else.
func parseEtcdEndpoint(e string) (*url.URL, error) {
	u, err := url.Parse(e)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("not an http:// or https:// URL (http://HOST:PORT)")
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("want SCHEME://HOST:PORT only (no user, path or query)")
	}
	if _, _, err := parseAddr(u.Host, false); err != nil {
		return nil, err
	}
	return u, nil
}

// isLoopback says whether host is a loopback IP or localhost.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NodeInfo is what a member says of itself.
type NodeInfo struct {
	Node    string `json:"node"`
	Address string `json:"address"`
	// Workspaces is how many workspaces it holds.
	Workspaces int `json:"workspaces"`
	// MemAvailableBytes is the host's MemAvailable.
	MemAvailableBytes uint64 `json:"mem_available_bytes"`
	// HeadroomBytes is MemAvailable less what its workspaces may still
	// claim (each one's memory_max above its RSS): where a new workspace
	// fits best.
	HeadroomBytes int64 `json:"headroom_bytes"`
}

// Request is an API request forwarded to the member that serves it.
type Request struct {
	Method string      `json:"method"`
	URL    string      `json:"url"` // path and query
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"-"` // travels beside the JSON
	// From is the forwarding member's node name.
	From string `json:"from"`
}

// Response is the answer to a forwarded request, as the owner's API
// handler wrote it.
type Response struct {
	Node   string      `json:"node"`
	Status int         `json:"status"`
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"-"` // travels beside the JSON
}

// ForwardedHeader marks a request a member forwarded: it is served where
// it arrives and never forwarded again. Its value is the sender's node.
const ForwardedHeader = "Shipote-Forwarded"

// Server is what a member serves to the others: its API handler, which
// forwarded requests go to, and what it says of itself.
type Server struct {
	Handler http.Handler
	Info    func(ctx context.Context) NodeInfo
}
