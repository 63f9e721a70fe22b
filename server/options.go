package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/wsrpc/wsrpc/internal/optset"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

// Defaults for a [Server].
const (
	DefaultMaxConns          = 10000
	DefaultInBandAuthTimeout = 10 * time.Second

	// DefaultReadHeaderTimeout bounds reading a handshake request's headers
	// on an http.Server made by the Server (its ReadHeaderTimeout).
	DefaultReadHeaderTimeout = 10 * time.Second

	// DefaultIdleTimeout is how long an http.Server made by the Server
	// (Serve, ListenAndServe, ListenAndServeTLS, HTTPServer) keeps an idle
	// keep-alive connection open waiting for its next request.
	DefaultIdleTimeout = 30 * time.Second

	// DefaultMaxHeaderBytes bounds the request headers such an http.Server
	// reads (net/http's own default is 1 MiB); larger ones get 431.
	DefaultMaxHeaderBytes = 64 << 10
)

// Option configures [New]. Two kinds of values are Options:
//
//   - the options of package rpc, for what the server shares with every
//     connection and with the client side: [rpc.WithSubprotocols],
//     [rpc.WithTransport], [rpc.WithHeartbeat], [rpc.WithMaxInFlight],
//     [rpc.WithBacklog], [rpc.WithMaxBatch], [rpc.WithMaxMetadata],
//     [rpc.WithLogger], [rpc.WithValueCodec], [rpc.WithOwnedParams],
//     [rpc.WithOutgoingMiddleware];
//   - the options of this package (the With functions below), for what only
//     a server has: origins, hosts, authentication, the registry's hooks,
//     trusted proxies, HTTP timeouts.
//
// Options apply whatever their order. An option about one connection
// ([rpc.WithBaseContext], [rpc.WithOnClose], [rpc.WithRemoteAddr],
// [rpc.WithPrincipal]) and [rpc.WithHandler] (New takes the handler as its
// argument) are refused. No type outside this module can implement Option.
type Option interface{ ServerOption(optset.Seal) }

// serverOption is an option only a server has.
type serverOption func(*options) error

func (serverOption) ServerOption(optset.Seal) {}

type options struct {
	originPatterns    []string
	skipOriginCheck   bool
	maxConns          int
	readHeaderTimeout time.Duration
	idleTimeout       time.Duration
	allowedHosts      []string // normalized patterns
	trustedProxies    trustedProxies
	badTrustedProxies bool   // WithTrustedProxies was given a value it refused
	forwardedHeader   string // headerXFF or headerForwarded; "" until WithForwardedHeader
	auth              func(*http.Request) (any, error)
	inBand            *inBandAuth
	refresh           func(ctx context.Context, current any, params []byte) (any, error)
	onConnect         func(*rpc.Peer)
	onDisconnect      func(*rpc.Peer, error)
	retryAfter        time.Duration
	hub               *pubsub.Hub
	readyDelay        time.Duration
	goodbyeWindow     time.Duration
	handshakeRate     float64 // per second; 0: no limit
	handshakeBurst    int
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
	return serverOption(func(o *options) error { o.originPatterns = append(o.originPatterns, patterns...); return nil })
}

// WithInsecureSkipOriginCheck accepts handshakes from every origin. Only for
// servers that authenticate each connection by means other than cookies. It
// excludes [WithOriginPatterns].
func WithInsecureSkipOriginCheck() Option {
	return serverOption(func(o *options) error { o.skipOriginCheck = true; return nil })
}

// WithMaxConns bounds the open connections; handshakes beyond it get 503
// with Retry-After (the [WithRetryAfter] delay, at least 1 second). n < 1
// means [DefaultMaxConns].
func WithMaxConns(n int) Option {
	return serverOption(func(o *options) error { o.maxConns = n; return nil })
}

// WithReadHeaderTimeout bounds reading the handshake request's headers when
// the server listens itself (ListenAndServe, Serve, [Server.HTTPServer]): it
// becomes the http.Server's ReadHeaderTimeout. Zero means
// [DefaultReadHeaderTimeout]. (transport.DefaultHandshakeTimeout is another
// bound: the whole opening handshake, on the dialing side.)
func WithReadHeaderTimeout(d time.Duration) Option {
	return serverOption(func(o *options) error { o.readHeaderTimeout = d; return nil })
}

// WithIdleTimeout sets how long the http.Server of ListenAndServe, Serve and
// [Server.HTTPServer] keeps an idle keep-alive connection open waiting for
// its next request (its IdleTimeout). The Server's own refusals close their
// connection at once; this bounds the connections left idle by requests that
// net/http or other handlers answer (OPTIONS *, files, 404s). Zero means
// [DefaultIdleTimeout]; a negative d is an error. It does not apply to
// WebSocket connections, which the heartbeat watches ([rpc.WithHeartbeat]).
func WithIdleTimeout(d time.Duration) Option {
	return durationOption("WithIdleTimeout", d, func(o *options) { o.idleTimeout = d })
}

// durationOption is an option setting a duration that must not be
// negative.
func durationOption(name string, d time.Duration, set func(*options)) Option {
	return serverOption(func(o *options) error {
		if d < 0 {
			return fmt.Errorf("wsrpc: %s: the duration must not be negative, not %v", name, d)
		}
		set(o)
		return nil
	})
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
	return serverOption(func(o *options) error {
		var errs []error
		for _, p := range patterns {
			h, err := hostPattern(p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			o.allowedHosts = append(o.allowedHosts, h)
		}
		return errors.Join(errs...)
	})
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

// WithTrustedProxies names the reverse proxies whose forwarding headers are
// believed: CIDR prefixes ("10.0.0.0/8", "fd00::/8") or single IP addresses
// ("127.0.0.1"). When a handshake's socket peer is one of them, the client's
// address is read from the header those proxies set, X-Forwarded-For by
// default or Forwarded (RFC 7239) with [WithForwardedHeader], walking the
// chain from the nearest hop and skipping the hops that are trusted proxies
// too; [rpc.Peer.RemoteAddr] and the server's log lines report that
// address. The other header is never read: a proxy passes on, untouched, the
// header it does not manage, so a client could name itself there. Without this option the headers are
// ignored and the address is the socket's, since any client can send them.
// A malformed entry is an error from [New]. Given several times, the lists
// are joined.
func WithTrustedProxies(cidrs ...string) Option {
	return serverOption(func(o *options) error {
		t, err := parseTrustedProxies(cidrs)
		if err != nil {
			o.badTrustedProxies = true // New reports this, not a missing option
			return err
		}
		o.trustedProxies = append(o.trustedProxies, t...)
		return nil
	})
}

// WithForwardedHeader names the header the proxies of [WithTrustedProxies]
// set: "X-Forwarded-For" (the default: nginx's $proxy_add_x_forwarded_for,
// HAProxy's forwardfor, most load balancers) or "Forwarded" (RFC 7239).
// Another name, or the option without WithTrustedProxies, is an error from
// [New].
func WithForwardedHeader(name string) Option {
	return serverOption(func(o *options) error {
		switch {
		case strings.EqualFold(name, headerXFF):
			o.forwardedHeader = headerXFF
		case strings.EqualFold(name, headerForwarded):
			o.forwardedHeader = headerForwarded
		default:
			return fmt.Errorf("wsrpc: WithForwardedHeader(%q): the header is %q or %q", name, headerXFF, headerForwarded)
		}
		return nil
	})
}

// Errors an authentication hook returns to choose the HTTP answer.
var (
	ErrUnauthorized = errors.New("wsrpc: unauthorized") // → 401
	ErrForbidden    = errors.New("wsrpc: forbidden")    // → 403
)

// WithAuth authenticates every handshake: fn gets the request and returns a
// principal or an error, which refuses the upgrade: 403 when it wraps
// [ErrForbidden], 401 otherwise. The principal is on the connection's
// session before its first call: req.Peer().Session().Principal() in a
// handler. A principal that implements [AuthExpirer] gives the connection
// an expiry (one already passed refuses the upgrade with 401).
func WithAuth(fn func(r *http.Request) (principal any, err error)) Option {
	return serverOption(func(o *options) error { o.auth = fn; return nil })
}

// WithInBandAuth requires each connection that did not authenticate at the
// handshake to call method first, within timeout (0: [DefaultInBandAuthTimeout]),
// for clients that cannot set headers (browsers). fn gets the call's params
// (valid only until fn returns, like a handler's) and returns the principal,
// which is then set on the connection's session, or an error (answered with
// unauthenticated). Other calls before it are answered with unauthenticated;
// a connection that has not authenticated when the timeout passes is closed
// with 1008. A principal that implements [AuthExpirer] gives the connection
// an expiry, which the client is told before the call's answer (one already
// passed is answered with unauthenticated).
func WithInBandAuth(method string, timeout time.Duration, fn func(ctx context.Context, params []byte) (principal any, err error)) Option {
	return serverOption(func(o *options) error {
		if method == "" || fn == nil {
			return errors.New("wsrpc: WithInBandAuth needs a method and a function")
		}
		if timeout <= 0 {
			timeout = DefaultInBandAuthTimeout
		}
		o.inBand = &inBandAuth{method: method, timeout: timeout, fn: fn}
		return nil
	})
}

// WithOnConnect calls fn with every new connection's peer once it is in the
// registry, before the server starts its in-band authentication timer. fn
// runs on the handshake's goroutine (ServeHTTP); the peer may already be
// serving calls.
func WithOnConnect(fn func(*rpc.Peer)) Option {
	return serverOption(func(o *options) error { o.onConnect = fn; return nil })
}

// WithOnDisconnect calls fn when a connection has ended, with the reason (as
// [rpc.Peer.Err] says it), once it has left the registry and its handlers
// have returned. fn runs on the peer's own goroutine; Shutdown and Close
// wait for it.
func WithOnDisconnect(fn func(*rpc.Peer, error)) Option {
	return serverOption(func(o *options) error { o.onDisconnect = fn; return nil })
}

// WithRetryAfter sets the reconnect delay suggested to clients in the
// shutdown notice and in the Retry-After header of 503 answers (default 0:
// reconnect at once, to another instance). The 503 for too many connections
// always carries Retry-After, of at least 1 second, so that refused clients
// do not come back at once; the 503 of a draining server carries it only
// when d > 0.
func WithRetryAfter(d time.Duration) Option {
	return serverOption(func(o *options) error { o.retryAfter = d; return nil })
}

// WithHub mounts a pub/sub hub on every connection: the hub serves the
// reserved methods $/subscribe, $/unsubscribe and $/publish (around the
// server's handler, after in-band authentication), each connection is
// attached to it as it is registered and detached once it has ended, and
// [Server.Publish] publishes through it. The hub stays the caller's to
// close, after the server's Shutdown.
func WithHub(h *pubsub.Hub) Option {
	return serverOption(func(o *options) error {
		if h == nil {
			return errors.New("wsrpc: WithHub: nil hub")
		}
		o.hub = h
		return nil
	})
}

// WithReadyDelay makes [Server.Shutdown] turn readiness off (see
// [Server.ReadyHandler]) at once but keep accepting handshakes for d before
// it refuses new work and drains, so that a load balancer that polls
// readiness stops sending new connections before they would be refused.
// Set d a little above the balancer's probe interval times its failure
// threshold. Shutdown's ctx bounds the delay too. Zero (the default) means
// no delay; a negative d is an error.
func WithReadyDelay(d time.Duration) Option {
	return durationOption("WithReadyDelay", d, func(o *options) { o.readyDelay = d })
}

// WithGoodbyeWindow spreads the shutdown notices of [Server.Shutdown] over
// d: each connection gets its notice at a random moment of its own share of
// the window (n connections: one in each n-th of d), and keeps being served
// as usual until then. Clients reconnect when they get their notice (after
// the [WithRetryAfter] hint), so their reconnects reach the other instances
// spread over d too, instead of all at once. The window is cut to half of
// the time Shutdown's ctx leaves, so that the last connections told still
// have time to finish their calls. Zero (the default) sends every notice at
// once; a negative d is an error.
func WithGoodbyeWindow(d time.Duration) Option {
	return durationOption("WithGoodbyeWindow", d, func(o *options) { o.goodbyeWindow = d })
}

// WithHandshakeRate limits the handshakes the server accepts to perSecond
// on average, with bursts of up to burst (a token bucket, one for the whole
// Server), to absorb reconnect storms. Beyond it a handshake gets 503 with
// Retry-After: the time, rounded up to seconds, until a handshake would be
// accepted, each refused handshake being told a later moment than the one
// before (one more 1/perSecond), so that refused clients come back spread
// at the rate rather than together; at most [MaxHandshakeRetryAfter].
// Handshakes refused before the limit (Host, Origin, a shutdown, the
// connection limit) take no token; one that takes a token keeps it even if
// [WithAuth] or the WebSocket handshake then refuses it, since the limit
// shields the auth hook too. The refusals are counted in
// [Stats].Refused[[RefusedRate]]. perSecond 0 means no limit (the
// default); burst 0 means perSecond rounded up (at least 1). A burst below
// perSecond holds a storm to burst handshakes a second: Retry-After counts
// whole seconds, so the clients told the same second come back together,
// and the bucket lets only burst of them in. A negative or infinite rate,
// or a negative burst, is an error.
func WithHandshakeRate(perSecond float64, burst int) Option {
	return serverOption(func(o *options) error {
		switch {
		case math.IsNaN(perSecond) || math.IsInf(perSecond, 0) || perSecond < 0:
			return fmt.Errorf("wsrpc: WithHandshakeRate: the rate must be a finite number of handshakes per second, at least 0, not %v", perSecond)
		case burst < 0:
			return fmt.Errorf("wsrpc: WithHandshakeRate: the burst must not be negative, not %d", burst)
		}
		o.handshakeRate = perSecond
		o.handshakeBurst = burst
		return nil
	})
}
