package pubsub

import "github.com/wsrpc/wsrpc/rpc"

// Position is a place in a topic's stream: the offset of a publication,
// which grows by one per publication on the topic, and the epoch of the
// stream it belongs to. The epoch changes when the stream was lost and
// started again (the history was dropped, the broker restarted), so a
// position of another epoch cannot be recovered from: offsets of two epochs
// are not comparable. The zero Position means "nothing seen yet".
type Position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// Publication is one message published on a topic.
type Publication struct {
	// Topic is the concrete topic it was published on (for a pattern
	// subscription, the topic that matched).
	Topic string
	// Offset and Epoch are its position in the topic's stream.
	Offset uint64
	Epoch  string
	// Data is the published value, encoded as JSON.
	Data rpc.Raw
	// Publisher is the rpc.Peer ID of the connection that published it, ""
	// when Go code did (Hub.Publish). It is used for publisher exclusion and
	// is not sent to subscribers.
	Publisher string
	// Gap is set by the client on the first publication it delivers after
	// publications were lost: a recovery that could not replay everything
	// missed, or a gap in offsets it could not fill. The publications before
	// it, back to the last one delivered, are gone.
	Gap bool
}

// Position returns the publication's position.
func (p *Publication) Position() Position { return Position{Offset: p.Offset, Epoch: p.Epoch} }
