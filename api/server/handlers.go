// This file owns the handlers of the route table: each reads its path and
// query, calls the Engine and writes the answer or the stream.

package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"time"

	"github.com/shipote/shipote"
	"github.com/shipote/shipote/api"
	"github.com/shipote/shipote/messages"
	"github.com/shipote/shipote/messages/protocol"
	"github.com/shipote/shipote/persistence"
)

const (
	ndjson = "application/x-ndjson"
	// eventBuffer is how many events a follower may fall behind by before
	// it loses some.
	eventBuffer = 1024
	tapChunk    = 32 << 10
)

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// startStream sends the headers of a stream at once, so that the client
// knows it is open before the first item.
func startStream(w http.ResponseWriter, contentType string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_ = flush(w)
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) error {
	h := api.HealthInfo{Status: "ok", Version: shipote.Version, Degraded: s.degraded()}
	if h.Degraded != "" {
		h.Status = "degraded"
	}
	return writeJSON(w, http.StatusOK, h)
}

// degraded says why the state is degraded, or "".
func (s *Server) degraded() string {
	if err := s.eng.Degraded(); err != nil {
		return "state not writable: " + err.Error()
	}
	return ""
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, http.StatusOK, api.VersionInfo{
		Version:       shipote.Version,
		GoVersion:     runtime.Version(),
		LimitsBackend: s.eng.LimitsBackend(),
		Orphans:       s.eng.Orphans(),
		StatePath:     s.eng.StatePath(),
		Socket:        s.opts.SocketPath,
		Degraded:      s.degraded(),
	})
}

func (s *Server) getState(w http.ResponseWriter, r *http.Request) error {
	if s.eng.StatePath() == "" {
		return errNoState()
	}
	kept, err := s.eng.KeptEntries(r.Context())
	if err != nil {
		return err
	}
	out := api.StateInfo{Path: s.eng.StatePath(), Degraded: s.degraded(), Kept: keptEntries(kept)}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) dropKept(w http.ResponseWriter, r *http.Request) error {
	if s.eng.StatePath() == "" {
		return errNoState()
	}
	k, err := s.eng.DropKept(r.Context(), r.PathValue("ref"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, keptEntries([]persistence.KeptEntry{k})[0])
}

// keptEntries converts kept entries for the wire, each with the reference
// that names it for a drop.
func keptEntries(kept []persistence.KeptEntry) []api.KeptEntry {
	out := make([]api.KeptEntry, 0, len(kept))
	n := map[string]int{}
	for _, k := range kept {
		ref := k.ID
		if ref == "" {
			ref = fmt.Sprintf("%s[%d]", k.Section, n[k.Section])
		}
		n[k.Section]++
		out = append(out, api.KeptEntry{Section: k.Section, Ref: ref, ID: k.ID, Label: k.Label,
			Workspace: k.Workspace, Reason: k.Reason, Entry: k.Raw})
	}
	return out
}

func (s *Server) listWorkspaces(w http.ResponseWriter, r *http.Request) error {
	q, err := listQuery(r.URL.Query())
	if err != nil {
		return err
	}
	views, next, err := s.eng.WorkspaceViews(r.Context(), q)
	if err != nil {
		return err
	}
	if next != "" {
		setNextLink(w, r.URL, next)
	}
	var cache *listCache
	if q == (messages.ListQuery{}) {
		// The whole list (`ws ls`, top) is asked again and again, and is
		// the same until a workspace's figures change; pages are small.
		cache = &s.lists
	}
	return writeViews(w, views, cache)
}

func (s *Server) createWorkspace(w http.ResponseWriter, r *http.Request) error {
	if node := r.URL.Query().Get("node"); node != "" {
		// A member's router takes ?node= off before the create reaches
		// the member it names; here it was not: no cluster.
		if c := s.clusterOf(); c == nil || node != c.Self() {
			return api.NewError(api.CodeInvalid, "node", fmt.Sprintf("node %q: this daemon is not a member of a cluster", node))
		}
	}
	var spec messages.WorkspaceSpec
	if err := s.decodeBody(r, &spec); err != nil {
		return err
	}
	info, err := s.eng.CreateWorkspace(r.Context(), spec)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/workspaces/"+info.ID)
	return writeJSON(w, http.StatusCreated, info)
}

func (s *Server) getWorkspace(w http.ResponseWriter, r *http.Request) error {
	info, err := s.eng.Workspace(r.Context(), r.PathValue("ws"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}

func (s *Server) removeWorkspace(w http.ResponseWriter, r *http.Request) error {
	grace, err := durationParam(r.URL.Query(), "grace")
	if err != nil {
		return err
	}
	info, err := s.eng.RemoveWorkspace(r.Context(), r.PathValue("ws"), grace)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}

func (s *Server) listCommands(w http.ResponseWriter, r *http.Request) error {
	cmds, err := s.eng.Commands(r.Context(), r.PathValue("ws"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(cmds))
}

func (s *Server) exec(w http.ResponseWriter, r *http.Request) error {
	var ref messages.CommandRef
	if err := s.decodeBody(r, &ref); err != nil {
		return err
	}
	info, err := s.eng.Exec(r.Context(), r.PathValue("ws"), ref)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/workspaces/"+info.Workspace+"/commands/"+info.ID)
	return writeJSON(w, http.StatusCreated, info)
}

// allCommands lists the commands of every workspace; a workspace removed
// meanwhile is left out.
func (s *Server) allCommands(w http.ResponseWriter, r *http.Request) error {
	out, err := s.eng.AllCommands(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) getCommand(w http.ResponseWriter, r *http.Request) error {
	info, err := s.eng.Command(r.Context(), r.PathValue("ws"), r.PathValue("cmd"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}

// logs streams a command's log lines as NDJSON; with follow it goes on
// with new lines until the client goes, the daemon stops, or the command's
// workspace is removed.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) error {
	ws, cmd, q := r.PathValue("ws"), r.PathValue("cmd"), r.URL.Query()
	var lq shipote.LogQuery
	var err error
	if lq.Tail, err = intParam(q, "tail"); err != nil {
		return err
	}
	since, err := durationParam(q, "since")
	if err != nil {
		return err
	}
	if since > 0 {
		lq.Since = time.Now().Add(-since)
	}
	if lq.Stream, err = streamParam(q, "stream"); err != nil {
		return err
	}
	follow, err := boolParam(q, "follow")
	if err != nil {
		return err
	}
	if !follow {
		lines, err := s.eng.Logs(r.Context(), ws, cmd, lq)
		if err != nil {
			return err
		}
		startStream(w, ndjson)
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, l := range lines {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		return nil
	}
	// Answer an unknown command with 404 before the stream starts.
	if _, err := s.eng.Command(r.Context(), ws, cmd); err != nil {
		return err
	}
	ctx, cancel := streamContext(r)
	defer cancel()
	startStream(w, ndjson)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	err = s.eng.FollowLogs(ctx, ws, cmd, lq, func(lines []messages.LogLine) error {
		for _, l := range lines {
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		return flush(w)
	})
	if ctx.Err() != nil {
		return nil // the client went or the daemon stops: a normal end
	}
	return err
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) error {
	samples, err := s.eng.Stats(r.Context(), r.PathValue("ws"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(samples))
}

func (s *Server) runPipeline(w http.ResponseWriter, r *http.Request) error {
	tap, err := boolParam(r.URL.Query(), "tap")
	if err != nil {
		return err
	}
	var spec messages.PipelineSpec
	if err := s.decodeBody(r, &spec); err != nil {
		return err
	}
	info, err := s.eng.RunPipeline(r.Context(), r.PathValue("ws"), spec, tap)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/pipelines/"+info.ID)
	return writeJSON(w, http.StatusCreated, info)
}

func (s *Server) listPipelines(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.eng.Pipelines(r.Context(), r.URL.Query().Get("workspace"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(ps))
}

func (s *Server) getPipeline(w http.ResponseWriter, r *http.Request) error {
	info, err := s.eng.Pipeline(r.Context(), r.PathValue("run"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}

func (s *Server) stopPipeline(w http.ResponseWriter, r *http.Request) error {
	info, err := s.eng.StopPipeline(r.Context(), r.PathValue("run"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}

// tap streams the raw output of a pipeline node from now on, until the
// client goes, the run ends, or the daemon stops.
func (s *Server) tap(w http.ResponseWriter, r *http.Request) error {
	t, err := s.eng.Tap(r.Context(), r.PathValue("run"), r.URL.Query().Get("node"))
	if err != nil {
		return err
	}
	if t == nil {
		return errors.New("the engine returned no tap")
	}
	defer t.Close()
	ctx, cancel := streamContext(r)
	defer cancel()
	// Closing the tap unblocks a pending Read.
	stop := context.AfterFunc(ctx, func() { _ = t.Close() })
	defer stop()
	startStream(w, "application/octet-stream")
	buf := make([]byte, tapChunk)
	for {
		n, rerr := t.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return nil
			}
			if err := flush(w); err != nil {
				return nil
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) || ctx.Err() != nil {
				return nil
			}
			return rerr
		}
	}
}

func (s *Server) listSaved(w http.ResponseWriter, r *http.Request) error {
	sps, err := s.eng.SavedPipelines(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, nonNil(sps))
}

func (s *Server) putSaved(w http.ResponseWriter, r *http.Request) error {
	var spec messages.PipelineSpec
	if err := s.decodeBody(r, &spec); err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := s.eng.SavePipeline(r.Context(), name, spec); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, protocol.SavedPipeline{Name: name, Spec: spec})
}

func (s *Server) deleteSaved(w http.ResponseWriter, r *http.Request) error {
	if err := s.eng.DeleteSavedPipeline(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// startSaved starts a saved pipeline into ?workspace, or into the
// workspace its spec names.
func (s *Server) startSaved(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	tap, err := boolParam(q, "tap")
	if err != nil {
		return err
	}
	name, ws := r.PathValue("name"), q.Get("workspace")
	if ws == "" {
		sps, err := s.eng.SavedPipelines(r.Context())
		if err != nil {
			return err
		}
		for _, sp := range sps {
			if sp.Name == name {
				if sp.Spec.Workspace == "" {
					return api.NewError(api.CodeInvalid, "workspace",
						"workspace is required: saved pipeline "+name+" names no workspace")
				}
				ws = sp.Spec.Workspace
			}
		}
	}
	info, err := s.eng.StartSavedPipeline(r.Context(), name, ws, tap)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/pipelines/"+info.ID)
	return writeJSON(w, http.StatusCreated, info)
}

// events streams the recent events as NDJSON, then (follow) new ones until
// the client goes or the daemon stops.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	follow, err := boolParam(r.URL.Query(), "follow")
	if err != nil {
		return err
	}
	if !follow {
		startStream(w, ndjson)
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, ev := range s.eng.RecentEvents() {
			if err := enc.Encode(ev); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := streamContext(r)
	defer cancel()
	// Subscribe before reading the recent events so that none falls in
	// between; those published in between arrive twice and are skipped.
	sub := s.eng.Events(eventBuffer)
	defer sub.Cancel()
	recent := s.eng.RecentEvents()
	dup := make(map[messages.Event]struct{}, len(recent))
	for _, ev := range recent {
		dup[ev] = struct{}{}
	}
	startStream(w, ndjson)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, ev := range recent {
		if err := enc.Encode(ev); err != nil {
			return err
		}
	}
	if err := flush(w); err != nil {
		return err
	}
	for {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				return nil // the engine stopped
			}
			if dup != nil {
				if _, seen := dup[ev]; seen {
					continue
				}
				dup = nil // duplicates only come first
			}
			if err := enc.Encode(ev); err != nil {
				return err
			}
			if err := flush(w); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// errNoState answers snapshot requests to a daemon without a state file.
func errNoState() error {
	return api.NewError(api.CodeConflict, "", "the daemon keeps no state file (it was started without one), so it has no snapshot")
}

func (s *Server) getSnapshot(w http.ResponseWriter, r *http.Request) error {
	if s.eng.StatePath() == "" {
		return errNoState()
	}
	st, err := s.eng.Snapshot(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) saveSnapshot(w http.ResponseWriter, r *http.Request) error {
	if s.eng.StatePath() == "" {
		return errNoState()
	}
	saved, err := s.eng.SaveSnapshot(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.SnapshotResult{Saved: saved, Path: s.eng.StatePath()})
}
