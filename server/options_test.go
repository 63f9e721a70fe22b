package server_test

import (
	"context"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// TestNewRefusesOptions: every option New does not take, and every invalid
// value or combination, is an error from New, naming the option.
func TestNewRefusesOptions(t *testing.T) {
	tests := []struct {
		name string
		give []server.Option
		want string // substring of the error
	}{
		{"rpc.WithHandler", []server.Option{rpc.WithHandler(services(t))}, "server.New takes the handler as its argument"},
		{"rpc.WithBaseContext", []server.Option{rpc.WithBaseContext(context.Background())}, "rpc.WithBaseContext does not apply"},
		{"rpc.WithOnClose", []server.Option{rpc.WithOnClose(func(error) {})}, "rpc.WithOnClose does not apply"},
		{"rpc.WithRemoteAddr", []server.Option{rpc.WithRemoteAddr(&net.TCPAddr{})}, "rpc.WithRemoteAddr does not apply"},
		{"rpc.WithPrincipal", []server.Option{rpc.WithPrincipal("alice")}, "rpc.WithPrincipal does not apply"},
		{"zero heartbeat interval", []server.Option{rpc.WithHeartbeat(0, time.Second)}, "rpc.WithHeartbeat"},
		{"zero pong timeout", []server.Option{rpc.WithHeartbeat(time.Second, 0)}, "rpc.WithHeartbeat"},
		{"unknown subprotocol", []server.Option{rpc.WithSubprotocols("mqtt")}, `unknown subprotocol "mqtt"`},
		{"negative in-flight limit", []server.Option{rpc.WithMaxInFlight(-1)}, "rpc.WithMaxInFlight"},
		{"bad trusted proxy", []server.Option{server.WithTrustedProxies("10.0.0.0/8", "10.0.0/8")}, `trusted proxy "10.0.0/8"`},
		{"empty trusted proxy", []server.Option{server.WithTrustedProxies("")}, `trusted proxy ""`},
		{"unknown forwarded header", []server.Option{server.WithTrustedProxies("127.0.0.1"), server.WithForwardedHeader("X-Real-IP")}, `WithForwardedHeader("X-Real-IP")`},
		{"forwarded header without trusted proxies", []server.Option{server.WithForwardedHeader("Forwarded")}, "needs WithTrustedProxies"},
		{"negative idle timeout", []server.Option{server.WithIdleTimeout(-time.Second)}, "WithIdleTimeout"},
		{"in-band auth without a method", []server.Option{server.WithInBandAuth("", 0, func(context.Context, []byte) (any, error) { return nil, nil })}, "WithInBandAuth"},
		{"bad allowed host", []server.Option{server.WithAllowedHosts("example.com:80")}, "has a port"},
		{"origin check off, and patterns", []server.Option{server.WithInsecureSkipOriginCheck(), server.WithOriginPatterns("app.example")}, "exclude each other"},
		{"patterns, and origin check off", []server.Option{server.WithOriginPatterns("app.example"), server.WithInsecureSkipOriginCheck()}, "exclude each other"},
		{"negative ready delay", []server.Option{server.WithReadyDelay(-time.Second)}, "WithReadyDelay"},
		{"negative goodbye window", []server.Option{server.WithGoodbyeWindow(-time.Second)}, "WithGoodbyeWindow"},
		{"negative handshake rate", []server.Option{server.WithHandshakeRate(-1, 1)}, "WithHandshakeRate"},
		{"NaN handshake rate", []server.Option{server.WithHandshakeRate(math.NaN(), 1)}, "WithHandshakeRate"},
		{"infinite handshake rate", []server.Option{server.WithHandshakeRate(math.Inf(1), 1)}, "WithHandshakeRate"},
		{"negative handshake burst", []server.Option{server.WithHandshakeRate(10, -1)}, "the burst must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := server.New(services(t), tt.give...)
			if err == nil {
				s.Close()
				t.Fatalf("New accepted %s", tt.name)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestNewBadTrustedProxyOneError: a refused WithTrustedProxies value is
// the one error, not also "WithForwardedHeader needs WithTrustedProxies"
// (wsrpc serve --trusted-proxies 10.0.0.0/33 printed both).
func TestNewBadTrustedProxyOneError(t *testing.T) {
	_, err := server.New(services(t), server.WithTrustedProxies("10.0.0.0/33"), server.WithForwardedHeader("X-Forwarded-For"))
	if err == nil {
		t.Fatal("New accepted a /33 prefix")
	}
	if !strings.Contains(err.Error(), `trusted proxy "10.0.0.0/33"`) || strings.Contains(err.Error(), "needs WithTrustedProxies") {
		t.Fatalf("error %q, want the bad prefix alone", err)
	}
}

// TestNewJoinsErrors: New reports every problem at once, whatever the order
// of the options, and a nil handler is one of them.
func TestNewJoinsErrors(t *testing.T) {
	opts := []server.Option{
		rpc.WithHandler(services(t)),
		server.WithTrustedProxies("not-an-ip"),
		rpc.WithHeartbeat(0, 0),
		server.WithIdleTimeout(-1),
		rpc.WithBaseContext(context.Background()),
	}
	want := []string{
		"server.New needs a handler",
		"server.New takes the handler as its argument",
		`trusted proxy "not-an-ip"`,
		"rpc.WithHeartbeat",
		"WithIdleTimeout",
		"rpc.WithBaseContext does not apply",
	}
	reversed := make([]server.Option, len(opts))
	for i, o := range opts {
		reversed[len(opts)-1-i] = o
	}
	for name, order := range map[string][]server.Option{"given order": opts, "reversed": reversed} {
		t.Run(name, func(t *testing.T) {
			_, err := server.New(nil, order...)
			if err == nil {
				t.Fatal("New accepted them")
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not report %q", err, w)
				}
			}
		})
	}
}

// TestNewTakesValidOptions: the shared options and the server's own are
// accepted together; a nil Option is ignored.
func TestNewTakesValidOptions(t *testing.T) {
	s, err := server.New(services(t),
		rpc.WithHeartbeat(-1, 0), // off
		rpc.WithTransport(transport.ConnOptions{ReadLimit: 1 << 16}),
		rpc.WithSubprotocols(rpc.SubprotocolJSON),
		rpc.WithMaxInFlight(4), rpc.WithBacklog(8, 1<<10), rpc.WithMaxBatch(10),
		rpc.WithMaxMetadata(4, 256), rpc.WithValueCodec(rpc.JSON), rpc.WithOwnedParams(),
		rpc.WithLogger(nil), rpc.WithOutgoingMiddleware(),
		server.WithTrustedProxies("127.0.0.1", "10.0.0.0/8", "::1"),
		server.WithMaxConns(3), server.WithReadHeaderTimeout(time.Second), server.WithIdleTimeout(time.Minute),
		server.WithOriginPatterns("app.example"), server.WithAllowedHosts("app.example"),
		server.WithRetryAfter(time.Second),
		nil,
	)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}
