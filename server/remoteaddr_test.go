package server_test

import (
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// TestTrustedProxies: over real HTTP on 127.0.0.1, a handler sees the
// forwarded client address in req.Peer().RemoteAddr() only when the socket
// peer (127.0.0.1) is a trusted proxy; otherwise it sees the socket's
// address, whatever the headers say. The registry and the connect hook see
// the same address as the handler.
func TestTrustedProxies(t *testing.T) {
	const socket = "" // want the socket's address
	tests := []struct {
		name      string
		trust     []string // nil: no WithTrustedProxies
		forwarded bool     // WithForwardedHeader("Forwarded")
		header    http.Header
		want      string
	}{
		{name: "no option, X-Forwarded-For", header: http.Header{"X-Forwarded-For": {"203.0.113.7"}}, want: socket},
		{name: "no option, Forwarded", header: http.Header{"Forwarded": {"for=203.0.113.7"}}, want: socket},
		{name: "untrusted socket, X-Forwarded-For", trust: []string{"10.0.0.0/8", "::1"},
			header: http.Header{"X-Forwarded-For": {"203.0.113.7"}}, want: socket},
		{name: "untrusted socket, Forwarded", trust: []string{"192.0.2.1"},
			header: http.Header{"Forwarded": {`for="[2001:db8::7]:4711"`}}, want: socket},
		{name: "trusted, no header", trust: []string{"127.0.0.1"}, want: socket},
		{name: "trusted, X-Forwarded-For", trust: []string{"127.0.0.1"},
			header: http.Header{"X-Forwarded-For": {"198.51.100.1, 203.0.113.7"}}, want: "203.0.113.7:0"},
		{name: "trusted chain, X-Forwarded-For", trust: []string{"127.0.0.0/8", "10.0.0.0/8"},
			header: http.Header{"X-Forwarded-For": {"203.0.113.7, 10.1.2.3"}}, want: "203.0.113.7:0"},
		{name: "trusted, Forwarded", trust: []string{"127.0.0.1"}, forwarded: true,
			header: http.Header{"Forwarded": {`for="[2001:db8::7]:4711";proto=https`}}, want: "[2001:db8::7]:4711"},
		{name: "Forwarded proxy, forged X-Forwarded-For ignored", trust: []string{"127.0.0.1"}, forwarded: true,
			header: http.Header{"Forwarded": {"for=203.0.113.8:80"}, "X-Forwarded-For": {"203.0.113.7"}}, want: "203.0.113.8:80"},
		{name: "X-Forwarded-For proxy, forged Forwarded ignored", trust: []string{"127.0.0.1"},
			header: http.Header{"Forwarded": {"for=198.51.100.66"}, "X-Forwarded-For": {"203.0.113.7"}}, want: "203.0.113.7:0"},
		{name: "X-Forwarded-For proxy, only a forged Forwarded", trust: []string{"127.0.0.1"},
			header: http.Header{"Forwarded": {"for=198.51.100.66"}}, want: socket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			connected := make(chan *rpc.Peer, 1)
			opts := []server.Option{server.WithOnConnect(func(p *rpc.Peer) { connected <- p })}
			if tt.trust != nil {
				opts = append(opts, server.WithTrustedProxies(tt.trust...))
			}
			if tt.forwarded {
				opts = append(opts, server.WithForwardedHeader("Forwarded"))
			}
			s := newServer(t, opts...)
			url := start(t, s)
			if !strings.HasPrefix(url, "ws://127.0.0.1:") {
				t.Fatalf("the test server is not on 127.0.0.1: %s", url)
			}
			p := dial(t, url, &transport.DialOptions{Subprotocols: rpc.Subprotocols(), Header: tt.header})
			want := tt.want
			if want == socket {
				want = p.Conn().LocalAddr().String()
				if !strings.HasPrefix(want, "127.0.0.1:") {
					t.Fatalf("the client's socket is %s, not on 127.0.0.1", want)
				}
			}
			var got string
			if err := p.Call(ctxT(t), "remote", nil, &got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("the handler sees %s, want %s", got, want)
			}
			peer := <-connected
			if a := peer.RemoteAddr().String(); a != want {
				t.Errorf("the connect hook sees %s, want %s", a, want)
			}
			if c := s.Conn(peer.ID()); c != peer {
				t.Errorf("Conn(%q) = %v, want the connected peer", peer.ID(), c)
			}
		})
	}
}

// TestTrustedProxiesLogged: the server's log lines name the forwarded client,
// for a connection (connected, disconnected) and for a refused handshake.
func TestTrustedProxiesLogged(t *testing.T) {
	var logs syncBuffer
	disconnected := make(chan struct{}, 1)
	s := newServer(t,
		rpc.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
		server.WithTrustedProxies("127.0.0.1"),
		server.WithAuth(func(r *http.Request) (any, error) {
			if r.Header.Get("Authorization") == "" {
				return nil, server.ErrUnauthorized
			}
			return "alice", nil
		}),
		server.WithOnDisconnect(func(*rpc.Peer, error) { disconnected <- struct{}{} }))
	url := start(t, s)
	p := dial(t, url, &transport.DialOptions{Subprotocols: rpc.Subprotocols(),
		Header: http.Header{"Authorization": {"Bearer alice"}, "X-Forwarded-For": {"203.0.113.7"}}})
	p.Close()
	<-disconnected
	_, err := tryDial(t, url, &transport.DialOptions{Header: http.Header{"X-Forwarded-For": {"203.0.113.9"}}})
	if handshakeStatus(err) != http.StatusUnauthorized {
		t.Fatalf("handshake without credentials = %v, want 401", err)
	}
	for _, re := range []string{
		`msg="wsrpc: connected" conn=[0-9a-f]{16} remote=203\.0\.113\.7:0 `,
		`msg="wsrpc: disconnected" conn=[0-9a-f]{16} remote=203\.0\.113\.7:0 `,
		`msg="wsrpc: handshake refused" remote=203\.0\.113\.9:0 status=401`,
	} {
		if !regexp.MustCompile(re).MatchString(logs.String()) {
			t.Errorf("no log line matches %s in:\n%s", re, logs.String())
		}
	}
}
