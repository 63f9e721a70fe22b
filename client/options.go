package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// Defaults applied by [Dial] when the matching option is not given.
const (
	DefaultBackoffBase = 100 * time.Millisecond // first reconnect delays are drawn from [0, DefaultBackoffBase]
	DefaultBackoffMax  = 10 * time.Second       // reconnect delays never exceed it
	DefaultQueueSize   = 1024                   // calls allowed to wait for a connection
)

// Codec selects the wire codecs the client offers in the opening handshake.
type Codec int

const (
	// Binary offers the compact wsrpc.v1 codec first and JSON-RPC 2.0 second;
	// the server picks. It is the default.
	Binary Codec = iota
	// JSONRPC offers only JSON-RPC 2.0 (text frames), for servers or proxies
	// that should see readable traffic.
	JSONRPC
)

func (c Codec) String() string {
	switch c {
	case Binary:
		return "binary"
	case JSONRPC:
		return "jsonrpc"
	}
	return fmt.Sprintf("Codec(%d)", int(c))
}

// subprotocols returns what the client offers for c, in order of preference.
func (c Codec) subprotocols() []string {
	if c == JSONRPC {
		return []string{rpc.SubprotocolJSON}
	}
	return rpc.Subprotocols()
}

// Option configures [Dial]. Zero options give a working client: binary codec,
// reconnect on, default limits and heartbeat.
type Option func(*options)

type options struct {
	endpoints   []string
	header      http.Header
	httpClient  *http.Client
	tlsConfig   *tls.Config
	codec       Codec
	valueCodec  rpc.Codec
	handler     rpc.Handler
	heartbeat   *heartbeat // nil: the transport's defaults (or WithTransport's)
	callTimeout time.Duration
	reconnect   bool
	waitServer  bool
	backoffBase time.Duration
	backoffMax  time.Duration
	queueSize   int
	stateHook   func(State)
	logger      *slog.Logger
	conn        transport.ConnOptions
	ownedParams bool
}

type heartbeat struct{ interval, timeout time.Duration }

func defaultOptions() options {
	return options{
		reconnect:   true,
		backoffBase: DefaultBackoffBase,
		backoffMax:  DefaultBackoffMax,
		queueSize:   DefaultQueueSize,
	}
}

// WithHeader sets headers sent with every opening handshake (for example
// Authorization). The header is copied when Dial is called.
func WithHeader(h http.Header) Option { return func(o *options) { o.header = h } }

// WithHTTPClient sets the HTTP client that performs every handshake: use it
// for a custom TLS configuration or an HTTP proxy. Its Timeout must be zero.
// It cannot be combined with [WithTLSConfig]. nil means http.DefaultClient.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithTLSConfig sets the TLS configuration for wss:// URLs. It is a
// convenience for [WithHTTPClient] with an http.Transport cloned from
// http.DefaultTransport (proxy from the environment included) and cannot be
// combined with it. The config is cloned when Dial is called.
func WithTLSConfig(c *tls.Config) Option { return func(o *options) { o.tlsConfig = c } }

// WithCodec selects the wire codecs offered: [Binary] (the default) or
// [JSONRPC].
func WithCodec(c Codec) Option { return func(o *options) { o.codec = c } }

// WithValueCodec sets how params and results are encoded on binary
// connections (JSON-RPC connections always use JSON). nil means [rpc.JSON].
func WithValueCodec(c rpc.Codec) Option { return func(o *options) { o.valueCodec = c } }

// WithHandler serves the calls the server makes to the client, on every
// connection the client makes. Without one, such calls are answered with
// method-not-found. The handler runs concurrently and must be safe for it.
func WithHandler(h rpc.Handler) Option { return func(o *options) { o.handler = h } }

// WithOwnedParams makes the Params of calls to the handler (see
// [WithHandler]) stay valid after it returns; see [rpc.WithOwnedParams].
func WithOwnedParams() Option { return func(o *options) { o.ownedParams = true } }

// WithHeartbeat pings the server every interval and drops the connection
// (then reconnects) when a pong does not come back within timeout. A
// negative interval turns the heartbeat off; otherwise both must be
// positive. It overrides the heartbeat fields of [WithTransport], whatever
// the order of the options.
func WithHeartbeat(interval, timeout time.Duration) Option {
	return func(o *options) { o.heartbeat = &heartbeat{interval: interval, timeout: timeout} }
}

// WithCallTimeout sets the timeout of a call whose ctx has no deadline. It
// covers the whole call: waiting for a connection, every attempt, and the
// reply; the deadline travels to the server. Zero (the default) means none.
func WithCallTimeout(d time.Duration) Option { return func(o *options) { o.callTimeout = d } }

// WithReconnect turns automatic reconnection on (the default) or off. With it
// off, once the connection ends the client moves to [Closed] and every call
// fails with [rpc.CodeUnavailable]; Close must still be called.
func WithReconnect(on bool) Option { return func(o *options) { o.reconnect = on } }

// WithWaitForServer makes [Dial] wait for the server when the first
// connection cannot be made yet, instead of failing at once: services
// started together then need no retry loop of their own. (gRPC users know
// this as a blocking dial with WaitForReady.) Dial keeps trying until a
// connection is made, an attempt fails for good, or Dial's ctx ends; ctx
// then bounds the whole wait, not just one handshake, and with a ctx that
// never ends Dial may wait for ever.
//
// The attempts are those of a reconnect: a first pass tries each endpoint
// in turn without a pause (as without this option), then every attempt
// moves on to the next endpoint after a full-jitter backoff (see
// [WithBackoff]).
// An attempt is retried when it failed in a way that a server still
// starting up explains:
//
//   - the TCP connection was not made (connection refused, host or network
//     unreachable, connect timeout) or the name did not resolve;
//   - the server hung up or reset the connection before answering;
//   - the handshake timed out ([transport.DefaultHandshakeTimeout] per
//     attempt);
//   - the server answered 503, 502, 504 or 429; a Retry-After header on the
//     answer (seconds or an HTTP date) replaces the backoff before the next
//     attempt, capped at [MaxRetryHint].
//
// Every other failure ends the wait at once (once each endpoint has had its
// first try, so that Dial succeeds whenever it would without this option)
// and Dial returns its error: any other HTTP status (400, 401, 403, 404…, as a
// *[transport.HandshakeError]), a bad URL or scheme, a TLS failure (an
// untrusted certificate, say), a server choosing a subprotocol the client
// did not offer. When ctx ends first, Dial's error wraps ctx.Err() (so
// errors.Is(err, context.DeadlineExceeded) holds) together with the error of
// the last attempt that completed, which says why the server was not
// reached; errors.As finds a *[transport.HandshakeError] in it when that
// attempt got one.
//
// With a logger ([WithLogger]), every failed attempt is logged at Info. The
// option changes only the first connection: reconnects are governed by
// [WithReconnect].
func WithWaitForServer() Option { return func(o *options) { o.waitServer = true } }

// WithEndpoints adds other URLs of the same service (instances behind
// different addresses). Dial tries the URL it was given, then these in turn;
// every reconnect moves on to the next one, so that a client leaves an
// instance that is shutting down for another.
func WithEndpoints(urls ...string) Option {
	return func(o *options) { o.endpoints = append(o.endpoints, urls...) }
}

// WithBackoff sets the reconnect backoff, also used by [WithWaitForServer]:
// before attempt n (from 0) the client sleeps a random duration in
// [0, min(max, base·2ⁿ)] ("full jitter"). The defaults are [DefaultBackoffBase] and [DefaultBackoffMax]. base must be
// positive and max at least base.
func WithBackoff(base, max time.Duration) Option {
	return func(o *options) { o.backoffBase, o.backoffMax = base, max }
}

// WithQueueSize bounds the calls that may wait while no connection is up
// (default [DefaultQueueSize]). A new call beyond the bound fails at once
// with an *[rpc.Error] of code [rpc.CodeUnavailable] ("queue full"). Zero
// means calls never wait: they fail at once while disconnected. Calls already
// admitted that are being retried are not refused by the bound.
func WithQueueSize(n int) Option { return func(o *options) { o.queueSize = n } }

// WithStateHook calls hook on every change of [State], in order, from the
// client's own goroutine (the one that reconnects). The first call is
// [Connected], made after Dial returns. hook must return quickly and must
// not call [Client.Close]: reconnection waits for it.
func WithStateHook(hook func(State)) Option { return func(o *options) { o.stateHook = hook } }

// WithLogger makes the client log connection changes and failed reconnects,
// and each connection log protocol problems. The client never logs without
// one.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithTransport sets the connection limits (read limit, write timeout,
// queues, compression, heartbeat) of every connection the client makes. The
// struct is copied.
func WithTransport(c transport.ConnOptions) Option { return func(o *options) { o.conn = c } }

// validate reports every invalid option or combination.
func (o *options) validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("wsrpc: client: "+format, args...))
	}
	if o.httpClient != nil && o.tlsConfig != nil {
		bad("WithTLSConfig and WithHTTPClient cannot be combined; set TLSClientConfig on the HTTP client's transport")
	}
	if o.httpClient != nil && o.httpClient.Timeout != 0 {
		bad("WithHTTPClient: the client's Timeout must be zero (handshakes have their own timeout)")
	}
	if o.codec != Binary && o.codec != JSONRPC {
		bad("WithCodec: unknown codec %v", o.codec)
	}
	if hb := o.heartbeat; hb != nil && hb.interval >= 0 && (hb.interval == 0 || hb.timeout <= 0) {
		bad("WithHeartbeat(%v, %v): interval and timeout must be positive (a negative interval turns the heartbeat off)", hb.interval, hb.timeout)
	}
	if o.callTimeout < 0 {
		bad("WithCallTimeout(%v): negative timeout", o.callTimeout)
	}
	if o.backoffBase <= 0 || o.backoffMax < o.backoffBase {
		bad("WithBackoff(%v, %v): base must be positive and max at least base", o.backoffBase, o.backoffMax)
	}
	if o.queueSize < 0 {
		bad("WithQueueSize(%d): negative size", o.queueSize)
	}
	return errors.Join(errs...)
}

// dialOptions builds what every handshake uses. It copies the header and the
// TLS config so that later changes by the caller do not leak in.
func (o *options) dialOptions() transport.DialOptions {
	conn := o.conn
	if hb := o.heartbeat; hb != nil {
		conn.HeartbeatInterval = hb.interval
		conn.PongTimeout = hb.timeout
	}
	hc := o.httpClient
	if o.tlsConfig != nil {
		hc = &http.Client{Transport: tlsTransport(o.tlsConfig)}
	}
	return transport.DialOptions{
		ConnOptions:  conn,
		HTTPClient:   hc,
		Header:       o.header.Clone(),
		Subprotocols: o.codec.subprotocols(),
	}
}

// tlsTransport returns http.DefaultTransport's settings with cfg.
func tlsTransport(cfg *tls.Config) *http.Transport {
	var t *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		t = dt.Clone()
	} else {
		t = &http.Transport{Proxy: http.ProxyFromEnvironment}
	}
	t.TLSClientConfig = cfg.Clone()
	return t
}

// peerOptions are given to rpc.New for every connection.
func (o *options) peerOptions() []rpc.Option {
	var opts []rpc.Option
	if o.handler != nil {
		opts = append(opts, rpc.WithHandler(o.handler))
	}
	if o.valueCodec != nil {
		opts = append(opts, rpc.WithValueCodec(o.valueCodec))
	}
	if o.logger != nil {
		opts = append(opts, rpc.WithLogger(o.logger))
	}
	if o.ownedParams {
		opts = append(opts, rpc.WithOwnedParams())
	}
	return opts
}

// CallOption configures one call.
type CallOption func(*callOptions)

type callOptions struct {
	idempotent bool
}

// Idempotent marks a call as safe to run more than once: if the connection
// drops after the request was sent ([rpc.CodeConnectionLost]), the call is
// sent again on the next connection instead of reporting an unknown outcome.
func Idempotent() CallOption { return func(o *callOptions) { o.idempotent = true } }
