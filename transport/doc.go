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
//     ([Conn.NotifyRecv]).
//   - the writer, which takes queued messages and writes them, gathered into
//     as few system calls as it can (and, for messages that allow it, into
//     one WebSocket message: [Message.Pack]), bounded by the write timeout.
//     It runs only while there is writing to do: the first message queued
//     starts it, and it exits after a second without one, so an idle
//     connection has no writer.
//
// When a heartbeat is configured, a timer fires every interval and a short-lived
// goroutine sends one ping and waits for its pong; it is tracked like the others.
// [Conn.Close] and [Conn.CloseNow] stop all of them and wait for them: no
// goroutine outlives a closed Conn.
//
// # Concurrency
//
// Send, Close, CloseNow, Ping, Err, Done, State, Subprotocol and the address
// accessors are safe to call from any goroutine. Recv returns one channel that
// any number of goroutines may receive from, though a single consumer keeps
// messages in order.
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
