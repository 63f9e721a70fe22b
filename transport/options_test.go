package transport_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wsrpc/wsrpc/transport"
)

func TestHeaders(t *testing.T) {
	gotToken := make(chan string, 1)
	s := newServer(t, &transport.AcceptOptions{ResponseHeader: http.Header{"X-Server": {"wsrpc-test"}}},
		func(c *transport.Conn) {
			gotToken <- c.HandshakeHeader().Get("X-Token")
			echo(c)
		})
	c := dial(t, s.wsURL(), &transport.DialOptions{Header: http.Header{"X-Token": {"secret"}}})
	if got := <-gotToken; got != "secret" {
		t.Errorf("server saw X-Token %q, want secret", got)
	}
	if got := c.HandshakeHeader().Get("X-Server"); got != "wsrpc-test" {
		t.Errorf("client saw X-Server %q, want wsrpc-test", got)
	}
}

func TestSubprotocols(t *testing.T) {
	lastOffered := func(_ *http.Request, offered []string) string {
		if len(offered) == 0 {
			return ""
		}
		return offered[len(offered)-1]
	}
	tests := []struct {
		name    string
		server  []string
		choose  func(*http.Request, []string) string
		offered []string
		want    string
	}{
		{"server preference wins", []string{"wsrpc.v1", "jsonrpc2.0"}, nil, []string{"jsonrpc2.0", "wsrpc.v1"}, "wsrpc.v1"},
		{"only common one", []string{"wsrpc.v1", "jsonrpc2.0"}, nil, []string{"jsonrpc2.0"}, "jsonrpc2.0"},
		{"none offered", []string{"wsrpc.v1"}, nil, nil, ""},
		{"no overlap", []string{"wsrpc.v1"}, nil, []string{"mqtt"}, ""},
		{"server chooses", nil, lastOffered, []string{"a", "b", "c"}, "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serverSaw := make(chan string, 1)
			s := newServer(t, &transport.AcceptOptions{Subprotocols: tt.server, SelectSubprotocol: tt.choose},
				func(c *transport.Conn) { serverSaw <- c.Subprotocol(); echo(c) })
			c := dial(t, s.wsURL(), &transport.DialOptions{Subprotocols: tt.offered})
			if got := c.Subprotocol(); got != tt.want {
				t.Errorf("client subprotocol %q, want %q", got, tt.want)
			}
			if got := <-serverSaw; got != tt.want {
				t.Errorf("server subprotocol %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSelectSubprotocolNotOffered(t *testing.T) {
	s := newServer(t, &transport.AcceptOptions{SelectSubprotocol: func(*http.Request, []string) string { return "bogus" }}, echo)
	_, err := transport.Dial(ctxT(t), s.wsURL(), &transport.DialOptions{Subprotocols: []string{"a"}})
	var he *transport.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusInternalServerError {
		t.Fatalf("Dial = %v, want a 500 HandshakeError", err)
	}
}

func TestOrigin(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		origin   string
		wantCode int // 0: accepted
	}{
		{"no origin header", nil, "", 0},
		{"cross origin denied by default", nil, "http://evil.example", http.StatusForbidden},
		{"allowed by pattern", []string{"*.good.example"}, "https://app.good.example", 0},
		{"not matching pattern", []string{"*.good.example"}, "https://good.example.evil", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, &transport.AcceptOptions{OriginPatterns: tt.patterns}, echo)
			h := http.Header{}
			if tt.origin != "" {
				h.Set("Origin", tt.origin)
			}
			c, err := transport.Dial(ctxT(t), s.wsURL(), &transport.DialOptions{Header: h})
			if tt.wantCode == 0 {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				c.Close(transport.StatusNormalClosure, "")
				return
			}
			var he *transport.HandshakeError
			if !errors.As(err, &he) || he.StatusCode != tt.wantCode {
				t.Fatalf("Dial = %v, want HTTP %d", err, tt.wantCode)
			}
		})
	}
}

func TestCompression(t *testing.T) {
	opts := transport.ConnOptions{Compression: transport.CompressionNoContextTakeover}
	s := newServer(t, &transport.AcceptOptions{ConnOptions: opts}, echo)
	c := dial(t, s.wsURL(), &transport.DialOptions{ConnOptions: opts})
	if ext := c.HandshakeHeader().Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("compression not negotiated: extensions %q", ext)
	}
	msg := bytes.Repeat([]byte("compressible "), 10000)
	if err := c.Send(ctxT(t), transport.Message{Type: transport.Text, Data: msg}); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); !bytes.Equal(got.Data, msg) {
		t.Fatal("compressed echo differs")
	}
}

func TestCompressionOffByDefault(t *testing.T) {
	s := newServer(t, nil, echo)
	c := dial(t, s.wsURL(), &transport.DialOptions{ConnOptions: transport.ConnOptions{Compression: transport.CompressionNoContextTakeover}})
	if ext := c.HandshakeHeader().Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("server negotiated %q without opting in", ext)
	}
}

func TestReadLimit(t *testing.T) {
	tests := []struct {
		name  string
		limit int64
		size  int
		fails bool
	}{
		{"default allows 1 MiB", 0, 1 << 20, false},
		{"default refuses 1 MiB + 1", 0, 1<<20 + 1, true},
		{"custom limit", 1000, 1001, true},
		{"no limit", -1, 3 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serverErr := make(chan error, 1)
			s := newServer(t, &transport.AcceptOptions{ConnOptions: transport.ConnOptions{ReadLimit: tt.limit}},
				func(c *transport.Conn) { echo(c); serverErr <- c.Err() })
			c := dial(t, s.wsURL(), &transport.DialOptions{ConnOptions: transport.ConnOptions{ReadLimit: -1}})
			if err := c.Send(ctxT(t), transport.Message{Type: transport.Binary, Data: make([]byte, tt.size)}); err != nil {
				t.Fatal(err)
			}
			if !tt.fails {
				if got := recv(t, c); len(got.Data) != tt.size {
					t.Fatalf("echo %d bytes, want %d", len(got.Data), tt.size)
				}
				return
			}
			cerr := waitEnd(t, c, 10*time.Second)
			if ce := closeErr(t, cerr); ce.Code != transport.StatusMessageTooBig || !ce.Remote {
				t.Errorf("client err = %v, want remote 1009", cerr)
			}
			serr := <-serverErr
			if !errors.Is(serr, transport.ErrMessageTooBig) || transport.CloseStatus(serr) != transport.StatusMessageTooBig {
				t.Errorf("server err = %v, want 1009 wrapping ErrMessageTooBig", serr)
			}
		})
	}
}

// silentServer accepts with coder/websocket directly and never reads, so it
// answers no pings and drains nothing.
func silentServer(t *testing.T, onPing func()) string {
	t.Helper()
	release := make(chan struct{})
	done := make(chan struct{}, 16)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OnPingReceived: func(context.Context, []byte) bool {
			if onPing != nil {
				onPing()
			}
			return true
		}})
		if err != nil {
			return
		}
		defer func() { done <- struct{}{} }()
		if onPing != nil { // read so pings get answered
			go ws.Read(context.Background())
		}
		<-release
		ws.CloseNow()
	}))
	t.Cleanup(func() {
		close(release)
		s.Close()
	})
	return "ws" + strings.TrimPrefix(s.URL, "http")
}

func TestHeartbeatDetectsSilentPeer(t *testing.T) {
	url := silentServer(t, nil)
	const interval, timeout = 50 * time.Millisecond, 100 * time.Millisecond
	start := time.Now()
	c := dial(t, url, &transport.DialOptions{ConnOptions: transport.ConnOptions{HeartbeatInterval: interval, PongTimeout: timeout}})
	err := waitEnd(t, c, 5*time.Second)
	if !errors.Is(err, transport.ErrPeerUnresponsive) {
		t.Fatalf("err = %v, want ErrPeerUnresponsive", err)
	}
	if !strings.Contains(err.Error(), "stopped answering") {
		t.Errorf("error text %q does not say the peer stopped answering", err)
	}
	if took := time.Since(start); took < interval+timeout {
		t.Errorf("declared dead after %s, before interval+timeout", took)
	}
}

func TestHeartbeatKeepsLivePeer(t *testing.T) {
	var pings atomic.Int32
	enough := make(chan struct{})
	url := silentServer(t, func() {
		if pings.Add(1) == 3 {
			close(enough)
		}
	})
	c := dial(t, url, &transport.DialOptions{ConnOptions: transport.ConnOptions{HeartbeatInterval: 20 * time.Millisecond, PongTimeout: time.Second}})
	select {
	case <-enough:
	case <-c.Done():
		t.Fatalf("connection ended: %v", c.Err())
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat pings seen")
	}
	if c.State() != transport.StateOpen {
		t.Fatalf("state %v after answered pings", c.State())
	}
}

func TestWriteTimeout(t *testing.T) {
	url := silentServer(t, nil)
	c := dial(t, url, &transport.DialOptions{ConnOptions: transport.ConnOptions{WriteTimeout: 100 * time.Millisecond, HeartbeatInterval: -1}})
	big := transport.Message{Type: transport.Binary, Data: make([]byte, 1<<20)}
	for c.Send(ctxT(t), big) == nil {
	}
	err := waitEnd(t, c, 10*time.Second)
	if !errors.Is(err, transport.ErrWriteTimeout) {
		t.Fatalf("err = %v, want ErrWriteTimeout", err)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			held <- c // never answer
		}
		close(held)
	}()
	defer func() {
		ln.Close()
		for c := range held {
			c.Close()
		}
	}()
	start := time.Now()
	_, err = transport.Dial(context.Background(), "ws://"+ln.Addr().String(), &transport.DialOptions{HandshakeTimeout: 100 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial = %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Dial took %s", took)
	}
}

func TestDialRejectsClientTimeout(t *testing.T) {
	_, err := transport.Dial(ctxT(t), "ws://127.0.0.1:1", &transport.DialOptions{HTTPClient: &http.Client{Timeout: time.Second}})
	if err == nil || !strings.Contains(err.Error(), "HandshakeTimeout") {
		t.Fatalf("Dial = %v, want an error naming HandshakeTimeout", err)
	}
}

func TestDialThroughProxy(t *testing.T) {
	s := newServer(t, nil, echo)
	target, _ := url.Parse(s.URL)
	var proxied atomic.Int32
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	proxyURL, _ := url.Parse(proxy.URL)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	defer client.CloseIdleConnections()
	c := dial(t, s.wsURL(), &transport.DialOptions{HTTPClient: client})
	if err := c.Send(ctxT(t), transport.Message{Type: transport.Text, Data: []byte("via proxy")}); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); string(got.Data) != "via proxy" {
		t.Fatalf("got %q", got.Data)
	}
	if proxied.Load() == 0 {
		t.Fatal("the handshake did not go through the proxy")
	}
	c.Close(transport.StatusNormalClosure, "")
}

func TestDialErrorRedactsPassword(t *testing.T) {
	_, err := transport.Dial(ctxT(t), "ws://user:hunter2@127.0.0.1:1/x", nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Dial = %v; want an error without the password", err)
	}
}

func TestCloseNowCutsShortAHangingClose(t *testing.T) {
	url := silentServer(t, nil) // never reads, so never answers the close frame
	c := dial(t, url, &transport.DialOptions{ConnOptions: transport.ConnOptions{HeartbeatInterval: -1}})
	closed := make(chan struct{})
	go func() {
		c.Close(transport.StatusGoingAway, "bye")
		close(closed)
	}()
	for c.State() == transport.StateOpen { // wait until the close has begun
		select {
		case <-closed:
			t.Fatal("Close returned although the peer never answered")
		case <-time.After(time.Millisecond):
		}
	}
	start := time.Now()
	c.CloseNow()
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("CloseNow did not cut the hanging Close short")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("took %s", took)
	}
}

// TestHeartbeatSparesPeerBehindSlowConsumer: while Recv's consumer is slow,
// the reader cannot read pongs; that is not a dead peer.
func TestHeartbeatSparesPeerBehindSlowConsumer(t *testing.T) {
	s := newServer(t, nil, func(c *transport.Conn) {
		for range 3 {
			c.Send(context.Background(), transport.Message{Type: transport.Text, Data: []byte("x")})
		}
		<-c.Done()
	})
	c := dial(t, s.wsURL(), &transport.DialOptions{ConnOptions: transport.ConnOptions{
		RecvQueue: -1, HeartbeatInterval: 20 * time.Millisecond, PongTimeout: 50 * time.Millisecond}})
	recv(t, c)
	// Stay away from Recv for several heartbeats while a message waits.
	select {
	case <-c.Done():
		t.Fatalf("connection ended while the consumer was slow: %v", c.Err())
	case <-time.After(400 * time.Millisecond):
	}
	recv(t, c)
	recv(t, c)
	if c.State() != transport.StateOpen {
		t.Fatalf("state %v", c.State())
	}
}

func TestTrySend(t *testing.T) {
	s := newServer(t, nil, echo)
	c := dial(t, s.wsURL(), nil)
	if !c.TrySend(transport.Message{Type: transport.Text, Data: []byte("queued")}) {
		t.Fatal("TrySend on an idle connection failed")
	}
	if got := recv(t, c); string(got.Data) != "queued" {
		t.Fatalf("got %q", got.Data)
	}
	c.Close(transport.StatusNormalClosure, "")
	if c.TrySend(transport.Message{Type: transport.Text, Data: []byte("late")}) {
		t.Fatal("TrySend after Close succeeded")
	}
}
