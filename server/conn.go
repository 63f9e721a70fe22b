package server

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// Conn is one open connection in the server's registry.
type Conn struct {
	id          string
	peer        *rpc.Peer
	session     *handler.Session
	connectedAt time.Time

	tc            *transport.Conn
	server        *Server
	authed        chan struct{} // closed once the connection is authenticated (or needs not be)
	authOnce      sync.Once
	registered    chan struct{} // closed once serve has finished setting the connection up
	stopAuthTimer func()
}

type connKey struct{}

// ConnFrom returns the connection a handler's call arrived on, or nil.
func ConnFrom(ctx context.Context) *Conn {
	c, _ := ctx.Value(connKey{}).(*Conn)
	return c
}

// ID is the connection's identifier: random, unique within the server.
func (c *Conn) ID() string { return c.id }

// Peer is the connection's RPC peer: call or notify the client through it.
// Closing it from a handler is allowed (it does not wait for handlers).
func (c *Conn) Peer() *rpc.Peer { return c.peer }

// Session holds the connection's authenticated principal, if any.
func (c *Conn) Session() *handler.Session { return c.session }

// ConnectedAt is when the handshake completed.
func (c *Conn) ConnectedAt() time.Time { return c.connectedAt }

// RemoteAddr is the client's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.tc.RemoteAddr() }

// Header is the handshake request's headers.
func (c *Conn) Header() http.Header { return c.tc.HandshakeHeader() }

// Subprotocol is the negotiated subprotocol ("" for JSON-RPC without one).
func (c *Conn) Subprotocol() string { return c.tc.Subprotocol() }

// Call calls method on the client and decodes its result into result.
func (c *Conn) Call(ctx context.Context, method string, params, result any) error {
	return c.peer.Call(ctx, method, params, result)
}

// Notify sends the client a notification.
func (c *Conn) Notify(ctx context.Context, method string, params any) error {
	return c.peer.Notify(ctx, method, params)
}

// Broadcast sends a notification to every open connection for which keep
// returns true (every one when keep is nil). The notification is encoded
// once per wire codec (params are encoded with the server's value codec; an
// rpc.Raw is sent as it is), and every connection it is queued on shares
// that one buffer. On JSON-RPC connections params must be a JSON array or
// object, and Broadcast returns an error before sending anything if they
// are not. A connection that does not read what is queued for it is closed
// (1008) once its send queue would pass its byte bound, rather than holding
// up the broadcast or growing memory. Sends run concurrently (up to 64 at a
// time), each bounded by ctx. It returns how many connections the
// notification was queued on; connections that are closing, or whose send
// did not complete before ctx ended, are not counted.
func (s *Server) Broadcast(ctx context.Context, method string, params any, keep func(*Conn) bool) (int, error) {
	var targets []*Conn
	var binaryMsg, jsonMsg *rpc.Encoded
	for _, c := range s.Conns() {
		if keep != nil && !keep(c) {
			continue
		}
		var err error
		if isBinary(c) && binaryMsg == nil {
			binaryMsg, err = encodeNotification(c.peer, method, params)
		} else if !isBinary(c) && jsonMsg == nil {
			jsonMsg, err = encodeNotification(c.peer, method, params)
		}
		if err != nil {
			return 0, err
		}
		targets = append(targets, c)
	}
	var sent atomic.Int64
	var g errgroup.Group
	g.SetLimit(64)
	for _, c := range targets {
		msg := jsonMsg
		if isBinary(c) {
			msg = binaryMsg
		}
		g.Go(func() error {
			if c.peer.SendEncoded(ctx, msg) == nil {
				sent.Add(1)
			}
			return nil
		})
	}
	g.Wait()
	return int(sent.Load()), ctx.Err()
}

// isBinary reports whether c speaks the binary codec (every binary
// connection of a server shares its value codec; JSON-RPC ones use JSON).
func isBinary(c *Conn) bool { return strings.EqualFold(c.Subprotocol(), rpc.SubprotocolBinary) }

// encodeNotification encodes a broadcast once for p's wire codec (every
// binary connection of a server shares its value codec; JSON-RPC ones use
// JSON).
func encodeNotification(p *rpc.Peer, method string, params any) (*rpc.Encoded, error) {
	var raw rpc.Raw
	switch v := params.(type) {
	case nil:
	case rpc.Raw:
		raw = v
	default:
		b, err := p.Codec().Marshal(params)
		if err != nil {
			return nil, fmt.Errorf("wsrpc: broadcast: encode params: %w", err)
		}
		raw = b
	}
	e, err := p.EncodeNotification(method, raw)
	if err != nil {
		return nil, fmt.Errorf("wsrpc: broadcast: %w", err)
	}
	return e, nil
}

// wrap adds the server's per-connection concerns (in-band authentication)
// around the application's handler.
func (s *Server) wrap(c *Conn) rpc.Handler {
	if s.opts.inBand == nil {
		return s.h
	}
	ib := s.opts.inBand
	return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		select {
		case <-c.authed:
			return s.h.ServeRPC(ctx, req)
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
		c.session.SetPrincipal(principal)
		c.authOnce.Do(func() { close(c.authed) })
		return []byte("true"), nil
	})
}

// startAuthTimer closes a connection that has not authenticated in-band in
// time with 1008. The returned func stops the timer and waits for it.
func (s *Server) startAuthTimer(c *Conn) (stop func()) {
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
		s.log("authentication timeout", "conn", c.id)
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
