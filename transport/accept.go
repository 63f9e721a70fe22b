package transport

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/coder/websocket"
)

// AcceptOptions configure [Accept]. The zero value (or nil) gives safe
// defaults: same-origin requests only, no subprotocol, no compression.
// Accept copies the struct and never modifies it.
type AcceptOptions struct {
	ConnOptions

	// Subprotocols the server speaks, in order of preference: the first one
	// the client also offered is chosen. If the client offered none of them,
	// the connection opens with no subprotocol ("").
	Subprotocols []string

	// SelectSubprotocol, when set, replaces the rule above: it gets the
	// request and the subprotocols the client offered and returns the one to
	// use, "" for none. Returning one the client did not offer is an error.
	SelectSubprotocol func(r *http.Request, offered []string) string

	// OriginPatterns lists the host patterns (path.Match syntax, matched
	// case-insensitively against the Origin's host, or against scheme://host
	// when the pattern contains "://") of the origins allowed besides the
	// request's own host. Cross-origin requests are refused with 403 by
	// default, which stops cross-site WebSocket hijacking.
	OriginPatterns []string

	// InsecureSkipOriginCheck accepts every origin. Only for servers that
	// authenticate every connection by other means than cookies.
	InsecureSkipOriginCheck bool

	// ResponseHeader is added to the 101 response (Set-Cookie, say).
	ResponseHeader http.Header
}

// Accept upgrades an HTTP request to a WebSocket connection. On failure it has
// already written an HTTP error response (403 for a refused origin, 400 or 426
// for a bad handshake, 500 for options out of their bounds) and returns the
// error.
func Accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (*Conn, error) {
	var o AcceptOptions
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		http.Error(w, "server misconfigured", http.StatusInternalServerError)
		return nil, fmt.Errorf("wsrpc: accept: %w", err)
	}
	protos := o.Subprotocols
	if o.SelectSubprotocol != nil {
		offered := offeredSubprotocols(r)
		chosen := o.SelectSubprotocol(r, offered)
		protos = nil
		if chosen != "" {
			if !slices.Contains(offered, chosen) {
				http.Error(w, "subprotocol selection failed", http.StatusInternalServerError)
				return nil, fmt.Errorf("wsrpc: accept: selected subprotocol %q was not offered", chosen)
			}
			protos = []string{chosen}
		}
	}
	for k, vs := range o.ResponseHeader {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	cw := &corkingWriter{ResponseWriter: w}
	ws, err := websocket.Accept(cw, r, &websocket.AcceptOptions{
		Subprotocols:       protos,
		OriginPatterns:     o.OriginPatterns,
		InsecureSkipVerify: o.InsecureSkipOriginCheck,
		CompressionMode:    o.Compression,
	})
	if err != nil {
		return nil, &AcceptError{Status: cw.status, Err: err}
	}
	var local net.Addr
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		local = a
	}
	var remote net.Addr
	if a, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
		remote = a
	}
	var broken *atomic.Bool // the corkConn is above TLS here: its watch counts
	if cw.cork != nil {
		broken = &cw.cork.watch.broken
	}
	var sock io.Closer
	if cw.cork != nil {
		sock = cw.cork.Conn
	}
	return newConn(ws, false, o.ConnOptions, cw.cork, sock, broken, r.Header, local, remote), nil
}

func offeredSubprotocols(r *http.Request) []string {
	var out []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// AcceptError is the error of a handshake that [Accept] refused: Status is
// the HTTP status it answered with (403 for an origin that is not allowed,
// 400, 405 or 426 for a request that is not a valid WebSocket upgrade), and
// Err what coder/websocket said.
type AcceptError struct {
	Status int
	Err    error
}

func (e *AcceptError) Error() string { return "wsrpc: accept: " + e.Err.Error() }

func (e *AcceptError) Unwrap() error { return e.Err }
