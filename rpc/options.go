package rpc

import (
	"context"
	"log/slog"
)

// Defaults for a [Peer].
const (
	DefaultMaxInFlight = 100 // incoming calls handled at once per connection
	DefaultMaxBatch    = 100 // elements in one JSON-RPC batch

	// An incoming call beyond MaxInFlight waits in the connection's backlog,
	// bounded by these, until a handler is free.
	DefaultMaxBacklog      = 4096    // calls
	DefaultMaxBacklogBytes = 4 << 20 // bytes of their method names and params
)

// Option configures a [Peer].
type Option func(*options)

type options struct {
	handler     Handler
	codec       Codec
	maxInFlight int
	maxBatch    int
	backlog     int
	backlogSize int
	logger      *slog.Logger
	baseCtx     context.Context
	onClose     func(error)
	ownedParams bool
}

// WithHandler sets the handler for calls the other side makes. Without one,
// every incoming request is answered with method-not-found.
func WithHandler(h Handler) Option { return func(o *options) { o.handler = h } }

// WithValueCodec sets the value codec for params and results on binary
// connections (JSON-RPC connections always use JSON). nil means [JSON].
func WithValueCodec(c Codec) Option { return func(o *options) { o.codec = c } }

// WithMaxInFlight bounds the incoming calls handled at once. A call beyond
// the bound waits in the backlog (see [WithBacklog]) and starts, in the
// order received, when a handler returns. n < 1 means [DefaultMaxInFlight].
func WithMaxInFlight(n int) Option { return func(o *options) { o.maxInFlight = n } }

// WithBacklog bounds the incoming calls that wait for a free handler once
// MaxInFlight calls are being handled: at most calls of them, holding at most
// bytes of method names and params (plus 64 bytes each). A request that
// finds the backlog full is answered at once with [CodeBusy] (it was not
// started, so the caller may retry it); a notification is dropped and counted
// in [Stats]. Replies and cancellations never wait: they are handled as they
// arrive. A waiting call's deadline runs while it waits. calls < 0 turns the
// backlog off (every call beyond MaxInFlight is refused); 0 means
// [DefaultMaxBacklog], and bytes < 1 [DefaultMaxBacklogBytes].
func WithBacklog(calls, bytes int) Option {
	return func(o *options) { o.backlog, o.backlogSize = calls, bytes }
}

// WithMaxBatch bounds the elements of one JSON-RPC batch; a larger batch is
// answered with one invalid-request error. n < 1 means [DefaultMaxBatch].
func WithMaxBatch(n int) Option { return func(o *options) { o.maxBatch = n } }

// WithLogger makes the peer log protocol problems and handler panics. The
// peer never logs without one.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithBaseContext sets the context every handler's context derives from, so
// that values put there (an authenticated principal, say) reach handlers.
// Cancelling it does not close the connection; it cancels the handlers.
func WithBaseContext(ctx context.Context) Option { return func(o *options) { o.baseCtx = ctx } }

// WithOwnedParams makes every handler's [Request.Params] stay valid after the
// handler returns: the buffer of an incoming call is never reused, and the
// garbage collector reclaims it once nothing refers to it. By default Params
// is valid only until the handler returns, and its buffer is then reused for
// a later message; a handler that keeps the bytes (hands them to a goroutine
// that outlives it, say) must copy them, or the peer must be made with this
// option, which costs a buffer allocation per incoming message that carries
// params.
func WithOwnedParams() Option { return func(o *options) { o.ownedParams = true } }

// WithOnClose makes the peer call fn once the connection has ended, with the
// reason (as [Peer.Err] returns it), after every pending call has failed. fn
// runs on the peer's reader goroutine, which exits when fn returns; it may
// call the peer's Close methods, which then wait for the handlers still
// running.
func WithOnClose(fn func(err error)) Option { return func(o *options) { o.onClose = fn } }
