// Package api is shipote's HTTP API (v1) on a Unix socket: the server that
// the daemon runs over an Engine, and the Go client that the CLI uses.
//
// Requests and answers are JSON with snake_case fields, the types of
// package messages. Streams (logs, events) are chunked NDJSON, one JSON
// object per line; taps are raw bytes. Every error is
//
//	{"error": {"code": "...", "message": "...", "field": "..."}}
//
// with the status of its code (see Error). docs/api.md lists every route
// with a curl example.
//
// Access is decided by the peer credentials of each connection
// (SO_PEERCRED): only the daemon's own user and root are served.
package api
