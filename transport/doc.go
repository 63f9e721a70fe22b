// Package transport exposes a WebSocket connection as Go channels.
//
// A [Conn] is made by [Dial] (client side) or [Accept] (server side) on top of
// github.com/coder/websocket. Incoming messages arrive on the channel returned by
// [Conn.Recv]; outgoing messages are queued with [Conn.Send], which blocks while
// the send queue is full (backpressure) and honours its context.
//
// # Goroutines and ownership
//
// Each Conn owns one long-lived goroutine and one that comes and goes:
//
//   - the reader, which reads with context.Background() (a cancellable
//     context would cost allocations per frame and drop the TCP connection
//     without a close frame when cancelled), validates text as UTF-8 and
//     delivers messages on Recv. It closes the Recv channel when it exits.
//     A consumer with nothing to do can let its own goroutine go and be
//     called back by the reader when the next message comes
//     ([Conn.NotifyRecv]), and a consumer that handles a message quickly
//     can have the reader hand it over directly, without Recv, whenever
//     nothing waits in Recv ([Conn.SetReceiver]).
//   - the writer, which takes queued messages and writes them, gathered into
//     as few system calls as it can (and, for messages that allow it, into
//     one WebSocket message: [Message.Pack]), bounded by the write timeout.
//     It runs only while there is writing to do: the first message queued
//     starts it, and it exits after a second without one, so an idle
//     connection has no writer. Some messages are written on the sender's
//     goroutine instead, when nothing is queued: [Conn.Send]'s, and
//     [Conn.OfferNow]'s when the socket takes them without waiting.
//
// # Framing
//
// coder/websocket does the handshake, the closing handshake, control frames,
// compression, fragmented messages and the protocol errors it answers. On a
// connection without compression, the Conn frames the common case itself.
// A data message of up to 64 KiB is written as one final frame built here
// (masked, on a client, with keys from a per-connection ChaCha8 seeded
// from crypto/rand); this needs only that
// the frames written be followed, as on every accepted connection (TLS
// included) and on a dialed one without TLS. A message that arrives as one
// final frame, whole in what was read, is taken from the read buffer here
// when the socket is plain and nothing was buffered above it at the
// handshake; everything else read goes to coder/websocket, which is never
// handed bytes past the end of the frame it reads. This skips
// coder/websocket's channel-based locks, two to three per message each
// way, which were most of a small message's cost above the system calls.
//
// When a heartbeat is configured, a timer fires every interval and a short-lived
// goroutine sends one ping and waits for its pong; it is tracked like the others.
// [Conn.Close] and [Conn.CloseNow] stop all of them and wait for them: no
// goroutine outlives a closed Conn.
//
// # Concurrency
//
// Send, SendReader, Close, CloseNow, Ping, Err, Done, State, Subprotocol and
// the address accessors are safe to call from any goroutine. Recv returns one
// channel that any number of goroutines may receive from, though a single
// consumer keeps messages in order (and the parts of a message together).
//
// # Messages in parts
//
// A message need not be held in memory whole. [Conn.SendReader] sends one
// from an io.Reader, of any size, in frames of [ConnOptions.MaxFrameSize]
// bytes, holding one frame at a time. It runs on the caller's goroutine: it
// takes its place in the send queue like any message, and when the writer
// reaches that place, the writer hands the write side over and waits until
// the message's last frame is out (WebSocket cannot interleave the frames
// of two messages; control frames still go between them). Messages sent
// meanwhile wait in the queue, under its usual bounds. A ctx that ends, or
// a reader that fails, after the first frame closes the connection with
// 1011: a half-sent message cannot be taken back.
//
// On the receiving side, [ConnOptions.PartsAbove] has a message larger than
// that delivered on Recv as parts of at most PartsAbove bytes, each a
// [Message] with Partial set but the last, in order and with nothing
// between them; [ConnOptions.MaxPartsSize] bounds the whole (1009 over it),
// MessageTimeout applies to each part, and text is checked as UTF-8 part by
// part: no part ends inside a rune, and a part holding an invalid sequence
// (one cut by the end of the part before included) is never delivered, the
// connection is closed with 1007 instead. Memory stays bounded by the part
// size and RecvQueue, whatever the message's size.
//
// # Ending
//
// A connection ends when either side closes it, when the network fails, when
// the peer breaks the protocol (for example invalid UTF-8 in a text message:
// close code 1007, or a message over the read limit: close code 1009), or when
// the peer stops answering pings. Once it has ended, Done is closed, Recv is
// closed after the last delivered message, and Err reports a *[CloseError]
// with the close code, the reason, which side closed, and the cause.
package transport
