// This file converts between the splitter actor's types and the views of
// package messages.

package actors

import (
	"os"

	"github.com/shipote/shipote/internal/flow"
	"github.com/shipote/shipote/messages"
)

func flowConsumer(name string, w *os.File) flow.Consumer {
	return flow.Consumer{Name: name, W: w}
}

func splitterInfo(fs *FlowStats) messages.SplitterInfo {
	si := messages.SplitterInfo{Node: fs.Node, BytesIn: fs.BytesIn, ThrottledMs: fs.ThrottledMs}
	for _, c := range fs.Channels {
		si.Channels = append(si.Channels, messages.ChannelInfo{
			From: c.From, To: c.To, Tap: c.Tap,
			BytesTotal: c.BytesTotal, BytesPerSec: c.BytesPerSec, DroppedBytes: c.DroppedBytes,
		})
	}
	return si
}
