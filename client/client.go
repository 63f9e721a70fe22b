package client

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// Client is a connection to one wsrpc server that survives the loss of its
// WebSocket connection: it reconnects, queues calls while disconnected and
// retries the ones that are safe to retry. Make one with [Dial]; every method
// is safe for concurrent use. See the package documentation for the
// goroutines it owns.
type Client struct {
	urls     []string // the server, then the other endpoints
	next     int      // index in urls of the next dial (manager goroutine, and Dial before it starts)
	opts     options
	cfg      *rpc.Config // every connection's peer is made from it
	dialOpts transport.DialOptions
	randN    func(n int64) int64 // random in [0, n), for the backoff jitter
	auth     *authState          // credentials and what is known of them (authrefresh.go)

	// closing is cancelled by Close: it stops reconnects, drains and waits.
	closing context.Context
	stop    context.CancelCauseFunc
	// wg counts the goroutines the client owns: the manager, one per
	// connection being retired, one per Go call.
	wg sync.WaitGroup

	mu      sync.Mutex
	status  Status
	peer    *rpc.Peer     // the current connection; nil while disconnected
	changed chan struct{} // closed by the manager, and replaced, whenever peer changes
	waiting int           // calls waiting for a connection
	closed  bool          // Close was called
	dead    error         // set when the connection ended and reconnect is off
	// ready is peer while the client is open (nil once closed), for
	// admit's path without mu: calls from many goroutines on one client
	// would otherwise all take mu for every call. Written under mu.
	ready atomic.Pointer[rpc.Peer]

	closeErr error // from closing the last connection; written by the manager before it exits

	// Subscriptions (subscribe.go).
	subMu  sync.Mutex
	subs   map[string]*Subscription // by topic or pattern
	routes map[route]*Subscription  // by connection and subscription id
}

// Dial connects to the server at url (ws://, wss://, http:// or https://)
// and returns a Client using that connection. ctx bounds this first
// handshake only. Dial fails if the options are invalid or the first
// connection cannot be made; a server that refuses the handshake (401, 403,
// 503…) gives an error wrapping *[transport.HandshakeError].
//
// opts mixes [rpc.Option] values, which configure the peer of every
// connection (see [rpc.NewConfig], which validates them once), and this
// package's options (see [Option]). Invalid options are reported before any
// attempt, every problem joined in one error.
//
// With [WithWaitForServer], Dial keeps trying while the server is not up
// yet (connection refused, 503, handshake timeout…), and ctx bounds that
// whole wait; a permanent refusal (401, 403, a bad URL…) still returns at
// once.
func Dial(ctx context.Context, url string, opts ...Option) (*Client, error) {
	cfg, o, err := parseOptions(opts)
	if err != nil {
		return nil, err
	}
	c := &Client{
		urls:     append([]string{url}, o.endpoints...),
		opts:     o,
		cfg:      cfg,
		dialOpts: o.dialOptions(cfg),
		randN:    rand.Int64N,
		changed:  make(chan struct{}),
		auth:     newAuthState(&o),
	}
	p, err := c.dialFirst(ctx)
	if err != nil {
		return nil, err
	}
	c.closing, c.stop = context.WithCancelCause(context.Background())
	c.peer, c.status = p, Connected
	c.ready.Store(p)
	c.log(slog.LevelInfo, "wsrpc: connected", p, "subprotocol", p.Subprotocol())
	c.wg.Go(func() { c.run(p) })
	if c.auth.fn != nil {
		c.wg.Go(c.refresher)
	}
	return c, nil
}

// connect makes one connection to the next endpoint and starts its peer
// from the client's configuration, authenticated with the current
// credential (at the handshake, and in-band with WithInBandAuth). Endpoints are used in turn: after a
// failure, and after each connection, the next one is tried first, so
// clients spread over the instances of a service and move off an instance
// that is restarting.
func (c *Client) connect(ctx context.Context) (*rpc.Peer, error) {
	url := c.urls[c.next%len(c.urls)]
	c.next++
	opts, gen, cred, err := c.handshakeOptions(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := transport.Dial(ctx, url, opts)
	if err != nil {
		c.handshakeFailed(gen, err)
		return nil, err
	}
	pa := &peerAuth{gen: gen}
	p, err := c.cfg.New(conn, rpc.WithInline(pubsub.MethodPublication, c.onPublication), c.expiryInline(pa))
	if err != nil {
		_ = conn.Close(transport.StatusProtocolError, "unsupported subprotocol")
		return nil, fmt.Errorf("wsrpc: dial: %w", err)
	}
	p.Session().SetValue(peerAuthKey{}, pa)
	if err := c.login(ctx, p, gen, cred); err != nil {
		return nil, err
	}
	return p, nil
}

// Status returns the client's current status.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Peer returns the peer of the current connection, nil while disconnected.
// Calls made on it directly are not queued or retried. Do not close it: the
// client owns it.
func (c *Client) Peer() *rpc.Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peer
}

// Close stops reconnecting, fails the calls waiting for a connection, closes
// the connection with 1000 (normal closure), which fails the calls still in
// flight, and waits for every goroutine the client started. The errors of the
// calls it ends match [ErrClientClosed]. A connection being drained after a
// shutdown notice is cut short. Close is idempotent and returns the error of
// the closing handshake, if any.
//
// The closing handshake waits for the server's answer (at most about 10 s,
// see the transport package), and Close waits for the handler given with
// [rpc.WithHandler] to return once its ctx is cancelled: it must honour it.
func (c *Client) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.ready.Store(nil)
		c.stop(ErrClientClosed)
	}
	c.mu.Unlock()
	c.wg.Wait()
	return c.closeErr
}

// admit gives a call the connection to use, or its place in the wait queue:
// a channel closed when the connection changes, to wait on with await. A
// call that has already been admitted once is not refused by the queue
// bound. avoid is a connection that refused the call: it is not returned.
func (c *Client) admit(avoid *rpc.Peer, admitted bool) (*rpc.Peer, <-chan struct{}, error) {
	if p := c.ready.Load(); p != nil && p != avoid {
		return p, nil, nil // as the switch below would, without mu
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, nil, errNotSent()
	case c.peer != nil && c.peer != avoid:
		return c.peer, nil, nil
	case c.dead != nil:
		return nil, nil, c.dead
	case !admitted && c.waiting >= c.opts.queueSize:
		return nil, nil, errQueueFull(c.opts.queueSize)
	}
	c.waiting++
	return nil, c.changed, nil
}

// await waits on a place given by admit until the connection changes, ctx
// ends or the client closes, and gives the place up.
func (c *Client) await(ctx context.Context, changed <-chan struct{}) error {
	defer func() {
		c.mu.Lock()
		c.waiting--
		c.mu.Unlock()
	}()
	select {
	case <-changed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wsrpc: waiting for a connection: %w", ctx.Err())
	case <-c.closing.Done():
		return errNotSent()
	}
}

// setPeer makes p the current connection (nil: none) and moves to status
// s, waking every call waiting for a connection. Only the manager calls it,
// so the hook sees changes in order.
func (c *Client) setPeer(p *rpc.Peer, s Status, dead error) {
	c.mu.Lock()
	c.peer = p
	if !c.closed {
		c.ready.Store(p)
	}
	moved := c.status != s
	c.status = s
	if dead != nil {
		c.dead = dead
	}
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	if moved {
		c.report(s)
	}
}

// report calls the status hook.
func (c *Client) report(s Status) {
	if c.opts.statusHook != nil {
		c.opts.statusHook(s)
	}
}

// isClosed reports whether Close has been called.
func (c *Client) isClosed() bool { return c.closing.Err() != nil }

// log logs with the logger of rpc.WithLogger, if any: msg, the attributes
// of the connection p (rpc.Peer.AppendLogAttrs; none for a nil p), then
// args.
func (c *Client) log(level slog.Level, msg string, p *rpc.Peer, args ...any) {
	l := c.cfg.Logger()
	if l == nil || !l.Enabled(context.Background(), level) {
		return
	}
	var buf [3]slog.Attr
	all := make([]any, 0, len(buf)+len(args))
	for _, a := range p.AppendLogAttrs(buf[:0]) {
		all = append(all, a)
	}
	l.Log(context.Background(), level, msg, append(all, args...)...)
}
