// This file owns the server: its options, the route table and dispatch
// (method check, query check, errors), the peer-credential check, and
// Serve with its bounded graceful shutdown.

package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gojson "github.com/goccy/go-json"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/api"
)

// Defaults of Options.
const (
	DefaultShutdownTimeout = 5 * time.Second
	DefaultMaxBodyBytes    = 4 << 20
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// Logger receives refusals, internal errors and (at debug level) one
	// line per request; nil = no logs.
	Logger *zap.Logger
	// SocketPath is reported by GET /v1/version; "" reports none.
	SocketPath string
	// ShutdownTimeout bounds the graceful part of Serve's shutdown; 0 = 5 s.
	ShutdownTimeout time.Duration
	// MaxBodyBytes bounds a request body; 0 = 4 MiB.
	MaxBodyBytes int64
	// OnRequest, when set, is called as each request comes in, before it
	// is served (the daemon wakes its memory trimmer with it). It must
	// not block.
	OnRequest func()
}

// Server serves the v1 API over an Engine. It is safe for concurrent use.
type Server struct {
	eng     *shipote.Engine
	opts    Options
	log     *zap.Logger
	euid    int
	handler http.Handler
	active  inflight  // handlers running, for the forced end of Serve
	lists   listCache // the last whole list of workspaces answered
	cluster clusterAtomic
	owners  sync.Map // workspace ID → address of the member found holding it
}

// New returns a server for eng. eng must not be nil.
func New(eng *shipote.Engine, opts Options) *Server {
	if eng == nil {
		panic("server: New needs an engine")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &Server{eng: eng, opts: opts, log: opts.Logger, euid: os.Geteuid()}
	s.handler = s.buildHandler()
	return s
}

// route is one entry of the route table.
type route struct {
	pattern string   // "METHOD /path/{wildcard}", as http.ServeMux reads it
	query   []string // the query parameters it accepts
	handle  func(*Server, http.ResponseWriter, *http.Request) error
}

// routes is the API: every route, in one table.
func routes() []route {
	return append([]route{
		{"GET /healthz", nil, (*Server).health},
		{"GET /v1/version", nil, (*Server).version},
		{"GET /v1/workspaces", []string{"limit", "after", "label_prefix"}, (*Server).listWorkspaces},
		{"POST /v1/workspaces", []string{"node"}, (*Server).createWorkspace},
		{"GET /v1/workspaces/{ws}", nil, (*Server).getWorkspace},
		{"DELETE /v1/workspaces/{ws}", []string{"grace"}, (*Server).removeWorkspace},
		{"GET /v1/workspaces/{ws}/commands", nil, (*Server).listCommands},
		{"POST /v1/workspaces/{ws}/commands", nil, (*Server).exec},
		{"GET /v1/commands", nil, (*Server).allCommands},
		{"GET /v1/workspaces/{ws}/commands/{cmd}", nil, (*Server).getCommand},
		{"DELETE /v1/workspaces/{ws}/commands/{cmd}", nil, (*Server).removeCommand},
		{"POST /v1/workspaces/{ws}/commands/{cmd}/stop", nil, (*Server).stopCommand},
		{"POST /v1/workspaces/{ws}/commands/{cmd}/start", nil, (*Server).startCommand},
		{"POST /v1/workspaces/{ws}/commands/{cmd}/restart", nil, (*Server).restartCommand},
		{"POST /v1/workspaces/{ws}/commands/{cmd}/signal", []string{"signal"}, (*Server).signalCommand},
		{"POST /v1/workspaces/{ws}/stop", nil, (*Server).stopCommands},
		{"GET /v1/workspaces/{ws}/commands/{cmd}/logs", []string{"tail", "since", "stream", "follow"}, (*Server).logs},
		{"GET /v1/workspaces/{ws}/stats", nil, (*Server).stats},
		{"POST /v1/workspaces/{ws}/pipelines", []string{"tap"}, (*Server).runPipeline},
		{"GET /v1/pipelines", []string{"workspace"}, (*Server).listPipelines},
		{"GET /v1/pipelines/{run}", nil, (*Server).getPipeline},
		{"POST /v1/pipelines/{run}/stop", nil, (*Server).stopPipeline},
		{"POST /v1/pipelines/{run}/restart", nil, (*Server).restartPipeline},
		{"POST /v1/pipelines/{run}/signal", []string{"signal", "node"}, (*Server).signalPipeline},
		{"GET /v1/pipelines/{run}/tap", []string{"node"}, (*Server).tap},
		{"GET /v1/saved-pipelines", nil, (*Server).listSaved},
		{"PUT /v1/saved-pipelines/{name}", nil, (*Server).putSaved},
		{"DELETE /v1/saved-pipelines/{name}", nil, (*Server).deleteSaved},
		{"POST /v1/saved-pipelines/{name}/start", []string{"workspace", "tap"}, (*Server).startSaved},
		{"GET /v1/events", []string{"follow"}, (*Server).events},
		{"GET /v1/snapshot", nil, (*Server).getSnapshot},
		{"POST /v1/snapshot", nil, (*Server).saveSnapshot},
		{"GET /v1/state", nil, (*Server).getState},
		{"DELETE /v1/state/kept/{ref}", nil, (*Server).dropKept},
	}, applyRoutes()...)
}

// Handler returns the API's handler. It checks peer credentials on
// connections that Serve accepted; a program that mounts it on its own
// listener must do its own access control.
func (s *Server) Handler() http.Handler { return s.handler }

// buildHandler registers each path of the route table once on a ServeMux;
// the path's handler dispatches on the method, so that a wrong method gets
// a JSON 405 and an unknown path a JSON 404.
func (s *Server) buildHandler() http.Handler {
	mux := http.NewServeMux()
	byPath := make(map[string]*pathRoutes)
	for _, rt := range routes() {
		method, path, ok := strings.Cut(rt.pattern, " ")
		if !ok {
			panic("api: route pattern without a method: " + rt.pattern)
		}
		p := byPath[path]
		if p == nil {
			p = &pathRoutes{s: s, methods: make(map[string]route)}
			byPath[path] = p
			mux.Handle(path, p)
		}
		p.methods[method] = rt
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, api.NewError(api.CodeNotFound, "", fmt.Sprintf("no such route: %s %s", r.Method, r.URL.Path)))
	})
	onRequest := s.opts.OnRequest
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if onRequest != nil {
			onRequest()
		}
		s.active.add()
		defer s.active.done()
		start := time.Now()
		rw := &respWriter{ResponseWriter: w}
		p, checked := r.Context().Value(peerKey{}).(peer)
		if !checked {
			p = peer{uid: -1, pid: -1} // served through Handler, not Serve
		}
		if checked && !s.allowed(p) {
			s.log.Warn("refused a request from another user",
				zap.Int("uid", p.uid), zap.Int("pid", p.pid), zap.NamedError("peercred_error", p.err),
				zap.String("method", r.Method), zap.String("path", r.URL.Path))
			msg := fmt.Sprintf("user %d may not use this daemon: only its own user (%d) and root are served", p.uid, s.euid)
			if p.err != nil {
				msg = "cannot read the peer's credentials: " + p.err.Error()
			}
			writeError(rw, api.NewError(api.CodeRefused, "", msg))
			return
		}
		if !s.routeCluster(rw, r) {
			mux.ServeHTTP(rw, r)
		}
		s.log.Debug("request", zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.Int("status", rw.statusCode()), zap.Duration("took", time.Since(start)), zap.Int("uid", p.uid))
	})
}

// pathRoutes serves the routes of one path, one per method.
type pathRoutes struct {
	s       *Server
	methods map[string]route
}

func (p *pathRoutes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := p.methods[r.Method]
	if !ok {
		allow := make([]string, 0, len(p.methods))
		for m := range p.methods {
			allow = append(allow, m)
		}
		sort.Strings(allow)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, api.NewError(api.CodeMethodNotAllowed, "",
			fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", "))))
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, api.NewError(api.CodeMalformed, "", "bad query string: "+err.Error()))
		return
	}
	for _, k := range sortedKeys(q) {
		if !slices.Contains(rt.query, k) {
			msg := fmt.Sprintf("unknown query parameter %q (%s %s takes none)", k, r.Method, rt.pattern[len(r.Method)+1:])
			if len(rt.query) > 0 {
				msg = fmt.Sprintf("unknown query parameter %q (accepted: %s)", k, strings.Join(rt.query, ", "))
			}
			writeError(w, api.NewError(api.CodeInvalid, k, msg))
			return
		}
	}
	if err := rt.handle(p.s, w, r); err != nil {
		p.s.fail(w, r, err)
	}
}

// fail answers err, or logs it when the answer has already started (a
// stream that broke).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if rw, ok := w.(*respWriter); ok && rw.wrote {
		s.log.Debug("stream ended with an error", zap.String("path", r.URL.Path), zap.Error(err))
		return
	}
	e := errorFor(err)
	if e.Status >= 500 && e.Code != api.CodeStopped {
		s.log.Error("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	}
	writeError(w, e)
}

// writeJSON answers v with status. The bytes are those of encoding/json's
// Encoder without HTML escaping (a test holds it to that), made by
// github.com/goccy/go-json, about twice as fast on the large lists of
// `ws ls` and `ps`. A write error means the client went away; there is
// nobody left to tell.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := gojson.MarshalWithOption(v, gojson.DisableHTMLEscape())
	if err != nil {
		// Not expected of the API's own types; say so rather than send
		// half an answer.
		b, _ = json.Marshal(api.ErrorBody{Error: api.ErrorFields{Code: api.CodeInternal, Message: "encoding the answer: " + err.Error()}})
		status = http.StatusInternalServerError
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return nil
}

// writeError answers e in the API's error shape.
func writeError(w http.ResponseWriter, e *api.Error) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_ = writeJSON(w, e.Status, api.ErrorBody{Error: api.ErrorFields{Code: e.Code, Message: e.Message, Field: e.Field}})
}

// respWriter records whether the answer has started and with what status.
type respWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *respWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(p)
}

// FlushError flushes the answer to the client (http.ResponseController
// uses it).
func (w *respWriter) FlushError() error {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *respWriter) statusCode() int {
	if !w.wrote {
		return http.StatusOK
	}
	return w.status
}

// flush sends what the handler has written so far.
func flush(w http.ResponseWriter) error { return http.NewResponseController(w).Flush() }

// peer is the identity of a connection's other end.
type peer struct {
	uid, pid int
	err      error // credentials could not be read: refuse
}

type peerKey struct{}

// allowed reports whether p may use the API: the daemon's own user and
// root may.
func (s *Server) allowed(p peer) bool {
	return p.err == nil && (p.uid == s.euid || p.uid == 0)
}

// peerOf reads c's peer credentials with SO_PEERCRED.
func peerOf(c net.Conn) peer {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return peer{uid: -1, pid: -1, err: fmt.Errorf("connection %T has no file descriptor", c)}
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return peer{uid: -1, pid: -1, err: err}
	}
	var (
		cred *unix.Ucred
		cerr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return peer{uid: -1, pid: -1, err: err}
	}
	if cerr != nil {
		return peer{uid: -1, pid: -1, err: fmt.Errorf("SO_PEERCRED: %w", cerr)}
	}
	return peer{uid: int(cred.Uid), pid: int(cred.Pid)}
}

// stopKey carries the context whose end ends streams: Serve's.
type stopKey struct{}

// streamContext returns the context of a stream: it ends when the client
// goes or when Serve begins to shut down.
func streamContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	stop, ok := r.Context().Value(stopKey{}).(context.Context)
	if !ok {
		return ctx, cancel
	}
	unregister := context.AfterFunc(stop, cancel)
	return ctx, func() {
		unregister()
		cancel()
	}
}

// Serve serves on ln until ctx ends, then shuts down: it stops accepting,
// ends the streams, lets other requests finish for up to ShutdownTimeout,
// then closes what is left. It closes ln. Every connection's peer
// credentials (SO_PEERCRED) are checked: only the daemon's own uid and root
// are served; others get 403 and a log line. It returns nil after a
// shutdown caused by ctx, and the error otherwise.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	errLog, err := zap.NewStdLogAt(s.log.Named("http"), zap.WarnLevel)
	if err != nil {
		return fmt.Errorf("api: server log: %w", err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          errLog,
		// Requests outlive ctx (graceful shutdown lets them finish);
		// streams watch ctx through stopKey and end with it.
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.WithoutCancel(ctx), stopKey{}, ctx)
		},
		ConnContext: func(c context.Context, conn net.Conn) context.Context {
			return context.WithValue(c, peerKey{}, peerOf(conn))
		},
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("graceful shutdown did not finish in time; closing the remaining connections",
			zap.Duration("timeout", s.opts.ShutdownTimeout), zap.Error(err))
		_ = srv.Close()
		// Closing a connection cancels its request's context; give the
		// handlers as long again to notice.
		select {
		case <-s.active.idle():
		case <-time.After(s.opts.ShutdownTimeout):
			s.log.Warn("some request handlers are still running after the shutdown")
		}
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: serve: %w", err)
	}
	return nil
}

// inflight counts running handlers.
type inflight struct {
	mu     sync.Mutex // guards the following
	n      int
	waiter chan struct{} // closed when n drops to 0
}

func (t *inflight) add() {
	t.mu.Lock()
	t.n++
	t.mu.Unlock()
}

func (t *inflight) done() {
	t.mu.Lock()
	t.n--
	if t.n == 0 && t.waiter != nil {
		close(t.waiter)
		t.waiter = nil
	}
	t.mu.Unlock()
}

// idle returns a channel closed once no handler runs.
func (t *inflight) idle() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	if t.waiter == nil {
		t.waiter = make(chan struct{})
	}
	return t.waiter
}

func sortedKeys(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
