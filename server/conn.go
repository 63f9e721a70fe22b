package server

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"sync"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// conn is the server's record of one connection in its registry. The
// connection's identity (ID, addresses, headers, session) is its peer's;
// this holds only what the server itself tracks: in-band authentication and
// the set-up handshake with the peer's end.
type conn struct {
	peer          *rpc.Peer     // set before registered is closed
	authed        chan struct{} // closed once the connection is authenticated (or needs not be)
	authOnce      sync.Once
	registered    chan struct{} // closed once serve has finished setting the connection up
	stopAuthTimer func()
	lifetime      lifetime // the authentication's expiry (authexpiry.go)
}

type serverKey struct{}

// FromContext returns the Server whose connection a handler's call arrived
// on, or nil: a handler can reach the other connections (Broadcast, Conns)
// through it. The connection itself is rpc.RequestFromContext(ctx).Peer().
func FromContext(ctx context.Context) *Server {
	s, _ := ctx.Value(serverKey{}).(*Server)
	return s
}

// wrap adds the server's per-connection concerns (in-band authentication,
// authentication refresh) around the application's handler.
func (s *Server) wrap(c *conn) rpc.Handler {
	h := s.withRefresh(c, s.h)
	if s.opts.inBand == nil {
		return h
	}
	ib := s.opts.inBand
	return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		select {
		case <-c.authed:
			return h.ServeRPC(ctx, req)
		default:
		}
		if req.Method != ib.method {
			return nil, rpc.Errorf(rpc.CodeUnauthenticated, "authenticate first by calling %q", ib.method)
		}
		principal, err := ib.fn(ctx, req.Params)
		if err != nil {
			var e *rpc.Error
			if errors.As(err, &e) {
				return nil, e
			}
			return nil, rpc.Errorf(rpc.CodeUnauthenticated, "authentication failed: %v", err)
		}
		at := expiryOf(principal)
		if err := checkExpiry(at); err != nil {
			return nil, rpc.Errorf(rpc.CodeUnauthenticated, "authentication failed: %v", err)
		}
		req.Peer().Session().SetPrincipal(principal)
		c.authOnce.Do(func() { close(c.authed) })
		s.announceExpiry(ctx, c, req.Peer(), at) // before the answer: the client knows the expiry once authenticated
		return []byte("true"), nil
	})
}

// startAuthTimer closes a connection that has not authenticated in-band in
// time with 1008. The returned func stops the timer and waits for it.
func (s *Server) startAuthTimer(c *conn) (stop func()) {
	select {
	case <-c.authed:
		return func() {}
	default:
	}
	fired := make(chan struct{})
	t := time.AfterFunc(s.opts.inBand.timeout, func() {
		defer close(fired)
		select {
		case <-c.authed:
			return
		default:
		}
		s.logPeer("authentication timeout", c.peer)
		c.peer.CloseWith(transport.StatusPolicyViolation, "authentication timeout")
	})
	return func() {
		if !t.Stop() {
			<-fired
		}
	}
}

func slogErrorLog(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.Handler(), slog.LevelWarn)
}
