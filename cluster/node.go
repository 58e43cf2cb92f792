//go:build !nocluster

// This file is the node actor, which answers the other members, and the
// token check on the transport.

package cluster

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// nodeActor answers the envelopes other members send. Its Receive does
// no I/O: each request is served by a goroutine, which sends the answer
// to the asker itself.
type nodeActor struct {
	m       *Member
	streams map[string]*ownedStream // the streams it serves, by ID
}

func (n *nodeActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *streamDone, *actor.Terminated:
		n.onStreamMessage(msg, "", nil)
		return
	case *actor.Stopping:
		for _, st := range n.streams {
			st.cancel()
		}
		return
	}
	kind, body, ok := unwrap(ctx.Message())
	if !ok {
		return
	}
	switch kind {
	case kindStreamAck, kindStreamCancel:
		n.onStreamMessage(nil, kind, body)
		return
	}
	sender := ctx.Sender()
	if sender == nil {
		return // nobody to answer
	}
	data := dataOf(ctx.Message())
	if kind == kindStream {
		n.openStream(ctx, body, data, sender)
		return
	}
	m := n.m
	m.serving.Add(1)
	if kind == kindDirect {
		// The goroutine answers with the offer, then serves the stream.
		go func() {
			defer m.serving.Done()
			m.serveDirect(body, data, func(reply any) { m.system.Root.Send(sender, reply) })
		}()
		return
	}
	go func() {
		defer m.serving.Done()
		reply := m.serve(kind, body, data)
		m.system.Root.Send(sender, reply)
	}()
}

// serve answers one request envelope.
func (m *Member) serve(kind string, body, data []byte) any {
	fail := func(msg string) any {
		r, err := wrap(kindError, errorBody{Message: msg})
		if err != nil {
			return nil
		}
		return r
	}
	var (
		out any
		err error
	)
	switch kind {
	case kindInfo:
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.AskTimeout)
		info := m.srv.Info(ctx)
		cancel()
		info.Node, info.Address = m.cfg.Node, m.cfg.Advertise
		out, err = wrap(kindInfoResp, info)
	case kindHTTP:
		var req Request
		if err := json.Unmarshal(body, &req); err != nil {
			return fail("malformed forwarded request: " + err.Error())
		}
		req.Body = data
		timeout := m.cfg.ForwardTimeout
		if ms, perr := strconv.ParseInt(req.Header.Get(deadlineHeader), 10, 64); perr == nil && ms > 0 {
			timeout = time.Duration(ms) * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		resp := m.serveHTTP(ctx, &req)
		cancel()
		out, err = wrapData(kindHTTPResp, resp, resp.Body)
	default:
		return fail("unknown request kind " + strconv.Quote(kind))
	}
	if err != nil {
		return fail(err.Error())
	}
	return out
}

// serveHTTP serves a forwarded request with this member's API handler,
// marked so that it is served here and not forwarded again.
func (m *Member) serveHTTP(ctx context.Context, req *Request) *Response {
	resp := &Response{Node: m.cfg.Node}
	r, err := req.httpRequest(ctx)
	if err != nil {
		resp.Status = http.StatusBadRequest
		resp.Body = []byte(`{"error":{"code":"malformed","message":"forwarded request: ` + jsonEscape(err.Error()) + `"}}`)
		return resp
	}
	rec := &recorder{header: http.Header{}}
	m.srv.Handler.ServeHTTP(rec, r)
	resp.Status = rec.status
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	resp.Header = rec.header
	resp.Body = rec.body.Bytes()
	return resp
}

// recorder is the ResponseWriter of a forwarded request: the answer is
// kept whole and sent back in one message.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// Flush is a no-op: the answer goes back whole.
func (r *recorder) Flush() {}

var _ io.Writer = (*recorder)(nil)

// Token: every gRPC call of the transport carries it as metadata, and the
// server refuses a call without it.

const tokenKey = "shipote-cluster-token"

type tokenCreds string

func (t tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{tokenKey: string(t)}, nil
}

func (t tokenCreds) RequireTransportSecurity() bool { return false }

var _ credentials.PerRPCCredentials = tokenCreds("")

// loggedCreds logs a peer that fails the TLS handshake (a certificate the
// CA did not sign, or none).
type loggedCreds struct {
	credentials.TransportCredentials
	m *Member
}

func (c *loggedCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	out, info, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		c.m.log.Warn("refused a peer: TLS handshake failed", zap.String("peer", conn.RemoteAddr().String()), zap.Error(err))
	}
	return out, info, err
}

func (c *loggedCreds) Clone() credentials.TransportCredentials {
	return &loggedCreds{TransportCredentials: c.TransportCredentials.Clone(), m: c.m}
}

// checkToken is the transport server's stream interceptor.
func (m *Member) checkToken(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := m.authorized(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

// checkTokenUnary is the transport server's unary interceptor.
func (m *Member) checkTokenUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := m.authorized(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (m *Member) authorized(ctx context.Context, method string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	got := md.Get(tokenKey)
	if len(got) == 1 && subtle.ConstantTimeCompare([]byte(got[0]), []byte(m.cfg.Token)) == 1 {
		return nil
	}
	from := "unknown"
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		from = p.Addr.String()
	}
	m.log.Warn("refused a peer without the cluster token", zap.String("peer", from), zap.String("method", method))
	return status.Error(codes.Unauthenticated, "shipote cluster: missing or wrong cluster token")
}

// httpRequest is req as the owner's API handler serves it: its headers,
// less the forwarding deadline, and marked forwarded (by its sender) so
// that it is served here and never forwarded again.
func (req *Request) httpRequest(ctx context.Context) (*http.Request, error) {
	r, err := http.NewRequestWithContext(ctx, req.Method, "http://shipote"+req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return nil, err
	}
	for k, v := range req.Header {
		r.Header[k] = v
	}
	r.Header.Del(deadlineHeader)
	from := req.From
	if from == "" {
		from = "?"
	}
	r.Header.Set(ForwardedHeader, from)
	return r, nil
}
