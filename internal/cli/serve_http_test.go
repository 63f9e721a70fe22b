package cli

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/wstest"
	"github.com/wsrpc/wsrpc/rpc"
)

// closeBound is how long a test waits for the server to close a connection.
const closeBound = 5 * time.Second

// dialRaw connects to the host:port of a ws:// URL for speaking HTTP by hand.
func dialRaw(t *testing.T, wsURL string) *wstest.HTTPConn {
	t.Helper()
	u, err := url.Parse(wsURL)
	if err != nil {
		t.Fatal(err)
	}
	return wstest.DialHTTP(t, u.Host, closeBound)
}

// status makes the handshake for host on a new connection, closes the
// connection and returns the answer's status.
func status(t *testing.T, wsURL, host string) int {
	t.Helper()
	rc := dialRaw(t, wsURL)
	defer rc.Conn.Close() // a 101 without a client would hold the drain up
	return rc.RoundTrip(handshakeFor(host)).StatusCode
}

// handshakeFor is a WebSocket opening handshake naming host in its Host
// and Origin headers.
func handshakeFor(host string) string {
	return "GET /rpc HTTP/1.1\r\nHost: " + host + "\r\nOrigin: http://" + host + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

// TestServeClosesIdleConnections: `wsrpc serve` closes a connection after
// refusing a plain GET at the RPC path, and one left idle after a 404 once
// --idle-timeout has passed.
func TestServeClosesIdleConnections(t *testing.T) {
	b, wsURL := startServe(t, "--idle-timeout", "200ms", "--log-level", "error")
	host := strings.TrimPrefix(strings.TrimSuffix(wsURL, "/rpc"), "ws://")

	rc := dialRaw(t, wsURL)
	resp := rc.RoundTrip("GET /rpc HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
	if resp.StatusCode != http.StatusUpgradeRequired || !resp.Close {
		t.Fatalf("plain GET: %d, close %t; want 426 and Connection: close", resp.StatusCode, resp.Close)
	}
	rc.ClosedWithin(closeBound)

	rc = dialRaw(t, wsURL)
	resp = rc.RoundTrip("GET /elsewhere HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
	if resp.StatusCode != http.StatusNotFound || resp.Close {
		t.Fatalf("GET /elsewhere: %d, close %t; want a keep-alive 404", resp.StatusCode, resp.Close)
	}
	rc.ClosedWithin(closeBound)

	b.cancel()
	if code := b.wait(t); code != exitOK {
		t.Errorf("serve: code %d, stderr %q", code, b.stderr.String())
	}
}

// TestServeAllowedHosts: a DNS-rebinding handshake (a foreign name, with a
// matching Origin, on the loopback listener) is refused and logged unless
// --allowed-hosts lists the name.
func TestServeAllowedHosts(t *testing.T) {
	b, wsURL := startServe(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(strings.TrimSuffix(wsURL, "/rpc"), "ws://"))
	rebound := "evil.example:" + port
	if resp := dialRaw(t, wsURL).RoundTrip(handshakeFor(rebound)); resp.StatusCode != http.StatusForbidden || !resp.Close {
		t.Errorf("rebound Host: %d, close %t; want 403 and Connection: close", resp.StatusCode, resp.Close)
	}
	if got := status(t, wsURL, "localhost:"+port); got != http.StatusSwitchingProtocols {
		t.Errorf("Host localhost: %d, want 101", got)
	}
	b.stderr.waitFor(t, regexp.MustCompile(`host not allowed.* host=`+regexp.QuoteMeta(rebound)), b.ended)
	b.cancel()
	b.wait(t)

	b, wsURL = startServe(t, "--allowed-hosts", "app.example, evil.example", "--log-level", "warn")
	_, port, _ = net.SplitHostPort(strings.TrimPrefix(strings.TrimSuffix(wsURL, "/rpc"), "ws://"))
	for _, h := range []string{"evil.example", "app.example", "127.0.0.1"} {
		if got := status(t, wsURL, h+":"+port); got != http.StatusSwitchingProtocols {
			t.Errorf("--allowed-hosts, Host %s: %d, want 101", h, got)
		}
	}
	if got := status(t, wsURL, "other.example:"+port); got != http.StatusForbidden {
		t.Errorf("--allowed-hosts, another Host: %d, want 403", got)
	}
	b.cancel()
	b.wait(t)
}

// TestServeBroadcastOffByDefault: the amplifying broadcast service exists
// only with --demo-broadcast.
func TestServeBroadcastOffByDefault(t *testing.T) {
	b, wsURL := startServe(t, "--log-level", "error")
	r := runCmd(t, "", "call", wsURL, "broadcast", `{"text":"hi"}`)
	if got := oneLine(t, r); r.code != exitMethodNotFound || got != `error -32601: method "broadcast" not found` {
		t.Errorf("broadcast without the flag: code %d, stderr %q; want method not found", r.code, got)
	}
	b.cancel()
	b.wait(t)

	b, wsURL = startServe(t, "--demo-broadcast")
	b.stderr.waitFor(t, regexp.MustCompile(`level=WARN msg="the broadcast service is on`), b.ended)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	notes := make(chan string, 1)
	c, err := dialClient(ctx, wsURL, rpc.WithSubprotocols(rpc.SubprotocolJSON),
		rpc.WithHandler(rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
			select {
			case notes <- req.Method + " " + string(req.Params):
			default:
			}
			return nil, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The server registers a connection just after its handshake: call
	// until the broadcast reaches this connection.
	for n := 0; n == 0; {
		if err := c.Call(ctx, "broadcast", rpc.Raw(`{"text":"hi"}`), &n); err != nil {
			t.Fatalf("broadcast with --demo-broadcast: %v", err)
		}
	}
	select {
	case got := <-notes:
		if got != `broadcast {"text":"hi"}` {
			t.Errorf("the client got %q", got)
		}
	case <-ctx.Done():
		t.Fatal("the client got no broadcast")
	}
	c.Close()
	b.cancel()
	if code := b.wait(t); code != exitOK {
		t.Errorf("serve: code %d, stderr %q", code, b.stderr.String())
	}
}

// TestServeTrustedProxies: whoami reports the forwarded client address only
// when --trusted-proxies lists the proxy (here the loopback peer); a bad
// list is a usage error.
func TestServeTrustedProxies(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in whoami's remote address
	}{
		{"not trusted", nil, "127.0.0.1:"},
		{"trusted", []string{"--trusted-proxies", "10.0.0.0/8, 127.0.0.1"}, "203.0.113.7"},
		{"trusted, Forwarded", []string{"--trusted-proxies", "127.0.0.1", "--forwarded-header", "Forwarded"}, "198.51.100.66"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, wsURL := startServe(t, append(tt.args, "--log-level", "error")...)
			r := runCmd(t, "", "call", "-H", "X-Forwarded-For: 203.0.113.7", "-H", "Forwarded: for=198.51.100.66", wsURL, "whoami")
			if r.code != exitOK || !strings.Contains(r.stdout, `"`+tt.want) {
				t.Errorf("whoami: code %d, %s; want a remote address starting %q", r.code, r.stdout, tt.want)
			}
			b.cancel()
			b.wait(t)
		})
	}
	for _, args := range [][]string{
		{"--trusted-proxies", "10.0.0.0/33"},
		{"--trusted-proxies", "127.0.0.1", "--forwarded-header", "X-Real-IP"},
		{"--forwarded-header", "Forwarded"},
	} {
		r := runCmd(t, "", append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, args[len(args)-1]) && !strings.Contains(r.stderr, "needs --trusted-proxies") {
			t.Errorf("serve %v: code %d, stderr %q; want a usage error", args, r.code, r.stderr)
		}
	}
}
