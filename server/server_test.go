package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// start runs s behind an httptest server; the server is shut down (Close) at cleanup.
func start(t testing.TB, s *server.Server) string {
	t.Helper()
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

// dial connects an rpc.Peer client.
func dial(t testing.TB, url string, opts *transport.DialOptions, peerOpts ...rpc.Option) *rpc.Peer {
	t.Helper()
	p, err := tryDial(t, url, opts, peerOpts...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return p
}

func tryDial(t testing.TB, url string, opts *transport.DialOptions, peerOpts ...rpc.Option) (*rpc.Peer, error) {
	if opts == nil {
		opts = &transport.DialOptions{Subprotocols: rpc.Subprotocols()}
	}
	c, err := transport.Dial(ctxT(t), url, opts)
	if err != nil {
		return nil, err
	}
	p, err := rpc.New(c, peerOpts...)
	if err != nil {
		c.CloseNow()
		return nil, err
	}
	t.Cleanup(func() { p.CloseNow() })
	return p, nil
}

func handshakeStatus(err error) int {
	var he *transport.HandshakeError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	return 0
}

func services(t testing.TB) *handler.Mux {
	mux := handler.NewMux()
	mux.Handle("echo", handler.Func(func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) { return in, nil }))
	mux.Handle("whoami", handler.NoParams(func(ctx context.Context) (string, error) {
		return fmt.Sprint(rpc.RequestFromContext(ctx).Peer().Session().Principal()), nil
	}))
	mux.Handle("conn.id", handler.NoParams(func(ctx context.Context) (string, error) {
		return rpc.RequestFromContext(ctx).Peer().ID(), nil
	}))
	mux.Handle("remote", handler.NoParams(func(ctx context.Context) (string, error) {
		return rpc.RequestFromContext(ctx).Peer().RemoteAddr().String(), nil
	}))
	mux.Handle("sleep", handler.Func(func(ctx context.Context, ms int) (int, error) {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			return ms, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}))
	return mux
}

func newServer(t testing.TB, opts ...server.Option) *server.Server {
	t.Helper()
	s, err := server.New(services(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestServeBothCodecs(t *testing.T) {
	url := start(t, newServer(t))
	tests := []struct {
		give []string
		want string
	}{
		{rpc.Subprotocols(), rpc.SubprotocolBinary},
		{[]string{rpc.SubprotocolJSON}, rpc.SubprotocolJSON},
		{nil, ""},
	}
	for _, tt := range tests {
		p := dial(t, url, &transport.DialOptions{Subprotocols: tt.give})
		if got := p.Subprotocol(); got != tt.want {
			t.Errorf("offered %v: negotiated %q, want %q", tt.give, got, tt.want)
		}
		var out []int
		if err := p.Call(ctxT(t), "echo", []int{1, 2}, &out); err != nil || len(out) != 2 {
			t.Errorf("offered %v: echo = %v, %v", tt.give, out, err)
		}
	}
}

func TestCrossOriginRefused(t *testing.T) {
	url := start(t, newServer(t))
	_, err := tryDial(t, url, &transport.DialOptions{Header: http.Header{"Origin": {"https://evil.example"}}})
	if handshakeStatus(err) != http.StatusForbidden {
		t.Fatalf("cross-site handshake = %v, want 403", err)
	}
	url2 := start(t, newServer(t, server.WithOriginPatterns("app.example")))
	if _, err := tryDial(t, url2, &transport.DialOptions{Header: http.Header{"Origin": {"https://app.example"}}}); err != nil {
		t.Fatalf("allowed origin refused: %v", err)
	}
}

func TestMaxConns(t *testing.T) {
	url := start(t, newServer(t, server.WithMaxConns(2), server.WithRetryAfter(3*time.Second)))
	dial(t, url, nil)
	dial(t, url, nil)
	_, err := tryDial(t, url, nil)
	var he *transport.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable || he.Header.Get("Retry-After") != "3" {
		t.Fatalf("third handshake = %v, want 503 with Retry-After 3", err)
	}
}

func TestHandshakeAuth(t *testing.T) {
	auth := func(r *http.Request) (any, error) {
		switch r.Header.Get("Authorization") {
		case "Bearer alice":
			return "alice", nil
		case "Bearer mallory":
			return nil, fmt.Errorf("banned: %w", server.ErrForbidden)
		}
		return nil, server.ErrUnauthorized
	}
	// The principal is on the session from the start: the connect hook,
	// which runs before the in-band timer and may run before any call, sees
	// it.
	principals := make(chan any, 1)
	url := start(t, newServer(t, server.WithAuth(auth),
		server.WithOnConnect(func(p *rpc.Peer) { principals <- p.Session().Principal() })))
	tests := []struct {
		give string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer mallory", http.StatusForbidden},
		{"Bearer alice", 0},
	}
	for _, tt := range tests {
		p, err := tryDial(t, url, &transport.DialOptions{Header: http.Header{"Authorization": {tt.give}}})
		if got := handshakeStatus(err); got != tt.want {
			t.Fatalf("%q: status %d (%v), want %d", tt.give, got, err, tt.want)
		}
		if tt.want == 0 {
			var who string
			if err := p.Call(ctxT(t), "whoami", nil, &who); err != nil || who != "alice" {
				t.Fatalf("whoami = %q, %v", who, err)
			}
			if got := <-principals; got != "alice" {
				t.Fatalf("the connect hook saw the principal %v, want alice", got)
			}
		}
	}
}

func TestInBandAuth(t *testing.T) {
	login := func(ctx context.Context, params []byte) (any, error) {
		var creds struct{ Token string }
		json.Unmarshal(params, &creds)
		if creds.Token != "s3cret" {
			return nil, errors.New("bad token")
		}
		return "bob", nil
	}
	url := start(t, newServer(t, server.WithInBandAuth("auth.login", 300*time.Millisecond, login)))

	p := dial(t, url, nil)
	if err := p.Call(ctxT(t), "whoami", nil, nil); rpc.CodeOf(err) != rpc.CodeUnauthenticated {
		t.Fatalf("call before auth = %v, want unauthenticated", err)
	}
	if err := p.Call(ctxT(t), "auth.login", map[string]string{"Token": "wrong"}, nil); rpc.CodeOf(err) != rpc.CodeUnauthenticated {
		t.Fatalf("bad login = %v", err)
	}
	if err := p.Call(ctxT(t), "auth.login", map[string]string{"Token": "s3cret"}, nil); err != nil {
		t.Fatalf("login: %v", err)
	}
	var who string
	if err := p.Call(ctxT(t), "whoami", nil, &who); err != nil || who != "bob" {
		t.Fatalf("whoami = %q, %v", who, err)
	}

	// A connection that never authenticates is closed with 1008.
	idle := dial(t, url, nil)
	select {
	case <-idle.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("unauthenticated connection not closed")
	}
	if code := transport.CloseStatus(idle.Err()); code != transport.StatusPolicyViolation {
		t.Fatalf("closed with %d, want 1008", code)
	}
	// The authenticated one outlived the timeout.
	if err := p.Call(ctxT(t), "whoami", nil, &who); err != nil {
		t.Fatalf("authenticated connection: %v", err)
	}
}

func TestRegistryHooksAndServerCalls(t *testing.T) {
	connected := make(chan *rpc.Peer, 4)
	type end struct {
		peer *rpc.Peer
		err  error
	}
	disconnected := make(chan end, 4)
	s := newServer(t,
		server.WithOnConnect(func(c *rpc.Peer) { connected <- c }),
		server.WithOnDisconnect(func(c *rpc.Peer, err error) { disconnected <- end{c, err} }))
	url := start(t, s)

	got := make(chan string, 8)
	clientHandler := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		got <- req.Method + " " + string(req.Params)
		return []byte(`"pong"`), nil
	})
	a := dial(t, url, nil, rpc.WithHandler(clientHandler))
	b := dial(t, url, &transport.DialOptions{Subprotocols: []string{rpc.SubprotocolJSON}}, rpc.WithHandler(clientHandler))
	ca, cb := <-connected, <-connected
	if len(s.Conns()) != 2 || s.Conn(ca.ID()) != ca || s.Conn(cb.ID()) != cb {
		t.Fatalf("registry: %v", s.Conns())
	}
	var id string
	if err := a.Call(ctxT(t), "conn.id", nil, &id); err != nil || s.Conn(id) == nil {
		t.Fatalf("the peer's ID in a handler: %q %v", id, err)
	}

	var answer string
	if err := s.Conn(id).Call(ctxT(t), "ping", nil, &answer); err != nil || answer != "pong" {
		t.Fatalf("server→client call = %q, %v", answer, err)
	}
	<-got

	n, err := s.Broadcast(ctxT(t), "news", map[string]int{"n": 1}, nil)
	if err != nil || n != 2 {
		t.Fatalf("Broadcast = %d, %v", n, err)
	}
	for range 2 {
		if m := <-got; m != `news {"n":1}` {
			t.Fatalf("broadcast delivered %q", m)
		}
	}
	n, _ = s.Broadcast(ctxT(t), "only-b", nil, func(c *rpc.Peer) bool { return c.Subprotocol() == rpc.SubprotocolJSON })
	if n != 1 {
		t.Fatalf("filtered broadcast reached %d", n)
	}
	if m := <-got; !strings.HasPrefix(m, "only-b") {
		t.Fatalf("got %q", m)
	}

	a.Close()
	select {
	case e := <-disconnected:
		if transport.CloseStatus(e.err) != transport.StatusNormalClosure {
			t.Fatalf("disconnect reason %v", e.err)
		}
		if e.peer.ID() != id {
			t.Fatalf("the disconnect hook got connection %s, want %s", e.peer.ID(), id)
		}
		if s.Conn(id) != nil || len(s.Conns()) != 1 {
			t.Fatalf("the ended connection is still in the registry: %v", s.Conns())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no disconnect hook")
	}
	_ = b
}

func TestSubprotocolRequired(t *testing.T) {
	url := start(t, newServer(t, rpc.WithSubprotocols(rpc.SubprotocolBinary)))
	c, err := transport.Dial(ctxT(t), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	<-c.Done()
	if code := transport.CloseStatus(c.Err()); code != transport.StatusPolicyViolation {
		t.Fatalf("closed with %d, want 1008", code)
	}
	if _, err := server.New(services(t), rpc.WithSubprotocols("mqtt")); err == nil {
		t.Fatal("unknown subprotocol accepted")
	}
	if _, err := server.New(nil); err == nil {
		t.Fatal("nil handler accepted")
	}
}

func TestShutdownDrainsAndNotifies(t *testing.T) {
	s := newServer(t, server.WithRetryAfter(time.Second))
	url := start(t, s)
	p := dial(t, url, nil)
	reply := make(chan *rpc.Response, 1)
	if err := p.Send(ctxT(t), &rpc.Request{Method: "sleep", Params: []byte("300"), Reply: reply}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(s.Conns()) > 0 && s.Conns()[0].Stats().InFlight > 0 }, "call never started")
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctxT(t)) }()
	<-p.GoingAway()
	if p.RetryAfter() != time.Second {
		t.Errorf("retry hint %v", p.RetryAfter())
	}
	if _, err := tryDial(t, url, nil); handshakeStatus(err) != http.StatusServiceUnavailable {
		t.Errorf("handshake during shutdown = %v, want 503", err)
	}
	r := <-reply
	if r.Err != nil || string(r.Result) != "300" {
		t.Fatalf("in-flight call: %s %v", r.Result, r.Err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	<-p.Done()
	if code := transport.CloseStatus(p.Err()); code != transport.StatusServiceRestart {
		t.Fatalf("closed with %v, want 1012", p.Err())
	}
	if err := s.Shutdown(ctxT(t)); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}
}

func TestShutdownDeadline(t *testing.T) {
	s := newServer(t)
	url := start(t, s)
	p := dial(t, url, nil)
	reply := make(chan *rpc.Response, 2)
	for range 2 {
		if err := p.Send(ctxT(t), &rpc.Request{Method: "sleep", Params: []byte("60000"), Reply: reply}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return len(s.Conns()) > 0 && s.Conns()[0].Stats().InFlight >= 2 }, "calls never started")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Shutdown(ctx)
	var se *server.ShutdownError
	if !errors.As(err, &se) || se.Incoming != 2 || se.Connections != 1 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want a ShutdownError counting 2 calls on 1 connection", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Shutdown took %s with a 200ms deadline", took)
	}
}

func TestListenAndServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	p := dial(t, "ws://"+ln.Addr().String()+"/rpc", nil)
	if err := p.Call(ctxT(t), "echo", []int{1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown = %v", err)
	}
}

// TestShutdownUnderLoad: 100 connections with 10,000 calls in flight across
// Shutdown; every call gets its real result and Shutdown returns in time.
func TestShutdownUnderLoad(t *testing.T) {
	const conns, perConn = 100, 100
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(conns * perConn)
	mux := handler.NewMux()
	mux.Handle("work", handler.Func(func(ctx context.Context, n int) (int, error) {
		started.Done()
		<-release
		return n * 2, nil
	}))
	s, err := server.New(mux, rpc.WithMaxInFlight(perConn))
	if err != nil {
		t.Fatal(err)
	}
	url := start(t, s)
	peers := make([]*rpc.Peer, conns)
	for i := range peers {
		peers[i] = dial(t, url, nil)
	}
	// One reply channel per connection, so that each result can be checked
	// against the request it answers (ids are per connection).
	replies := make([]chan *rpc.Response, conns)
	want := make([]map[uint64]int, conns)
	for i, p := range peers {
		replies[i] = make(chan *rpc.Response, perConn)
		want[i] = map[uint64]int{}
		for j := range perConn {
			req := &rpc.Request{Method: "work", Params: []byte(fmt.Sprint(j)), Reply: replies[i]}
			if err := p.Send(ctxT(t), req); err != nil {
				t.Fatal(err)
			}
			want[i][req.ID] = j * 2
		}
	}
	started.Wait() // all 10,000 calls are in their handlers
	done := make(chan error, 1)
	deadline := 30 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	begin := time.Now()
	go func() { done <- s.Shutdown(ctx) }()
	for _, p := range peers {
		<-p.GoingAway()
	}
	if _, err := tryDial(t, url, nil); handshakeStatus(err) != http.StatusServiceUnavailable {
		t.Errorf("handshake during shutdown = %v, want 503", err)
	}
	close(release)
	got := 0
	for i := range peers {
		for range perConn {
			r := <-replies[i]
			if r.Err != nil {
				t.Fatalf("call %d on connection %d lost: %v", r.ID, i, r.Err)
			}
			if string(r.Result) != fmt.Sprint(want[i][r.ID]) {
				t.Fatalf("call %d on connection %d: result %s, want %d", r.ID, i, r.Result, want[i][r.ID])
			}
			delete(want[i], r.ID)
			got++
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if took := time.Since(begin); took > deadline {
		t.Fatalf("Shutdown took %s", took)
	}
	if got != conns*perConn {
		t.Fatalf("%d results, want %d", got, conns*perConn)
	}
	for _, p := range peers {
		<-p.Done()
		if code := transport.CloseStatus(p.Err()); code != transport.StatusServiceRestart {
			t.Fatalf("connection closed with %v", p.Err())
		}
	}
}

// waitFor polls done every millisecond until it holds, failing the test
// with msg (and args) if it does not within the test's deadline.
func waitFor(t testing.TB, done func() bool, msg string, args ...any) {
	t.Helper()
	deadline := ctxT(t)
	for !done() {
		select {
		case <-time.After(time.Millisecond):
		case <-deadline.Done():
			t.Fatalf(msg, args...)
		}
	}
}
