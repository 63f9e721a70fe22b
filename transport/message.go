package transport

import "github.com/coder/websocket"

// MessageType says whether a message is UTF-8 text or binary.
type MessageType = websocket.MessageType

// The two WebSocket data message types.
const (
	Text   = websocket.MessageText
	Binary = websocket.MessageBinary
)

// Message is one complete WebSocket data message, or one part of a large
// one (see Partial).
//
// A Message received from [Conn.Recv] belongs to the receiver. A Message given
// to [Conn.Send] belongs to the Conn until it has been written: the caller must
// not modify Data after Send returns.
type Message struct {
	Type MessageType
	Data []byte
	// Recycle, when set on a Message given to Send, receives Data once its
	// bytes have been written (copied out of Data), so that the sender can
	// reuse the buffer, or once the message has been dropped unwritten
	// because the connection ended. It is not called when Send returns an
	// error (Data is still the caller's). It must not block.
	//
	// On a received Message, Recycle is set when Data is a pooled buffer
	// (messages up to 72 KiB): a receiver that is done with Data may call
	// Recycle.Recycle(m.Data), once, so that a later message reuses the
	// buffer instead of allocating one. After that call, neither Data nor
	// anything sliced from it may be used. Not calling it is always safe;
	// the garbage collector then reclaims the buffer, whose capacity is at
	// most 2.25 times its length. Send never calls a received message's
	// Recycle: a received Message may be forwarded as it is, to several
	// connections, and still be read afterwards.
	Recycle Recycler
	// Pack, when set on a Message given to Send, Push, PushQueued or Offer,
	// lets the writer join it with the messages queued right after it that
	// have the same Pack and Type into one WebSocket message, made by
	// Pack.Pack: a burst of small messages fanned out to a connection then
	// costs one frame, not one each. The protocol above decides what a
	// packed message looks like (a JSON-RPC batch, say); the receiver sees
	// only that message. At most [MaxPack] messages and [MaxPackBytes]
	// bytes (counting 4 bytes of framing per message and 8 for the whole)
	// are packed together, so a receiver must accept that much.
	Pack Packer
	// Partial is set on a received Message that is one part of a larger
	// message, and is not its last part: a connection with
	// [ConnOptions.PartsAbove] delivers a message larger than that in
	// parts, in order, with nothing of another message between them; the
	// last part has Partial unset (and so has a message that arrives whole).
	// If the connection ends before the last part, Recv is closed after the
	// parts delivered so far and Err says why. Partial is ignored on a
	// Message given to Send (a part forwarded goes out as a message of its
	// own): send a large message with [Conn.SendReader].
	Partial bool
}

// Bounds of one packed message (see [Message.Pack]).
const (
	MaxPack      = 64
	MaxPackBytes = 32 << 10
)

// Packer joins messages into one; see [Message.Pack].
type Packer interface {
	// Pack appends to dst the one message that carries msgs (two or more,
	// in order, of the same type) and returns it. It must not keep msgs.
	Pack(dst []byte, msgs []Message) []byte
}

// Recycler takes back message buffers; see [Message.Recycle].
type Recycler interface {
	Recycle(data []byte)
}

// State is the life-cycle state of a connection.
type State int32

// The states a connection moves through, in order. A [Conn] is never
// StateConnecting (it exists only once the handshake is done); the state is
// defined here so that layers which reconnect can report it.
const (
	StateConnecting State = iota
	StateOpen
	StateClosing
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateOpen:
		return "open"
	case StateClosing:
		return "closing"
	case StateClosed:
		return "closed"
	}
	return "unknown"
}
