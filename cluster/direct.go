//go:build !nocluster

// This file carries a forwarded request's answer over a direct stream: a
// TCP connection between the two members, negotiated by their node
// actors, for answers that are bulk bytes (a tap) rather than messages.
//
// The asking member sends the request to the owner's node actor (over the
// authenticated transport, as every request goes). A goroutine of the
// owner listens on its advertise host, port 0, makes a one-time random key
// and answers {address, key}. The asker dials that address (with the
// transport's TLS client configuration when TLS is configured) and sends
// the key; the owner compares it in constant time (a wrong key is refused
// and logged, and the offer waits on; nobody with the key within
// directOfferTTL and it is withdrawn), closes the listener and serves the
// request with its own API handler, writing into the connection: a header
// frame (4-byte big-endian length, then the JSON of status and headers),
// then the body's raw bytes as the handler writes them, buffered and sent
// at each of the handler's flushes. The asker copies both to its client.
// Either side ending ends the stream: the asker closes the connection when
// its client goes (the owner, which watches the connection, cancels its
// handler); the owner closes it when its handler ends (the asker returns).

package cluster

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Direct stream envelope kinds.
const (
	kindDirect      = "direct"       // request: directOpen
	kindDirectOffer = "direct-offer" // answer: directOffer
)

const (
	// directKeyLen is the size of an offer's one-time key.
	directKeyLen = 32
	// directOfferTTL is how long an offer waits for the dial that
	// presents its key.
	directOfferTTL = 10 * time.Second
	// directKeyWait is how long an accepted connection has to complete
	// its TLS handshake and present a key.
	directKeyWait = 5 * time.Second
	// directDialTimeout bounds the asker's dial and TLS handshake.
	directDialTimeout = 10 * time.Second
	// directBufBytes is the buffer of each side: the owner's writes are
	// gathered up to it between the handler's flushes; the asker reads up
	// to it at once.
	directBufBytes = 256 << 10
	// directHeaderMax bounds the header frame.
	directHeaderMax = 1 << 20
)

// ErrDirectRefused is wrapped by the error of an accepted connection that
// did not present the offer's key.
var ErrDirectRefused = errors.New("direct stream refused")

// directOpen asks the owner for a direct stream serving Req.
type directOpen struct {
	Req Request `json:"req"`
}

// directOffer is the owner's answer: where to dial and the key to send.
type directOffer struct {
	Node    string `json:"node"`
	Address string `json:"address"`
	Key     []byte `json:"key"`
}

// directHeader is the first frame of a direct stream.
type directHeader struct {
	Node   string      `json:"node,omitempty"`
	Status int         `json:"status"`
	Header http.Header `json:"header,omitempty"`
}

// Direct asks the member at addr to serve req over a direct stream and
// copies the answer to w as it comes (flushing after each read), until the
// owner's handler ends, ctx ends (the owner's handler is cancelled), the
// connection breaks or this member leaves. An error before anything was
// written to w wraps ErrUnreachable.
func (m *Member) Direct(ctx context.Context, addr string, req *Request, w http.ResponseWriter) error {
	m.mu.Lock()
	if m.left {
		m.mu.Unlock()
		return fmt.Errorf("member %s has left the cluster: %w", m.cfg.Node, ErrUnreachable)
	}
	m.directs.Add(1)
	m.mu.Unlock()
	defer m.directs.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(m.life, cancel)
	defer stop()

	req.From = m.cfg.Node
	actx, acancel := context.WithTimeout(ctx, m.cfg.ForwardTimeout)
	var off directOffer
	_, err := m.ask(actx, addr, kindDirect, directOpen{Req: *req}, req.Body, kindDirectOffer, &off)
	acancel()
	if err != nil {
		return fmt.Errorf("direct stream: %w", err)
	}
	m.learn(addr, off.Node)
	conn, err := dialDirect(ctx, off, m.tlsClient)
	if err != nil {
		return fmt.Errorf("member %s: direct stream: %w: %w", m.NameOf(addr), err, ErrUnreachable)
	}
	return relayDirect(ctx, conn, w)
}

// dialDirect dials an offer's address, over TLS when tlsCfg is set, and
// presents its key.
func dialDirect(ctx context.Context, off directOffer, tlsCfg *tls.Config) (net.Conn, error) {
	if len(off.Key) != directKeyLen {
		return nil, fmt.Errorf("the offer's key has %d bytes, want %d", len(off.Key), directKeyLen)
	}
	dctx, cancel := context.WithTimeout(ctx, directDialTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", off.Address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", off.Address, err)
	}
	if tlsCfg != nil {
		cfg := tlsCfg.Clone()
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(off.Address)
			cfg.ServerName = host
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", off.Address, err)
		}
		conn = tc
	}
	if dl, ok := dctx.Deadline(); ok {
		_ = conn.SetWriteDeadline(dl)
	}
	if _, err := conn.Write(off.Key); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sending the key to %s: %w", off.Address, err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// relayDirect copies a direct stream's answer from conn to w, and closes
// conn. It returns nil when the owner ended the answer or the client went
// away, ctx's error when ctx ended, and an error wrapping ErrUnreachable
// when the stream broke before its header.
func relayDirect(ctx context.Context, conn net.Conn, w http.ResponseWriter) error {
	defer conn.Close()
	// Closing the connection unblocks a read and tells the owner.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	br := bufio.NewReaderSize(conn, 4<<10)
	hdr, err := readHeaderFrame(br)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("direct stream: reading the answer's header: %w: %w", err, ErrUnreachable)
	}
	for k, v := range hdr.Header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	status := hdr.Status
	if status < 200 || status > 999 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	_ = rc.Flush() // a writer that cannot flush sends it at the end
	buf := make([]byte, directBufBytes)
	for {
		// A read of at least the reader's size goes straight into buf
		// once what the header left buffered is taken.
		n, rerr := br.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return nil // the client went away; closing conn tells the owner
			}
			_ = rc.Flush()
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			return fmt.Errorf("direct stream broke: %w", rerr)
		}
	}
}

// readHeaderFrame reads a direct stream's header frame.
func readHeaderFrame(r io.Reader) (directHeader, error) {
	var h directHeader
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return h, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n == 0 || n > directHeaderMax {
		return h, fmt.Errorf("header frame of %d bytes (at most %d)", n, directHeaderMax)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return h, err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("header frame: %w", err)
	}
	return h, nil
}

// serveDirect answers a direct stream request: it makes an offer, answers
// it with reply, and serves req on the connection that presents its key.
// It runs on a goroutine of the node actor (serving counts it).
func (m *Member) serveDirect(body, data []byte, reply func(any)) {
	fail := func(msg string) {
		if r, err := wrap(kindError, errorBody{Message: msg}); err == nil {
			reply(r)
		}
	}
	var o directOpen
	if err := json.Unmarshal(body, &o); err != nil {
		fail("malformed direct stream request: " + err.Error())
		return
	}
	o.Req.Body = data
	if m.life.Err() != nil {
		fail("member " + m.cfg.Node + " is leaving the cluster")
		return
	}
	host, _, _ := splitAddr(m.cfg.Advertise) // validated
	off, err := listenOffer(host, m.tlsServer, m.log)
	if err != nil {
		m.log.Error("cannot offer a direct stream", zap.Error(err))
		fail(err.Error())
		return
	}
	msg, err := wrap(kindDirectOffer, directOffer{Node: m.cfg.Node, Address: off.addr, Key: off.key})
	if err != nil {
		off.ln.Close()
		fail(err.Error())
		return
	}
	reply(msg)
	conn, err := off.accept(m.life, directOfferTTL)
	if err != nil {
		if m.life.Err() == nil {
			m.log.Warn("a direct stream offer was withdrawn", zap.String("from", o.Req.From),
				zap.String("method", o.Req.Method), zap.String("url", o.Req.URL), zap.Error(err))
		}
		return
	}
	m.log.Debug("serving a direct stream", zap.String("from", o.Req.From), zap.String("url", o.Req.URL),
		zap.String("peer", conn.RemoteAddr().String()))
	serveOnConn(m.life, conn, m.srv.Handler, &o.Req, m.cfg.Node)
}

// offer is a listener waiting for the one dial that presents its key.
type offer struct {
	ln   net.Listener
	addr string // host as advertised, port as bound
	key  []byte
	log  *zap.Logger
}

// listenOffer listens on host, port 0 (over TLS when tlsCfg is set), and
// makes a one-time key.
func listenOffer(host string, tlsCfg *tls.Config, log *zap.Logger) (*offer, error) {
	key := make([]byte, directKeyLen)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("direct stream key: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("direct stream listener on %s: %w", host, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	return &offer{ln: ln, addr: net.JoinHostPort(host, strconv.Itoa(port)), key: key, log: log}, nil
}

// accept waits, until ctx ends or ttl passes, for a connection that
// presents the key; each connection that does not is refused and logged.
// The listener is closed when it returns.
func (o *offer) accept(ctx context.Context, ttl time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, ttl)
	defer cancel()
	var (
		mu      sync.Mutex
		pending = map[net.Conn]bool{} // connections whose key is awaited
		done    bool                  // the offer is taken or withdrawn
		won     net.Conn
		wg      sync.WaitGroup
	)
	found := make(chan struct{})
	// finish ends the offer: no more accepts, no more key checks.
	finish := func() {
		mu.Lock()
		done = true
		for c := range pending {
			_ = c.Close()
		}
		mu.Unlock()
		_ = o.ln.Close()
	}
	stop := context.AfterFunc(ctx, finish)
	defer stop()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := o.ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if done {
				mu.Unlock()
				_ = c.Close()
				return
			}
			pending[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := o.check(ctx, c)
				mu.Lock()
				delete(pending, c)
				late := done
				if err == nil && !late {
					won, done = c, true
					close(found)
				}
				mu.Unlock()
				if err == nil && !late {
					return
				}
				_ = c.Close()
				if !late || !errors.Is(err, net.ErrClosed) {
					o.refused(c, err)
				}
			}()
		}
	}()
	select {
	case <-found:
	case <-ctx.Done():
	}
	finish()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if won == nil {
		return nil, fmt.Errorf("nobody presented the key within %v: %w", ttl, context.Cause(ctx))
	}
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		_ = won.Close()
		return nil, ctx.Err()
	}
	return won, nil
}

// check reads a key from c within directKeyWait (and the offer's life)
// and compares it with the offer's in constant time.
func (o *offer) check(ctx context.Context, c net.Conn) error {
	deadline := time.Now().Add(directKeyWait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = c.SetDeadline(deadline)
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS handshake failed: %w", err)
		}
	}
	got := make([]byte, directKeyLen)
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("no key: %w", err)
	}
	if subtle.ConstantTimeCompare(got, o.key) != 1 {
		return fmt.Errorf("wrong key: %w", ErrDirectRefused)
	}
	_ = c.SetDeadline(time.Time{})
	return nil
}

// refused logs a connection refused by an offer.
func (o *offer) refused(c net.Conn, err error) {
	if err == nil {
		err = fmt.Errorf("the key was already used: %w", ErrDirectRefused)
	}
	o.log.Warn("refused a direct stream connection", zap.String("peer", c.RemoteAddr().String()), zap.Error(err))
}

// serveOnConn serves req with h, writing the answer into conn, and closes
// conn. The handler's context ends when ctx ends or the asker closes the
// connection (it sends nothing after the key, so any read that returns
// means it went away).
func serveOnConn(ctx context.Context, conn net.Conn, h http.Handler, req *Request, node string) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		var b [1]byte
		_, _ = conn.Read(b[:])
		cancel()
	}()
	// Closing unblocks a write to an asker that stopped reading, and the
	// watcher's read.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	dw := &directWriter{bw: bufio.NewWriterSize(conn, directBufBytes), header: http.Header{}, node: node}
	r, err := req.httpRequest(ctx)
	if err != nil {
		dw.Header().Set("Content-Type", "application/json")
		dw.WriteHeader(http.StatusBadRequest)
		_, _ = dw.Write([]byte(`{"error":{"code":"malformed","message":"forwarded request: ` + jsonEscape(err.Error()) + `"}}` + "\n"))
	} else {
		h.ServeHTTP(dw, r)
	}
	_ = dw.FlushError()
	cancel()
	_ = conn.Close()
	<-watched
}

// directWriter is the ResponseWriter of a request served over a direct
// stream: the header frame goes before the first body byte; the body is
// buffered and written to the connection at each flush (and when the
// buffer is full). Like any ResponseWriter, it is used by one goroutine
// at a time.
type directWriter struct {
	bw     *bufio.Writer
	header http.Header
	node   string
	status int
	sent   bool // the header frame is in bw
	err    error
}

func (w *directWriter) Header() http.Header { return w.header }

func (w *directWriter) WriteHeader(code int) {
	if w.sent || w.status != 0 || code < 200 {
		return
	}
	w.status = code
}

func (w *directWriter) Write(p []byte) (int, error) {
	if err := w.start(); err != nil {
		return 0, err
	}
	n, err := w.bw.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

// Flush sends what was written so far.
func (w *directWriter) Flush() { _ = w.FlushError() }

// FlushError sends what was written so far (http.ResponseController uses
// it).
func (w *directWriter) FlushError() error {
	if err := w.start(); err != nil {
		return err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = err
		return err
	}
	return nil
}

// start puts the header frame in the buffer, once.
func (w *directWriter) start() error {
	if w.err != nil {
		return w.err
	}
	if w.sent {
		return nil
	}
	w.sent = true
	if w.status == 0 {
		w.status = http.StatusOK
	}
	b, err := json.Marshal(directHeader{Node: w.node, Status: w.status, Header: w.header.Clone()})
	if err != nil {
		w.err = fmt.Errorf("direct stream header: %w", err)
		return w.err
	}
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], uint32(len(b)))
	_, _ = w.bw.Write(size[:])
	if _, err := w.bw.Write(b); err != nil {
		w.err = err
	}
	return w.err
}
