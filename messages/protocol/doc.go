// Package protocol holds the requests the engine's actors answer and the
// answers they give: what outside code (the Engine API, the persistence
// actor, an embedding application's own actors) exchanges with the engine
// and its workspaces. It holds data only; the actors live in package
// actors, which code speaking the protocol does not need to import.
//
// # Replies
//
// A request carries a [Reply]: a small value naming the PID its answer
// goes to, not a channel. [Reply.OK] and [Reply.Fail] send a *[Result] to
// that PID. A request whose Reply is unset is answered to the sender of
// the message (ctx.Sender()), so an actor that sends a request with
// ctx.Request gets its answer as a *Result[T] in its own Receive, the way
// ctx.Respond answers; it never blocks. A request answered later, after
// work in a goroutine, still answers the sender captured when it arrived.
//
// A Reply may carry an ID, echoed in Result.ID, so that a caller with
// several requests of the same answer type in flight can tell the answers
// apart ([ReplyTo]).
//
// A request that reaches an actor that is gone is failed at once with
// messages.ErrNotFound by the engine's dead-letter hook ([Request.Fail]),
// so no caller waits for an answer that cannot come.
package protocol
