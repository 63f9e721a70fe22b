package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// MaxAttempts bounds how many times one call is sent, the first time
// included. The call's ctx bounds it too.
const MaxAttempts = 10

// Call calls method with params and decodes the result into result (nil
// discards it), the way [rpc.Peer.Call] does: every attempt is a Call on the
// peer of the current connection, so it carries ctx's deadline and metadata
// and goes through the outgoing middleware ([rpc.WithOutgoingMiddleware]).
// While no connection is up the call waits for one (see [WithQueueSize]); a
// call the server never started is retried on the next connection, and so
// is an [Idempotent] call whose connection dropped after it was sent (see
// the package documentation for the rules). ctx bounds all of it; with
// [WithCallTimeout] a ctx without a deadline gets one. [WithMetadata] adds
// metadata to the call. The error is an *[rpc.Error] (errors.Is with
// [rpc.ErrConnectionLost] says the outcome is unknown), a context error, or
// one matching [ErrClientClosed].
func (c *Client) Call(ctx context.Context, method string, params, result any, opts ...CallOption) error {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	a := c.newAttempts(ctx, opts)
	for {
		p, err := a.next()
		if err != nil {
			return err
		}
		err = p.Call(a.ctx, method, params, result)
		if again, err := a.retry(p, err); !again {
			return err
		}
	}
}

// Notify sends a notification: a call with no reply, made with
// [rpc.Peer.Notify] (so it carries ctx's metadata and goes through the
// outgoing middleware). It waits for a connection like [Client.Call], and is
// sent again on the next connection if it could not be sent; once sent,
// whether the server handled it is unknown. It takes [WithMetadata];
// [Idempotent] changes nothing for it.
func (c *Client) Notify(ctx context.Context, method string, params any, opts ...CallOption) error {
	ctx, cancel := c.callContext(ctx)
	defer cancel()
	a := c.newAttempts(ctx, opts)
	for {
		p, err := a.next()
		if err != nil {
			return err
		}
		err = p.Notify(a.ctx, method, params)
		if again, err := a.retry(p, err); !again {
			return err
		}
	}
}

// Go is the asynchronous form of [Client.Call]: it returns at once, and the
// one *[rpc.Response] for the call arrives on reply later, after the same
// waiting and retries as Call. Each attempt is an [rpc.Peer.Go] (through the
// outgoing middleware, with the call's metadata); when a connection is up,
// the first attempt is sent before Go returns, so calls made one after the
// other go out in that order. The rest of the call runs on a goroutine
// owned by the client until the reply is delivered.
// Response.Result holds the encoded result (decode it with the Codec of the
// connection: JSON unless [rpc.WithValueCodec] set another on a binary
// connection); it belongs to the receiver. Response.Err is what Call would
// have returned; Response.ID is the wire id of the last attempt.
//
// reply must be buffered with room for every call in flight that shares it:
// the client never blocks on it, and a reply that does not fit is dropped
// (and logged). A caller cannot know a call's id in advance, so calls whose
// replies must be told apart need a channel each.
//
// An error from Go means no reply will come: reply is unbuffered, the
// client is closed, the wait queue is full, or the request could not be
// encoded or sent and may not be retried. A call is admitted (given its
// connection or its place in the wait queue) before Go returns.
func (c *Client) Go(ctx context.Context, method string, params any, reply chan *rpc.Response, opts ...CallOption) error {
	if cap(reply) == 0 {
		return errors.New("wsrpc: Go: reply must be a buffered channel")
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errNotSent()
	}
	c.wg.Add(1) // before Close can wait: this call's goroutine is counted from here
	c.mu.Unlock()

	ctx, cancel := c.callContext(ctx)
	end := func() {
		cancel()
		c.wg.Done()
	}
	a := c.newAttempts(ctx, opts)
	p, changed, err := c.admit(nil, false)
	if err != nil {
		end()
		return err
	}
	a.admitted = true
	var inner chan *rpc.Response // the reply to the attempt in flight, if any
	if p != nil {
		// The first attempt is sent before Go returns, so that calls made
		// one after the other on a connection go out in that order.
		inner = make(chan *rpc.Response, 1)
		if _, err := p.Go(a.ctx, method, params, inner); err != nil {
			again, err := a.retry(p, err)
			if !again {
				end()
				return err
			}
			p, inner = nil, nil
		}
	}
	go func() {
		defer end()
		r := a.goCall(p, inner, changed, method, params)
		select {
		case reply <- r:
		default:
			c.log(slog.LevelWarn, "wsrpc: reply dropped: Go's reply channel is full", nil, "method", method, "id", r.ID)
		}
	}()
	return nil
}

// goCall finishes a call admitted by Go and returns its Response. inner,
// when not nil, receives the reply to the attempt in flight on p; changed,
// when not nil, is the call's place in the wait queue. Every attempt is
// [rpc.Peer.Go]: the Peer's own asynchronous path.
func (a *attempts) goCall(p *rpc.Peer, inner chan *rpc.Response, changed <-chan struct{}, method string, params any) *rpc.Response {
	if changed != nil {
		if err := a.c.await(a.ctx, changed); err != nil {
			return &rpc.Response{Err: err}
		}
	}
	for {
		if inner == nil {
			var err error
			if p, err = a.next(); err != nil {
				return &rpc.Response{Err: err}
			}
			inner = make(chan *rpc.Response, 1)
			if _, err := p.Go(a.ctx, method, params, inner); err != nil {
				again, err := a.retry(p, err)
				if !again {
					return &rpc.Response{Err: err}
				}
				inner = nil
				continue
			}
		}
		r := <-inner // exactly one Response comes for a request that was sent
		inner = nil
		again, err := a.retry(p, r.Err)
		if !again {
			r.Err = err
			return r
		}
	}
}

// callContext applies the default call timeout to a ctx without a deadline.
func (c *Client) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.opts.callTimeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			return context.WithTimeout(ctx, c.opts.callTimeout)
		}
	}
	return ctx, func() {}
}

// attempts is the retry state of one call.
type attempts struct {
	c          *Client
	ctx        context.Context // the call's: with its timeout and metadata
	idempotent bool
	n          int           // attempts that failed and were retried
	admitted   bool          // the call has its place: the queue bound no longer applies
	avoid      *rpc.Peer     // the connection that failed the last attempt: wait for another
	pause      time.Duration // wait before trying the same connection again
}

// newAttempts returns the attempts of one call, as a value, so that a
// blocking call keeps it on its stack. The call's metadata
// ([WithMetadata]) goes into its ctx, where the peer reads it.
func (c *Client) newAttempts(ctx context.Context, opts []CallOption) attempts {
	a := attempts{c: c, ctx: ctx}
	if len(opts) > 0 { // the options escape to their funcs: only when there are some
		var o callOptions
		for _, opt := range opts {
			if opt != nil {
				opt(&o)
			}
		}
		a.idempotent = o.idempotent
		a.ctx = rpc.ContextWithMetadata(ctx, o.md)
	}
	return a
}

// next returns the connection for the next attempt, waiting for one if
// needed.
func (a *attempts) next() (*rpc.Peer, error) {
	if a.pause > 0 {
		t := time.NewTimer(a.pause)
		defer t.Stop()
		select {
		case <-t.C:
		case <-a.ctx.Done():
			return nil, a.ctx.Err()
		case <-a.c.closing.Done():
			return nil, errNotSent()
		}
	}
	for {
		p, changed, err := a.c.admit(a.avoid, a.admitted)
		a.admitted = true
		if err != nil || p != nil {
			return p, err
		}
		if err := a.c.await(a.ctx, changed); err != nil {
			return nil, err
		}
	}
}

// retry decides what follows an attempt on p that ended with err: another
// attempt (true), or the end of the call with the error to report.
//
//   - CodeUnavailable (never started) is retried; CodeConnectionLost (sent,
//     outcome unknown) only for an idempotent call; anything else is final.
//   - A retry goes to another connection when p is gone or going away, and
//     to the same one after a backoff pause when p is still healthy (the
//     server refused the call but keeps the connection).
//   - Nothing is retried once the client is closed (the error then matches
//     ErrClientClosed), once ctx has ended, after MaxAttempts, or when p is gone
//     and reconnection is off.
func (a *attempts) retry(p *rpc.Peer, err error) (bool, error) {
	if err == nil {
		return false, nil
	}
	var e *rpc.Error // escapes to errors.As: declared only on the error path
	if !errors.As(err, &e) {
		return false, err
	}
	if e.Code != rpc.CodeUnavailable && e.Code != rpc.CodeConnectionLost {
		return false, err
	}
	if a.c.isClosed() {
		return false, closedErr(err)
	}
	if e.Code == rpc.CodeConnectionLost && !a.idempotent || a.ctx.Err() != nil {
		return false, err
	}
	a.n++
	if a.n >= MaxAttempts {
		return false, fmt.Errorf("wsrpc: gave up after %d attempts: %w", a.n, err)
	}
	a.avoid, a.pause = nil, 0
	if gone(p) {
		if !a.c.opts.reconnect {
			return false, err
		}
		a.avoid = p
	} else {
		a.pause = a.c.delay(a.n - 1)
	}
	a.c.log(slog.LevelDebug, "wsrpc: retrying call", p, "attempt", a.n+1, "err", err)
	return true, nil
}

// gone reports whether p can take no more calls: its connection is ending
// or ended, or the server announced its shutdown.
func gone(p *rpc.Peer) bool {
	select {
	case <-p.GoingAway():
		return true
	case <-p.Done():
		return true
	default:
		return p.Conn().State() != transport.StateOpen
	}
}
