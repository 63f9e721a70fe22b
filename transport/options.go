package transport

import (
	"fmt"
	"time"

	"github.com/coder/websocket"
)

// Defaults applied when a field of [ConnOptions] is zero.
const (
	DefaultReadLimit         = 1 << 20 // 1 MiB
	DefaultWriteTimeout      = 10 * time.Second
	DefaultHeartbeatInterval = 30 * time.Second
	DefaultPongTimeout       = 20 * time.Second
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultSendQueue         = 1024 // messages; the queue takes memory only as it fills
	DefaultRecvQueue         = 16
	DefaultMaxQueuedBytes    = 2 << 20 // 2 MiB
	DefaultMessageTimeout    = 30 * time.Second
	DefaultMaxFrameSize      = 64<<10 - 14 // a frame and its largest header fill one 64 KiB write
	DefaultMaxPartsSize      = 1 << 30     // 1 GiB
)

// Bounds of [ConnOptions.MaxFrameSize] and [ConnOptions.PartsAbove]: [Dial]
// and [Accept] refuse values outside them.
const (
	MinFrameSize      = 64
	MaxFrameSizeLimit = 16 << 20 // 16 MiB
	MinPartSize       = 64
)

// CompressionMode selects permessage-deflate (RFC 7692). Compression is off
// unless asked for; when it is wanted, prefer CompressionNoContextTakeover, which
// keeps no per-connection compressor state (context takeover costs about
// 2.4 MiB per connection).
type CompressionMode = websocket.CompressionMode

// The compression modes.
const (
	CompressionDisabled          = websocket.CompressionDisabled
	CompressionNoContextTakeover = websocket.CompressionNoContextTakeover
	CompressionContextTakeover   = websocket.CompressionContextTakeover
)

// ConnOptions are the settings shared by both ends of a connection. The zero
// value gives safe defaults. A negative duration or limit turns the feature off.
type ConnOptions struct {
	// ReadLimit is the largest message accepted from the peer, in bytes
	// (decompressed bytes when compression is on). A larger message closes the
	// connection with 1009. Zero means DefaultReadLimit; negative means no limit.
	// It does not apply when PartsAbove is set: MaxPartsSize does instead.
	ReadLimit int64

	// WriteTimeout bounds the writing of one message, or of one frame of a
	// message sent by [Conn.SendReader]. When it passes, the connection is
	// dropped and Err wraps ErrWriteTimeout. Zero means DefaultWriteTimeout;
	// negative means no timeout.
	WriteTimeout time.Duration

	// HeartbeatInterval is how often a ping is sent. Zero means
	// DefaultHeartbeatInterval; negative disables the heartbeat.
	HeartbeatInterval time.Duration

	// PongTimeout is how long to wait for the pong that answers a ping before
	// the peer is declared dead: the connection is dropped and Err wraps
	// ErrPeerUnresponsive. A silent peer is therefore detected within
	// HeartbeatInterval + PongTimeout. Zero means DefaultPongTimeout.
	PongTimeout time.Duration

	// Compression opts in to permessage-deflate. Off by default.
	Compression CompressionMode

	// SendQueue is how many messages Send and TrySend may have queued ahead
	// of the writer before Send waits (and TrySend fails); Push is bounded by
	// MaxQueuedBytes alone. It should leave room for every goroutine that
	// sends at once: their messages then go out together, corked into few
	// system calls. Zero means DefaultSendQueue; negative means one.
	SendQueue int

	// RecvQueue is how many received messages may wait for the consumer of
	// Recv before the reader stops reading from the network. Zero means
	// DefaultRecvQueue; negative means unbuffered.
	RecvQueue int

	// MaxQueuedBytes bounds the bytes of the messages accepted for writing
	// and not yet written, each counted with 64 bytes more (so the bound
	// bounds their number too). [Conn.Send] waits for room while the queue
	// holds half of it, leaving the other half to [Conn.Push], which must
	// not wait for a slow peer: a Push that would take the queue past the
	// bound ends the connection (close code 1008, Err wraps
	// [ErrSlowReader]). A single message larger than the bound is accepted
	// when nothing else is queued. Zero means DefaultMaxQueuedBytes;
	// negative means no bound.
	MaxQueuedBytes int64

	// MessageTimeout bounds the time from the first frame of an incoming
	// message to its last: a peer that starts a message and does not finish
	// it in time (a fragmented message trickled, or never ended) has the
	// connection closed with 1008 and Err wraps [ErrMessageTimeout]. Zero
	// means DefaultMessageTimeout; negative means no bound.
	//
	// For a message received in parts (PartsAbove), the bound applies to
	// each part: the time the consumer takes between parts does not count.
	MessageTimeout time.Duration

	// MaxFrameSize is the largest frame payload, in bytes, that
	// [Conn.SendReader] writes: a longer message goes out in frames of
	// MaxFrameSize bytes, and SendReader holds one frame's worth of it at a
	// time. Zero means DefaultMaxFrameSize; otherwise it must be between
	// MinFrameSize and MaxFrameSizeLimit (a negative value is refused, not
	// taken for "off"). Messages given to Send, Push,
	// TrySend and Offer are written in one frame whatever their size.
	MaxFrameSize int

	// PartsAbove, when positive, has a message larger than PartsAbove bytes
	// delivered on Recv in parts instead of in one buffer: each part is a
	// [Message] of at most PartsAbove bytes with Partial set, and the last
	// part has Partial unset; the parts of one message come in order, with
	// nothing between them. A message of up to PartsAbove bytes arrives
	// whole, as without the option. The parts of a text message are each
	// valid UTF-8 (a rune is never split between two parts). With the
	// option, ReadLimit does not apply and MaxPartsSize bounds a message
	// instead; memory stays bounded by about (RecvQueue+2) x PartsAbove
	// however large the message. Zero or negative: every message arrives
	// whole (the default). When positive it must be at least MinPartSize.
	PartsAbove int

	// MaxPartsSize bounds the total size of a message received in parts
	// (PartsAbove): a larger one closes the connection with 1009 (Err wraps
	// ErrMessageTooBig), its last part never delivered, and no more than
	// MaxPartsSize of its bytes in the parts before. Zero means
	// DefaultMaxPartsSize; negative means no bound. Unused without
	// PartsAbove.
	MaxPartsSize int64
}

func (o ConnOptions) withDefaults() ConnOptions {
	if o.ReadLimit == 0 {
		o.ReadLimit = DefaultReadLimit
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.PongTimeout <= 0 {
		o.PongTimeout = DefaultPongTimeout
	}
	if o.MaxQueuedBytes == 0 {
		o.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if o.MessageTimeout == 0 {
		o.MessageTimeout = DefaultMessageTimeout
	}
	if o.MaxFrameSize == 0 {
		o.MaxFrameSize = DefaultMaxFrameSize
	}
	if o.PartsAbove < 0 {
		o.PartsAbove = 0
	}
	if o.MaxPartsSize == 0 {
		o.MaxPartsSize = DefaultMaxPartsSize
	}
	o.SendQueue = queueSize(o.SendQueue, DefaultSendQueue)
	o.RecvQueue = queueSize(o.RecvQueue, DefaultRecvQueue)
	return o
}

// readLimit is the limit on a message that coder/websocket enforces (the
// options have their defaults).
func (o ConnOptions) readLimit() int64 {
	if o.PartsAbove > 0 {
		return o.MaxPartsSize
	}
	return o.ReadLimit
}

// validate reports the settings that Dial and Accept refuse.
func (o ConnOptions) validate() error {
	if n := o.MaxFrameSize; n != 0 && (n < MinFrameSize || n > MaxFrameSizeLimit) {
		return fmt.Errorf("MaxFrameSize %d is outside [%d, %d]", n, MinFrameSize, MaxFrameSizeLimit)
	}
	if n := o.PartsAbove; n > 0 && n < MinPartSize {
		return fmt.Errorf("PartsAbove %d is below %d", n, MinPartSize)
	}
	return nil
}

func queueSize(n, def int) int {
	switch {
	case n == 0:
		return def
	case n < 0:
		return 0
	}
	return n
}
