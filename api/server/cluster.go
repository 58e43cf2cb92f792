// This file routes requests across the members of a cluster: a request
// that names a workspace or a pipeline run is served by the member that
// holds it; lists gather every member's; a create goes to the member
// asked for or the one with the most memory headroom. A forwarded request
// is served by the owner's own handler (see cluster.Member), so every
// verb answers as it does on a lone daemon.

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gojson "github.com/goccy/go-json"
	"go.uber.org/zap"

	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/cluster"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
)

// Cluster is the membership a server routes across (cluster.Member).
type Cluster interface {
	Self() string
	SelfAddress() string
	Roster() []string
	Live() []string
	NameOf(addr string) string
	AddressOf(ctx context.Context, node string) (string, error)
	Info(ctx context.Context, addr string) (cluster.NodeInfo, error)
	Forward(ctx context.Context, addr string, req *cluster.Request, timeout time.Duration) (*cluster.Response, error)
	Stream(ctx context.Context, addr string, req *cluster.Request, w http.ResponseWriter) error
	Direct(ctx context.Context, addr string, req *cluster.Request, w http.ResponseWriter) error
}

// WarningHeader carries a warning for the user (a member that did not
// answer a list); the CLI prints each on stderr.
const WarningHeader = api.WarningHeader

// askTimeout bounds each member's part of a list or a lookup.
const askTimeout = time.Second

type clusterBox struct{ c Cluster }

// SetCluster makes the server route requests across c's members. Call it
// before Serve; nil leaves the server a lone daemon's.
func (s *Server) SetCluster(c Cluster) {
	if c == nil {
		s.cluster.Store(nil)
		return
	}
	s.cluster.Store(&clusterBox{c: c})
}

func (s *Server) clusterOf() Cluster {
	if b := s.cluster.Load(); b != nil {
		return b.c
	}
	return nil
}

// clusterAtomic is the field type of Server.cluster.
type clusterAtomic = atomic.Pointer[clusterBox]

// routeCluster serves r when it belongs elsewhere or to every member, and
// reports whether it did. A forwarded request is always served here.
func (s *Server) routeCluster(w http.ResponseWriter, r *http.Request) bool {
	c := s.clusterOf()
	if c == nil || r.Header.Get(cluster.ForwardedHeader) != "" {
		return false
	}
	path := r.URL.Path
	seg := strings.Split(strings.TrimPrefix(path, "/v1/"), "/")
	if !strings.HasPrefix(path, "/v1/") || len(seg) == 0 {
		return false
	}
	var err error
	switch {
	case r.Method == http.MethodGet && path == "/v1/workspaces":
		err = s.gather(w, r, c, true)
	case r.Method == http.MethodGet && path == "/v1/commands":
		err = s.gather(w, r, c, false)
	case r.Method == http.MethodGet && path == "/v1/pipelines" && r.URL.Query().Get("workspace") == "":
		err = s.gather(w, r, c, false)
	case r.Method == http.MethodGet && path == "/v1/pipelines":
		err = s.toWorkspaceOwner(w, r, c, r.URL.Query().Get("workspace"), func(id string) {
			q := r.URL.Query()
			q.Set("workspace", id)
			r.URL.RawQuery = q.Encode()
		})
	case r.Method == http.MethodPost && path == "/v1/workspaces":
		err = s.place(w, r, c)
	case r.Method == http.MethodGet && path == "/v1/events":
		err = s.gatherEvents(w, r, c)
	case seg[0] == "workspaces" && len(seg) >= 2 && seg[1] != "":
		err = s.toWorkspaceOwner(w, r, c, seg[1], func(id string) { rewriteWorkspace(r, id) })
	case seg[0] == "pipelines" && len(seg) >= 2 && seg[1] != "":
		err = s.toRunOwner(w, r, c, seg[1])
	case r.Method == http.MethodPost && seg[0] == "saved-pipelines" && len(seg) == 3 && seg[2] == "start":
		err = s.startSavedAnywhere(w, r, c, seg[1])
	default:
		return false
	}
	if errors.Is(err, errServeHere) {
		return false
	}
	if err != nil {
		s.fail(w, r, err)
	}
	return true
}

// rewriteWorkspace names the workspace of r's path (/v1/workspaces/{ws}/...)
// by id. It works on the escaped path: a pipeline node's command is
// named "pipeline%2Fnode", one segment, which the decoded path would split.
func rewriteWorkspace(r *http.Request, id string) {
	esc := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/v1/"), "/")
	if len(esc) < 2 {
		return
	}
	esc[1] = url.PathEscape(id)
	raw := "/v1/" + strings.Join(esc, "/")
	p, err := url.PathUnescape(raw)
	if err != nil {
		return // r.URL's own escaped path always unescapes
	}
	r.URL.Path, r.URL.RawPath = p, raw
}

// errServeHere says the request belongs to this member: the local
// handler serves it (with its path rewritten to the ID).
var errServeHere = errors.New("serve here")

// reqBody reads r's body, bounded as a local request's is.
func (s *Server) reqBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	limit := s.opts.MaxBodyBytes
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, api.NewError(api.CodeMalformed, "", "reading the request body: "+err.Error())
	}
	if int64(len(data)) > limit {
		return nil, &api.Error{Status: http.StatusRequestEntityTooLarge, Code: api.CodeMalformed,
			Message: fmt.Sprintf("request body is larger than the limit of %d bytes", limit)}
	}
	return data, nil
}

// forwardTo sends r to the member at addr and writes its answer to w.
// node, when set, is added to a JSON object answer.
func (s *Server) forwardTo(w http.ResponseWriter, r *http.Request, c Cluster, addr string, addNode bool) error {
	req, err := s.requestOf(r)
	if err != nil {
		return err
	}
	if tapping(r) || following(r) {
		// The answer does not end. A tap's bytes come over a direct
		// stream the two members negotiate; a followed log or event
		// stream comes as chunk messages.
		ctx, cancel := streamContext(r)
		defer cancel()
		relay := c.Stream
		if tapping(r) {
			relay = c.Direct
		}
		if err := relay(ctx, addr, req, w); err != nil && ctx.Err() == nil {
			if rw, ok := w.(*respWriter); ok && rw.wrote {
				s.log.Debug("a stream from another member broke", zap.String("member", addr), zap.Error(err))
				return nil
			}
			return api.NewError(api.CodeUnreachable, "", err.Error())
		}
		return nil
	}
	resp, err := c.Forward(r.Context(), addr, req, 0)
	if err != nil {
		return api.NewError(api.CodeUnreachable, "", err.Error())
	}
	out := resp.Body
	if addNode && resp.Status/100 == 2 {
		out = withNode(out, resp.Node)
	}
	return writeResponse(w, resp, out)
}

// following says whether r asks for an answer that does not end (a
// followed log).
// It reads the parameter as the handlers do (boolParam): a bad value is
// not following, and the owner's handler refuses it.
func following(r *http.Request) bool {
	f, _ := boolParam(r.URL.Query(), "follow")
	return f
}

// tapping says whether r taps a pipeline's bytes (GET
// /v1/pipelines/{run}/tap). A run started with ?tap=1 answers a whole
// JSON object (its tap sockets are on the member that runs it), and is
// forwarded as any other request.
func tapping(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/pipelines/") && strings.HasSuffix(r.URL.Path, "/tap")
}

// requestOf is r as a request to forward, its body read (bounded).
func (s *Server) requestOf(r *http.Request) (*cluster.Request, error) {
	body, err := s.reqBody(r)
	if err != nil {
		return nil, err
	}
	return &cluster.Request{Method: r.Method, URL: r.URL.RequestURI(), Header: forwardHeaders(r.Header), Body: body}, nil
}

// forwardHeaders keeps the headers a handler reads.
func forwardHeaders(h http.Header) http.Header {
	out := http.Header{}
	for _, k := range []string{"Content-Type", "Accept"} {
		if v := h.Values(k); len(v) > 0 {
			out[k] = v
		}
	}
	return out
}

// jsonField is `"key":"value",`, to add at the start of an object.
func jsonField(key, value string) []byte {
	v, _ := json.Marshal(value)
	return append(append([]byte(`"`+key+`":`), v...), ',')
}

// injectField adds field (`"k":v,`) at the start of a JSON object; any
// other value is returned as it is.
func injectField(obj, field []byte) []byte {
	obj = bytes.TrimSpace(obj)
	if len(obj) < 2 || obj[0] != '{' {
		return obj
	}
	out := make([]byte, 0, len(obj)+len(field))
	out = append(out, '{')
	if bytes.Equal(bytes.TrimSpace(obj[1:]), []byte("}")) {
		out = append(out, field[:len(field)-1]...)
		return append(out, '}')
	}
	out = append(out, field...)
	return append(out, obj[1:]...)
}

// itemID returns the "id" of a list item: read off its start when it
// leads (as the API writes views), else decoded.
func itemID(it []byte) string {
	const lead = `{"id":"`
	if rest, ok := bytes.CutPrefix(it, []byte(lead)); ok {
		if i := bytes.IndexByte(rest, '"'); i >= 0 && bytes.IndexByte(rest[:i], '\\') < 0 {
			return string(rest[:i])
		}
	}
	var ref struct {
		ID string `json:"id"`
	}
	_ = gojson.Unmarshal(it, &ref)
	return ref.ID
}

// withNode adds "node" to a JSON object, or to each object of a JSON
// array; anything else is returned as it is.
func withNode(b []byte, node string) []byte {
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return b
	}
	field := jsonField("node", node)
	switch t[0] {
	case '{':
		return append(injectField(t, field), '\n')
	case '[':
		var items []json.RawMessage
		if gojson.Unmarshal(t, &items) != nil {
			return b
		}
		var out bytes.Buffer
		out.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				out.WriteByte(',')
			}
			out.Write(injectField(it, field))
		}
		out.WriteString("]\n")
		return out.Bytes()
	}
	return b
}

// forwardKnown forwards r to addr, where its workspace was found before.
// done is false, and nothing written, when that member answers 404 (the
// workspace is gone from there) or does not answer: the caller looks it
// up again.
func (s *Server) forwardKnown(w http.ResponseWriter, r *http.Request, c Cluster, addr string) (done bool, err error) {
	if tapping(r) || following(r) {
		return true, s.forwardTo(w, r, c, addr, false)
	}
	req, err := s.requestOf(r)
	if err != nil {
		return true, err
	}
	r.Body = io.NopCloser(bytes.NewReader(req.Body)) // for the lookup's forward
	resp, err := c.Forward(r.Context(), addr, req, 0)
	if err != nil || resp.Status == http.StatusNotFound {
		return false, nil
	}
	return true, writeResponse(w, resp, resp.Body)
}

// writeResponse writes a forwarded answer with body out.
func writeResponse(w http.ResponseWriter, resp *cluster.Response, out []byte) error {
	for k, v := range resp.Header {
		if k == "Content-Length" {
			continue
		}
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(out)))
	w.WriteHeader(resp.Status)
	_, _ = w.Write(out)
	return nil
}

// memberAnswer is one member's answer to a question asked of all.
type memberAnswer struct {
	addr string
	resp *cluster.Response
	err  error
}

// askAll sends a GET of u to every member of the roster at once, each
// bounded by askTimeout, and returns the answers in roster order.
func askAll(ctx context.Context, c Cluster, u string) []memberAnswer {
	roster := c.Roster()
	out := make([]memberAnswer, len(roster))
	var wg sync.WaitGroup
	for i, addr := range roster {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Forward(ctx, addr, &cluster.Request{Method: http.MethodGet, URL: u}, askTimeout)
			out[i] = memberAnswer{addr: addr, resp: resp, err: err}
		}()
	}
	wg.Wait()
	return out
}

// answered returns the 2xx answers of answers. When this member (the
// first) refused the question, as every member would (a bad
// parameter), refused is its answer; another member's refusal becomes a
// warning.
func answered(w http.ResponseWriter, c Cluster, answers []memberAnswer) (ok []memberAnswer, refused *cluster.Response) {
	for i, a := range answers {
		switch {
		case a.err != nil:
		case a.resp.Status/100 == 2:
			ok = append(ok, a)
		case i == 0:
			return nil, a.resp
		default:
			w.Header().Add(WarningHeader, fmt.Sprintf("member %s: %s", c.NameOf(a.addr), strings.TrimSpace(string(a.resp.Body))))
		}
	}
	return ok, nil
}

// down names the members that did not answer ("name (address)").
func down(c Cluster, answers []memberAnswer) []string {
	var out []string
	for _, a := range answers {
		if a.err != nil {
			out = append(out, fmt.Sprintf("%s (%s)", c.NameOf(a.addr), a.addr))
		}
	}
	return out
}

// unreachable adds a warning for each member that did not answer.
func unreachable(w http.ResponseWriter, c Cluster, answers []memberAnswer, what string) {
	for _, a := range answers {
		if a.err != nil {
			w.Header().Add(WarningHeader, fmt.Sprintf("member %s (%s) unreachable: its %s are not listed (%v)",
				c.NameOf(a.addr), a.addr, what, a.err))
		}
	}
}

// gather answers a list with every member's, each entry with its node.
// Workspaces are ordered by ID and paged as one list.
func (s *Server) gather(w http.ResponseWriter, r *http.Request, c Cluster, workspaces bool) error {
	answers := askAll(r.Context(), c, r.URL.RequestURI())
	var (
		items []json.RawMessage
		ids   []string
		more  bool
	)
	ok, refused := answered(w, c, answers)
	if refused != nil {
		return writeRaw(w, refused.Status, refused.Body)
	}
	for _, a := range ok {
		if a.resp.Header.Get("Link") != "" {
			more = true
		}
		var list []json.RawMessage
		if err := gojson.Unmarshal(a.resp.Body, &list); err != nil {
			w.Header().Add(WarningHeader, fmt.Sprintf("member %s: its answer does not decode: %v", c.NameOf(a.addr), err))
			continue
		}
		field := jsonField("node", a.resp.Node)
		for _, it := range list {
			if workspaces {
				ids = append(ids, itemID(it))
			}
			items = append(items, injectField(it, field))
		}
	}
	what := "entries"
	if workspaces {
		what = "workspaces"
		idx := make([]int, len(items))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return ids[idx[a]] < ids[idx[b]] })
		sorted := make([]json.RawMessage, len(items))
		sortedIDs := make([]string, len(items))
		for i, j := range idx {
			sorted[i], sortedIDs[i] = items[j], ids[j]
		}
		items, ids = sorted, sortedIDs
		q, err := listQuery(r.URL.Query())
		if err != nil {
			return err
		}
		if q.Limit > 0 && (len(items) > q.Limit || more) {
			if len(items) > q.Limit {
				items, ids = items[:q.Limit], ids[:q.Limit]
			}
			if len(ids) > 0 {
				setNextLink(w, r.URL, ids[len(ids)-1])
			}
		}
	}
	unreachable(w, c, answers, what)
	var out bytes.Buffer
	out.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			out.WriteByte(',')
		}
		out.Write(it)
	}
	out.WriteString("]\n")
	return writeRaw(w, http.StatusOK, out.Bytes())
}

// writeRaw answers a JSON body as it is.
func writeRaw(w http.ResponseWriter, status int, body []byte) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return nil
}

// place sends a create to the member named by ?node=, or else to the live
// member with the most memory headroom.
func (s *Server) place(w http.ResponseWriter, r *http.Request, c Cluster) error {
	q := r.URL.Query()
	node := q.Get("node")
	q.Del("node")
	r.URL.RawQuery = q.Encode()
	var addr string
	if node != "" {
		a, err := c.AddressOf(r.Context(), node)
		if err != nil {
			return api.NewError(api.CodeNotFound, "node", err.Error())
		}
		addr = a
	} else {
		addr = pickMember(r.Context(), c)
	}
	return s.forwardTo(w, r, c, addr, true)
}

// pickMember returns the live member with the most memory headroom (this
// one on a tie, or when no other answers in time).
func pickMember(ctx context.Context, c Cluster) string {
	live := c.Live()
	infos := make([]*cluster.NodeInfo, len(live))
	var wg sync.WaitGroup
	for i, addr := range live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ictx, cancel := context.WithTimeout(ctx, askTimeout)
			defer cancel()
			if info, err := c.Info(ictx, addr); err == nil {
				infos[i] = &info
			}
		}()
	}
	wg.Wait()
	best := c.SelfAddress()
	var bestRoom int64 = -1 << 62
	for i, info := range infos {
		if info == nil {
			continue
		}
		if info.HeadroomBytes > bestRoom || (info.HeadroomBytes == bestRoom && live[i] == c.SelfAddress()) {
			best, bestRoom = live[i], info.HeadroomBytes
		}
	}
	return best
}

// toWorkspaceOwner finds the member holding workspace ref (an ID, a label
// unique in the cluster, or label@node), rewrites the request to name it
// by ID (rewrite), and serves it there.
func (s *Server) toWorkspaceOwner(w http.ResponseWriter, r *http.Request, c Cluster, ref string, rewrite func(id string)) error {
	if label, node, ok := strings.Cut(ref, "@"); ok {
		addr, err := c.AddressOf(r.Context(), node)
		if err != nil {
			return api.NewError(api.CodeNotFound, "", fmt.Sprintf("workspace %s: %v", ref, err))
		}
		rewrite(label)
		if addr == c.SelfAddress() {
			return errServeHere
		}
		return s.forwardTo(w, r, c, addr, false)
	}
	if messages.IsID(ref) {
		// An ID is unique: held here, it is served here; held by a
		// member it was found on before, it goes there (IDs never move),
		// unless that member no longer has it.
		if _, err := s.eng.Workspace(r.Context(), ref); err == nil {
			return errServeHere
		}
		if addr, ok := s.owners.Load(ref); ok {
			done, err := s.forwardKnown(w, r, c, addr.(string))
			if done || err != nil {
				return err
			}
			s.owners.Delete(ref)
		}
	}
	answers := askAll(r.Context(), c, "/v1/workspaces/"+url.PathEscape(ref))
	type holder struct{ addr, id, label string }
	var holders []holder
	for _, a := range answers {
		switch {
		case a.err != nil:
		case a.resp.Status == http.StatusOK:
			var info struct {
				ID   string `json:"id"`
				Spec struct {
					Label string `json:"label"`
				} `json:"spec"`
			}
			if json.Unmarshal(a.resp.Body, &info) == nil {
				holders = append(holders, holder{addr: a.addr, id: info.ID, label: info.Spec.Label})
			}
		}
	}
	switch len(holders) {
	case 0:
		msg := fmt.Sprintf("workspace %q not found on any member", ref)
		if d := down(c, answers); len(d) > 0 {
			msg = fmt.Sprintf("workspace %q not found on the members that answered; unreachable: %s", ref, strings.Join(d, ", "))
		}
		return api.NewError(api.CodeNotFound, "", msg)
	case 1:
		h := holders[0]
		if h.addr != c.SelfAddress() {
			s.owners.Store(h.id, h.addr)
		}
		rewrite(h.id)
		if h.addr == c.SelfAddress() {
			return errServeHere
		}
		return s.forwardTo(w, r, c, h.addr, false)
	}
	var names []string
	for _, h := range holders {
		names = append(names, h.label+"@"+c.NameOf(h.addr))
	}
	slices.Sort(names)
	return api.NewError(api.CodeConflict, "", fmt.Sprintf("workspace label %q is used on %d members: name one of %s",
		ref, len(holders), strings.Join(names, ", ")))
}

// startSavedAnywhere starts saved pipeline name into a workspace of any
// member. The saved pipeline is this member's, or else the one member's
// that holds it; the workspace is ?workspace or the one its spec names,
// resolved as every workspace ref is. When both are here, the local
// handler serves it; otherwise the run is asked of the workspace's owner
// as a pipeline run of the saved spec (as a local start does: the saved
// spec with no project).
func (s *Server) startSavedAnywhere(w http.ResponseWriter, r *http.Request, c Cluster, name string) error {
	if name == "" {
		return errServeHere // the local handler names the error
	}
	spec, local, err := s.findSaved(r.Context(), c, name)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	ws := q.Get("workspace")
	if ws == "" {
		ws = spec.Workspace
	}
	if ws == "" {
		if local {
			return errServeHere // the local handler names the error
		}
		return api.NewError(api.CodeInvalid, "workspace", "workspace is required: saved pipeline "+name+" names no workspace")
	}
	if local && !strings.Contains(ws, "@") {
		if _, err := s.eng.Workspace(r.Context(), ws); err == nil {
			return errServeHere
		}
	}
	spec.Project = "" // a run belongs to its workspace
	body, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("saved pipeline %s: %w", name, err)
	}
	run := r.Clone(r.Context())
	run.URL.Path, run.URL.RawPath = "/v1/workspaces/"+url.PathEscape(ws)+"/pipelines", ""
	rq := url.Values{}
	if t := q.Get("tap"); t != "" {
		rq.Set("tap", t)
	}
	run.URL.RawQuery = rq.Encode()
	run.Body, run.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	run.Header.Set("Content-Type", "application/json")
	err = s.toWorkspaceOwner(w, run, c, ws, func(id string) {
		run.URL.Path = "/v1/workspaces/" + url.PathEscape(id) + "/pipelines"
	})
	if errors.Is(err, errServeHere) {
		// The workspace is here, the saved pipeline elsewhere.
		run.Header.Set(cluster.ForwardedHeader, c.Self())
		s.handler.ServeHTTP(w, run)
		return nil
	}
	return err
}

// findSaved returns the spec of saved pipeline name: this member's, or
// else the one other member's that holds it (several holding different
// specs under that name is a conflict).
func (s *Server) findSaved(ctx context.Context, c Cluster, name string) (spec messages.PipelineSpec, local bool, err error) {
	sps, err := s.eng.SavedPipelines(ctx)
	if err != nil {
		return spec, false, err
	}
	for _, sp := range sps {
		if sp.Name == name {
			return sp.Spec, true, nil
		}
	}
	answers := askAll(ctx, c, "/v1/saved-pipelines")
	var holders []string
	for _, a := range answers {
		if a.err != nil || a.addr == c.SelfAddress() || a.resp.Status != http.StatusOK {
			continue
		}
		var list []protocol.SavedPipeline
		if json.Unmarshal(a.resp.Body, &list) != nil {
			continue
		}
		for _, sp := range list {
			if sp.Name != name {
				continue
			}
			if len(holders) > 0 && !reflect.DeepEqual(sp.Spec, spec) {
				return spec, false, api.NewError(api.CodeConflict, "", fmt.Sprintf(
					"saved pipeline %q differs on members %s and %s: start it against one of them", name, holders[0], c.NameOf(a.addr)))
			}
			spec = sp.Spec
			holders = append(holders, c.NameOf(a.addr))
		}
	}
	if len(holders) == 0 {
		msg := fmt.Sprintf("saved pipeline %q: not found on any member", name)
		if d := down(c, answers); len(d) > 0 {
			msg = fmt.Sprintf("saved pipeline %q: not found on the members that answered; unreachable: %s", name, strings.Join(d, ", "))
		}
		return spec, false, api.NewError(api.CodeNotFound, "", msg)
	}
	return spec, false, nil
}

// toRunOwner serves a request naming pipeline run id where the run is.
func (s *Server) toRunOwner(w http.ResponseWriter, r *http.Request, c Cluster, id string) error {
	answers := askAll(r.Context(), c, "/v1/pipelines/"+url.PathEscape(id))
	for _, a := range answers {
		if a.err == nil && a.resp.Status == http.StatusOK {
			if a.addr == c.SelfAddress() {
				return errServeHere
			}
			return s.forwardTo(w, r, c, a.addr, false)
		}
	}
	msg := fmt.Sprintf("pipeline run %q not found on any member", id)
	if d := down(c, answers); len(d) > 0 {
		msg = fmt.Sprintf("pipeline run %q not found on the members that answered; unreachable: %s", id, strings.Join(d, ", "))
	}
	return api.NewError(api.CodeNotFound, "", msg)
}

// gatherEvents answers every member's events, each with its "member":
// the recent ones ordered by time, and with follow, then every member's
// new ones as they come (each member's stream is relayed line by line).
// A member that does not answer within 1 s is named in a warning header.
func (s *Server) gatherEvents(w http.ResponseWriter, r *http.Request, c Cluster) error {
	if !following(r) {
		answers := askAll(r.Context(), c, r.URL.RequestURI())
		type line struct {
			t   time.Time
			raw []byte
		}
		var lines []line
		ok, refused := answered(w, c, answers)
		if refused != nil {
			return writeRaw(w, refused.Status, refused.Body)
		}
		for _, a := range ok {
			field := jsonField("member", a.resp.Node)
			for _, l := range bytes.Split(a.resp.Body, []byte("\n")) {
				if len(bytes.TrimSpace(l)) == 0 {
					continue
				}
				var ev struct {
					Time time.Time `json:"time"`
				}
				_ = gojson.Unmarshal(l, &ev)
				lines = append(lines, line{t: ev.Time, raw: injectField(l, field)})
			}
		}
		sort.SliceStable(lines, func(i, j int) bool { return lines[i].t.Before(lines[j].t) })
		unreachable(w, c, answers, "events")
		var out bytes.Buffer
		for _, l := range lines {
			out.Write(l.raw)
			out.WriteByte('\n')
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out.Bytes())
		return nil
	}
	// Follow: the members that answer now are followed.
	roster := c.Roster()
	up := make([]error, len(roster))
	var wg sync.WaitGroup
	for i, addr := range roster {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), askTimeout)
			defer cancel()
			_, up[i] = c.Info(ctx, addr)
		}()
	}
	wg.Wait()
	for i, err := range up {
		if err != nil {
			w.Header().Add(WarningHeader, fmt.Sprintf("member %s (%s) unreachable: its events are not followed (%v)",
				c.NameOf(roster[i]), roster[i], err))
		}
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	var mu sync.Mutex // one line at a time on w
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	for i, addr := range roster {
		if up[i] != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			lw := &lineRelay{field: jsonField("member", c.NameOf(addr)), header: http.Header{}, emit: func(l []byte) error {
				mu.Lock()
				defer mu.Unlock()
				if _, err := w.Write(l); err != nil {
					return err
				}
				return rc.Flush()
			}}
			req := &cluster.Request{Method: http.MethodGet, URL: r.URL.RequestURI(), Header: forwardHeaders(r.Header)}
			if err := c.Stream(ctx, addr, req, lw); err != nil && ctx.Err() == nil {
				s.log.Debug("an event stream from a member ended", zap.String("member", addr), zap.Error(err))
			}
		}()
	}
	wg.Wait()
	return nil
}

// lineRelay is the ResponseWriter a member's event stream is written to:
// each whole NDJSON line gets the member's field and is emitted.
type lineRelay struct {
	field  []byte
	header http.Header
	buf    []byte
	emit   func([]byte) error
}

func (l *lineRelay) Header() http.Header { return l.header }
func (l *lineRelay) WriteHeader(int)     {}
func (l *lineRelay) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := l.buf[:i]
		if len(bytes.TrimSpace(line)) > 0 {
			out := append(injectField(line, l.field), '\n')
			if err := l.emit(out); err != nil {
				return 0, err
			}
		}
		l.buf = l.buf[i+1:]
	}
}
