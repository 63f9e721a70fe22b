package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/wsrpc/wsrpc/rpc"
)

// FuzzOriginCheck: the server's own Origin check decides as
// coder/websocket's Accept does (which runs after it, and must never be
// the one to refuse), for any Origin and Host, with and without patterns,
// and its refusal's explanation never panics.
func FuzzOriginCheck(f *testing.F) {
	seeds := []struct{ origin, host string }{
		{"http://127.0.0.1:8080", "127.0.0.1:8080"},
		{"http://127.0.0.1:8080", "127.0.0.1"},
		{"https://rpc.example.com", "rpc.example.com"},
		{"https://rpc.example.com", "rpc.example.com:443"},
		{"HTTPS://RPC.Example.com:8443", "rpc.example.COM:8443"},
		{"http://[::1]:80", "[::1]:80"},
		{"http://a.example:8443", "b.example"},
		{"null", "localhost"},
		{"%zz", "localhost"},
		{"file://", ""},
		{"http://app.example", "evil.example"},
		{"ws://x@y:1/p?q#f", "y:1"},
	}
	for _, s := range seeds {
		f.Add(s.origin, s.host, false)
		f.Add(s.origin, s.host, true)
	}
	f.Fuzz(func(t *testing.T, origin, host string, withPatterns bool) {
		if strings.ContainsAny(origin+host, "\r\n\x00") {
			return // not a header net/http would deliver
		}
		var patterns []string
		if withPatterns {
			patterns = []string{"app.example", "*.example:*", "https://secure.example"}
		}
		s := &Server{opts: options{originPatterns: patterns}, cfg: mustConfig(t)}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = host
		r.Header.Set("Origin", origin)
		r.Header.Set("Connection", "Upgrade")
		r.Header.Set("Upgrade", "websocket")
		r.Header.Set("Sec-WebSocket-Version", "13")
		r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")

		ours := httptest.NewRecorder()
		allowed := s.originAllowed(ours, r, "test")
		theirs := httptest.NewRecorder()
		websocket.Accept(theirs, r, &websocket.AcceptOptions{OriginPatterns: patterns}) // no Hijacker: 501 once past the Origin check
		libAllowed := theirs.Code != http.StatusForbidden
		if allowed != libAllowed {
			t.Fatalf("Origin %q, Host %q, patterns %v: ours allows %t, coder/websocket %t (%d %q)",
				origin, host, patterns, allowed, libAllowed, theirs.Code, theirs.Body.String())
		}
		if !allowed && ours.Code != http.StatusForbidden {
			t.Fatalf("refused with %d, want 403", ours.Code)
		}
	})
}

func mustConfig(t testing.TB) *rpc.Config {
	cfg, err := rpc.NewConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
