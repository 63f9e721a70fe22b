package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// Defaults for a [Server].
const (
	DefaultMaxConns          = 10000
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultInBandAuthTimeout = 10 * time.Second
)

// Option configures a [Server].
type Option func(*options) error

type options struct {
	originPatterns   []string
	skipOriginCheck  bool
	subprotocols     []string
	transport        transport.ConnOptions
	maxConns         int
	handshakeTimeout time.Duration
	maxInFlight      int
	maxBatch         int
	logger           *slog.Logger
	codec            rpc.Codec
	auth             func(*http.Request) (any, error)
	inBand           *inBandAuth
	onConnect        func(*Conn)
	onDisconnect     func(*Conn, error)
	retryAfter       time.Duration
	ownedParams      bool
}

type inBandAuth struct {
	method  string
	timeout time.Duration
	fn      func(ctx context.Context, params []byte) (any, error)
}

// WithOriginPatterns allows cross-origin handshakes from these origin host
// patterns (path.Match syntax). Cross-origin handshakes are refused with 403
// by default, which stops cross-site WebSocket hijacking.
func WithOriginPatterns(patterns ...string) Option {
	return func(o *options) error { o.originPatterns = append(o.originPatterns, patterns...); return nil }
}

// WithInsecureSkipOriginCheck accepts handshakes from every origin. Only for
// servers that authenticate each connection by means other than cookies.
func WithInsecureSkipOriginCheck() Option {
	return func(o *options) error { o.skipOriginCheck = true; return nil }
}

// WithSubprotocols sets the wire codecs the server accepts, in order of
// preference (rpc.SubprotocolBinary, rpc.SubprotocolJSON). A client that
// offers no subprotocol speaks JSON-RPC, which is allowed only when
// rpc.SubprotocolJSON is in the list. Default: both, binary first.
func WithSubprotocols(protos ...string) Option {
	return func(o *options) error {
		if len(protos) == 0 {
			return errors.New("wsrpc: WithSubprotocols needs at least one subprotocol")
		}
		for _, p := range protos {
			if p != rpc.SubprotocolBinary && p != rpc.SubprotocolJSON {
				return errors.New("wsrpc: unknown subprotocol " + p)
			}
		}
		o.subprotocols = protos
		return nil
	}
}

// WithTransport sets the per-connection transport settings (read limit,
// write timeout, heartbeat, compression).
func WithTransport(c transport.ConnOptions) Option {
	return func(o *options) error { o.transport = c; return nil }
}

// WithHeartbeat sets how often connections are pinged and how long a pong
// may take before the client is declared dead.
func WithHeartbeat(interval, timeout time.Duration) Option {
	return func(o *options) error {
		o.transport.HeartbeatInterval, o.transport.PongTimeout = interval, timeout
		return nil
	}
}

// WithMaxConns bounds the open connections; handshakes beyond it get 503
// with Retry-After. n < 1 means DefaultMaxConns.
func WithMaxConns(n int) Option { return func(o *options) error { o.maxConns = n; return nil } }

// WithHandshakeTimeout bounds reading the handshake request when the server
// listens itself (ListenAndServe, Serve): it becomes the http.Server's
// ReadHeaderTimeout. Zero means DefaultHandshakeTimeout.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(o *options) error { o.handshakeTimeout = d; return nil }
}

// WithMaxInFlight bounds the calls handled at once per connection; the
// excess is refused with busy (see rpc.WithMaxInFlight).
func WithMaxInFlight(n int) Option { return func(o *options) error { o.maxInFlight = n; return nil } }

// WithMaxBatch bounds the elements of one JSON-RPC batch.
func WithMaxBatch(n int) Option { return func(o *options) error { o.maxBatch = n; return nil } }

// WithLogger makes the server log connections, refusals and protocol
// problems. It never logs without one.
func WithLogger(l *slog.Logger) Option { return func(o *options) error { o.logger = l; return nil } }

// WithValueCodec sets the value codec for binary connections.
func WithValueCodec(c rpc.Codec) Option { return func(o *options) error { o.codec = c; return nil } }

// Errors an authentication hook returns to choose the HTTP answer.
var (
	ErrUnauthorized = errors.New("wsrpc: unauthorized") // → 401
	ErrForbidden    = errors.New("wsrpc: forbidden")    // → 403
)

// WithOwnedParams makes every handler's Params stay valid after it returns;
// see [rpc.WithOwnedParams]. Without it, a handler that
// keeps its params beyond returning must copy them.
func WithOwnedParams() Option { return func(o *options) error { o.ownedParams = true; return nil } }

// WithAuth authenticates every handshake: fn gets the request and returns a
// principal (available to handlers through handler.PrincipalFrom) or an
// error, which refuses the upgrade: 403 when it wraps [ErrForbidden], 401
// otherwise.
func WithAuth(fn func(r *http.Request) (principal any, err error)) Option {
	return func(o *options) error { o.auth = fn; return nil }
}

// WithInBandAuth requires each connection that did not authenticate at the
// handshake to call method first, within timeout (0: DefaultInBandAuthTimeout),
// for clients that cannot set headers (browsers). fn gets the call's params
// (valid only until fn returns, like a handler's) and returns the principal
// or an error (answered with unauthenticated).
// Other calls before it are answered with unauthenticated; a connection that
// has not authenticated when the timeout passes is closed with 1008.
func WithInBandAuth(method string, timeout time.Duration, fn func(ctx context.Context, params []byte) (principal any, err error)) Option {
	return func(o *options) error {
		if method == "" || fn == nil {
			return errors.New("wsrpc: WithInBandAuth needs a method and a function")
		}
		if timeout <= 0 {
			timeout = DefaultInBandAuthTimeout
		}
		o.inBand = &inBandAuth{method: method, timeout: timeout, fn: fn}
		return nil
	}
}

// WithOnConnect calls fn for every new connection, before it serves calls.
func WithOnConnect(fn func(*Conn)) Option {
	return func(o *options) error { o.onConnect = fn; return nil }
}

// WithOnDisconnect calls fn when a connection has ended, with the reason.
func WithOnDisconnect(fn func(*Conn, error)) Option {
	return func(o *options) error { o.onDisconnect = fn; return nil }
}

// WithRetryAfter sets the reconnect delay suggested to clients in the
// shutdown notice and in the Retry-After header of 503 answers (default 0:
// reconnect at once, to another instance).
func WithRetryAfter(d time.Duration) Option {
	return func(o *options) error { o.retryAfter = d; return nil }
}
