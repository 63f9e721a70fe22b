package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/wstest"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// closeBound is how long a test waits for the server to close a connection
// it should close at once.
const closeBound = 5 * time.Second

// serveLoopback runs s.Serve on a loopback port and returns the address; the
// server is closed at cleanup and Serve waited for.
func serveLoopback(t *testing.T, s *server.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve = %v", err)
		}
	})
	return ln.Addr().String()
}

// startHTTP runs s behind an httptest server (an http.Server without any
// timeout) and returns its address.
func startHTTP(t *testing.T, s *server.Server) string {
	t.Helper()
	return strings.TrimPrefix(strings.TrimPrefix(start(t, s), "ws://"), "http://")
}

// dialRaw connects to addr for speaking HTTP by hand.
func dialRaw(t *testing.T, addr string) *wstest.HTTPConn { return wstest.DialHTTP(t, addr, closeBound) }

// handshake is a valid WebSocket opening handshake for host, with extra
// header lines ("Name: value\r\n").
func handshake(host, extra string) string {
	return "GET /rpc HTTP/1.1\r\nHost: " + host + "\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Protocol: " + rpc.SubprotocolJSON + "\r\n" + extra + "\r\n"
}

func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// TestRefusalsCloseTheConnection: every answer that does not upgrade says
// "Connection: close" and the server closes the TCP connection after it,
// even on an http.Server without any timeout (httptest's); each refusal is
// counted in Stats under its reason, and only there.
func TestRefusalsCloseTheConnection(t *testing.T) {
	auth := server.WithAuth(func(r *http.Request) (any, error) {
		if r.Header.Get("Authorization") == "" {
			return nil, server.ErrUnauthorized
		}
		return "alice", nil
	})
	tests := []struct {
		name   string
		opts   []server.Option
		give   func(addr string) string
		want   int
		reason server.Refusal
		setup  func(t *testing.T, s *server.Server, addr string)
	}{
		{name: "plain GET", want: http.StatusUpgradeRequired, reason: server.RefusedUpgrade,
			give: func(addr string) string { return "GET /rpc HTTP/1.1\r\nHost: " + addr + "\r\n\r\n" }},
		{name: "POST", want: http.StatusMethodNotAllowed, reason: server.RefusedBadRequest,
			give: func(addr string) string {
				return strings.Replace(handshake(addr, ""), "GET", "POST", 1)
			}},
		{name: "bad version", want: http.StatusBadRequest, reason: server.RefusedBadRequest,
			give: func(addr string) string {
				return strings.Replace(handshake(addr, ""), "Version: 13", "Version: 8", 1)
			}},
		{name: "cross origin", want: http.StatusForbidden, reason: server.RefusedOrigin,
			give: func(addr string) string { return handshake(addr, "Origin: https://evil.example\r\n") }},
		{name: "host not allowed", want: http.StatusForbidden, reason: server.RefusedHost,
			give: func(addr string) string { return handshake("evil.example", "") }},
		{name: "unauthorized", opts: []server.Option{auth}, want: http.StatusUnauthorized, reason: server.RefusedAuth,
			give: func(addr string) string { return handshake(addr, "") }},
		{name: "too many connections", opts: []server.Option{server.WithMaxConns(1)}, want: http.StatusServiceUnavailable, reason: server.RefusedMaxConns,
			give:  func(addr string) string { return handshake(addr, "") },
			setup: func(t *testing.T, s *server.Server, addr string) { dial(t, "ws://"+addr, nil) }},
		{name: "shutting down", want: http.StatusServiceUnavailable, reason: server.RefusedDraining,
			give:  func(addr string) string { return handshake(addr, "") },
			setup: func(t *testing.T, s *server.Server, addr string) { s.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, tt.opts...)
			addr := startHTTP(t, s)
			if tt.setup != nil {
				tt.setup(t, s, addr)
			}
			rc := dialRaw(t, addr)
			resp := rc.RoundTrip(tt.give(addr))
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if !resp.Close { // ReadResponse removes the header it stands for
				t.Errorf("Connection: %q, want close", resp.Header.Values("Connection"))
			}
			rc.ClosedWithin(closeBound)
			wantRefused(t, s, tt.reason)
		})
	}
}

// TestUpgradeRequiredNamesWebSocket: the 426 still says what to upgrade to,
// as RFC 9110 requires, with "upgrade" among the Connection options, and
// "close" first, which is the value net/http looks at.
func TestUpgradeRequiredNamesWebSocket(t *testing.T) {
	addr := startHTTP(t, newServer(t))
	rc := dialRaw(t, addr)
	rc.Conn.SetDeadline(time.Now().Add(closeBound))
	if _, err := io.WriteString(rc.Conn, "GET /rpc HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(rc.Reader) // to EOF: the server closes the connection
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(string(raw), "\r\n\r\n")
	want := []string{"HTTP/1.1 426 Upgrade Required", "Connection: close", "Connection: Upgrade", "Upgrade: websocket"}
	lines := strings.Split(head, "\r\n")
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("the answer lacks %q:\n%s", w, head)
		}
	}
	if slices.Index(lines, "Connection: close") > slices.Index(lines, "Connection: Upgrade") {
		t.Errorf("Connection: Upgrade comes first:\n%s", head)
	}
}

// TestUpgradeDoesNotClose: the "Connection: close" set before Accept does
// not reach a 101, and the connection works.
func TestUpgradeDoesNotClose(t *testing.T) {
	addr := startHTTP(t, newServer(t))
	rc := dialRaw(t, addr)
	resp := rc.RoundTrip(handshake(addr, ""))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Close ||
		!hasToken(resp.Header, "Connection", "upgrade") {
		t.Fatalf("101 answer: %d, Connection %q", resp.StatusCode, resp.Header.Values("Connection"))
	}
	// A JSON-RPC call in a masked text frame, by hand.
	payload := []byte(`{"jsonrpc":"2.0","id":1,"method":"echo","params":[7]}`)
	frame := append([]byte{0x81, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...) // zero mask key
	rc.Conn.SetDeadline(time.Now().Add(closeBound))
	if _, err := rc.Conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(rc.Reader, hdr); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, hdr[1]&0x7f) // short and unmasked
	if _, err := io.ReadFull(rc.Reader, reply); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 0x81 || !strings.Contains(string(reply), `"result":[7]`) {
		t.Fatalf("reply frame %x %s, want a text frame with the result", hdr, reply)
	}
}

// TestServeReapsIdleConnections: the http.Server of Serve closes a
// connection that sends nothing (handshake timeout), one left idle after a
// request net/http answers itself with keep-alive (idle timeout), and
// refuses oversized headers.
func TestServeReapsIdleConnections(t *testing.T) {
	s := newServer(t, server.WithIdleTimeout(100*time.Millisecond), server.WithReadHeaderTimeout(100*time.Millisecond))
	addr := serveLoopback(t, s)

	t.Run("silent", func(t *testing.T) {
		dialRaw(t, addr).ClosedWithin(closeBound)
	})
	t.Run("idle after OPTIONS *", func(t *testing.T) {
		rc := dialRaw(t, addr)
		resp := rc.RoundTrip("OPTIONS * HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("OPTIONS *: %d, Connection %q; want a keep-alive 200", resp.StatusCode, resp.Header.Values("Connection"))
		}
		rc.ClosedWithin(closeBound)
	})
	t.Run("plain GET", func(t *testing.T) {
		rc := dialRaw(t, addr)
		if resp := rc.RoundTrip("GET /rpc HTTP/1.1\r\nHost: " + addr + "\r\n\r\n"); resp.StatusCode != http.StatusUpgradeRequired {
			t.Fatalf("status %d", resp.StatusCode)
		}
		rc.ClosedWithin(closeBound)
	})
	t.Run("large header", func(t *testing.T) {
		big := "X-Big: " + strings.Repeat("a", server.DefaultMaxHeaderBytes+8<<10) + "\r\n"
		resp := dialRaw(t, addr).RoundTrip(handshake(addr, big))
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", resp.StatusCode)
		}
	})
}

func TestHTTPServerSettings(t *testing.T) {
	s := newServer(t)
	hs := s.HTTPServer(http.NotFoundHandler())
	if hs.ReadHeaderTimeout != server.DefaultReadHeaderTimeout || hs.IdleTimeout != server.DefaultIdleTimeout ||
		hs.MaxHeaderBytes != server.DefaultMaxHeaderBytes || hs.ReadTimeout != 0 || hs.WriteTimeout != 0 {
		t.Errorf("defaults: %+v", hs)
	}
	s2 := newServer(t, server.WithIdleTimeout(time.Minute), server.WithReadHeaderTimeout(time.Second))
	if hs := s2.HTTPServer(nil); hs.IdleTimeout != time.Minute || hs.ReadHeaderTimeout != time.Second {
		t.Errorf("with options: idle %s, header %s", hs.IdleTimeout, hs.ReadHeaderTimeout)
	}
	if _, err := server.New(services(t), server.WithIdleTimeout(-time.Second)); err == nil {
		t.Error("a negative idle timeout was accepted")
	}

	// Shutdown stops it; one made afterwards is closed already.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	if err := s.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.HTTPServer(s).Serve(ln2); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v", err)
	}
	if _, err := net.Dial("tcp", ln2.Addr().String()); err == nil {
		t.Error("the listener given to a closed server is still open")
	}
}

// TestOwnHTTPServerTimeouts: an http.Server of one's own with ReadTimeout
// and WriteTimeout far below a connection's life does not cut it short.
func TestOwnHTTPServerTimeouts(t *testing.T) {
	s := newServer(t)
	hs := httptest.NewUnstartedServer(s)
	hs.Config.ReadTimeout = 200 * time.Millisecond
	hs.Config.WriteTimeout = 200 * time.Millisecond
	hs.Start()
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	p := dial(t, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	var ms int
	if err := p.Call(ctxT(t), "sleep", 500, &ms); err != nil || ms != 500 { // the reply is written after both deadlines
		t.Fatalf("sleep = %d, %v", ms, err)
	}
	if err := p.Call(ctxT(t), "echo", []int{1}, nil); err != nil {
		t.Fatalf("echo after the deadlines: %v", err)
	}
}

func TestMaxConnsRetryAfterByDefault(t *testing.T) {
	url := start(t, newServer(t, server.WithMaxConns(1)))
	dial(t, url, nil)
	_, err := tryDial(t, url, nil)
	var he *transport.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable || he.Header.Get("Retry-After") != "1" {
		t.Fatalf("second handshake = %v, want 503 with Retry-After 1", err)
	}
}

// syncBuffer is a log destination safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestDNSRebinding: on a loopback listener, a handshake whose Origin and
// Host agree on a foreign name (a rebound DNS name) is refused unless the
// name is allowed; loopback names pass.
func TestDNSRebinding(t *testing.T) {
	tests := []struct {
		name string
		opts []server.Option
		give string // host, without the port
		want int
	}{
		{"rebound name", nil, "evil.example", http.StatusForbidden},
		{"localhost", nil, "localhost", http.StatusSwitchingProtocols},
		{"LocalHost.", nil, "LocalHost.", http.StatusSwitchingProtocols},
		{"a .localhost name", nil, "app.localhost", http.StatusSwitchingProtocols},
		{"127.0.0.1", nil, "127.0.0.1", http.StatusSwitchingProtocols},
		{"other 127/8", nil, "127.1.2.3", http.StatusSwitchingProtocols},
		{"[::1]", nil, "[::1]", http.StatusSwitchingProtocols},
		{"a LAN address", nil, "192.168.1.10", http.StatusForbidden},
		{"localhost.evil.example", nil, "localhost.evil.example", http.StatusForbidden},
		{"allowed", []server.Option{server.WithAllowedHosts("evil.example")}, "evil.example", http.StatusSwitchingProtocols},
		{"allowed, any case", []server.Option{server.WithAllowedHosts("Evil.Example")}, "EVIL.example", http.StatusSwitchingProtocols},
		{"not in the list", []server.Option{server.WithAllowedHosts("app.example")}, "evil.example", http.StatusForbidden},
		{"loopback besides the list", []server.Option{server.WithAllowedHosts("app.example")}, "localhost", http.StatusSwitchingProtocols},
		{"pattern", []server.Option{server.WithAllowedHosts("*.example.com")}, "a.b.example.com", http.StatusSwitchingProtocols},
		{"pattern, apex", []server.Option{server.WithAllowedHosts("*.example.com")}, "example.com", http.StatusForbidden},
		{"every host", []server.Option{server.WithAllowedHosts("*")}, "evil.example", http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startHTTP(t, newServer(t, tt.opts...))
			_, port, _ := net.SplitHostPort(addr)
			host := tt.give + ":" + port
			resp := dialRaw(t, addr).RoundTrip(handshake(host, "Origin: http://"+host+"\r\n"))
			if resp.StatusCode != tt.want {
				t.Fatalf("Host %s: status %d, want %d", host, resp.StatusCode, tt.want)
			}
		})
	}
}

// TestHostRefusalLogged: a refused Host is logged, cut to a bounded length.
func TestHostRefusalLogged(t *testing.T) {
	var logs syncBuffer
	s := newServer(t, rpc.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	addr := startHTTP(t, s)
	host := strings.Repeat("a", 4000) + ".example"
	if resp := dialRaw(t, addr).RoundTrip(handshake(host, "")); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d", resp.StatusCode)
	}
	line := regexp.MustCompile(`(?m)^.*host not allowed.*$`).FindString(logs.String())
	if !strings.Contains(line, ` host="`+strings.Repeat("a", 64)+`…(4008 bytes)" `) {
		t.Fatalf("log: %q", logs.String())
	}
	if len(line) > 400 {
		t.Fatalf("log line of %d bytes: %q", len(line), line)
	}
}

// TestHostCheckOffLoopback: away from loopback, every Host passes unless
// WithAllowedHosts is set. (Called without a network: the request carries
// the local address net/http would give it.)
func TestHostCheckOffLoopback(t *testing.T) {
	tests := []struct {
		opts []server.Option
		give string
		want bool // refused with 403; otherwise the handshake goes on (and fails: a recorder cannot be hijacked)
	}{
		{nil, "evil.example", false},
		{[]server.Option{server.WithAllowedHosts("app.example")}, "app.example:443", false},
		{[]server.Option{server.WithAllowedHosts("app.example")}, "evil.example", true},
		{[]server.Option{server.WithAllowedHosts("app.example")}, "localhost", true},
	}
	for _, tt := range tests {
		s := newServer(t, tt.opts...)
		req := httptest.NewRequest(http.MethodGet, "http://"+tt.give+"/rpc", nil)
		for _, h := range [][2]string{{"Upgrade", "websocket"}, {"Connection", "Upgrade"},
			{"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}, {"Sec-WebSocket-Version", "13"}} {
			req.Header.Set(h[0], h[1])
		}
		local := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 443}
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, local))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if refused := w.Code == http.StatusForbidden; refused != tt.want {
			t.Errorf("%d options, Host %s: status %d, refused %t, want %t", len(tt.opts), tt.give, w.Code, refused, tt.want)
		}
		s.Close()
	}
}

func TestAllowedHostsPatterns(t *testing.T) {
	for _, give := range []string{"", "example.com:8080", "[::1]:80", "a/b", "[a-"} {
		if _, err := server.New(services(t), server.WithAllowedHosts(give)); err == nil {
			t.Errorf("WithAllowedHosts(%q) accepted", give)
		}
	}
	for _, give := range []string{"example.com", "*.example.com", "::1", "[::1]", "192.0.2.1", "example.com."} {
		if _, err := server.New(services(t), server.WithAllowedHosts(give)); err != nil {
			t.Errorf("WithAllowedHosts(%q): %v", give, err)
		}
	}
}

// TestShutdownClosesTheListener: with Serve, a drain refuses new TCP
// connections at once, which frees the port for a successor, while the
// connections already open finish their calls.
func TestShutdownClosesTheListener(t *testing.T) {
	s := newServer(t)
	addr := serveLoopback(t, s)
	p := dial(t, "ws://"+addr+"/rpc", nil)
	reply := make(chan *rpc.Response, 1)
	if err := p.Send(ctxT(t), &rpc.Request{Method: "sleep", Params: []byte("60000"), Reply: reply}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(s.Conns()) > 0 && s.Conns()[0].Stats().InFlight > 0 }, "call never started")
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	<-p.GoingAway()
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, "the listener still accepts connections during the drain")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("a successor cannot listen on %s during the drain: %v", addr, err)
	}
	ln.Close()
	select {
	case <-p.Done():
		t.Fatal("the draining connection was closed")
	default:
	}
	cancel() // cut the sleep short
	var se *server.ShutdownError
	if err := <-done; !errors.As(err, &se) {
		t.Fatalf("Shutdown = %v", err)
	}
	<-reply
}

// TestListenAndServeTLSBadCertFreesPort: a certificate that does not load
// leaves the port free.
func TestListenAndServeTLSBadCertFreesPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := newServer(t)
	defer s.Close()
	missing := t.TempDir() + "/missing.pem"
	if err := s.ListenAndServeTLS(addr, missing, missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ListenAndServeTLS = %v", err)
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the port stayed taken: %v", err)
	}
	ln.Close()
}

// TestProtocolDocServerLimits checks the server rows of the limits table
// of docs/PROTOCOL.md against the constants.
func TestProtocolDocServerLimits(t *testing.T) {
	doc, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{
		"server.DefaultMaxConns":          server.DefaultMaxConns,
		"server.DefaultReadHeaderTimeout": int64(server.DefaultReadHeaderTimeout),
		"server.DefaultIdleTimeout":       int64(server.DefaultIdleTimeout),
		"server.DefaultMaxHeaderBytes":    server.DefaultMaxHeaderBytes,
	}
	row := regexp.MustCompile("(?m)^\\|[^|\\n]*\\| (\\d+)(?: (s|bytes))?\\b[^|\\n]*\\| `(server\\.Default[A-Za-z]+)` \\|")
	seen := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		name := m[3]
		w, ok := want[name]
		if !ok {
			t.Errorf("limits table: unknown constant %s", name)
			continue
		}
		got, _ := strconv.ParseInt(m[1], 10, 64)
		if m[2] == "s" {
			got *= int64(time.Second)
		}
		if got != w {
			t.Errorf("limits table: %s is %s %s in the document, %d in the code", name, m[1], m[2], w)
		}
		seen[name] = true
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("the limits table has no row for %s", name)
		}
	}
}
