// This file owns the answer types that the server and the client share
// beyond those of package messages.

package api

// HealthInfo is the answer of GET /healthz.
type HealthInfo struct {
	Status  string `json:"status"`
	Version string `json:"version"`
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
}

// SnapshotResult is the answer of POST /v1/snapshot.
type SnapshotResult struct {
	// Saved is false when nothing changed since the last snapshot.
	Saved bool   `json:"saved"`
	Path  string `json:"path"`
}

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}
