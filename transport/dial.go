package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// DialOptions configure [Dial]. The zero value (or nil) gives safe defaults.
// Dial copies the struct and never modifies it.
type DialOptions struct {
	ConnOptions

	// HTTPClient performs the handshake. Set it to use a custom TLS config
	// (Transport.TLSClientConfig) or an HTTP proxy (Transport.Proxy). Its
	// Timeout must be zero: the handshake is bounded by HandshakeTimeout and
	// the ctx given to Dial. nil means http.DefaultClient.
	HTTPClient *http.Client

	// Header is sent with the handshake request (for example Authorization).
	Header http.Header

	// Subprotocols are offered to the server, in order of preference.
	Subprotocols []string

	// HandshakeTimeout bounds the opening handshake. Zero means
	// DefaultHandshakeTimeout; negative means only ctx bounds it.
	HandshakeTimeout time.Duration
}

// HandshakeError is returned by [Dial] when the server answered the opening
// handshake with something other than 101 Switching Protocols, for example
// 401, 403 or 503.
type HandshakeError struct {
	StatusCode int         // the HTTP status the server answered
	Header     http.Header // its response headers (Retry-After, say)
	Err        error       // the error from the WebSocket library
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("wsrpc: handshake refused: HTTP %d %s: %v", e.StatusCode, http.StatusText(e.StatusCode), e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// Dial opens a WebSocket connection to url (ws://, wss://, http:// or https://).
// ctx bounds the handshake only; the connection lives until it is closed.
func Dial(ctx context.Context, url string, opts *DialOptions) (*Conn, error) {
	var o DialOptions
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("wsrpc: dial: %w", err)
	}
	if o.HTTPClient != nil && o.HTTPClient.Timeout != 0 {
		return nil, errors.New("wsrpc: dial: HTTPClient.Timeout must be zero; use HandshakeTimeout")
	}
	timeout := o.HandshakeTimeout
	if timeout == 0 {
		timeout = DefaultHandshakeTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var local, remote net.Addr
	var cork *corkConn
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			local, remote = info.Conn.LocalAddr(), info.Conn.RemoteAddr()
			cork = corkOf(info.Conn)
		},
	})
	client, release := corkingClient(o.HTTPClient)
	defer release()
	client, body := watching(client)
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient:      client,
		HTTPHeader:      o.Header,
		Subprotocols:    o.Subprotocols,
		CompressionMode: o.Compression,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, &HandshakeError{StatusCode: resp.StatusCode, Header: resp.Header, Err: err}
		}
		return nil, fmt.Errorf("wsrpc: dial %s: %w", redact(url), err)
	}
	// The 101 response's body is above TLS and exists whatever the
	// RoundTripper: its watch is the one that counts.
	var broken *atomic.Bool
	var sock io.Closer
	if cork != nil {
		sock = cork.Conn
	}
	if *body != nil {
		broken = &(*body).watch.broken
		sock = *body // closes whatever the RoundTripper connected
	} else if cork != nil {
		broken = &cork.watch.broken
	}
	if cork != nil && resp.TLS == nil {
		// The handshake is done: what follows is frames (over TLS the
		// corkConn is under it and sees records, not frames).
		cork.followFromNow()
		cork.fromStart = *body != nil && (*body).drained(cork)
	}
	return newConn(ws, true, o.ConnOptions, cork, sock, broken, resp.Header, local, remote), nil
}

// redact drops user information from a URL before it goes into an error.
func redact(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	host, path, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(host, "@"); i >= 0 {
		host = "xxxxx@" + host[i+1:]
	}
	if path != "" {
		return scheme + "://" + host + "/" + path
	}
	return scheme + "://" + host
}
