package rpc

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// A connection's identity is on its Peer, and a call's Peer is on its
// Request: req.Peer().RemoteAddr(), req.Peer().Session().Principal(), the
// same in a handler, in incoming middleware and in outgoing middleware, on
// either side. Code that has only a handler's ctx gets the Request with
// [RequestFromContext].

// ID returns the connection's identifier: random, 16 hex digits, unique
// among the connections of a process for all practical purposes. The server
// registers its connections under it.
func (p *Peer) ID() string {
	if p == nil {
		return ""
	}
	return p.id
}

// RemoteAddr returns the address of the other side: on a server, the
// client's as its trusted proxies forwarded it (server.WithTrustedProxies),
// else the socket's. It is nil when unknown.
func (p *Peer) RemoteAddr() net.Addr {
	if p == nil {
		return nil
	}
	return p.remoteAddr
}

// Subprotocol returns the negotiated subprotocol ("" for JSON-RPC without
// one).
func (p *Peer) Subprotocol() string {
	if p == nil {
		return ""
	}
	return p.conn.Subprotocol()
}

// Header returns the headers of the opening handshake: the request's on the
// server side, the response's on the client side. It is shared: do not
// modify it.
func (p *Peer) Header() http.Header {
	if p == nil {
		return nil
	}
	return p.conn.HandshakeHeader()
}

// ConnectedAt returns when the peer started, just after the handshake.
func (p *Peer) ConnectedAt() time.Time {
	if p == nil {
		return time.Time{}
	}
	return p.connectedAt
}

// Session returns the state of the connection that outlives its calls: who
// is on the other end, and values the application keeps there. It is never
// nil for a peer (nil for a nil *Peer, whose Session methods are safe).
func (p *Peer) Session() *Session {
	if p == nil {
		return nil
	}
	return &p.session
}

// Session is the state of one connection that outlives its calls: the
// principal (who is on the other end, as the server's authentication or a
// handler established it) and values keyed like a context's. It is safe for
// concurrent use; the methods of a nil *Session read as empty and ignore
// writes.
type Session struct {
	principal atomic.Pointer[any]
	values    sync.Map
}

// SetPrincipal records who is on the other end: a user, a service account,
// whatever type the application uses. nil clears it.
func (s *Session) SetPrincipal(p any) {
	if s == nil {
		return
	}
	if p == nil {
		s.principal.Store(nil)
		return
	}
	s.principal.Store(&p)
}

// Principal returns the principal, or nil when none is set.
func (s *Session) Principal() any {
	if s == nil {
		return nil
	}
	if p := s.principal.Load(); p != nil {
		return *p
	}
	return nil
}

// SetValue stores v under key (nil v deletes it). Use a key type of your
// own, as with context.WithValue.
func (s *Session) SetValue(key, v any) {
	if s == nil {
		return
	}
	if v == nil {
		s.values.Delete(key)
		return
	}
	s.values.Store(key, v)
}

// Value returns the value stored under key, or nil.
func (s *Session) Value(key any) any {
	if s == nil {
		return nil
	}
	v, _ := s.values.Load(key)
	return v
}

func newConnID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
