// Package api is the client side of shipote's HTTP API (v1) on a Unix
// socket: the Go client that the CLI uses, the answer and error types on
// the wire, the default socket path, and Listen, which opens the socket a
// daemon serves on. The server, which needs an Engine, is package
// api/server; this package links no engine and no actor runtime.
//
// Requests and answers are JSON with snake_case fields, the types of
// package messages. Streams (logs, events) are chunked NDJSON, one JSON
// object per line; taps are raw bytes. Every error is
//
//	{"error": {"code": "...", "message": "...", "field": "..."}}
//
// with the status of its code (see Error). docs/api.md lists every route
// with a curl example.
package api
