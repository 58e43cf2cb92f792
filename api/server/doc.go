// Package server serves shipote's HTTP API (v1) over an Engine: the route
// table, the handlers, request parsing, and Serve with its bounded graceful
// shutdown. The daemon runs it on the socket from api.Listen; clients use
// package api, which links none of this.
//
// Access is decided by the peer credentials of each connection
// (SO_PEERCRED): only the daemon's own user and root are served.
package server
