// Package layering checks the module's import layering: the code that
// speaks the engine's protocol (persistence, the API, the CLI) depends on
// messages/protocol, not on the actor runtime in package actors. Its test
// runs `go list -deps` and fails when that is broken.
package layering
