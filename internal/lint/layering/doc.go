// Package layering checks the module's import layering: the code on the
// client side of the engine's protocol (persistence, the API client, the
// CLI's client commands) depends on messages and messages/protocol, never
// on the actor runtime in package actors nor on the root package, which
// hosts it. Its test runs `go list -deps` and fails when that is broken.
package layering
