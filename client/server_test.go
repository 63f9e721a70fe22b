package client_test

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// waitFor bounds every wait in these tests.
const waitFor = 5 * time.Second

// testServer is a small RPC server on a fixed loopback address. A test can
// reach the peer of every connection it accepted (to Drain, CloseNow or call
// it), and stop the server and start it again on the same address.
type testServer struct {
	t       testing.TB
	addr    string
	tls     bool
	handler rpc.Handler
	conns   chan *rpc.Peer // each accepted connection, in order (never closed)
	// gate, if set, sees every handshake first; it returns false when it
	// has answered the request itself (a refusal, a hang-up).
	gate func(w http.ResponseWriter, r *http.Request) bool

	mu      sync.Mutex
	srv     *httptest.Server
	stopped bool
	next    int         // index of the next connection
	peers   []*rpc.Peer // every connection accepted
}

func newTestServer(t testing.TB, h rpc.Handler) *testServer {
	return startTestServer(t, h, false)
}

func newTLSTestServer(t testing.TB, h rpc.Handler) *testServer {
	return startTestServer(t, h, true)
}

// newGatedTestServer is newTestServer with a gate in front of every
// handshake (see testServer.gate).
func newGatedTestServer(t testing.TB, h rpc.Handler, gate func(http.ResponseWriter, *http.Request) bool) *testServer {
	t.Helper()
	return launch(t, &testServer{handler: h, gate: gate})
}

// newStoppedTestServer is a server that does not listen yet: connections to
// its address are refused until start is called. The address is one the
// kernel just gave out and took back, as testServer.start reuses its own.
func newStoppedTestServer(t testing.TB, h rpc.Handler) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, addr: l.Addr().String(), handler: h, stopped: true, conns: make(chan *rpc.Peer, 64)}
	l.Close()
	t.Cleanup(s.stop)
	return s
}

func startTestServer(t testing.TB, h rpc.Handler, useTLS bool) *testServer {
	t.Helper()
	return launch(t, &testServer{handler: h, tls: useTLS})
}

// launch serves s on a new loopback port until the test ends.
func launch(t testing.TB, s *testServer) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.t, s.addr, s.conns = t, l.Addr().String(), make(chan *rpc.Peer, 64)
	s.serve(l)
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) url() string {
	if s.tls {
		return "wss://" + s.addr
	}
	return "ws://" + s.addr
}

// serve starts an HTTP server on l.
func (s *testServer) serve(l net.Listener) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused TLS handshakes are expected
	srv.Listener.Close()
	srv.Listener = l
	s.mu.Lock()
	s.srv, s.stopped = srv, false
	s.mu.Unlock()
	if s.tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
}

// start listens again on the address the server had. Call it from the test
// goroutine.
func (s *testServer) start() {
	s.t.Helper()
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.serve(l)
}

// stop closes the listener, then drops every connection (the clients see
// 1006). It is idempotent.
func (s *testServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv, s.stopped = nil, true
	peers := s.peers
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	for _, p := range peers {
		_ = p.CloseNow()
	}
}

// tlsConfig trusts the server's certificate.
func (s *testServer) tlsConfig() *tls.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
}

// httpClient is an HTTP client that trusts the server's certificate.
func (s *testServer) httpClient() *http.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv.Client()
}

type connKey struct{}

// connIndex returns, in a handler, the index of the connection the call came
// on: 0 for the first connection the server accepted.
func connIndex(ctx context.Context) int { return ctx.Value(connKey{}).(int) }

func (s *testServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.gate != nil && !s.gate(w, r) {
		return
	}
	conn, err := transport.Accept(w, r, &transport.AcceptOptions{Subprotocols: rpc.Subprotocols()})
	if err != nil {
		return
	}
	s.mu.Lock()
	idx := s.next
	s.next++
	s.mu.Unlock()
	// Not r.Context(): it ends when this function returns.
	base := context.WithValue(context.Background(), connKey{}, idx)
	p, err := rpc.New(conn, rpc.WithHandler(s.handler), rpc.WithBaseContext(base))
	if err != nil {
		_ = conn.CloseNow()
		return
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		_ = p.CloseNow()
		return
	}
	s.peers = append(s.peers, p)
	s.mu.Unlock()
	select {
	case s.conns <- p:
	default:
	}
}

// nextConn waits for the server to accept a connection and returns its peer.
func (s *testServer) nextConn(t testing.TB) *rpc.Peer {
	t.Helper()
	return recv(t, s.conns, "a connection")
}

// methods is a handler routing by method name.
type methods map[string]func(ctx context.Context, req *rpc.Request) ([]byte, error)

func (m methods) ServeRPC(ctx context.Context, req *rpc.Request) ([]byte, error) {
	if f, ok := m[req.Method]; ok {
		return f(ctx, req)
	}
	return nil, rpc.Errorf(rpc.CodeMethodNotFound, "method %q not found", req.Method)
}

// echo returns its params as the result.
func echo(_ context.Context, req *rpc.Request) ([]byte, error) { return req.Params, nil }

// whoami returns the index of the connection the call came on.
func whoami(ctx context.Context, _ *rpc.Request) ([]byte, error) {
	return []byte(strconv.Itoa(connIndex(ctx))), nil
}

// dial connects a client for the test and closes it when the test ends.
func dial(t testing.TB, url string, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := client.Dial(ctx, url, opts...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fastBackoff keeps reconnects quick in tests.
var fastBackoff = client.WithBackoff(5*time.Millisecond, 50*time.Millisecond)

// testContext is bounded by waitFor and cancelled when the test ends.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// recordStatuses returns a status hook that records into the channel returned.
func recordStatuses() (client.Option, chan client.Status) {
	statuses := make(chan client.Status, 64)
	return client.WithStatusHook(func(s client.Status) {
		select {
		case statuses <- s:
		default:
			panic("status hook: too many changes for the test's buffer")
		}
	}), statuses
}

// waitStatus reads statuses until want arrives.
func waitStatus(t testing.TB, statuses <-chan client.Status, want client.Status) {
	t.Helper()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	for {
		select {
		case s := <-statuses:
			if s == want {
				return
			}
		case <-timer.C:
			t.Fatalf("status %v not reached within %v", want, waitFor)
		}
	}
}

// recv receives one value from ch, failing the test after waitFor.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("no %s within %v", what, waitFor)
		panic("unreachable")
	}
}
