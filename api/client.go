// This file owns the Go client of the API: one method per route, errors
// decoded into *Error, dial failures wrapped in ErrUnreachable, and NDJSON
// streams decoded line by line.

package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
	"github.com/shipote/shipote/persistence"
)

// Client talks to a daemon over its Unix socket. It is safe for concurrent
// use. Its zero value is not usable; use NewClient.
type Client struct {
	socket string
	hc     *http.Client
	warn   func(string)
}

// WarningHeader carries a warning for the user in an answer (a cluster
// member that did not answer a list); a client hands each to the function
// given to OnWarning.
const WarningHeader = "Shipote-Warning"

// OnWarning makes the client call fn with each warning an answer carries.
// Set it before the first call.
func (c *Client) OnWarning(fn func(string)) { c.warn = fn }

// NewClient returns a client for the daemon listening at socketPath. It
// does not dial until the first call.
func NewClient(socketPath string) *Client {
	c := &Client{socket: socketPath}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", socketPath)
			if err != nil {
				if ctx.Err() != nil {
					return nil, err
				}
				return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, socketPath, unwrapOp(err))
			}
			return conn, nil
		},
		MaxIdleConns:       4,
		IdleConnTimeout:    30 * time.Second,
		DisableCompression: true,
	}
	c.hc = &http.Client{
		Transport: tr,
		// The API never redirects; a redirect is an error to show.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

// unwrapOp drops the "dial unix PATH:" prefix of a dial error, which the
// ErrUnreachable message already says.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// SocketPath returns the socket the client dials.
func (c *Client) SocketPath() string { return c.socket }

// CloseIdleConnections closes the connections kept for reuse.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// seg escapes one path segment; an empty or dot segment would change the
// route, so it is refused.
func seg(field, v string) (string, error) {
	if v == "" || v == "." || v == ".." {
		return "", &Error{Status: http.StatusBadRequest, Code: CodeInvalid, Field: field,
			Message: fmt.Sprintf("%s %q is not a valid ID or label", field, v)}
	}
	return url.PathEscape(v), nil
}

// send does a request and returns the answer if its status is 2xx; any
// other answer becomes an *Error.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("api: encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	u := "http://shipote" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, ErrUnreachable) {
			return nil, err
		}
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if c.warn != nil {
		for _, w := range resp.Header.Values(WarningHeader) {
			c.warn(w)
		}
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(resp)
}

// decodeError reads an error answer.
func decodeError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb ErrorBody
	if err := json.Unmarshal(data, &eb); err == nil && eb.Error.Code != "" {
		return &Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, Field: eb.Error.Field}
	}
	msg := string(bytes.TrimSpace(data))
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	code := CodeInternal
	for c, st := range statusCode {
		if st == resp.StatusCode && c != CodeMalformed {
			code = c
		}
	}
	return &Error{Status: resp.StatusCode, Code: code, Message: fmt.Sprintf("%s (HTTP %d)", msg, resp.StatusCode)}
}

// call does a request and decodes a JSON answer into out (unless nil).
func (c *Client) call(ctx context.Context, method, path string, q url.Values, body, out any) error {
	resp, err := c.send(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("api: %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// stream does a request whose answer is NDJSON and calls fn with each
// object until the stream ends, fn returns an error (returned), or ctx
// ends.
func stream[T any](ctx context.Context, c *Client, path string, q url.Values, fn func(T) error) error {
	resp, err := c.send(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, rerr := br.ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("api: GET %s: stream broken: %w", path, rerr)
		}
		if len(bytes.TrimSpace(line)) > 0 {
			var v T
			if err := json.Unmarshal(line, &v); err != nil {
				return fmt.Errorf("api: GET %s: bad stream line: %w", path, err)
			}
			if err := fn(v); err != nil {
				return err
			}
		}
		if rerr != nil {
			return nil
		}
	}
}

// Health checks that the daemon answers.
func (c *Client) Health(ctx context.Context) error {
	var h HealthInfo
	if err := c.call(ctx, http.MethodGet, "/healthz", nil, nil, &h); err != nil {
		return err
	}
	if h.Status != "ok" {
		return fmt.Errorf("api: daemon health is %q", h.Status)
	}
	return nil
}

// Version returns the daemon's version and settings.
func (c *Client) Version(ctx context.Context) (VersionInfo, error) {
	var v VersionInfo
	err := c.call(ctx, http.MethodGet, "/v1/version", nil, nil, &v)
	return v, err
}

// CreateWorkspace creates a workspace.
func (c *Client) CreateWorkspace(ctx context.Context, spec messages.WorkspaceSpec) (messages.WorkspaceInfo, error) {
	var info messages.WorkspaceInfo
	err := c.call(ctx, http.MethodPost, "/v1/workspaces", nil, spec, &info)
	return info, err
}

// CreateWorkspaceOn creates a workspace on the cluster member named node;
// "" = where the daemon places it (CreateWorkspace).
func (c *Client) CreateWorkspaceOn(ctx context.Context, spec messages.WorkspaceSpec, node string) (messages.WorkspaceInfo, error) {
	var q url.Values
	if node != "" {
		q = url.Values{"node": {node}}
	}
	var info messages.WorkspaceInfo
	err := c.call(ctx, http.MethodPost, "/v1/workspaces", q, spec, &info)
	return info, err
}

// Workspaces lists every workspace.
func (c *Client) Workspaces(ctx context.Context) ([]messages.WorkspaceInfo, error) {
	var out []messages.WorkspaceInfo
	err := c.call(ctx, http.MethodGet, "/v1/workspaces", nil, nil, &out)
	return out, err
}

// WorkspacePage lists the workspaces q selects and returns the cursor of
// the next page ("" after the last), from the answer's Link header.
func (c *Client) WorkspacePage(ctx context.Context, q messages.ListQuery) ([]messages.WorkspaceInfo, string, error) {
	v := url.Values{}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.After != "" {
		v.Set("after", q.After)
	}
	if q.LabelPrefix != "" {
		v.Set("label_prefix", q.LabelPrefix)
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/workspaces", v, nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	var out []messages.WorkspaceInfo
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, "", fmt.Errorf("api: GET /v1/workspaces: decoding the answer: %w", err)
	}
	return out, nextCursor(resp.Header.Get("Link")), nil
}

// nextCursor returns the after parameter of a Link header's rel="next"
// target, or "".
func nextCursor(link string) string {
	for part := range strings.SplitSeq(link, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
		if !ok || !strings.Contains(params, `rel="next"`) {
			continue
		}
		u, err := url.Parse(strings.Trim(strings.TrimSpace(target), "<>"))
		if err != nil {
			continue
		}
		return u.Query().Get("after")
	}
	return ""
}

// Workspace returns a workspace by ID or label.
func (c *Client) Workspace(ctx context.Context, ref string) (messages.WorkspaceInfo, error) {
	var info messages.WorkspaceInfo
	ws, err := seg("workspace", ref)
	if err != nil {
		return info, err
	}
	err = c.call(ctx, http.MethodGet, "/v1/workspaces/"+ws, nil, nil, &info)
	return info, err
}

// RemoveWorkspace stops a workspace's processes (SIGTERM, grace, SIGKILL;
// grace 0 = the daemon's) and removes it.
func (c *Client) RemoveWorkspace(ctx context.Context, ref string, grace time.Duration) (messages.WorkspaceInfo, error) {
	var info messages.WorkspaceInfo
	ws, err := seg("workspace", ref)
	if err != nil {
		return info, err
	}
	var q url.Values
	if grace != 0 {
		q = url.Values{"grace": {grace.String()}}
	}
	err = c.call(ctx, http.MethodDelete, "/v1/workspaces/"+ws, q, nil, &info)
	return info, err
}

// Exec starts a command in a workspace.
func (c *Client) Exec(ctx context.Context, ws string, cmd messages.CommandRef) (messages.CommandInfo, error) {
	var info messages.CommandInfo
	w, err := seg("workspace", ws)
	if err != nil {
		return info, err
	}
	err = c.call(ctx, http.MethodPost, "/v1/workspaces/"+w+"/commands", nil, cmd, &info)
	return info, err
}

// Commands lists a workspace's commands, or every workspace's when ws is "".
func (c *Client) Commands(ctx context.Context, ws string) ([]messages.CommandInfo, error) {
	var out []messages.CommandInfo
	path := "/v1/commands"
	if ws != "" {
		w, err := seg("workspace", ws)
		if err != nil {
			return nil, err
		}
		path = "/v1/workspaces/" + w + "/commands"
	}
	err := c.call(ctx, http.MethodGet, path, nil, nil, &out)
	return out, err
}

// Command returns one command of a workspace by ID or label.
func (c *Client) Command(ctx context.Context, ws, cmd string) (messages.CommandInfo, error) {
	var info messages.CommandInfo
	path, err := commandPath(ws, cmd)
	if err != nil {
		return info, err
	}
	err = c.call(ctx, http.MethodGet, path, nil, nil, &info)
	return info, err
}

func commandPath(ws, cmd string) (string, error) {
	w, err := seg("workspace", ws)
	if err != nil {
		return "", err
	}
	cm, err := seg("command", cmd)
	if err != nil {
		return "", err
	}
	return "/v1/workspaces/" + w + "/commands/" + cm, nil
}

// LogOptions selects log lines.
type LogOptions struct {
	// Tail keeps only the last Tail lines; 0 = all.
	Tail int
	// Since keeps only lines written in the last Since; 0 = all.
	Since time.Duration
	// Stream keeps one stream ("out" or "err"); "" = both.
	Stream messages.Stream
	// Follow keeps the stream open for new lines until ctx ends, fn fails,
	// the daemon stops or the command's workspace is removed.
	Follow bool
}

// Logs calls fn with each selected log line of a command, oldest first.
// An error from fn ends the stream and is returned.
func (c *Client) Logs(ctx context.Context, ws, cmd string, o LogOptions, fn func(messages.LogLine) error) error {
	path, err := commandPath(ws, cmd)
	if err != nil {
		return err
	}
	q := url.Values{}
	if o.Tail != 0 {
		q.Set("tail", strconv.Itoa(o.Tail))
	}
	if o.Since != 0 {
		q.Set("since", o.Since.String())
	}
	if o.Stream != "" {
		q.Set("stream", string(o.Stream))
	}
	if o.Follow {
		q.Set("follow", "1")
	}
	return stream(ctx, c, path+"/logs", q, fn)
}

// Stats returns a workspace's stats history, oldest first.
func (c *Client) Stats(ctx context.Context, ws string) ([]messages.Sample, error) {
	var out []messages.Sample
	w, err := seg("workspace", ws)
	if err != nil {
		return nil, err
	}
	err = c.call(ctx, http.MethodGet, "/v1/workspaces/"+w+"/stats", nil, nil, &out)
	return out, err
}

func tapQuery(tap bool) url.Values {
	if !tap {
		return nil
	}
	return url.Values{"tap": {"1"}}
}

// RunPipeline starts a pipeline in a workspace; with tap, each producer's
// output is also served on a socket in the workspace's first flow dir.
func (c *Client) RunPipeline(ctx context.Context, ws string, spec messages.PipelineSpec, tap bool) (messages.PipelineInfo, error) {
	var info messages.PipelineInfo
	w, err := seg("workspace", ws)
	if err != nil {
		return info, err
	}
	err = c.call(ctx, http.MethodPost, "/v1/workspaces/"+w+"/pipelines", tapQuery(tap), spec, &info)
	return info, err
}

// Pipelines lists the pipelines of a workspace, or of all when ws is "".
func (c *Client) Pipelines(ctx context.Context, ws string) ([]messages.PipelineInfo, error) {
	var out []messages.PipelineInfo
	var q url.Values
	if ws != "" {
		q = url.Values{"workspace": {ws}}
	}
	err := c.call(ctx, http.MethodGet, "/v1/pipelines", q, nil, &out)
	return out, err
}

// Pipeline returns a pipeline run by run ID or label.
func (c *Client) Pipeline(ctx context.Context, run string) (messages.PipelineInfo, error) {
	var info messages.PipelineInfo
	r, err := seg("pipeline", run)
	if err != nil {
		return info, err
	}
	err = c.call(ctx, http.MethodGet, "/v1/pipelines/"+r, nil, nil, &info)
	return info, err
}

// StopPipeline stops a pipeline run for good.
func (c *Client) StopPipeline(ctx context.Context, run string) (messages.PipelineInfo, error) {
	var info messages.PipelineInfo
	r, err := seg("pipeline", run)
	if err != nil {
		return info, err
	}
	err = c.call(ctx, http.MethodPost, "/v1/pipelines/"+r+"/stop", nil, nil, &info)
	return info, err
}

// Tap returns the raw output of a pipeline node ("" = the first producer)
// from now on; it ends (io.EOF) when the run ends or the daemon stops.
// Close it when done.
func (c *Client) Tap(ctx context.Context, run, node string) (io.ReadCloser, error) {
	r, err := seg("pipeline", run)
	if err != nil {
		return nil, err
	}
	var q url.Values
	if node != "" {
		q = url.Values{"node": {node}}
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/pipelines/"+r+"/tap", q, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// SavePipeline saves (or replaces) a named pipeline spec.
func (c *Client) SavePipeline(ctx context.Context, name string, spec messages.PipelineSpec) error {
	n, err := seg("name", name)
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodPut, "/v1/saved-pipelines/"+n, nil, spec, nil)
}

// SavedPipelines lists the saved pipelines.
func (c *Client) SavedPipelines(ctx context.Context) ([]protocol.SavedPipeline, error) {
	var out []protocol.SavedPipeline
	err := c.call(ctx, http.MethodGet, "/v1/saved-pipelines", nil, nil, &out)
	return out, err
}

// DeleteSavedPipeline deletes a saved pipeline.
func (c *Client) DeleteSavedPipeline(ctx context.Context, name string) error {
	n, err := seg("name", name)
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodDelete, "/v1/saved-pipelines/"+n, nil, nil, nil)
}

// StartSavedPipeline starts a saved pipeline into workspace ws ("" = the
// workspace its spec names).
func (c *Client) StartSavedPipeline(ctx context.Context, name, ws string, tap bool) (messages.PipelineInfo, error) {
	var info messages.PipelineInfo
	n, err := seg("name", name)
	if err != nil {
		return info, err
	}
	q := url.Values{}
	if ws != "" {
		q.Set("workspace", ws)
	}
	if tap {
		q.Set("tap", "1")
	}
	err = c.call(ctx, http.MethodPost, "/v1/saved-pipelines/"+n+"/start", q, nil, &info)
	return info, err
}

// Events calls fn with the recent events, oldest first, then (follow) with
// each new one until ctx ends, fn fails or the daemon stops.
func (c *Client) Events(ctx context.Context, follow bool, fn func(messages.Event) error) error {
	var q url.Values
	if follow {
		q = url.Values{"follow": {"1"}}
	}
	return stream(ctx, c, "/v1/events", q, fn)
}

// Snapshot returns the last state snapshot the daemon wrote.
func (c *Client) Snapshot(ctx context.Context) (*persistence.State, error) {
	var st persistence.State
	if err := c.call(ctx, http.MethodGet, "/v1/snapshot", nil, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// SaveSnapshot makes the daemon write a snapshot if anything changed; it
// reports whether it wrote, and where the state file is.
func (c *Client) SaveSnapshot(ctx context.Context) (saved bool, path string, err error) {
	var r SnapshotResult
	if err := c.call(ctx, http.MethodPost, "/v1/snapshot", nil, nil, &r); err != nil {
		return false, "", err
	}
	return r.Saved, r.Path, nil
}

// StateFile returns the state file's path, whether it can be written, and the
// entries it keeps but that are not in effect.
func (c *Client) StateFile(ctx context.Context) (StateInfo, error) {
	var st StateInfo
	err := c.call(ctx, http.MethodGet, "/v1/state", nil, nil, &st)
	return st, err
}

// DropKept removes a kept entry (by ID, label, name or SECTION[N]) from
// the state file, durably, and returns it.
func (c *Client) DropKept(ctx context.Context, ref string) (KeptEntry, error) {
	p, err := seg("ref", ref)
	if err != nil {
		return KeptEntry{}, err
	}
	var k KeptEntry
	err = c.call(ctx, http.MethodDelete, "/v1/state/kept/"+p, nil, nil, &k)
	return k, err
}

// controlCommand posts to one of a command's control routes.
func (c *Client) controlCommand(ctx context.Context, method, ws, cmd, verb string, body any) (messages.CommandInfo, error) {
	var info messages.CommandInfo
	path, err := commandPath(ws, cmd)
	if err != nil {
		return info, err
	}
	if verb != "" {
		path += "/" + verb
	}
	err = c.call(ctx, method, path, nil, body, &info)
	return info, err
}

// StopCommand stops a running command gracefully (its stop_signal, then
// SIGKILL after its stop_timeout_ms) and returns its view once it has
// ended; StopResult says how.
func (c *Client) StopCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error) {
	return c.controlCommand(ctx, http.MethodPost, ws, cmd, "stop", nil)
}

// StartCommand starts a stopped or ended command again with the same ID
// and returns its view once the process runs.
func (c *Client) StartCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error) {
	return c.controlCommand(ctx, http.MethodPost, ws, cmd, "start", nil)
}

// RestartCommand stops a running command and starts it again with the
// same ID (or starts an ended one), and returns its view once the new
// process runs.
func (c *Client) RestartCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error) {
	return c.controlCommand(ctx, http.MethodPost, ws, cmd, "restart", nil)
}

// SignalCommand sends sig (a name such as "TERM" or a number) to every
// process in a running command's process group.
func (c *Client) SignalCommand(ctx context.Context, ws, cmd, sig string) (messages.CommandInfo, error) {
	return c.controlCommand(ctx, http.MethodPost, ws, cmd, "signal", SignalRequest{Signal: sig})
}

// RemoveCommand forgets an ended command.
func (c *Client) RemoveCommand(ctx context.Context, ws, cmd string) (messages.CommandInfo, error) {
	return c.controlCommand(ctx, http.MethodDelete, ws, cmd, "", nil)
}

// StopCommands stops every command of a workspace that has not ended and
// returns their views once all have ended.
func (c *Client) StopCommands(ctx context.Context, ws string) ([]messages.CommandInfo, error) {
	var out []messages.CommandInfo
	w, err := seg("workspace", ws)
	if err != nil {
		return nil, err
	}
	err = c.call(ctx, http.MethodPost, "/v1/workspaces/"+w+"/stop", nil, nil, &out)
	return out, err
}

// RestartPipeline stops a run's nodes and launches the run again with the
// same run ID; it returns the view once the new processes run.
func (c *Client) RestartPipeline(ctx context.Context, run string) (messages.PipelineInfo, error) {
	var info messages.PipelineInfo
	r, err := seg("pipeline", run)
	if err != nil {
		return info, err
	}
	err = c.call(ctx, http.MethodPost, "/v1/pipelines/"+r+"/restart", nil, nil, &info)
	return info, err
}

// SignalPipeline sends sig to the process group of node ("" = every
// running node) of a run.
func (c *Client) SignalPipeline(ctx context.Context, run, node, sig string) (messages.PipelineInfo, error) {
	var info messages.PipelineInfo
	r, err := seg("pipeline", run)
	if err != nil {
		return info, err
	}
	err = c.call(ctx, http.MethodPost, "/v1/pipelines/"+r+"/signal", nil, SignalRequest{Signal: sig, Node: node}, &info)
	return info, err
}
