package rpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/wsrpc/wsrpc/transport"
)

// Encoded is a notification encoded once for one wire codec, so that it can
// be sent on any number of peers that speak that codec (a broadcast, a
// publication): every connection it is queued on shares its one buffer, and
// counts its size against its own send queue's byte bound. An Encoded is
// immutable and safe for concurrent use.
type Encoded struct {
	wire wireCodec
	data []byte
}

// Len is the size of the encoded message in bytes.
func (e *Encoded) Len() int { return len(e.data) }

// EncodeNotification encodes a notification of method with params (already
// encoded with this peer's [Codec]; nil for none) for this peer's wire codec.
// The result can be sent with [Peer.SendEncoded] on this peer and on every
// other peer for which [Peer.SameWire] reports true.
func (p *Peer) EncodeNotification(method string, params Raw) (*Encoded, error) {
	if err := p.checkParams(params); err != nil {
		return nil, err
	}
	m := message{kind: kindNotification, method: method, params: params}
	data := p.wire.encode(m)
	// The buffer is shared by every connection it is queued on and is
	// never recycled: the collector reclaims it once the last write is done.
	return &Encoded{wire: p.wire, data: data[:len(data):len(data)]}, nil
}

// SameWire reports whether an Encoded made by other can be sent on p: both
// speak the same wire codec (and, on binary connections, the caller has
// made sure they share their value codec).
func (p *Peer) SameWire(other *Peer) bool { return p.wire == other.wire }

var errWrongWire = errors.New("wsrpc: SendEncoded: message encoded for the other wire codec")

// SendEncoded queues e on the connection without copying it. It does not
// wait for a slow reader: a connection whose send queue would pass its byte
// bound is closed with 1008 (see transport.Conn.PushQueued), so that one
// client that does not read cannot hold up a broadcast or grow memory. It
// never writes on the caller's goroutine, and waits only while the queue is
// full in count, bounded by ctx.
func (p *Peer) SendEncoded(ctx context.Context, e *Encoded) error {
	if e.wire != p.wire {
		return errWrongWire
	}
	p.mu.Lock()
	refused := p.refusalLocked()
	p.mu.Unlock()
	if refused != nil {
		return refused
	}
	err := p.conn.PushQueued(ctx, transport.Message{Type: p.wire.messageType(), Data: e.data, Pack: p.wire.packer()})
	if err != nil && ctx.Err() == nil {
		return &Error{Code: CodeUnavailable, Message: "connection closed; the notification was not sent: " + err.Error()}
	}
	return err
}

// Offer queues e on the connection like SendEncoded, under a byte bound of
// its own for a stream of messages fanned out to many connections (the
// publications of a subscription): if e would take what is queued on the
// connection past limit, the connection is closed with code and reason (see
// transport.Conn.Offer) rather than waiting. Offer never waits and never
// writes on the caller's goroutine, so a producer offering one message to
// many peers is never held up by one of them. The error of an Offer that
// closed the connection wraps transport.ErrSlowReader.
func (p *Peer) Offer(e *Encoded, limit int64, code transport.StatusCode, reason string) error {
	return p.offer(e, limit, code, reason, false)
}

// OfferNow is Offer that may write e at once on the caller's goroutine,
// without waiting, when nothing is queued on the connection (see
// transport.Conn.OfferNow): for the first publication after a quiet spell.
func (p *Peer) OfferNow(e *Encoded, limit int64, code transport.StatusCode, reason string) error {
	return p.offer(e, limit, code, reason, true)
}

func (p *Peer) offer(e *Encoded, limit int64, code transport.StatusCode, reason string, now bool) error {
	if e.wire != p.wire {
		return errWrongWire
	}
	if p.refusing.Load() {
		p.mu.Lock()
		refused := p.refusalLocked()
		p.mu.Unlock()
		if refused != nil {
			return refused
		}
	}
	m := transport.Message{Type: p.wire.messageType(), Data: e.data, Pack: p.wire.packer()}
	var err error
	if now {
		err = p.conn.OfferNow(m, limit, code, reason)
	} else {
		err = p.conn.Offer(m, limit, code, reason)
	}
	if err != nil {
		// Wrapped, so that the caller can tell this Offer's own closing
		// (transport.ErrSlowReader) from a connection already gone.
		return fmt.Errorf("wsrpc: the notification was not sent: %w", err)
	}
	return nil
}
