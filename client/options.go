package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"

	"github.com/wsrpc/wsrpc/internal/optset"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// Defaults applied by [Dial] when the matching option is not given.
const (
	DefaultBackoffBase = 100 * time.Millisecond // first reconnect delays are drawn from [0, DefaultBackoffBase]
	DefaultBackoffMax  = 10 * time.Second       // reconnect delays never exceed it
	DefaultQueueSize   = 1024                   // calls allowed to wait for a connection
)

// Option configures [Dial]. It is either an [rpc.Option], which configures
// the peer of every connection the client makes and how connections are
// made (rpc.WithHandler for the calls the server makes, rpc.WithSubprotocols,
// rpc.WithHeartbeat, rpc.WithTransport, rpc.WithValueCodec, rpc.WithLogger,
// rpc.WithOutgoingMiddleware, rpc.WithMaxMetadata...), or one of this
// package's options (WithHeader, WithReconnect...), which configure the
// client itself. Options apply whatever their order. The options of rpc
// that are about one connection (rpc.WithBaseContext, rpc.WithOnClose,
// rpc.WithRemoteAddr, rpc.WithPrincipal) are refused: Dial makes many.
//
// Zero options give a working client: binary codec first (JSON-RPC second),
// reconnect on, default limits and heartbeat. Option is sealed: only the
// rpc and client packages implement it.
type Option interface {
	ClientOption(optset.Seal)
}

// clientOption is an option of the client's own.
type clientOption func(*options)

// ClientOption marks o as an [Option].
func (clientOption) ClientOption(optset.Seal) {}

type options struct {
	endpoints   []string
	header      http.Header
	httpClient  *http.Client
	tlsConfig   *tls.Config
	callTimeout time.Duration
	reconnect   bool
	waitServer  bool
	backoffBase time.Duration
	backoffMax  time.Duration
	queueSize   int
	statusHook  func(Status)

	onPublication func(pubsub.Publication)

	// Authentication (authrefresh.go).
	credentials   func(ctx context.Context) (Credential, error)
	inBandMethod  string
	authErrorHook func(error)
}

func defaultOptions() options {
	return options{
		reconnect:   true,
		backoffBase: DefaultBackoffBase,
		backoffMax:  DefaultBackoffMax,
		queueSize:   DefaultQueueSize,
	}
}

// parseOptions sorts opts into the peers' configuration, validated by
// [rpc.NewConfig], and the client's own options, validated here. Every
// problem is reported, joined.
func parseOptions(opts []Option) (*rpc.Config, options, error) {
	o := defaultOptions()
	var peerOpts []rpc.Option
	var errs []error
	for _, opt := range opts {
		switch v := opt.(type) {
		case nil:
		case rpc.Option:
			peerOpts = append(peerOpts, v)
		case clientOption:
			if v != nil {
				v(&o)
			}
		default:
			errs = append(errs, fmt.Errorf("wsrpc: client: unsupported option type %T", opt))
		}
	}
	cfg, err := rpc.NewConfig(peerOpts...)
	errs = append(errs, err, o.validate())
	if err := errors.Join(errs...); err != nil {
		return nil, o, err
	}
	return cfg, o, nil
}

// WithHeader sets headers sent with every opening handshake (for example
// Authorization). The header is copied when Dial is called.
func WithHeader(h http.Header) Option { return clientOption(func(o *options) { o.header = h }) }

// WithHTTPClient sets the HTTP client that performs every handshake: use it
// for a custom TLS configuration or an HTTP proxy. Its Timeout must be zero.
// It cannot be combined with [WithTLSConfig]. nil means http.DefaultClient.
func WithHTTPClient(c *http.Client) Option {
	return clientOption(func(o *options) { o.httpClient = c })
}

// WithTLSConfig sets the TLS configuration for wss:// URLs. It is a
// convenience for [WithHTTPClient] with an http.Transport cloned from
// http.DefaultTransport (proxy from the environment included) and cannot be
// combined with it. The config is cloned when Dial is called.
func WithTLSConfig(c *tls.Config) Option { return clientOption(func(o *options) { o.tlsConfig = c }) }

// WithCallTimeout sets the timeout of a call whose ctx has no deadline. It
// covers the whole call: waiting for a connection, every attempt, and the
// reply; the deadline travels to the server. Zero (the default) means none.
func WithCallTimeout(d time.Duration) Option {
	return clientOption(func(o *options) { o.callTimeout = d })
}

// WithReconnect turns automatic reconnection on (the default) or off. With it
// off, once the connection ends the client moves to [Closed] and every call
// fails with [rpc.CodeUnavailable]; Close must still be called.
func WithReconnect(on bool) Option { return clientOption(func(o *options) { o.reconnect = on }) }

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
// With a logger ([rpc.WithLogger]), every failed attempt is logged at Info.
// The option changes only the first connection: reconnects are governed by
// [WithReconnect].
func WithWaitForServer() Option { return clientOption(func(o *options) { o.waitServer = true }) }

// WithEndpoints adds other URLs of the same service (instances behind
// different addresses). Dial tries the URL it was given, then these in turn;
// every reconnect moves on to the next one, so that a client leaves an
// instance that is shutting down for another.
func WithEndpoints(urls ...string) Option {
	return clientOption(func(o *options) { o.endpoints = append(o.endpoints, urls...) })
}

// WithBackoff sets the reconnect backoff, also used by [WithWaitForServer]:
// before attempt n (from 0) the client sleeps a random duration in
// [0, min(max, base·2ⁿ)] ("full jitter"). The defaults are
// [DefaultBackoffBase] and [DefaultBackoffMax]. base must be positive and
// max at least base.
func WithBackoff(base, max time.Duration) Option {
	return clientOption(func(o *options) { o.backoffBase, o.backoffMax = base, max })
}

// WithQueueSize bounds the calls that may wait while no connection is up
// (default [DefaultQueueSize]). A new call beyond the bound fails at once
// with an *[rpc.Error] of code [rpc.CodeUnavailable] ("queue full"). Zero
// means calls never wait: they fail at once while disconnected. Calls already
// admitted that are being retried are not refused by the bound. n must not
// be negative.
func WithQueueSize(n int) Option { return clientOption(func(o *options) { o.queueSize = n }) }

// WithStatusHook calls hook on every change of [Status], in order, from the
// client's own goroutine (the one that reconnects). The first call is
// [Connected], made after Dial returns. hook must return quickly and must
// not call [Client.Close]: reconnection waits for it.
func WithStatusHook(hook func(Status)) Option {
	return clientOption(func(o *options) { o.statusHook = hook })
}

// validate reports every invalid option or combination of the client's own.
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
	if o.callTimeout < 0 {
		bad("WithCallTimeout(%v): negative timeout", o.callTimeout)
	}
	if o.backoffBase <= 0 || o.backoffMax < o.backoffBase {
		bad("WithBackoff(%v, %v): base must be positive and max at least base", o.backoffBase, o.backoffMax)
	}
	if o.queueSize < 0 {
		bad("WithQueueSize(%d): negative size", o.queueSize)
	}
	if o.inBandMethod != "" && o.credentials == nil {
		bad("WithInBandAuth(%q) needs WithCredentials, which gives its params", o.inBandMethod)
	}
	return errors.Join(errs...)
}

// dialOptions builds what every handshake uses: the transport settings and
// subprotocols of cfg, and the client's HTTP client and header. It copies
// the header and the TLS config so that later changes by the caller do not
// leak in.
func (o *options) dialOptions(cfg *rpc.Config) transport.DialOptions {
	hc := o.httpClient
	if o.tlsConfig != nil {
		hc = &http.Client{Transport: tlsTransport(o.tlsConfig)}
	}
	return transport.DialOptions{
		ConnOptions:  cfg.ConnOptions(),
		Subprotocols: cfg.Subprotocols(),
		HTTPClient:   hc,
		Header:       o.header.Clone(),
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

// CallOption configures one call of [Client.Call], [Client.Go] or
// [Client.Notify].
type CallOption func(*callOptions)

type callOptions struct {
	idempotent bool
	md         rpc.Metadata
}

// Idempotent marks a call as safe to run more than once: if the connection
// drops after the request was sent ([rpc.CodeConnectionLost]), the call is
// sent again on the next connection instead of reporting an unknown outcome.
// It changes nothing for a notification, which is sent again only when it
// was not sent.
func Idempotent() CallOption { return func(o *callOptions) { o.idempotent = true } }

// WithMetadata makes the call carry md (see [rpc.Metadata]), over the
// metadata its ctx carries ([rpc.ContextWithMetadata]): entries of md win.
// Every attempt carries it, and the outgoing middleware
// ([rpc.WithOutgoingMiddleware]) sees it in [rpc.Request.Metadata]. md is
// copied when the call is made. Metadata beyond the bounds of
// [rpc.WithMaxMetadata] fails the call unsent with [rpc.CodeInvalidRequest].
// Given several times, the entries are merged, later ones winning.
func WithMetadata(md rpc.Metadata) CallOption {
	return func(o *callOptions) {
		if len(md) == 0 {
			return
		}
		if o.md == nil {
			o.md = make(rpc.Metadata, len(md))
		}
		maps.Copy(o.md, md)
	}
}
