// Package rpc is the heart of wsrpc: request/response calls in both
// directions over one [transport.Conn], with two wire codecs chosen by
// subprotocol (the compact binary wsrpc.v1, and JSON-RPC 2.0 in text frames,
// also used when no subprotocol was negotiated). docs/PROTOCOL.md specifies
// both.
//
// A [Peer] is the same type on both ends. [Peer.Send] takes a [Request]
// carrying an optional Reply channel: the peer gives the request an id, keeps
// the channel in its pending table and delivers the reply on it when it
// comes, in any order. A request without a Reply channel is a notification.
// [Peer.Call] is the blocking form over the same mechanism, [Peer.Notify] the
// fire-and-forget one. Calls from the other side go to the peer's
// [Handler].
//
// Deadlines and cancellation travel: a caller's ctx deadline is sent with the
// request as a relative timeout and becomes the handler's ctx deadline; when
// the caller's ctx ends, the call returns at once with ctx's error, a cancel
// message goes to the other side, the handler's ctx is cancelled, and its
// late reply is not sent.
//
// Errors crossing the wire are *[Error] values with a [Code]; errors.Is and
// [CodeOf] work on them through wrapping.
//
// # Streams
//
// [Peer.Stream] calls a method whose handler sends many results before the
// call ends (docs/PROTOCOL.md, section 14): [Stream.Recv] returns them in
// order, then io.EOF or the call's error. The handler sends them with
// [Request.Stream]'s [StreamWriter.Send], which blocks while the caller's
// credit is used up: the caller grants more as its reader consumes results
// (see [WithWindow] and [StreamWindowBytes]), so a slow reader holds the
// handler back instead of growing either side's memory. [Stream.RecvValue]
// decodes each result from the buffer it arrived in, which then goes back
// to be read into again: into a reused [Raw], a stream allocates nothing
// per result.
//
// # Declared methods
//
// [NewMethod], [NewNotification] and [NewStreamMethod] declare a method once
// with the Go types of its params and result, in a package the server and
// its callers both import; [Method.Call], [Notification.Notify] and
// [StreamMethod.Stream] then call it with those types on a Peer (in either
// direction), and package handler's Register functions serve it. Names
// beginning with "$/" or "rpc." are the protocol's ([ReservedMethod]).
//
// # Goroutines and ownership
//
// A Peer owns one reader goroutine, which decodes messages from the
// connection and dispatches them (replies to pending calls, cancels to
// handlers, calls to handler goroutines; nothing there waits for another
// goroutine, the most it does is write a refusal or an error reply, bounded
// by the transport's write timeout), and one goroutine per incoming call
// while its handler runs (at most MaxInFlight; more wait in a bounded
// backlog, see [WithBacklog]).
// Handler goroutines are reused: one that has returned waits up to a second
// for the next call, then exits, so an idle connection keeps none. The
// reader, too, lets its goroutine go after a second without a message; the
// transport's reader starts it again with the next one (an idle connection
// keeps only the transport's reader). A notification of a method given to
// [WithInline] is served on the reader itself, in order: what a client's
// subscription uses for its publications.
// An asynchronous call with a cancellable ctx registers a context.AfterFunc,
// which runs only if the ctx ends first. [Peer.Close], [Peer.CloseWith] and
// [Peer.CloseNow] wait for the reader (the handlers' contexts are cancelled
// by then); [Peer.Wait] waits for the handlers too, so the owner calls it
// after closing, and a handler may close its own connection. [Peer.Drain]
// waits for the calls in flight in both directions.
//
// [WithOnClose] runs a hook on the reader goroutine once the connection has
// ended. With [WithOutgoingMiddleware], each [Peer.Send] runs its chain
// on a goroutine of its own until the reply is delivered; [Peer.Wait] waits
// for those too.
//
// # Buffers
//
// Messages are encoded into, and received in, pooled buffers. A handler's
// Request.Params is valid until the handler returns (copy it to keep it, or
// use [WithOwnedParams]); a blocking [Peer.Call] decodes its result and gives
// the buffer back, so a *[Raw] result receives a copy, in the Raw's own
// backing array when it is large enough (as json.RawMessage does). Results
// delivered on a Reply channel and error data belong to the receiver.
//
// # Concurrency
//
// Every method of Peer is safe for concurrent use. Handlers run concurrently
// and must be safe for it.
package rpc
