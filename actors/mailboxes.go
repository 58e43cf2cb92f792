// This file counts the messages waiting in the mailboxes of each kind of
// actor (engine, workspace, pipeline, splitter, sampler), through
// protoactor's mailbox middleware, for metrics.

package actors

import (
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// Actor kinds whose mailboxes are counted.
const (
	KindEngine    = "engine"
	KindWorkspace = "workspace"
	KindPipeline  = "pipeline"
	KindSplitter  = "splitter"
	KindSampler   = "sampler"
)

var kinds = []string{KindEngine, KindWorkspace, KindPipeline, KindSplitter, KindSampler}

// Mailboxes counts queued messages per actor kind. Its zero value is
// ready to use.
type Mailboxes struct {
	depth [5]atomic.Int64
	total [5]atomic.Uint64
}

// mailboxCounter is the middleware of one kind.
type mailboxCounter struct {
	m *Mailboxes
	i int
}

func (c mailboxCounter) MailboxStarted()     {}
func (c mailboxCounter) MessagePosted(any)   { c.m.depth[c.i].Add(1); c.m.total[c.i].Add(1) }
func (c mailboxCounter) MessageReceived(any) { c.m.depth[c.i].Add(-1) }
func (c mailboxCounter) MailboxEmpty()       {}
func (m *Mailboxes) index(kind string) int {
	for i, k := range kinds {
		if k == kind {
			return i
		}
	}
	return 0
}

// props gives an actor of kind a counted mailbox.
func (rt *Runtime) mailbox(kind string) actor.PropsOption {
	return actor.WithMailbox(actor.Unbounded(mailboxCounter{m: &rt.Mailboxes, i: rt.Mailboxes.index(kind)}))
}

// workspaceMailbox gives a workspace actor a counted mailbox whose user
// queue is a linked list (protoactor's lock-free queue): an idle
// workspace's empty queue is one node, where the ring of the default
// mailbox holds a buffer of ten slots from the start. A workspace sees
// few messages, so the node allocated per message costs little.
func (rt *Runtime) workspaceMailbox() actor.PropsOption {
	return actor.WithMailbox(actor.UnboundedLockfree(mailboxCounter{m: &rt.Mailboxes, i: rt.Mailboxes.index(KindWorkspace)}))
}

// MailboxStats is a reading of one kind's mailboxes.
type MailboxStats struct {
	Kind   string
	Queued int64  // messages waiting now, over every actor of the kind
	Posted uint64 // messages posted since start
}

// Read returns the current counts, one entry per kind.
func (m *Mailboxes) Read() []MailboxStats {
	out := make([]MailboxStats, len(kinds))
	for i, k := range kinds {
		out[i] = MailboxStats{Kind: k, Queued: max(m.depth[i].Load(), 0), Posted: m.total[i].Load()}
	}
	return out
}
