package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsrpc/wsrpc/internal/authwire"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// AuthExpirer is implemented by a principal whose authentication ends: a
// principal returned by the hook of [WithAuth], [WithInBandAuth] or
// [WithAuthRefresh] that has an AuthExpiry method gives the connection an
// expiry (typically the "exp" of the token it was made from). The zero time
// means none.
//
// The server tells the client when its authentication ends ($/auth.expiry,
// docs/PROTOCOL.md section 15); before then the client may present a new
// credential ($/auth.refresh, served with the hook of [WithAuthRefresh]),
// which sets the next expiry. A connection that reaches its expiry is
// closed with [rpc.CloseAuthExpired] (4401), and its calls in flight fail as
// for any lost connection: the client gets a new credential and reconnects.
//
// A principal whose expiry has already passed is refused: a handshake with
// 401, an in-band authentication or a refresh with -32004 unauthenticated
// (the connection keeps its current authentication and expiry). To end a
// connection's authentication at once (a revoked user), close it with
// [rpc.CloseAuthExpired] ([rpc.Peer.CloseWith]): its client gets a new
// credential before it reconnects.
type AuthExpirer interface {
	AuthExpiry() time.Time
}

// minLifetime is the shortest lifetime a principal may have left: an expiry
// less than this ahead is treated as already passed (the lifetime travels
// in whole milliseconds).
const minLifetime = time.Millisecond

// WithAuthRefresh lets clients present a new credential on an open
// connection, before its authentication expires (see [AuthExpirer]), with
// the reserved call $/auth.refresh (docs/PROTOCOL.md, section 15). fn gets
// the call's ctx, the connection's current principal (nil if it has none)
// and the call's params: the new credential, JSON on both codecs, valid only
// until fn returns. It returns the principal that replaces the current one,
// or an error: an *[rpc.Error] is answered as it is, one wrapping
// [ErrForbidden] with -32005 permission denied, any other with -32004
// unauthenticated. A refused refresh changes nothing: the connection keeps
// its principal and its expiry, and may try again.
//
// The returned principal becomes the connection's, and its AuthExpiry (none
// if it has no such method) the connection's new expiry; the answer tells
// the client. What may change is fn's decision alone: the server does not
// compare the two principals. A hook that must keep the connection's
// identity checks that the new credential names the same subject as
// current, and refuses it otherwise. Subscriptions and calls in flight are
// not checked again.
//
// Without this option $/auth.refresh is answered with -32601, and a
// connection with an expiry is closed when it reaches it. Refreshes of one
// connection do not overlap: one sent while another is being handled is
// answered with -32003 busy.
func WithAuthRefresh(fn func(ctx context.Context, current any, params []byte) (principal any, err error)) Option {
	return serverOption(func(o *options) error {
		if fn == nil {
			return errors.New("wsrpc: WithAuthRefresh needs a function")
		}
		o.refresh = fn
		return nil
	})
}

// expiryOf returns when principal's authentication ends (zero: never).
func expiryOf(principal any) time.Time {
	if e, ok := principal.(AuthExpirer); ok {
		return e.AuthExpiry()
	}
	return time.Time{}
}

// errPastExpiry refuses a principal whose expiry has passed.
var errPastExpiry = errors.New("the credential has already expired")

// checkExpiry returns an error when at is set and not in the future.
func checkExpiry(at time.Time) error {
	if !at.IsZero() && time.Until(at) < minLifetime {
		return errPastExpiry
	}
	return nil
}

// lifetime is a connection's authentication expiry: the timer that closes
// it with 4401, replaced by every refresh.
type lifetime struct {
	mu      sync.Mutex
	timer   *time.Timer
	gen     uint64         // counts the timers armed: a timer that fires after it was replaced sees another
	ended   bool           // the connection has ended: no new timer
	running sync.WaitGroup // armed timers whose func has not returned
	busy    atomic.Bool    // a refresh is being handled
}

// expireAt makes at the expiry of c, whose peer is p (zero: none),
// replacing the one before, and returns what the client is told: the time
// left, and whether there is an expiry. (p is given because a handler may
// run before serve has set c.peer.)
func (s *Server) expireAt(c *conn, p *rpc.Peer, at time.Time) (time.Duration, bool) {
	lt := &c.lifetime
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if lt.timer != nil && lt.timer.Stop() {
		lt.running.Done() // it will not run
	}
	lt.timer = nil
	lt.gen++
	if at.IsZero() || lt.ended {
		return 0, false
	}
	gen := lt.gen
	d := time.Until(at)
	lt.running.Add(1)
	lt.timer = time.AfterFunc(d, func() {
		defer lt.running.Done()
		lt.mu.Lock()
		current := lt.gen == gen && !lt.ended
		lt.mu.Unlock()
		if !current {
			return
		}
		s.logPeer("authentication expired", p)
		p.CloseWith(rpc.CloseAuthExpired, "authentication expired: reconnect with a new credential")
	})
	return d, true
}

// announceExpiry makes at the connection's expiry and, if there is one,
// tells the client with $/auth.expiry.
func (s *Server) announceExpiry(ctx context.Context, c *conn, p *rpc.Peer, at time.Time) {
	d, has := s.expireAt(c, p, at)
	if !has {
		return
	}
	// A failure means the connection is gone: nothing to tell.
	_ = p.Notify(ctx, rpc.MethodAuthExpiry, rpc.Raw(authwire.Encode(d, true)))
}

// stopExpiry stops the connection's expiry timer for good and waits for its
// func if it is running. The connection has ended.
func (s *Server) stopExpiry(c *conn) {
	lt := &c.lifetime
	lt.mu.Lock()
	lt.ended = true
	if lt.timer != nil && lt.timer.Stop() {
		lt.running.Done()
	}
	lt.timer = nil
	lt.mu.Unlock()
	lt.running.Wait()
}

// startExpiry announces the expiry of a connection authenticated at the
// handshake, once it is registered.
func (s *Server) startExpiry(c *conn, principal any) {
	at := expiryOf(principal)
	if at.IsZero() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), transport.DefaultWriteTimeout)
	defer cancel()
	s.announceExpiry(ctx, c, c.peer, at)
}

// withRefresh serves $/auth.refresh around h, the application's handler.
func (s *Server) withRefresh(c *conn, h rpc.Handler) rpc.Handler {
	return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		if req.Method != rpc.MethodAuthRefresh {
			return h.ServeRPC(ctx, req)
		}
		return s.refresh(ctx, c, req)
	})
}

// refresh handles one $/auth.refresh: the hook validates the new
// credential, and its principal replaces the connection's, with its expiry.
func (s *Server) refresh(ctx context.Context, c *conn, req *rpc.Request) ([]byte, error) {
	if req.IsNotification() {
		return nil, nil // no answer to give: a refresh must be a call
	}
	if s.opts.refresh == nil {
		return nil, rpc.Errorf(rpc.CodeMethodNotFound, "%s: this server does not refresh authentication", rpc.MethodAuthRefresh)
	}
	if len(req.Params) == 0 || string(req.Params) == "null" {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "%s: the params must be the new credential", rpc.MethodAuthRefresh)
	}
	if !rpc.ValidJSON(req.Params) { // wsrpc.v1 carries any bytes; JSON-RPC has checked already
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "%s: the params must be JSON", rpc.MethodAuthRefresh)
	}
	lt := &c.lifetime
	if !lt.busy.CompareAndSwap(false, true) {
		return nil, rpc.Errorf(rpc.CodeBusy, "%s: another refresh of this connection is under way", rpc.MethodAuthRefresh)
	}
	defer lt.busy.Store(false)
	session := req.Peer().Session()
	principal, err := s.opts.refresh(ctx, session.Principal(), req.Params)
	if err != nil {
		var e *rpc.Error
		switch {
		case errors.As(err, &e):
			return nil, e
		case errors.Is(err, ErrForbidden):
			return nil, rpc.Errorf(rpc.CodePermissionDenied, "refresh refused: %v", err)
		}
		return nil, rpc.Errorf(rpc.CodeUnauthenticated, "refresh refused: %v", err)
	}
	if principal == nil {
		return nil, rpc.Errorf(rpc.CodeUnauthenticated, "refresh refused: the server's refresh hook returned no principal")
	}
	at := expiryOf(principal)
	if err := checkExpiry(at); err != nil {
		return nil, rpc.Errorf(rpc.CodeUnauthenticated, "refresh refused: %v; the connection keeps its current expiry", err)
	}
	session.SetPrincipal(principal)
	return authwire.Encode(s.expireAt(c, req.Peer(), at)), nil
}
