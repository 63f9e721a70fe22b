package client

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// run is the manager goroutine. It watches the current connection p; when p
// ends or the server announces its shutdown, it hands p to a retiring
// goroutine and makes a new connection, with backoff. It returns when the
// client closes, or when the connection ends with reconnection off.
func (c *Client) run(p *rpc.Peer) {
	c.report(Connected)
	for {
		var notice bool
		select {
		case <-c.closing.Done():
			c.shutdown(p)
			return
		case <-p.Done():
		case <-p.GoingAway():
		}
		// A notice may have come just before the close (a server with
		// nothing to drain closes at once): the select may then have
		// picked Done, but the notice's hint still holds.
		select {
		case <-p.GoingAway():
			notice = true
		default:
		}
		c.authEnded(p)
		retryAfter := p.RetryAfter()
		if notice {
			c.log(slog.LevelInfo, "wsrpc: server is shutting down; moving to a new connection", p, "retry_after", retryAfter)
		} else {
			c.log(slog.LevelWarn, "wsrpc: connection lost", p, "err", p.Err())
		}
		if !c.opts.reconnect {
			why := p.Err()
			if notice {
				why = errors.New("the server is shutting down")
			}
			c.setPeer(nil, Closed, errNoReconnect(why))
			c.retire(p, notice)
			c.endSubscriptions(errNoReconnect(why))
			return
		}
		c.setPeer(nil, Reconnecting, nil)
		c.retire(p, notice)
		if p = c.redial(notice, retryAfter); p == nil {
			c.shutdown(nil)
			return
		}
		c.log(slog.LevelInfo, "wsrpc: connected", p, "subprotocol", p.Subprotocol())
		c.setPeer(p, Connected, nil)
		np := p // p is reassigned by the next redial
		c.wg.Go(func() { c.resubscribe(np) })
	}
}

// shutdown ends the manager's work when the client closes: it fails the
// calls waiting for a connection and closes the current one with 1000, which
// fails the calls in flight.
func (c *Client) shutdown(p *rpc.Peer) {
	c.setPeer(nil, Closed, nil)
	if p != nil {
		c.closeErr = p.Close()
		p.Wait() // the client's handlers for server→client calls
	}
	c.endSubscriptions(ErrClientClosed)
}

// retire releases a connection that is no longer current, on a goroutine of
// its own so that reconnecting does not wait for it. After a shutdown notice
// the connection is shut down gracefully ([rpc.Peer.Shutdown]): calls in
// flight in both directions complete (the server gets a notice too, so it
// sends no new calls), then it is closed with 1000. A connection that has
// ended is just released. Close cuts a shutdown short.
func (c *Client) retire(p *rpc.Peer, drain bool) {
	c.wg.Go(func() {
		if !drain {
			_ = p.CloseNow() // already ended: release it
			p.Wait()
			return
		}
		_ = p.Shutdown(c.closing, rpc.Notice{Reason: "client moved to a new connection", Code: transport.StatusNormalClosure})
	})
}

// MaxRetryHint caps the reconnect delay a server may ask for in its shutdown
// notice (or, with [WithWaitForServer], in the Retry-After header of a 503),
// so that a misconfigured server cannot stall its clients for hours.
const MaxRetryHint = time.Minute

// redial makes a new connection, sleeping before each attempt: the server's
// retry hint before the first attempt after a shutdown notice, the
// Retry-After of a refusal (a 503 from a server that is draining or
// limiting its handshake rate) after one, each up to a quarter later at
// random (spreadHint), a jittered backoff otherwise. It
// returns nil when the client closes.
func (c *Client) redial(notice bool, retryAfter time.Duration) *rpc.Peer {
	var hint time.Duration      // the last refusal's Retry-After, capped
	penalty := c.auth.penalty() // after connections that kept expiring
	for attempt := 0; ; attempt++ {
		wait := c.delay(attempt + penalty)
		switch {
		case attempt == 0 && notice:
			wait = spreadHint(min(retryAfter, MaxRetryHint), c.randN)
		case hint > 0:
			wait = spreadHint(hint, c.randN)
		}
		if !sleep(c.closing, wait) {
			return nil
		}
		p, err := c.connect(c.closing)
		if err == nil {
			return p
		}
		if c.isClosed() {
			return nil
		}
		_, hint = transient(err)
		c.log(slog.LevelWarn, "wsrpc: reconnect failed", nil, "attempt", attempt+1, "err", err)
	}
}

// spreadHint is a server's retry hint h with jitter, as PROTOCOL.md asks of
// clients: a random moment in [h, h + h/4], never sooner than the server
// asked, so that the clients one server sent away do not all come back in
// the same instant.
func spreadHint(h time.Duration, randN func(int64) int64) time.Duration {
	if h <= 0 {
		return 0
	}
	return h + time.Duration(randN(int64(h/4)+1))
}

// delay is the jittered backoff before reconnect attempt n (from 0).
func (c *Client) delay(n int) time.Duration {
	return jitter(c.opts.backoffBase, c.opts.backoffMax, n, c.randN)
}

// jitter returns a random duration in [0, min(max, base·2ⁿ)] ("full
// jitter"): the ceiling doubles with every attempt up to max, and the random
// draw spreads clients that lost the same server over the whole interval.
// randN returns a random number in [0, n).
func jitter(base, max time.Duration, n int, randN func(int64) int64) time.Duration {
	ceil := base
	for i := 0; i < n && ceil < max; i++ {
		if ceil > max/2 {
			ceil = max
			break
		}
		ceil *= 2
	}
	ceil = min(ceil, max)
	switch {
	case ceil <= 0:
		return 0
	case ceil == math.MaxInt64:
		return time.Duration(randN(math.MaxInt64)) // no room for the +1
	}
	return time.Duration(randN(int64(ceil) + 1))
}

// sleep waits for d, reporting false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
