package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// Defaults for a [Server].
const (
	DefaultMaxConns          = 10000
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultInBandAuthTimeout = 10 * time.Second

	// DefaultIdleTimeout is how long an http.Server made by the Server
	// (Serve, ListenAndServe, ListenAndServeTLS, HTTPServer) keeps an idle
	// keep-alive connection open waiting for its next request.
	DefaultIdleTimeout = 30 * time.Second

	// DefaultMaxHeaderBytes bounds the request headers such an http.Server
	// reads (net/http's own default is 1 MiB); larger ones get 431.
	DefaultMaxHeaderBytes = 64 << 10
)

// Option configures a [Server].
type Option func(*options) error

type options struct {
	originPatterns   []string
	skipOriginCheck  bool
	subprotocols     []string
	transport        transport.ConnOptions
	heartbeat        *[2]time.Duration // WithHeartbeat's interval and timeout, applied over transport
	maxConns         int
	handshakeTimeout time.Duration
	idleTimeout      time.Duration
	allowedHosts     []string // normalized patterns
	maxInFlight      int
	backlog          int
	backlogBytes     int
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
// write timeout, heartbeat, compression, send queue bound, message timeout).
// A [WithHeartbeat] given before or after it wins over its heartbeat fields.
func WithTransport(c transport.ConnOptions) Option {
	return func(o *options) error { o.transport = c; return nil }
}

// WithHeartbeat sets how often connections are pinged and how long a pong
// may take before the client is declared dead. It applies whatever the
// order of the options, over WithTransport's heartbeat fields.
func WithHeartbeat(interval, timeout time.Duration) Option {
	return func(o *options) error {
		o.heartbeat = &[2]time.Duration{interval, timeout}
		return nil
	}
}

// connOptions are the transport settings of every connection.
func (o *options) connOptions() transport.ConnOptions {
	c := o.transport
	if o.heartbeat != nil {
		c.HeartbeatInterval, c.PongTimeout = o.heartbeat[0], o.heartbeat[1]
	}
	return c
}

// WithMaxConns bounds the open connections; handshakes beyond it get 503
// with Retry-After (the [WithRetryAfter] delay, at least 1 second). n < 1
// means DefaultMaxConns.
func WithMaxConns(n int) Option { return func(o *options) error { o.maxConns = n; return nil } }

// WithHandshakeTimeout bounds reading the handshake request when the server
// listens itself (ListenAndServe, Serve, [Server.HTTPServer]): it becomes the
// http.Server's ReadHeaderTimeout. Zero means DefaultHandshakeTimeout.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(o *options) error { o.handshakeTimeout = d; return nil }
}

// WithIdleTimeout sets how long the http.Server of ListenAndServe, Serve and
// [Server.HTTPServer] keeps an idle keep-alive connection open waiting for
// its next request (its IdleTimeout). The Server's own refusals close their
// connection at once; this bounds the connections left idle by requests that
// net/http or other handlers answer (OPTIONS *, files, 404s). Zero means
// DefaultIdleTimeout; a negative d is an error. It does not apply to
// WebSocket connections, which the heartbeat watches.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return errors.New("wsrpc: WithIdleTimeout: the timeout must not be negative")
		}
		o.idleTimeout = d
		return nil
	}
}

// WithAllowedHosts sets the host names a handshake's Host header may name,
// which stops DNS rebinding (a page on evil.example whose name the attacker
// re-points at 127.0.0.1 passes the same-origin check, since its Origin and
// Host agree). Each pattern is a host name, an IP address (IPv6 with or
// without brackets) or a path.Match pattern such as "*.example.com" (which
// matches a.example.com and a.b.example.com, not example.com); it must not
// carry a port, and the Host's port is ignored. Names are compared in ASCII
// lowercase, without a trailing dot: give internationalized names in their
// xn-- form. "*" allows every host.
//
// Without this option, a handshake that arrives on a loopback address
// (127.0.0.0/8, ::1) must name a loopback host: localhost, a name ending in
// .localhost, or a loopback IP address; on other addresses every Host
// passes. With it, a Host passes when it matches a pattern, or when it is a
// loopback name on a loopback address. A refused Host gets 403 Forbidden.
// Behind a reverse proxy on the same machine, list the public names the
// proxy forwards (or have it send a loopback Host).
func WithAllowedHosts(patterns ...string) Option {
	return func(o *options) error {
		for _, p := range patterns {
			h, err := hostPattern(p)
			if err != nil {
				return err
			}
			o.allowedHosts = append(o.allowedHosts, h)
		}
		return nil
	}
}

// hostPattern normalizes an allowed-host pattern the way hostName
// normalizes a Host header, refusing those that cannot match one.
func hostPattern(p string) (string, error) {
	h := strings.ToLower(strings.TrimSpace(p))
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	} else if _, port, err := net.SplitHostPort(h); err == nil {
		return "", fmt.Errorf("wsrpc: allowed host %q has a port (%s); ports are not compared", p, port)
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || strings.Contains(h, "/") {
		return "", fmt.Errorf("wsrpc: %q is not an allowed-host pattern", p)
	}
	if _, err := path.Match(h, ""); err != nil {
		return "", fmt.Errorf("wsrpc: allowed host %q: %w", p, err)
	}
	return h, nil
}

// WithMaxInFlight bounds the calls handled at once per connection; the
// excess waits in the connection's backlog (see [WithBacklog] and
// rpc.WithMaxInFlight).
func WithMaxInFlight(n int) Option { return func(o *options) error { o.maxInFlight = n; return nil } }

// WithBacklog bounds the calls that wait for a free handler on each
// connection once MaxInFlight are being handled, in count and bytes; beyond
// it a request is refused with busy. See rpc.WithBacklog for the defaults
// and rpc.DefaultMaxBacklog; calls < 0 turns the backlog off.
func WithBacklog(calls, bytes int) Option {
	return func(o *options) error { o.backlog, o.backlogBytes = calls, bytes; return nil }
}

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
// reconnect at once, to another instance). The 503 for too many connections
// always carries Retry-After, of at least 1 second, so that refused clients
// do not come back at once; the 503 of a draining server carries it only
// when d > 0.
func WithRetryAfter(d time.Duration) Option {
	return func(o *options) error { o.retryAfter = d; return nil }
}
