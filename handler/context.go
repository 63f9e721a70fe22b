package handler

import (
	"context"
	"net"
	"net/http"

	"github.com/wsrpc/wsrpc/rpc"
)

// RequestFrom returns the call a handler's context belongs to, or nil when
// ctx is not a handler's context (see [rpc.RequestFromContext]).
func RequestFrom(ctx context.Context) *rpc.Request { return rpc.RequestFromContext(ctx) }

// PeerFrom returns the peer the call arrived on, or nil. A handler uses it
// to call back or notify the other side while it serves the call.
func PeerFrom(ctx context.Context) *rpc.Peer {
	if r := RequestFrom(ctx); r != nil {
		return r.Peer()
	}
	return nil
}

// MethodFrom returns the method of the call, or "".
func MethodFrom(ctx context.Context) string {
	if r := RequestFrom(ctx); r != nil {
		return r.Method
	}
	return ""
}

// IDFrom returns the id of the call as it appeared on the wire (see
// [rpc.Request.WireID]), or "" for a notification or outside a call.
func IDFrom(ctx context.Context) string {
	if r := RequestFrom(ctx); r != nil {
		return r.WireID()
	}
	return ""
}

// ConnInfo describes the connection a call arrived on.
type ConnInfo struct {
	RemoteAddr net.Addr // nil if unknown
	// Header holds the headers of the WebSocket handshake request on the
	// server side, of the handshake response on the client side. It is
	// shared by every call on the connection: do not modify it.
	Header      http.Header
	Subprotocol string // the negotiated subprotocol, "" for none
}

// ConnInfoFrom returns what is known of the connection a call arrived on,
// or the zero ConnInfo when ctx is not a handler's context or the request
// was built without a peer (as in unit tests).
func ConnInfoFrom(ctx context.Context) ConnInfo {
	p := PeerFrom(ctx)
	if p == nil {
		return ConnInfo{}
	}
	c := p.Conn()
	if c == nil {
		return ConnInfo{}
	}
	return ConnInfo{RemoteAddr: c.RemoteAddr(), Header: c.HandshakeHeader(), Subprotocol: c.Subprotocol()}
}

// codecFor returns the value codec of the connection req arrived on, or
// [rpc.JSON] for a request built without a peer.
func codecFor(req *rpc.Request) rpc.Codec {
	if p := req.Peer(); p != nil {
		if c := p.Codec(); c != nil {
			return c
		}
	}
	return rpc.JSON
}
