package rpc

import (
	"context"
	"strconv"

	"github.com/wsrpc/wsrpc/transport"
)

// Handler serves the calls the other side makes. ServeRPC returns the
// encoded result (nil means JSON null) or an error. An *[Error] returned as
// it is goes out unchanged; an error that wraps one keeps its code and data,
// and its whole text (the wrappers' and the *Error's message) becomes the
// message, so fmt.Errorf("asking the client: %w", err) tells the caller
// where the error came from; any other error becomes [CodeInternalError]
// (or the context codes) with its text. For a notification the return
// values are discarded.
//
// ServeRPC is called on its own goroutine for each call, so it must be safe
// for concurrent use. ctx is cancelled when the caller cancels, when the
// deadline the caller sent passes, when the connection ends, and by
// [Peer.CloseNow] or a [Peer.Drain] deadline. Work that must outlive the
// connection (a notification's side effects, say) should detach from it with
// context.WithoutCancel.
//
// req.Params is valid only until ServeRPC returns: its buffer is then reused
// for a later message. A handler that keeps the bytes longer (in a goroutine
// it starts, a queue, a cache) must copy them, as an [io.Writer] must copy
// what it is given to keep it; a peer made [WithOwnedParams] never reuses
// these buffers, so Params stays valid. The result may alias Params: it is
// encoded before the buffer is reused.
type Handler interface {
	ServeRPC(ctx context.Context, req *Request) ([]byte, error)
}

// HandlerFunc adapts a function to [Handler].
type HandlerFunc func(ctx context.Context, req *Request) ([]byte, error)

// ServeRPC calls f.
func (f HandlerFunc) ServeRPC(ctx context.Context, req *Request) ([]byte, error) { return f(ctx, req) }

// Middleware wraps a [Handler] in another that adds a per-call concern
// (recovery, deadlines, logging, metrics, tracing, limits, authorization).
// The same shape wraps the calls a peer serves (a handler chain; see package
// handler) and the calls it makes ([WithOutgoingMiddleware]), so one
// middleware can cover both directions; [Request.Outgoing] tells them apart.
// The Handler it returns must be safe for concurrent use.
type Middleware func(Handler) Handler

// chain applies mws to h, mws[0] outermost.
func chain(mws []Middleware, h Handler) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// Request is one call, in either direction.
//
// Outgoing (given to [Peer.Send]): set Method, Params, optionally Metadata
// and, for a call that wants a reply, Reply; Send assigns ID. A nil Reply
// makes a notification. Outgoing middleware sees the same fields.
//
// Incoming (given to a [Handler]): Method, Params and Metadata are set,
// Reply is nil, and [Request.Peer] says where the call came from. Params
// aliases the received message and is valid only until the handler returns,
// unless the peer was made [WithOwnedParams] (see [Handler]).
type Request struct {
	Method string
	Params []byte
	// Metadata is the call's metadata (nil when none). A handler may read
	// it, an outgoing middleware may add to it.
	Metadata Metadata
	// Reply receives exactly one *Response for a call. It must be buffered,
	// with room for every call in flight that shares it: the peer never
	// blocks on it, and a reply that does not fit is dropped and counted.
	Reply chan *Response
	// ID is the request id; Send sets it on outgoing calls.
	ID uint64
	// OnReply, on an outgoing call, is called with the reply the other side
	// sends, on the peer's reader goroutine as the reply arrives: before
	// the peer reads its next message, and before the reply is delivered
	// (on Reply, or returned by Call). A caller uses it to be ready for what
	// the other side sends right after the reply (the publications of a
	// subscription, say). It is not called for a local outcome (ctx ended,
	// connection lost). While it runs the peer reads nothing else, so it
	// must not wait long; it must copy what it keeps of Result.
	OnReply func(*Response)

	peer         *Peer
	wid          wireID
	notification bool
	outgoing     bool
	onReplied    func(sent bool) // see OnReplied
	stream       *StreamWriter   // incoming: the caller asked for a stream
	opening      *Stream         // outgoing: the caller's side of the stream this call opens

	// Outgoing, through the middleware chain: what roundTrip reports back.
	sent    chan uint64        // an asynchronous Send waits on it for the request to be queued
	sentOK  bool               // the innermost handler queued the request (once at least)
	sentID  uint64             // the id it was first queued with
	buf     []byte             // the received reply the result aliases, to recycle once decoded
	recycle transport.Recycler // nil: leave buf to the collector
}

// Peer returns the peer of the call: the one it arrived on, or, for an
// outgoing call in middleware, the one making it. Its identity (ID,
// RemoteAddr, Header, Session...) is the connection's. It is nil for a
// Request built by hand (in a unit test, say).
func (r *Request) Peer() *Peer { return r.peer }

// OnReplied registers f to run once the reply to this incoming call has
// been handed to the connection (written, or queued ahead of anything sent
// after it), with sent true, or once it is known that none will be sent (a
// notification, a call the caller cancelled, a connection that closed), with
// sent false. A handler uses it to send what must follow its reply on the
// wire, such as the first publications of a subscription it has just made,
// or to undo what a reply nobody will read announced. f runs once, after
// ServeRPC has returned, on the goroutine that sent the reply; a later
// OnReplied replaces an earlier f. It has no effect on an outgoing Request.
func (r *Request) OnReplied(f func(sent bool)) { r.onReplied = f }

// Outgoing reports whether the call is one this side makes (seen by
// outgoing middleware) rather than one it serves.
func (r *Request) Outgoing() bool { return r.outgoing }

// IsNotification reports whether the caller wants no reply.
func (r *Request) IsNotification() bool { return r.notification }

// WireID returns the request id as it appeared on the wire: a decimal number,
// or the exact JSON text of a JSON-RPC id. It is "" for a notification, and
// for an outgoing call until the innermost handler has sent it.
func (r *Request) WireID() string {
	if r.notification {
		return ""
	}
	if r.outgoing {
		if r.ID == 0 {
			return ""
		}
		return strconv.FormatUint(r.ID, 10)
	}
	if r.wid.raw != "" {
		return r.wid.raw
	}
	return strconv.FormatUint(r.wid.n, 10)
}

// Response is the outcome of an outgoing call, delivered on its Request's
// Reply channel.
type Response struct {
	ID     uint64
	Result []byte // the encoded result; decode it with the peer's Codec
	// Err is an *Error from the other side, or a local error: the ctx error
	// when the call's context ended first ([CodeCanceled] or
	// [CodeDeadlineExceeded]), or [CodeConnectionLost] when the connection
	// ended before the reply came.
	Err error

	// buf is the received message Result aliases, when a blocking Call is
	// to give it back to recycle once the result is decoded.
	buf     []byte
	recycle transport.Recycler
}

// RequestFromContext returns the incoming request a handler's context
// belongs to, or nil.
func RequestFromContext(ctx context.Context) *Request {
	r, _ := ctx.Value(requestKey{}).(*Request)
	return r
}

type requestKey struct{}
