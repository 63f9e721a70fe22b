package client_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

type point struct{ X, Y int }

func TestCallRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give []client.Option
		want string // the negotiated subprotocol
	}{
		{"default", nil, rpc.SubprotocolBinary},
		{"binary", []client.Option{rpc.WithSubprotocols(rpc.SubprotocolBinary)}, rpc.SubprotocolBinary},
		{"jsonrpc", []client.Option{rpc.WithSubprotocols(rpc.SubprotocolJSON)}, rpc.SubprotocolJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, methods{"echo": echo})
			c := dial(t, srv.url(), tt.give...)
			ctx := testContext(t)

			var got point
			if err := c.Call(ctx, "echo", point{1, 2}, &got); err != nil {
				t.Fatalf("Call: %v", err)
			}
			if got != (point{1, 2}) {
				t.Errorf("Call result = %+v, want {1 2}", got)
			}
			if sp := c.Peer().Subprotocol(); sp != tt.want {
				t.Errorf("subprotocol = %q, want %q", sp, tt.want)
			}
			if s := c.Status(); s != client.Connected {
				t.Errorf("Status = %v, want connected", s)
			}
			err := c.Call(ctx, "nope", nil, nil)
			if !errors.Is(err, rpc.ErrMethodNotFound) {
				t.Errorf("Call(nope) = %v, want method not found", err)
			}
		})
	}
}

func TestGo(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, methods{"echo": echo})
	c := dial(t, srv.url())
	ctx := testContext(t)

	// One call, one channel.
	reply := make(chan *rpc.Response, 1)
	if err := c.Go(ctx, "echo", point{3, 4}, reply); err != nil {
		t.Fatalf("Go: %v", err)
	}
	r := recv(t, reply, "reply")
	var got point
	if r.Err != nil {
		t.Fatalf("Response.Err = %v", r.Err)
	}
	if err := json.Unmarshal(r.Result, &got); err != nil || got != (point{3, 4}) {
		t.Errorf("Response.Result = %s (%v), want {3 4}", r.Result, err)
	}

	// Many calls sharing a channel with room for all of them.
	const n = 10
	shared := make(chan *rpc.Response, n)
	for i := range n {
		if err := c.Go(ctx, "echo", []int{i}, shared); err != nil {
			t.Fatalf("Go %d: %v", i, err)
		}
	}
	seen := make(map[int]bool)
	for range n {
		r := recv(t, shared, "reply")
		var v []int
		if r.Err != nil || json.Unmarshal(r.Result, &v) != nil || len(v) != 1 {
			t.Fatalf("reply %s, %v", r.Result, r.Err)
		}
		seen[v[0]] = true
	}
	if len(seen) != n {
		t.Errorf("got %d distinct replies, want %d", len(seen), n)
	}

	if err := c.Go(ctx, "echo", nil, make(chan *rpc.Response)); err == nil {
		t.Error("Go with an unbuffered channel: no error")
	}
}

func TestNotify(t *testing.T) {
	t.Parallel()
	notes := make(chan string, 1)
	srv := newTestServer(t, methods{"note": func(_ context.Context, req *rpc.Request) ([]byte, error) {
		if req.IsNotification() {
			notes <- string(req.Params)
		}
		return nil, nil
	}})
	c := dial(t, srv.url())
	if err := c.Notify(testContext(t), "note", []string{"hi"}); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if got := recv(t, notes, "notification"); got != `["hi"]` {
		t.Errorf("server got %s, want [\"hi\"]", got)
	}
}

func TestServerCallsClient(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, methods{
		// callback calls the client back on the same connection.
		"callback": func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			var name string
			if err := req.Peer().Call(ctx, "client.name", nil, &name); err != nil {
				return nil, err
			}
			return json.Marshal("the client is " + name)
		},
	})
	c := dial(t, srv.url(), rpc.WithHandler(rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
		if req.Method != "client.name" {
			return nil, rpc.ErrMethodNotFound
		}
		return []byte(`"gopher"`), nil
	})))
	ctx := testContext(t)

	// The server calls on its own.
	var name string
	if err := srv.nextConn(t).Call(ctx, "client.name", nil, &name); err != nil || name != "gopher" {
		t.Errorf("server's Call = %q, %v; want gopher", name, err)
	}
	// The server calls back while serving the client's call.
	var got string
	if err := c.Call(ctx, "callback", nil, &got); err != nil || got != "the client is gopher" {
		t.Errorf("Call(callback) = %q, %v", got, err)
	}
}

func TestDialErrors(t *testing.T) {
	t.Parallel()
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		http.Error(w, http.StatusText(code), code)
	}))
	t.Cleanup(refusing.Close)
	// A server that accepts TCP connections and hangs up at once. It stays
	// open for the whole test, so that no other test can get its port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var hangups sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		hangups.Wait()
	})
	hangups.Go(func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			nc.Close()
		}
	})
	// Nothing listens on port 1, and no test can: it is privileged and
	// outside the ephemeral range.
	const refused = "127.0.0.1:1"

	tests := []struct {
		name       string
		give       string // URL
		wantStatus int    // the HandshakeError's status, 0 if none
	}{
		{"forbidden", refusing.URL + "/403", http.StatusForbidden},
		{"unauthorized", refusing.URL + "/401", http.StatusUnauthorized},
		{"unavailable", refusing.URL + "/503", http.StatusServiceUnavailable},
		{"refused", "ws://" + refused, 0},
		{"server hangs up", "ws://" + l.Addr().String(), 0},
		{"bad scheme", "ftp://" + refused, 0},
		{"malformed", "ws://[::1", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := client.Dial(testContext(t), tt.give)
			if err == nil {
				c.Close()
				t.Fatal("Dial: no error")
			}
			var he *transport.HandshakeError
			switch {
			case tt.wantStatus == 0 && errors.As(err, &he):
				t.Errorf("Dial error %v is a HandshakeError", err)
			case tt.wantStatus != 0 && !errors.As(err, &he):
				t.Errorf("Dial error %v is not a HandshakeError", err)
			case tt.wantStatus != 0 && he.StatusCode != tt.wantStatus:
				t.Errorf("HandshakeError.StatusCode = %d, want %d", he.StatusCode, tt.wantStatus)
			}
		})
	}
}

func TestDialInvalidOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give []client.Option
		want string // in the error
	}{
		{"TLS and HTTP client", []client.Option{client.WithTLSConfig(&tls.Config{}), client.WithHTTPClient(&http.Client{})}, "cannot be combined"},
		{"HTTP client timeout", []client.Option{client.WithHTTPClient(&http.Client{Timeout: time.Second})}, "Timeout must be zero"},
		{"unknown subprotocol", []client.Option{rpc.WithSubprotocols("wsrpc.v9")}, "unknown subprotocol"},
		{"no subprotocol", []client.Option{rpc.WithSubprotocols()}, "rpc.WithSubprotocols"},
		{"zero heartbeat interval", []client.Option{rpc.WithHeartbeat(0, time.Second)}, "rpc.WithHeartbeat"},
		{"zero pong timeout", []client.Option{rpc.WithHeartbeat(time.Second, 0)}, "rpc.WithHeartbeat"},
		{"negative in-flight limit", []client.Option{rpc.WithMaxInFlight(-1)}, "rpc.WithMaxInFlight"},
		{"negative metadata bound", []client.Option{rpc.WithMaxMetadata(-1, 0)}, "rpc.WithMaxMetadata"},
		{"one connection's: base context", []client.Option{rpc.WithBaseContext(context.Background())}, "rpc.WithBaseContext does not apply"},
		{"one connection's: on close", []client.Option{rpc.WithOnClose(func(error) {})}, "rpc.WithOnClose does not apply"},
		{"one connection's: remote address", []client.Option{rpc.WithRemoteAddr(&net.TCPAddr{})}, "rpc.WithRemoteAddr does not apply"},
		{"one connection's: principal", []client.Option{rpc.WithPrincipal("alice")}, "rpc.WithPrincipal does not apply"},
		{"negative call timeout", []client.Option{client.WithCallTimeout(-time.Second)}, "WithCallTimeout"},
		{"zero backoff base", []client.Option{client.WithBackoff(0, time.Second)}, "WithBackoff"},
		{"backoff max below base", []client.Option{client.WithBackoff(2*time.Second, time.Second)}, "WithBackoff"},
		{"negative queue", []client.Option{client.WithQueueSize(-1)}, "WithQueueSize"},
		{"wait for server, bad backoff", []client.Option{client.WithWaitForServer(), client.WithBackoff(0, time.Second)}, "WithBackoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Nothing listens on port 1: validation must fail before dialing.
			c, err := client.Dial(testContext(t), "ws://127.0.0.1:1", tt.give...)
			if err == nil {
				c.Close()
				t.Fatal("Dial: no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Dial error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestDialOptionsThatWork(t *testing.T) {
	t.Parallel()
	gotHeader := make(chan string, 1)
	srv := newTestServer(t, methods{"echo": echo})
	tests := []struct {
		name string
		give []client.Option
	}{
		{"heartbeat off", []client.Option{rpc.WithHeartbeat(-1, 0)}},
		{"heartbeat on", []client.Option{rpc.WithHeartbeat(time.Second, time.Second)}},
		{"limits", []client.Option{rpc.WithTransport(transport.ConnOptions{ReadLimit: 1 << 10, SendQueue: 4})}},
		{"heartbeat over transport", []client.Option{rpc.WithHeartbeat(time.Second, time.Second), rpc.WithTransport(transport.ConnOptions{ReadLimit: 1 << 10})}},
		{"no queue", []client.Option{client.WithQueueSize(0), client.WithReconnect(false)}},
		{"value codec and logger", []client.Option{rpc.WithValueCodec(rpc.JSON), rpc.WithLogger(nil)}},
		{"peer limits", []client.Option{rpc.WithMaxInFlight(4), rpc.WithBacklog(8, 1<<10), rpc.WithMaxBatch(4), rpc.WithMaxMetadata(4, 1<<10), rpc.WithOwnedParams()}},
		{"nil options", []client.Option{nil, rpc.Option{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, srv.url(), tt.give...)
			var got point
			if err := c.Call(testContext(t), "echo", point{5, 6}, &got); err != nil || got != (point{5, 6}) {
				t.Errorf("Call = %+v, %v", got, err)
			}
		})
	}

	// The header reaches the server, and changing it after Dial changes nothing.
	hsrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHeader <- r.Header.Get("Authorization")
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	t.Cleanup(hsrv.Close)
	h := http.Header{"Authorization": {"Bearer t0ken"}}
	if _, err := client.Dial(testContext(t), hsrv.URL, client.WithHeader(h)); err == nil {
		t.Fatal("Dial: no error from a 401")
	}
	if got := recv(t, gotHeader, "header"); got != "Bearer t0ken" {
		t.Errorf("Authorization = %q", got)
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	srv := newTLSTestServer(t, methods{"echo": echo})
	tests := []struct {
		name    string
		give    []client.Option
		wantErr bool
	}{
		{"WithTLSConfig", []client.Option{client.WithTLSConfig(srv.tlsConfig())}, false},
		{"WithHTTPClient", []client.Option{client.WithHTTPClient(srv.httpClient())}, false},
		{"untrusted certificate", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.Dial(testContext(t), srv.url(), tt.give...)
			if tt.wantErr {
				if err == nil {
					c.Close()
					t.Fatal("Dial: no error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			var got point
			if err := c.Call(testContext(t), "echo", point{7, 8}, &got); err != nil || got != (point{7, 8}) {
				t.Errorf("Call = %+v, %v", got, err)
			}
		})
	}
}

func TestCallTimeout(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, methods{
		// deadline reports how long the handler had, -1 for no deadline.
		"deadline": func(ctx context.Context, _ *rpc.Request) ([]byte, error) {
			dl, ok := ctx.Deadline()
			if !ok {
				return []byte("-1"), nil
			}
			return json.Marshal(time.Until(dl))
		},
		"wait": func(ctx context.Context, _ *rpc.Request) ([]byte, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
	})
	tests := []struct {
		name     string
		give     time.Duration // WithCallTimeout
		giveCtx  time.Duration // the caller's own timeout, 0 for none
		method   string
		wantErr  error
		wantLeft [2]time.Duration // bounds of the server's deadline; {-1, -1} for none
	}{
		{"applied to a call without deadline", 50 * time.Millisecond, 0, "wait", context.DeadlineExceeded, [2]time.Duration{}},
		{"travels to the server", time.Minute, 0, "deadline", nil, [2]time.Duration{time.Second, time.Minute}},
		{"the caller's deadline wins", 50 * time.Millisecond, time.Minute, "deadline", nil, [2]time.Duration{time.Second, time.Minute}},
		{"none by default", 0, 0, "deadline", nil, [2]time.Duration{-1, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, srv.url(), client.WithCallTimeout(tt.give))
			ctx := context.Background()
			if tt.giveCtx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.giveCtx)
				defer cancel()
			}
			var left time.Duration
			err := c.Call(ctx, tt.method, nil, &left)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Call = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Call: %v", err)
			}
			if left < tt.wantLeft[0] || left > tt.wantLeft[1] {
				t.Errorf("server deadline in %v, want within %v", left, tt.wantLeft)
			}
		})
	}
}
