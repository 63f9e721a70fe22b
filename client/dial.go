package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// dialFirst makes the first connection, on Dial's goroutine. Without
// [WithWaitForServer] it tries each endpoint once and returns the last error.
func (c *Client) dialFirst(ctx context.Context) (*rpc.Peer, error) {
	if c.opts.waitServer {
		return c.waitForServer(ctx)
	}
	var p *rpc.Peer
	var err error
	for range c.urls {
		if p, err = c.connect(ctx); err == nil || ctx.Err() != nil {
			break
		}
	}
	return p, err
}

// waitForServer retries the first connection until it is made, an attempt
// fails for good (see [transient]) or ctx ends. A first pass tries each
// endpoint in turn without a pause, as without the option, whatever the
// errors; after it every attempt waits for the reconnect backoff, or for the
// server's Retry-After.
func (c *Client) waitForServer(ctx context.Context) (*rpc.Peer, error) {
	var last error      // from the last attempt that completed
	var permanent error // the last permanent error of the first pass
	var wasRefused bool // the attempt before was refused for its credential
	for attempt := 1; ; attempt++ {
		p, err := c.connect(ctx)
		if err == nil {
			return p, nil
		}
		if ctx.Err() != nil { // this attempt was cut short: it says less than the one before
			if last == nil {
				last = err
			}
			return nil, errGaveUp(ctx, attempt, last)
		}
		retry, hint := transient(err)
		refused := c.auth.fn != nil && credentialRefused(err)
		if refused && !wasRefused && attempt > 1 {
			// The credential was fetched for an earlier attempt and may have
			// expired while Dial waited for the server (a Retry-After can be
			// a minute): one more attempt, with a new one (handshakeFailed
			// has marked this one bad). A new one refused too is final.
			retry = true
		}
		wasRefused = refused
		switch {
		case !retry && attempt >= len(c.urls):
			return nil, err
		case !retry:
			permanent = err // the other endpoints still get their first try
		case attempt == len(c.urls) && permanent != nil:
			return nil, permanent
		}
		last = err
		var wait time.Duration
		if n := attempt - len(c.urls); n >= 0 { // every endpoint has had its first try
			wait = c.delay(n)
			if hint > 0 {
				wait = min(hint, MaxRetryHint)
			}
		}
		c.log(slog.LevelInfo, "wsrpc: dial attempt failed; waiting for the server", nil, "attempt", attempt, "retry_in", wait, "err", err)
		if !sleep(ctx, wait) {
			return nil, errGaveUp(ctx, attempt, last)
		}
	}
}

// errGaveUp is Dial's error when ctx ended while it waited for the server:
// it wraps both ctx.Err() and the error of the last attempt.
func errGaveUp(ctx context.Context, attempts int, last error) error {
	plural := "s"
	if attempts == 1 {
		plural = ""
	}
	return fmt.Errorf("wsrpc: dial: gave up waiting for the server after %d attempt%s: %w; last error: %w", attempts, plural, ctx.Err(), last)
}

// transient reports whether err, from an attempt to connect, may go away
// once the server is up, and the delay the server asked for (Retry-After;
// 0 if none). Errors it does not know are permanent: Dial returns them at
// once rather than hide a mistake behind a long wait.
func transient(err error) (retry bool, hint time.Duration) {
	var he *transport.HandshakeError
	if errors.As(err, &he) {
		switch he.StatusCode {
		case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusTooManyRequests:
			return true, retryAfter(he.Header.Get("Retry-After"), time.Now())
		}
		return false, 0 // 400, 401, 403, 404, 426, 500…: the server answered, and meant it
	}
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.As(err, &dns): // the name may resolve only once the service runs
	case errors.As(err, &op) && op.Op == "dial": // refused, unreachable, connect timeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF): // accepted, then hung up
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded): // handshake timeout
	default:
		return false, 0
	}
	return true, 0
}

// credentialRefused reports whether err is a handshake refused for its
// credential: 401 or 403.
func credentialRefused(err error) bool {
	var he *transport.HandshakeError
	return errors.As(err, &he) && (he.StatusCode == http.StatusUnauthorized || he.StatusCode == http.StatusForbidden)
}

// retryAfter parses a Retry-After header value: delay-seconds or an HTTP
// date. It returns 0 for none, a past date or a value it cannot parse, and
// at most [MaxRetryHint].
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if s > int64(MaxRetryHint/time.Second) { // or out of range
			return MaxRetryHint
		}
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryHint)
}
