package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"strings"
	"time"

	"github.com/wsrpc/wsrpc/internal/optset"
	"github.com/wsrpc/wsrpc/transport"
)

// Defaults for a [Peer].
const (
	DefaultMaxInFlight = 100 // incoming calls handled at once per connection
	DefaultMaxBatch    = 100 // elements in one JSON-RPC batch

	// An incoming call beyond MaxInFlight waits in the connection's backlog,
	// bounded by these, until a handler is free.
	DefaultMaxBacklog      = 4096    // calls
	DefaultMaxBacklogBytes = 4 << 20 // bytes of their method names and params

	// The metadata of one call (see [Metadata]) may hold at most this many
	// entries, of at most this many bytes of keys and values in all.
	DefaultMaxMetadata      = 64
	DefaultMaxMetadataBytes = 8 << 10
)

// Option configures a [Peer]. The same options configure client.Dial and
// server.New, which pass them on to the peer of every connection they make,
// so that what both ends share (the handler, limits, value codec, logger,
// heartbeat, transport settings, outgoing middleware) is set one way
// everywhere. Options apply whatever their order; each says which
// constructors take it, and a constructor given one it does not take, or an
// invalid value, returns an error.
type Option struct {
	name  string
	scope scope
	apply func(*Config) error
}

// scope says which constructors take an option.
type scope uint8

const (
	scopeAll      scope = iota // rpc.New, client.Dial and server.New
	scopePeer                  // rpc.New only: it is about one connection
	scopeEndpoint              // client.Dial and server.New only: it is about making connections
)

// ClientOption marks o as an option client.Dial takes.
func (Option) ClientOption(optset.Seal) {}

// ServerOption marks o as an option server.New takes.
func (Option) ServerOption(optset.Seal) {}

func option(name string, s scope, apply func(*Config) error) Option {
	return Option{name: name, scope: s, apply: apply}
}

// Config is a validated set of options: what [New] builds a peer from, and
// what client.Dial and server.New build every connection from. Make one with
// [NewConfig]; it is immutable and safe for concurrent use.
type Config struct {
	handler      Handler
	codec        Codec
	outgoing     []Middleware
	maxInFlight  int
	maxBatch     int
	backlog      int
	backlogSize  int
	maxMeta      int
	maxMetaBytes int
	logger       *slog.Logger
	ownedParams  bool
	inline       map[string]func(*Request)

	// Per connection (scopePeer).
	baseCtx    context.Context
	onClose    func(error)
	remoteAddr net.Addr
	principal  any

	// Where connections are made (scopeEndpoint).
	conn         transport.ConnOptions
	heartbeat    *[2]time.Duration
	subprotocols []string
}

// NewConfig validates opts for an endpoint that makes many connections
// (client.Dial and server.New call it): the options about one connection
// ([WithBaseContext], [WithOnClose], [WithRemoteAddr]) are refused there and
// given to [Config.New] instead.
func NewConfig(opts ...Option) (*Config, error) {
	c := &Config{subprotocols: Subprotocols()}
	if err := c.apply(opts, scopeEndpoint, "an endpoint (client.Dial, server.New)"); err != nil {
		return nil, err
	}
	return c, nil
}

// apply applies opts, refusing those whose scope is not allowed, then fills
// in the defaults. Every problem is reported, joined.
func (c *Config) apply(opts []Option, allowed scope, who string) error {
	var errs []error
	for _, o := range opts {
		if o.apply == nil {
			continue // the zero Option
		}
		if o.scope != scopeAll && o.scope != allowed {
			errs = append(errs, fmt.Errorf("wsrpc: %s does not apply to %s", o.name, who))
			continue
		}
		if err := o.apply(c); err != nil {
			errs = append(errs, fmt.Errorf("wsrpc: %s: %w", o.name, err))
		}
	}
	if c.maxInFlight == 0 {
		c.maxInFlight = DefaultMaxInFlight
	}
	if c.maxBatch == 0 {
		c.maxBatch = DefaultMaxBatch
	}
	switch {
	case c.backlog == 0:
		c.backlog = DefaultMaxBacklog
	case c.backlog < 0:
		c.backlog = -1 // off; kept negative so that a second apply keeps it off
	}
	if c.backlogSize == 0 {
		c.backlogSize = DefaultMaxBacklogBytes
	}
	if c.maxMeta == 0 {
		c.maxMeta = DefaultMaxMetadata
	}
	if c.maxMetaBytes == 0 {
		c.maxMetaBytes = DefaultMaxMetadataBytes
	}
	if c.heartbeat != nil {
		c.conn.HeartbeatInterval, c.conn.PongTimeout = c.heartbeat[0], c.heartbeat[1]
	}
	return errors.Join(errs...)
}

// New starts a peer on conn with the configuration and opts, which may add
// the options about this one connection ([WithBaseContext], [WithOnClose],
// [WithRemoteAddr], a [WithHandler] of its own...). c is not changed.
func (c *Config) New(conn *transport.Conn, opts ...Option) (*Peer, error) {
	cc := *c
	cc.outgoing = append([]Middleware(nil), c.outgoing...)
	cc.inline = maps.Clone(c.inline)
	if err := cc.apply(opts, scopePeer, "Config.New"); err != nil {
		return nil, err
	}
	return newPeer(conn, &cc)
}

// ConnOptions returns the transport settings of every connection:
// [WithTransport]'s, with [WithHeartbeat]'s over its heartbeat fields.
func (c *Config) ConnOptions() transport.ConnOptions { return c.conn }

// Subprotocols returns the wire codecs to offer (client) or accept (server),
// in order of preference: [WithSubprotocols]'s, or both, binary first.
func (c *Config) Subprotocols() []string { return append([]string(nil), c.subprotocols...) }

// Logger returns the logger of [WithLogger], or nil.
func (c *Config) Logger() *slog.Logger { return c.logger }

// Handler returns the handler of [WithHandler], or nil.
func (c *Config) Handler() Handler { return c.handler }

// WithHandler sets the handler for calls the other side makes. Without one,
// every incoming request is answered with method-not-found. client.Dial uses
// it for the calls the server makes; server.New takes its handler as an
// argument instead and refuses this option.
func WithHandler(h Handler) Option {
	return option("rpc.WithHandler", scopeAll, func(c *Config) error { c.handler = h; return nil })
}

// WithInline has the notifications of method served by fn on the peer's
// reader goroutine, in the order they arrive, instead of on a handler
// goroutine: for notifications whose order matters, such as the
// publications of a subscription. fn sees the notification as a handler
// would (req.Params is valid only until fn returns) and returns nothing: a
// notification has no reply. fn must not wait long, since the connection
// reads nothing else while it runs; to wait it selects on [Peer.Done] too. A
// request (a call that wants a reply) of method still goes to the handler.
// Several WithInline options may be given, one per method; a later one for
// the same method replaces the earlier.
func WithInline(method string, fn func(req *Request)) Option {
	return option("rpc.WithInline", scopeAll, func(c *Config) error {
		if fn == nil {
			return fmt.Errorf("nil func for method %q", method)
		}
		if c.inline == nil {
			c.inline = make(map[string]func(*Request))
		} else {
			c.inline = maps.Clone(c.inline) // a Config copied by New must not share it
		}
		c.inline[method] = fn
		return nil
	})
}

// WithValueCodec sets the value codec for params and results on binary
// connections (JSON-RPC connections always use JSON). nil means [JSON].
func WithValueCodec(codec Codec) Option {
	return option("rpc.WithValueCodec", scopeAll, func(c *Config) error { c.codec = codec; return nil })
}

// WithMaxInFlight bounds the incoming calls handled at once. A call beyond
// the bound waits in the backlog (see [WithBacklog]) and starts, in the
// order received, when a handler returns. 0 means [DefaultMaxInFlight]; n
// must not be negative.
func WithMaxInFlight(n int) Option {
	return option("rpc.WithMaxInFlight", scopeAll, func(c *Config) error {
		if n < 0 {
			return fmt.Errorf("negative limit %d", n)
		}
		c.maxInFlight = n
		return nil
	})
}

// WithBacklog bounds the incoming calls that wait for a free handler once
// MaxInFlight calls are being handled: at most calls of them, holding at most
// bytes of method names and params (plus 64 bytes each). A request that
// finds the backlog full is answered at once with [CodeBusy] (it was not
// started, so the caller may retry it); a notification is dropped and counted
// in [Stats]. Replies and cancellations never wait: they are handled as they
// arrive. A waiting call's deadline runs while it waits. calls < 0 turns the
// backlog off (every call beyond MaxInFlight is refused); 0 means
// [DefaultMaxBacklog], and bytes 0 [DefaultMaxBacklogBytes].
func WithBacklog(calls, bytes int) Option {
	return option("rpc.WithBacklog", scopeAll, func(c *Config) error {
		if bytes < 0 {
			return fmt.Errorf("negative byte bound %d", bytes)
		}
		c.backlog, c.backlogSize = calls, bytes
		return nil
	})
}

// WithMaxBatch bounds the elements of one JSON-RPC batch; a larger batch is
// answered with one invalid-request error. 0 means [DefaultMaxBatch].
func WithMaxBatch(n int) Option {
	return option("rpc.WithMaxBatch", scopeAll, func(c *Config) error {
		if n < 0 {
			return fmt.Errorf("negative limit %d", n)
		}
		c.maxBatch = n
		return nil
	})
}

// WithMaxMetadata bounds the metadata of one incoming call (see [Metadata]):
// at most entries keys, and at most bytes of keys and values in all. A
// request over the bound is answered with [CodeInvalidRequest] and not
// started; a notification over it is dropped and counted on the binary
// codec, and answered with an invalid-request error with a null id on
// JSON-RPC (as JSON-RPC answers any invalid request). Outgoing calls are
// held to the same bound before they are sent. 0 means [DefaultMaxMetadata]
// and [DefaultMaxMetadataBytes].
func WithMaxMetadata(entries, bytes int) Option {
	return option("rpc.WithMaxMetadata", scopeAll, func(c *Config) error {
		if entries < 0 || bytes < 0 {
			return fmt.Errorf("negative bound (%d entries, %d bytes)", entries, bytes)
		}
		c.maxMeta, c.maxMetaBytes = entries, bytes
		return nil
	})
}

// WithLogger makes the peer log protocol problems and handler panics (and
// the client or server its connections). Nothing logs without one.
func WithLogger(l *slog.Logger) Option {
	return option("rpc.WithLogger", scopeAll, func(c *Config) error { c.logger = l; return nil })
}

// WithOwnedParams makes every handler's [Request.Params] stay valid after the
// handler returns: the buffer of an incoming call is never reused, and the
// garbage collector reclaims it once nothing refers to it. By default Params
// is valid only until the handler returns, and its buffer is then reused for
// a later message; a handler that keeps the bytes (hands them to a goroutine
// that outlives it, say) must copy them, or the peer must be made with this
// option, which costs a buffer allocation per incoming message that carries
// params.
func WithOwnedParams() Option {
	return option("rpc.WithOwnedParams", scopeAll, func(c *Config) error { c.ownedParams = true; return nil })
}

// WithOutgoingMiddleware wraps every call and notification the peer makes
// ([Peer.Call], [Peer.Notify], [Peer.Send], and on a client every attempt of
// client.Call, Go and Notify) in mws, mws[0] outermost, the way a handler
// chain wraps incoming calls: the same [Middleware] (logging, metrics,
// tracing) can be given to both, so that it covers both directions. In the
// chain, the [Request] has Method, encoded Params and [Request.Metadata] (an
// interceptor may add entries); [Request.Outgoing] is true and
// [Request.Peer] is the peer making the call. The innermost handler sends
// the request and returns the encoded result, valid until the outermost
// middleware returns (copy it to keep it). A stream ([Peer.Stream],
// client.Stream) passes through the chain as the call that opens it
// ([Request.OpensStream] is true): the innermost handler returns when the
// stream ends, with its final result or error, and the chain runs on a
// goroutine of the peer's, so Stream returns once the call is sent; the
// results themselves do not pass through middleware. Notifications
// encoded once and fanned out to many connections do not pass through it
// either: [Peer.SendEncoded], [Peer.Offer] and what is built on them
// (server.Server.Broadcast, the publications of a pubsub.Hub), and neither
// do replies, a stream's results or the runtime's own messages (credit,
// cancels, the shutdown notice). Given several times, the lists are joined
// in order.
func WithOutgoingMiddleware(mws ...Middleware) Option {
	return option("rpc.WithOutgoingMiddleware", scopeAll, func(c *Config) error {
		for _, mw := range mws {
			if mw != nil {
				c.outgoing = append(c.outgoing, mw)
			}
		}
		return nil
	})
}

// WithBaseContext sets the context every handler's context derives from, so
// that values put there reach handlers. Cancelling it does not close the
// connection; it cancels the handlers. Only [New] and [Config.New] take it.
func WithBaseContext(ctx context.Context) Option {
	return option("rpc.WithBaseContext", scopePeer, func(c *Config) error { c.baseCtx = ctx; return nil })
}

// WithOnClose makes the peer call fn once the connection has ended, with the
// reason (as [Peer.Err] returns it), after every pending call has failed. fn
// runs on the peer's reader goroutine, which exits when fn returns; it may
// call the peer's Close methods, which then wait for the handlers still
// running. Only [New] and [Config.New] take it.
func WithOnClose(fn func(err error)) Option {
	return option("rpc.WithOnClose", scopePeer, func(c *Config) error { c.onClose = fn; return nil })
}

// WithRemoteAddr sets the address [Peer.RemoteAddr] reports instead of the
// socket's: the server gives the client's address as its trusted proxies
// forwarded it. Only [New] and [Config.New] take it.
func WithRemoteAddr(a net.Addr) Option {
	return option("rpc.WithRemoteAddr", scopePeer, func(c *Config) error { c.remoteAddr = a; return nil })
}

// WithPrincipal sets the principal of the peer's [Session] before it serves
// its first call: the server gives the one its handshake authentication
// returned. Only [New] and [Config.New] take it.
func WithPrincipal(principal any) Option {
	return option("rpc.WithPrincipal", scopePeer, func(c *Config) error { c.principal = principal; return nil })
}

// WithTransport sets the transport settings of every connection (read
// limit, write timeout, send queue bounds, compression, message timeout,
// heartbeat); a [WithHeartbeat] overrides its heartbeat fields whatever the
// order. Only client.Dial and server.New take it: a connection given to
// [New] is already made with its own.
func WithTransport(t transport.ConnOptions) Option {
	return option("rpc.WithTransport", scopeEndpoint, func(c *Config) error { c.conn = t; return nil })
}

// WithHeartbeat pings the other side every interval and drops the
// connection when a pong does not come back within timeout (a client then
// reconnects). A negative interval turns the heartbeat off; otherwise both
// must be positive. The transport's defaults apply without it. Only
// client.Dial and server.New take it.
func WithHeartbeat(interval, timeout time.Duration) Option {
	return option("rpc.WithHeartbeat", scopeEndpoint, func(c *Config) error {
		if interval >= 0 && (interval == 0 || timeout <= 0) {
			return fmt.Errorf("interval and timeout must be positive (%v, %v); a negative interval turns the heartbeat off", interval, timeout)
		}
		c.heartbeat = &[2]time.Duration{interval, timeout}
		return nil
	})
}

// WithSubprotocols sets the wire codecs a client offers and a server
// accepts, in order of preference: [SubprotocolBinary], [SubprotocolJSON].
// The default is both, binary first. A client that offers only JSON-RPC gets
// readable traffic; a server that accepts only binary refuses clients that
// offer no subprotocol (plain JSON-RPC clients, browsers). Only client.Dial
// and server.New take it.
func WithSubprotocols(protos ...string) Option {
	return option("rpc.WithSubprotocols", scopeEndpoint, func(c *Config) error {
		if len(protos) == 0 {
			return errors.New("needs at least one subprotocol")
		}
		var out []string
		for _, p := range protos {
			switch {
			case strings.EqualFold(p, SubprotocolBinary):
				out = append(out, SubprotocolBinary)
			case strings.EqualFold(p, SubprotocolJSON):
				out = append(out, SubprotocolJSON)
			default:
				return fmt.Errorf("unknown subprotocol %q (want %q or %q)", p, SubprotocolBinary, SubprotocolJSON)
			}
		}
		c.subprotocols = out
		return nil
	})
}
