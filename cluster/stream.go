//go:build !nocluster

// This file streams a forwarded request's answer (a followed log): the
// owner sends what its handler writes as chunk messages, at most a window
// of them unacknowledged, and the asking member writes each to its client
// as it comes. Either side ending ends the stream: the client going away
// cancels the owner's handler, the owner's member dying ends the client's
// answer.

package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// Stream envelope kinds.
const (
	kindStream       = "stream"        // request: streamOpen
	kindStreamChunk  = "stream-chunk"  // owner → asker: streamChunk
	kindStreamAck    = "stream-ack"    // asker → owner: streamAck
	kindStreamCancel = "stream-cancel" // asker → owner: streamAck (N unused)
)

// streamWindow is how many chunks may be in flight unacknowledged.
const streamWindow = 16

// streamChunkMax is the most a chunk carries; a handler's writes are
// gathered up to it until the handler flushes.
const streamChunkMax = 64 << 10

type streamOpen struct {
	ID  string  `json:"id"`
	Req Request `json:"req"`
}

type streamChunk struct {
	ID     string      `json:"id"`
	Node   string      `json:"node,omitempty"`
	Status int         `json:"status,omitempty"` // first chunk only
	Header http.Header `json:"header,omitempty"` // first chunk only
	Data   []byte      `json:"-"`                // travels beside the JSON
	Done   bool        `json:"done,omitempty"`
	Error  string      `json:"error,omitempty"`
}

type streamAck struct {
	ID string `json:"id"`
	N  int    `json:"n"`
}

var streamSeq atomic.Uint64

// Stream asks the member at addr to serve req and writes its answer to w
// as it comes (flushing after each chunk), until the owner's handler ends,
// ctx ends (the owner's handler is cancelled) or the owner is gone.
func (m *Member) Stream(ctx context.Context, addr string, req *Request, w http.ResponseWriter) error {
	req.From = m.cfg.Node
	id := fmt.Sprintf("%s-%d", m.cfg.Node, streamSeq.Add(1))
	open, err := wrapData(kindStream, streamOpen{ID: id, Req: *req}, req.Body)
	if err != nil {
		return err
	}
	target := actor.NewPID(addr, nodeActorName)
	chunks := make(chan streamChunk, streamWindow+4)
	fail := func(msg string) {
		select {
		case chunks <- streamChunk{Done: true, Error: msg}:
		default:
		}
	}
	pid := m.system.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch r := c.Message().(type) {
		case *actor.Started:
			c.Watch(target)
			c.Request(target, open)
		case *actor.Terminated:
			fail(fmt.Sprintf("member %s is gone", m.NameOf(addr)))
		case *actor.DeadLetterResponse:
			fail(fmt.Sprintf("member %s: no node actor answers there", m.NameOf(addr)))
		default:
			kind, body, ok := unwrap(r)
			if !ok {
				return
			}
			switch kind {
			case kindStreamChunk:
				var ch streamChunk
				if json.Unmarshal(body, &ch) != nil || ch.ID != id {
					return
				}
				ch.Data = dataOf(r)
				// The window bounds what the owner sends, so this never
				// blocks for long; a full channel means a broken owner.
				select {
				case chunks <- ch:
				default:
					fail("stream window overrun")
				}
			case kindError:
				var e errorBody
				_ = json.Unmarshal(body, &e)
				fail(e.Message)
			}
		}
	}))
	defer m.system.Root.Stop(pid)
	ack := func(kind string) {
		if msg, err := wrap(kind, streamAck{ID: id, N: 1}); err == nil {
			m.system.Root.Send(target, msg)
		}
	}
	rc := http.NewResponseController(w)
	started := false
	for {
		select {
		case <-ctx.Done():
			ack(kindStreamCancel)
			return ctx.Err()
		case ch := <-chunks:
			if !started && ch.Error == "" {
				started = true
				for k, v := range ch.Header {
					if k != "Content-Length" {
						w.Header()[k] = v
					}
				}
				status := ch.Status
				if status == 0 {
					status = http.StatusOK
				}
				w.WriteHeader(status)
			}
			if ch.Error != "" {
				if !started {
					return fmt.Errorf("%s: %w", ch.Error, ErrUnreachable)
				}
				return fmt.Errorf("stream from member %s broke: %s", m.NameOf(addr), ch.Error)
			}
			if len(ch.Data) > 0 {
				if _, err := w.Write(ch.Data); err != nil {
					ack(kindStreamCancel)
					return nil // the client went away
				}
			}
			_ = rc.Flush() // a writer that cannot flush sends it at the end
			if ch.Done {
				return nil
			}
			ack(kindStreamAck)
		}
	}
}

// ownedStream is a stream this member serves, as the node actor tracks it.
type ownedStream struct {
	asker   *actor.PID
	cancel  context.CancelFunc
	credits chan struct{}
}

// streamDone tells the node actor a stream it serves has ended.
type streamDone struct{ id string }

// openStream starts serving a stream for asker. Called from Receive: the
// handler runs in a goroutine.
func (n *nodeActor) openStream(ctx actor.Context, body, data []byte, asker *actor.PID) {
	m := n.m
	var o streamOpen
	err := json.Unmarshal(body, &o)
	o.Req.Body = data
	if err != nil || o.ID == "" {
		if msg, err := wrap(kindError, errorBody{Message: "malformed stream request"}); err == nil {
			ctx.Send(asker, msg)
		}
		return
	}
	if n.streams == nil {
		n.streams = map[string]*ownedStream{}
	}
	sctx, cancel := context.WithCancel(context.Background())
	st := &ownedStream{asker: asker, cancel: cancel, credits: make(chan struct{}, streamWindow)}
	for range streamWindow {
		st.credits <- struct{}{}
	}
	n.streams[o.ID] = st
	ctx.Watch(asker)
	self := ctx.Self()
	m.serving.Add(1)
	go func() {
		defer m.serving.Done()
		defer cancel()
		sw := &streamWriter{m: m, id: o.ID, asker: asker, st: st, ctx: sctx, header: http.Header{}}
		r, err := o.Req.httpRequest(sctx)
		if err != nil {
			sw.end(err.Error())
		} else {
			m.srv.Handler.ServeHTTP(sw, r)
			sw.end("")
		}
		m.system.Root.Send(self, &streamDone{id: o.ID})
	}()
}

// onStreamMessage handles an ack, a cancel, the end of a stream or the
// death of an asker.
func (n *nodeActor) onStreamMessage(msg any, kind string, body []byte) {
	switch m := msg.(type) {
	case *streamDone:
		delete(n.streams, m.id)
		return
	case *actor.Terminated:
		for _, st := range n.streams {
			if st.asker.Equal(m.Who) {
				st.cancel()
			}
		}
		return
	}
	var a streamAck
	if json.Unmarshal(body, &a) != nil {
		return
	}
	st, ok := n.streams[a.ID]
	if !ok {
		return
	}
	switch kind {
	case kindStreamCancel:
		st.cancel()
	case kindStreamAck:
		for range max(a.N, 1) {
			select {
			case st.credits <- struct{}{}:
			default:
			}
		}
	}
}

// streamWriter is the ResponseWriter of a streamed request: writes are
// gathered and sent as chunks, each taking a credit of the window.
type streamWriter struct {
	m      *Member
	id     string
	asker  *actor.PID
	st     *ownedStream
	ctx    context.Context
	header http.Header
	status int
	sent   bool // the first chunk (status, header) went
	buf    bytes.Buffer
	mu     sync.Mutex
	ended  bool
	broken bool
	// send delivers a chunk; nil = as a message to the asker.
	send func(streamChunk)
}

func (w *streamWriter) Header() http.Header { return w.header }

func (w *streamWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *streamWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken {
		return 0, context.Canceled
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n := len(b)
	for len(b) > 0 {
		room := streamChunkMax - w.buf.Len()
		take := min(room, len(b))
		w.buf.Write(b[:take])
		b = b[take:]
		if w.buf.Len() >= streamChunkMax {
			if err := w.sendLocked(false, ""); err != nil {
				return n - len(b), err
			}
		}
	}
	return n, nil
}

// Flush sends what was written so far.
func (w *streamWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 || !w.sent {
		_ = w.sendLocked(false, "")
	}
}

// end sends the last chunk.
func (w *streamWriter) end(errMsg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return
	}
	w.ended = true
	_ = w.sendLocked(true, errMsg)
}

// sendLocked sends the buffer as a chunk once a credit is free.
func (w *streamWriter) sendLocked(done bool, errMsg string) error {
	if w.broken {
		return context.Canceled
	}
	if !done {
		select {
		case <-w.st.credits:
		case <-w.ctx.Done():
			w.broken = true
			return w.ctx.Err()
		}
	}
	ch := streamChunk{ID: w.id, Data: bytes.Clone(w.buf.Bytes()), Done: done, Error: errMsg}
	if !w.sent {
		if w.m != nil {
			ch.Node = w.m.cfg.Node
		}
		ch.Status, ch.Header = w.status, w.header.Clone()
		if ch.Status == 0 {
			ch.Status = http.StatusOK
		}
		w.sent = true
	}
	w.buf.Reset()
	if w.send != nil {
		w.send(ch)
		return nil
	}
	msg, err := wrapData(kindStreamChunk, ch, ch.Data)
	if err != nil {
		return err
	}
	w.m.system.Root.Send(w.asker, msg)
	return nil
}
