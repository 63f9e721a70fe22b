package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// tokens is a credentials callback giving token-1, token-2... as both the
// handshake's Authorization header and the refresh's params.
type tokens struct {
	n    atomic.Int32
	fail atomic.Int32 // the next calls that fail
}

func (tk *tokens) credential(context.Context) (client.Credential, error) {
	if tk.fail.Add(-1) >= 0 {
		return client.Credential{}, errors.New("identity provider unavailable")
	}
	tk.fail.Store(0)
	tok := fmt.Sprintf("token-%d", tk.n.Add(1))
	return client.Credential{
		Header: http.Header{"Authorization": {"Bearer " + tok}},
		Params: map[string]string{"token": tok},
	}, nil
}

// authErrors records the errors given to the auth error hook.
func authErrors() (client.Option, chan *client.AuthError) {
	ch := make(chan *client.AuthError, 256)
	return client.WithAuthErrorHook(func(err error) {
		var ae *client.AuthError
		if !errors.As(err, &ae) {
			panic(fmt.Sprintf("the hook got %T %v, want an *AuthError", err, err))
		}
		select {
		case ch <- ae:
		default:
		}
	}), ch
}

// refreshes records the $/auth.refresh calls a test server gets and
// answers them with answer.
type refreshes struct {
	mu     sync.Mutex
	tokens []string
	calls  chan string
	answer func(token string) ([]byte, error)
}

func newRefreshes(answer func(string) ([]byte, error)) *refreshes {
	return &refreshes{calls: make(chan string, 256), answer: answer}
}

func (r *refreshes) serve(_ context.Context, req *rpc.Request) ([]byte, error) {
	var p struct{ Token string }
	if err := json.Unmarshal(req.Params, &p); err != nil {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "bad params %s", req.Params)
	}
	r.mu.Lock()
	r.tokens = append(r.tokens, p.Token)
	r.mu.Unlock()
	r.calls <- p.Token
	return r.answer(p.Token)
}

func (r *refreshes) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.tokens)
}

// announce tells the client on p that its authentication ends in ms.
func announce(t *testing.T, p *rpc.Peer, ms int) {
	t.Helper()
	if err := p.Notify(testContext(t), rpc.MethodAuthExpiry, rpc.Raw(fmt.Sprintf(`{"expiresIn":%d}`, ms))); err != nil {
		t.Fatal(err)
	}
}

// headers records the Authorization header of every handshake.
func headers() (func(http.ResponseWriter, *http.Request) bool, chan string) {
	ch := make(chan string, 64)
	return func(_ http.ResponseWriter, r *http.Request) bool {
		ch <- r.Header.Get("Authorization")
		return true
	}, ch
}

func TestAuthRefreshAheadOfExpiry(t *testing.T) {
	t.Parallel()
	ref := newRefreshes(func(string) ([]byte, error) { return []byte(`{"expiresIn":300}`), nil })
	gate, hdrs := headers()
	srv := newGatedTestServer(t, methods{rpc.MethodAuthRefresh: ref.serve, "echo": echo}, gate)
	var tk tokens
	c := dial(t, srv.url(), fastBackoff, client.WithCredentials(tk.credential))
	if got := recv(t, hdrs, "a handshake"); got != "Bearer token-1" {
		t.Fatalf("the handshake carried %q, want the callback's token-1", got)
	}
	p := srv.nextConn(t)
	announce(t, p, 300)
	for i := 2; i <= 4; i++ {
		if got := recv(t, ref.calls, "a refresh"); got != fmt.Sprintf("token-%d", i) {
			t.Fatalf("refresh %d carried %q, want token-%d", i-1, got, i)
		}
	}
	if exp := c.AuthExpiry(); !exp.After(time.Now().Add(-time.Second)) {
		t.Errorf("AuthExpiry() = %v, want about now + 300ms", exp)
	}
	var out string
	if err := c.Call(testContext(t), "echo", "still here", &out); err != nil || out != "still here" {
		t.Fatalf("call after the refreshes: %q, %v", out, err)
	}
	if len(hdrs) != 0 {
		t.Fatalf("the client reconnected (%d more handshakes)", len(hdrs))
	}
}

// TestAuthRefreshPastExpiryBacksOff: a server that answers a refresh with
// an expiry in the past (a bug of its hook) gets an error back and retries
// that wait for a backoff, never a loop.
func TestAuthRefreshPastExpiryBacksOff(t *testing.T) {
	t.Parallel()
	ref := newRefreshes(func(string) ([]byte, error) { return []byte(`{"expiresIn":0}`), nil })
	srv := newTestServer(t, methods{rpc.MethodAuthRefresh: ref.serve})
	var tk tokens
	hook, errs := authErrors()
	c := dial(t, srv.url(), client.WithBackoff(20*time.Millisecond, 100*time.Millisecond), client.WithCredentials(tk.credential), hook)
	announce(t, srv.nextConn(t), 50)
	for range 3 {
		ae := recv(t, errs, "an auth error")
		if ae.Op != "refresh" || !strings.Contains(ae.Error(), "already expired") {
			t.Fatalf("auth error %v, want a refresh refused for its past expiry", ae)
		}
	}
	time.Sleep(500 * time.Millisecond)
	// Backoff of 20 ms doubling to 100 ms: about 5 attempts in 500 ms; a
	// loop would make thousands.
	if n := ref.count(); n > 50 {
		t.Fatalf("%d refreshes in about 0.5 s: the client loops", n)
	}
	_ = c
}

// TestAuthRefreshUnsupported: a server without refresh (-32601) is asked
// once per connection.
func TestAuthRefreshUnsupported(t *testing.T) {
	t.Parallel()
	var asked atomic.Int32
	srv := newTestServer(t, methods{rpc.MethodAuthRefresh: func(context.Context, *rpc.Request) ([]byte, error) {
		asked.Add(1)
		return nil, rpc.Errorf(rpc.CodeMethodNotFound, "no refresh here")
	}})
	var tk tokens
	hook, errs := authErrors()
	dial(t, srv.url(), fastBackoff, client.WithCredentials(tk.credential), hook)
	p := srv.nextConn(t)
	announce(t, p, 40)
	if ae := recv(t, errs, "an auth error"); ae.Op != "refresh" || rpc.CodeOf(ae) != rpc.CodeMethodNotFound {
		t.Fatalf("auth error %v, want the refresh's method not found", ae)
	}
	announce(t, p, 40) // a new expiry does not make it ask again
	time.Sleep(200 * time.Millisecond)
	if n := asked.Load(); n != 1 {
		t.Fatalf("asked %d times, want once", n)
	}
}

// TestAuthExpiredReconnectsWithNewCredential: a close with 4401 makes the
// client fetch a new credential before it reconnects; a plain drop does
// not.
func TestAuthExpiredReconnectsWithNewCredential(t *testing.T) {
	t.Parallel()
	gate, hdrs := headers()
	srv := newGatedTestServer(t, methods{"echo": echo, "whoami": whoami}, gate)
	var tk tokens
	hook, errs := authErrors()
	c := dial(t, srv.url(), fastBackoff, client.WithCredentials(tk.credential), hook)
	recv(t, hdrs, "a handshake")
	srv.nextConn(t).CloseNow() // a drop: the credential is still good
	if got := recv(t, hdrs, "a handshake"); got != "Bearer token-1" {
		t.Fatalf("after a drop the handshake carried %q, want token-1 again", got)
	}
	srv.nextConn(t).CloseWith(rpc.CloseAuthExpired, "authentication expired")
	if ae := recv(t, errs, "an auth error"); ae.Op != "expired" {
		t.Fatalf("auth error %v, want expired", ae)
	}
	if got := recv(t, hdrs, "a handshake"); got != "Bearer token-2" {
		t.Fatalf("after 4401 the handshake carried %q, want a new token-2", got)
	}
	var idx int
	if err := c.Call(testContext(t), "whoami", nil, &idx); err != nil || idx != 2 {
		t.Fatalf("whoami = %d, %v; want the third connection", idx, err)
	}
}

// TestAuthHandshakeRefusedFetchesAgain: a reconnect refused with 401 (the
// credential expired while disconnected) fetches a new credential; the
// callback failing meanwhile is retried after a backoff.
func TestAuthHandshakeRefusedFetchesAgain(t *testing.T) {
	t.Parallel()
	var refuse atomic.Bool
	hdrs := make(chan string, 64)
	gate := func(w http.ResponseWriter, r *http.Request) bool {
		hdrs <- r.Header.Get("Authorization")
		if refuse.Load() && r.Header.Get("Authorization") == "Bearer token-1" {
			http.Error(w, "expired", http.StatusUnauthorized)
			return false
		}
		return true
	}
	srv := newGatedTestServer(t, methods{"echo": echo}, gate)
	var tk tokens
	hook, errs := authErrors()
	c := dial(t, srv.url(), fastBackoff, client.WithCredentials(tk.credential), hook)
	recv(t, hdrs, "a handshake")
	refuse.Store(true)
	tk.fail.Store(2)
	srv.nextConn(t).CloseNow()
	if got := recv(t, hdrs, "a handshake"); got != "Bearer token-1" {
		t.Fatalf("reconnect carried %q", got)
	}
	want := []string{"handshake", "credentials", "credentials"}
	for _, w := range want {
		if ae := recv(t, errs, "an auth error"); ae.Op != w {
			t.Fatalf("auth error %v, want %s", ae, w)
		}
	}
	if got := recv(t, hdrs, "a handshake"); got != "Bearer token-2" {
		t.Fatalf("after the 401 the handshake carried %q, want token-2", got)
	}
	if err := c.Call(testContext(t), "echo", 1, nil); err != nil {
		t.Fatal(err)
	}
}

// TestAuthInBandLogin: with WithInBandAuth every connection calls the
// login method first, before queued calls and with the current
// credential's params.
func TestAuthInBandLogin(t *testing.T) {
	t.Parallel()
	type first struct{ conn, method, params string }
	var mu sync.Mutex
	seen := map[int]bool{}
	firsts := make(chan first, 16)
	record := func(ctx context.Context, req *rpc.Request) {
		mu.Lock()
		defer mu.Unlock()
		if i := connIndex(ctx); !seen[i] {
			seen[i] = true
			firsts <- first{fmt.Sprint(i), req.Method, string(req.Params)}
		}
	}
	h := methods{
		"auth.login": func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			record(ctx, req)
			return []byte("true"), nil
		},
		"echo": func(ctx context.Context, req *rpc.Request) ([]byte, error) { record(ctx, req); return req.Params, nil },
	}
	srv := newTestServer(t, h)
	var tk tokens
	c := dial(t, srv.url(), fastBackoff, client.WithCredentials(tk.credential), client.WithInBandAuth("auth.login"))
	for i := range 2 {
		f := recv(t, firsts, "a first call")
		if f.method != "auth.login" || !strings.Contains(f.params, "token-1") {
			t.Fatalf("connection %d began with %s %s, want auth.login with token-1", i, f.method, f.params)
		}
		if err := c.Call(testContext(t), "echo", 1, nil); err != nil {
			t.Fatal(err)
		}
		srv.nextConn(t).CloseNow()
	}
}

func TestAuthOptionsInvalid(t *testing.T) {
	_, err := client.Dial(testContext(t), "ws://127.0.0.1:1", client.WithInBandAuth("auth.login"))
	if err == nil || !strings.Contains(err.Error(), "WithCredentials") {
		t.Fatalf("WithInBandAuth alone: %v, want an error naming WithCredentials", err)
	}
	failing := func(context.Context) (client.Credential, error) { return client.Credential{}, errors.New("no IdP") }
	_, err = client.Dial(testContext(t), "ws://127.0.0.1:1", client.WithCredentials(failing))
	var ae *client.AuthError
	if !errors.As(err, &ae) || ae.Op != "credentials" {
		t.Fatalf("Dial with a failing callback: %v, want an *AuthError of the callback", err)
	}
}

// TestAuthExpiringConnectionsBackOff: a server that closes every connection
// with 4401 at once (lifetimes too short to refresh) is not reconnected to
// in a loop: the backoff grows with each expiry in a row.
func TestAuthExpiringConnectionsBackOff(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	gate := func(http.ResponseWriter, *http.Request) bool { conns.Add(1); return true }
	srv := newGatedTestServer(t, methods{}, gate)
	var tk tokens
	hook, errs := authErrors()
	dial(t, srv.url(), fastBackoff, client.WithCredentials(tk.credential), hook)
	done := time.After(time.Second)
	for running := true; running; {
		select {
		case p := <-srv.conns:
			p.CloseWith(rpc.CloseAuthExpired, "authentication expired")
		case <-errs:
		case <-done:
			running = false
		}
	}
	t.Logf("%d connections", conns.Load())
	// Backoff of 5 ms doubling to 50 ms: about 20 connections a second; a
	// reconnect at once after each would make hundreds.
	if n := conns.Load(); n > 100 {
		t.Fatalf("%d connections in a second: the client reconnects in a loop", n)
	}
	if n := tk.n.Load(); n < 3 || n > conns.Load()+1 {
		t.Fatalf("%d credentials for %d connections, want one per expiry", n, conns.Load())
	}
}

// TestAuthWaitForServerStaleCredential: with WithWaitForServer, Dial
// fetches a credential once and keeps it while it waits; when the server
// comes back and refuses it with 401 (it expired during the wait), Dial
// tries once more with a new one instead of failing. A new credential
// refused too ends Dial with the 401, after two calls of the callback.
func TestAuthWaitForServerStaleCredential(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		accept string // the Authorization accepted; "" none
		want   []string
	}{
		{"the new credential is accepted", "Bearer token-2", []string{"Bearer token-1", "Bearer token-1", "Bearer token-2"}},
		{"the new credential is refused too", "", []string{"Bearer token-1", "Bearer token-1", "Bearer token-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hdrs := make(chan string, 64)
			var n atomic.Int32
			gate := func(w http.ResponseWriter, r *http.Request) bool {
				hdrs <- r.Header.Get("Authorization")
				switch {
				case n.Add(1) == 1: // not up yet
					http.Error(w, "starting", http.StatusServiceUnavailable)
					return false
				case r.Header.Get("Authorization") != tt.accept:
					http.Error(w, "expired", http.StatusUnauthorized)
					return false
				}
				return true
			}
			srv := newGatedTestServer(t, methods{"echo": echo}, gate)
			var tk tokens
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			c, err := client.Dial(ctx, srv.url(), fastBackoff, client.WithWaitForServer(), client.WithCredentials(tk.credential))
			if tt.accept != "" {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				defer c.Close()
				if err := c.Call(ctx, "echo", 1, nil); err != nil {
					t.Fatal(err)
				}
			} else {
				var he *transport.HandshakeError
				if !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized {
					if c != nil {
						c.Close()
					}
					t.Fatalf("Dial: %v, want the 401", err)
				}
			}
			for i, w := range tt.want {
				if got := recv(t, hdrs, "a handshake"); got != w {
					t.Fatalf("handshake %d carried %q, want %q", i+1, got, w)
				}
			}
			select {
			case got := <-hdrs:
				t.Fatalf("one handshake too many, with %q", got)
			default:
			}
			if got := tk.n.Load(); got != 2 {
				t.Fatalf("the callback gave %d credentials, want 2", got)
			}
		})
	}
}
