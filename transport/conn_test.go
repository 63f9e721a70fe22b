package transport_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/transport"
)

// server runs fn on every accepted connection and closes everything at cleanup.
type server struct {
	*httptest.Server
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
	conns  chan *transport.Conn
}

func newServer(t *testing.T, opts *transport.AcceptOptions, fn func(*transport.Conn)) *server {
	t.Helper()
	return startServer(t, false, opts, fn)
}

func startServer(t *testing.T, tls bool, opts *transport.AcceptOptions, fn func(*transport.Conn)) *server {
	t.Helper()
	s := &server{conns: make(chan *transport.Conn, 16)}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			http.Error(w, "closed", http.StatusServiceUnavailable)
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		defer s.wg.Done()
		c, err := transport.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		select {
		case s.conns <- c:
		default:
		}
		fn(c)
	})
	s.Server = httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // refused TLS handshakes are expected in some tests
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(func() {
		s.Server.Close()
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *server) wsURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") }

// echo sends every message back until the connection ends.
func echo(c *transport.Conn) {
	for m := range c.Recv() {
		if c.Send(context.Background(), m) != nil {
			return
		}
	}
}

func dial(t *testing.T, url string, opts *transport.DialOptions) *transport.Conn {
	t.Helper()
	c, err := transport.Dial(ctxT(t), url, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func recv(t *testing.T, c *transport.Conn) transport.Message {
	t.Helper()
	select {
	case m, ok := <-c.Recv():
		if !ok {
			t.Fatalf("Recv closed: %v", c.Err())
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a message")
	}
	return transport.Message{}
}

// waitEnd waits for c to end and returns its Err.
func waitEnd(t *testing.T, c *transport.Conn, within time.Duration) error {
	t.Helper()
	select {
	case <-c.Done():
		return c.Err()
	case <-time.After(within):
		t.Fatalf("connection did not end within %s", within)
	}
	return nil
}

func closeErr(t *testing.T, err error) *transport.CloseError {
	t.Helper()
	var ce *transport.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *CloseError", err)
	}
	return ce
}

func TestEcho(t *testing.T) {
	tests := []struct {
		name string
		tls  bool
		give transport.Message
	}{
		{"text", false, transport.Message{Type: transport.Text, Data: []byte("héllo")}},
		{"binary", false, transport.Message{Type: transport.Binary, Data: []byte{0, 1, 2, 0xff}}},
		{"empty", false, transport.Message{Type: transport.Binary, Data: []byte{}}},
		{"large", false, transport.Message{Type: transport.Binary, Data: bytes.Repeat([]byte("x"), 900<<10)}},
		{"wss", true, transport.Message{Type: transport.Text, Data: []byte("over TLS")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tt.tls, nil, echo)
			var opts *transport.DialOptions
			if tt.tls {
				opts = &transport.DialOptions{HTTPClient: s.Client()}
			}
			c := dial(t, s.wsURL(), opts)
			if got := c.State(); got != transport.StateOpen {
				t.Fatalf("State = %v, want open", got)
			}
			if c.RemoteAddr() == nil || c.LocalAddr() == nil {
				t.Errorf("addresses unknown: remote %v local %v", c.RemoteAddr(), c.LocalAddr())
			}
			if err := c.Send(ctxT(t), tt.give); err != nil {
				t.Fatal(err)
			}
			got := recv(t, c)
			if got.Type != tt.give.Type || !bytes.Equal(got.Data, tt.give.Data) {
				t.Fatalf("got %v %d bytes, want %v %d bytes", got.Type, len(got.Data), tt.give.Type, len(tt.give.Data))
			}
			if err := c.Close(transport.StatusNormalClosure, "done"); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if got := c.State(); got != transport.StateClosed {
				t.Fatalf("State after Close = %v", got)
			}
			if _, ok := <-c.Recv(); ok {
				t.Fatal("Recv not closed after Close")
			}
		})
	}
}

func TestWSSRequiresTrustedCert(t *testing.T) {
	s := startServer(t, true, nil, echo)
	_, err := transport.Dial(ctxT(t), s.wsURL(), nil)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Dial with default client = %v, want a certificate error", err)
	}
}

func TestOrderPreserved(t *testing.T) {
	s := newServer(t, nil, echo)
	c := dial(t, s.wsURL(), nil)
	const n = 500
	go func() {
		for i := range n {
			if c.Send(context.Background(), transport.Message{Type: transport.Binary, Data: []byte{byte(i), byte(i >> 8)}}) != nil {
				return
			}
		}
	}()
	for i := range n {
		m := recv(t, c)
		if got := int(m.Data[0]) | int(m.Data[1])<<8; got != i {
			t.Fatalf("message %d arrived as %d", i, got)
		}
	}
}

func TestCloseCodesBothWays(t *testing.T) {
	tests := []struct {
		name        string
		serverClose bool
		code        transport.StatusCode
		reason      string
	}{
		{"client closes normal", false, transport.StatusNormalClosure, "bye"},
		{"client closes app code", false, 4001, "custom reason ✓"},
		{"server closes restart", true, transport.StatusServiceRestart, "restarting"},
		{"server closes going away", true, transport.StatusGoingAway, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serverErr := make(chan error, 1)
			s := newServer(t, nil, func(c *transport.Conn) {
				if tt.serverClose {
					c.Close(tt.code, tt.reason)
				}
				<-c.Done()
				serverErr <- c.Err()
			})
			c := dial(t, s.wsURL(), nil)
			if !tt.serverClose {
				if err := c.Close(tt.code, tt.reason); err != nil {
					t.Fatalf("Close: %v", err)
				}
			}
			clientErr := waitEnd(t, c, 10*time.Second)
			var sErr error
			select {
			case sErr = <-serverErr:
			case <-time.After(10 * time.Second):
				t.Fatal("server side did not end")
			}
			local, remote := closeErr(t, clientErr), closeErr(t, sErr)
			if tt.serverClose {
				local, remote = remote, local
			}
			for _, ce := range []*transport.CloseError{local, remote} {
				if ce.Code != tt.code || ce.Reason != tt.reason {
					t.Errorf("got %d %q, want %d %q", ce.Code, ce.Reason, tt.code, tt.reason)
				}
			}
			if local.Remote || !remote.Remote {
				t.Errorf("Remote flags: closer %v, other %v; want false, true", local.Remote, remote.Remote)
			}
			if got := transport.CloseStatus(clientErr); got != tt.code {
				t.Errorf("CloseStatus = %d, want %d", got, tt.code)
			}
		})
	}
}

func TestCloseFlushesQueuedMessages(t *testing.T) {
	got := make(chan int, 1)
	s := newServer(t, nil, func(c *transport.Conn) {
		n := 0
		for range c.Recv() {
			n++
		}
		got <- n
	})
	c := dial(t, s.wsURL(), &transport.DialOptions{ConnOptions: transport.ConnOptions{SendQueue: 64}})
	const n = 200
	for range n {
		if err := c.Send(ctxT(t), transport.Message{Type: transport.Text, Data: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(transport.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	if k := <-got; k != n {
		t.Fatalf("server received %d messages, want %d", k, n)
	}
}

func TestSendAfterClose(t *testing.T) {
	s := newServer(t, nil, echo)
	c := dial(t, s.wsURL(), nil)
	c.Close(transport.StatusNormalClosure, "")
	err := c.Send(ctxT(t), transport.Message{Type: transport.Text, Data: []byte("late")})
	if !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
	if err := c.Close(transport.StatusNormalClosure, ""); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	if err := c.CloseNow(); err != nil {
		t.Fatalf("CloseNow after Close = %v", err)
	}
}

func TestSendHonoursContext(t *testing.T) {
	block := make(chan struct{})
	s := newServer(t, nil, func(c *transport.Conn) { <-block })
	defer close(block)
	c := dial(t, s.wsURL(), &transport.DialOptions{ConnOptions: transport.ConnOptions{SendQueue: -1, WriteTimeout: -1}})
	big := transport.Message{Type: transport.Binary, Data: make([]byte, 1<<20)}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var err error
	for err == nil { // the server never reads: the socket buffers fill, then Send blocks
		err = c.Send(ctx, big)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want DeadlineExceeded", err)
	}
}

func TestSendRejectsBadType(t *testing.T) {
	s := newServer(t, nil, echo)
	c := dial(t, s.wsURL(), nil)
	if err := c.Send(ctxT(t), transport.Message{Type: 7}); err == nil {
		t.Fatal("Send with message type 7 succeeded")
	}
}

func TestCloseNowPeerSeesAbnormal(t *testing.T) {
	serverErr := make(chan error, 1)
	s := newServer(t, nil, func(c *transport.Conn) { <-c.Done(); serverErr <- c.Err() })
	c := dial(t, s.wsURL(), nil)
	c.CloseNow()
	if ce := closeErr(t, c.Err()); ce.Code != transport.StatusAbnormal || ce.Remote {
		t.Errorf("local err = %v", ce)
	}
	ce := closeErr(t, <-serverErr)
	if ce.Code != transport.StatusAbnormal || !ce.Remote {
		t.Errorf("server err = %v, want remote 1006", ce)
	}
}

func TestPing(t *testing.T) {
	s := newServer(t, nil, echo)
	c := dial(t, s.wsURL(), nil)
	rtt, err := c.Ping(ctxT(t))
	if err != nil || rtt <= 0 {
		t.Fatalf("Ping = %v, %v", rtt, err)
	}
}

func TestErrSetWhenRecvCloses(t *testing.T) {
	for range 50 {
		s := newServer(t, nil, func(c *transport.Conn) { c.Close(4002, "bye") })
		c := dial(t, s.wsURL(), nil)
		for range c.Recv() {
		}
		if code := transport.CloseStatus(c.Err()); code != 4002 {
			t.Fatalf("Err right after Recv closed = %v, want the peer's 4002", c.Err())
		}
	}
}
