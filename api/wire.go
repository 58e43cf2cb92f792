// This file owns the request and answer types that the server and the
// client share beyond those of package messages, errors included.

package api

import (
	"encoding/json"
)

// HealthInfo is the answer of GET /healthz.
type HealthInfo struct {
	// Status is "ok", or "degraded" while the state file cannot be
	// written (reads are served; mutations are refused).
	Status  string `json:"status"`
	Version string `json:"version"`
	// Degraded says why the state is degraded; "" when it is not.
	Degraded string `json:"degraded,omitempty"`
}

// VersionInfo is the answer of GET /v1/version.
type VersionInfo struct {
	// Version is shipote's version (shipote.Version).
	Version string `json:"version"`
	// GoVersion is the Go release the daemon was built with.
	GoVersion string `json:"go_version"`
	// LimitsBackend names the resource-limit backend in use.
	LimitsBackend string `json:"limits_backend"`
	// Orphans says what keeps the daemon's processes from outliving it:
	// "pid-namespace (kernel)", or "pdeathsig (direct children only): why".
	Orphans string `json:"orphans"`
	// StatePath is the state file; "" for a daemon that persists nothing.
	StatePath string `json:"state_path"`
	// Socket is the socket the daemon listens on, as it was told.
	Socket string `json:"socket"`
	// Degraded is "state not writable: <cause>" while the state file
	// cannot be written; "" when it can.
	Degraded string `json:"degraded,omitempty"`
}

// StateInfo is the answer of GET /v1/state: the state file, whether it
// can be written, and the entries it keeps but that are not in effect.
type StateInfo struct {
	Path     string      `json:"path"`
	Degraded string      `json:"degraded,omitempty"`
	Kept     []KeptEntry `json:"kept"`
}

// KeptEntry is an entry of the state file that could not be restored. It
// is written back on every save, byte for byte, until it restores at a
// later start or is dropped (DELETE /v1/state/kept/{ref}).
type KeptEntry struct {
	// Section is "workspaces", "saved_pipelines" or "live_pipelines".
	Section string `json:"section"`
	// Ref names it for a drop: ID, label or name, or SECTION[N].
	Ref       string `json:"ref"`
	ID        string `json:"id,omitempty"`
	Label     string `json:"label,omitempty"`
	Workspace string `json:"workspace,omitempty"`
	Reason    string `json:"reason"`
	// Entry is the entry as the file holds it.
	Entry json.RawMessage `json:"entry"`
}

// SnapshotResult is the answer of POST /v1/snapshot.
type SnapshotResult struct {
	// Saved is false when nothing changed since the last snapshot.
	Saved bool   `json:"saved"`
	Path  string `json:"path"`
}

// SignalRequest is the optional body of the signal routes; the query
// parameter `signal` may carry the same instead.
type SignalRequest struct {
	// Signal is a name ("TERM", "SIGHUP") or a number ("9").
	Signal string `json:"signal"`
	// Node limits a pipeline signal to one node; "" = every node.
	Node string `json:"node,omitempty"`
}

// ErrorBody is the JSON shape of every error answer.
type ErrorBody struct {
	Error ErrorFields `json:"error"`
}

// ErrorFields are the fields of an error answer (see Error).
type ErrorFields struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}
