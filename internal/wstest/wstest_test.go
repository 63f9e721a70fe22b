package wstest_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/wsrpc/wsrpc/internal/wstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout only bounds failing tests; passing tests take milliseconds.
const testTimeout = 5 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newServer starts a wstest.Server that is closed when the test ends.
func newServer(t *testing.T, subprotocol string) *wstest.Server {
	t.Helper()
	srv, err := wstest.NewServer(subprotocol)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

type acceptResult struct {
	p   *wstest.Peer
	err error
}

// acceptAsync runs srv.Accept in a goroutine; the result must be received
// from the returned channel before the test ends.
func acceptAsync(ctx context.Context, srv *wstest.Server) <-chan acceptResult {
	ch := make(chan acceptResult, 1)
	go func() {
		p, err := srv.Accept(ctx)
		ch <- acceptResult{p, err}
	}()
	return ch
}

// newPair connects a DialPeer client to a wstest.Server and returns both
// ends; everything is closed when the test ends.
func newPair(t *testing.T, subprotocol string, header http.Header) (client, server *wstest.Peer) {
	t.Helper()
	ctx := testContext(t)
	srv := newServer(t, subprotocol)
	accepted := acceptAsync(ctx, srv)
	client, _, dialErr := wstest.DialPeer(ctx, srv.URL(), header)
	if dialErr != nil {
		_ = srv.Close() // unblocks Accept
	}
	res := <-accepted
	if dialErr != nil || res.err != nil {
		if client != nil {
			_ = client.Close()
		}
		if res.p != nil {
			_ = res.p.Close()
		}
		t.Fatalf("DialPeer: %v; Accept: %v", dialErr, res.err)
	}
	t.Cleanup(func() {
		_ = client.Close()
		_ = res.p.Close()
	})
	return client, res.p
}

// transfer writes f on from in a goroutine (large frames may not fit in the
// socket buffers) while reading one frame from to.
func transfer(t *testing.T, from, to *wstest.Peer, f wstest.Frame) wstest.Frame {
	t.Helper()
	werr := make(chan error, 1)
	go func() { werr <- from.WriteFrame(f) }()
	got, rerr := to.ReadFrame()
	if rerr != nil {
		_ = to.Close() // unblock the writer if it is stuck
	}
	if err := <-werr; err != nil {
		t.Fatalf("WriteFrame: %v", err)
	}
	if rerr != nil {
		t.Fatalf("ReadFrame: %v", rerr)
	}
	return got
}

func checkFrame(t *testing.T, got, want wstest.Frame) {
	t.Helper()
	if got.Fin != want.Fin || got.Opcode != want.Opcode || !bytes.Equal(got.Payload, want.Payload) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestTextRoundTrip(t *testing.T) {
	client, server := newPair(t, "", nil)
	if !client.IsClient() || server.IsClient() {
		t.Fatalf("IsClient: client %t, server %t", client.IsClient(), server.IsClient())
	}

	payload := []byte("hello, wsrpc")
	up := wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: payload}
	checkFrame(t, transfer(t, client, server, up), up)
	if string(payload) != "hello, wsrpc" {
		t.Fatalf("WriteFrame modified the caller's payload: %q", payload)
	}

	down := wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte("hello back")}
	checkFrame(t, transfer(t, server, client, down), down)

	// Fragmented message: frames arrive one by one, unassembled.
	frags := []wstest.Frame{
		{Fin: false, Opcode: wstest.OpText, Payload: []byte("frag")},
		{Fin: false, Opcode: wstest.OpContinuation, Payload: []byte("ment")},
		{Fin: true, Opcode: wstest.OpContinuation, Payload: []byte("ed")},
	}
	for _, f := range frags {
		checkFrame(t, transfer(t, client, server, f), f)
	}
}

func TestMasking(t *testing.T) {
	client, server := newPair(t, "", nil)
	f := wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte("abcd")}

	b := client.EncodeFrame(f)
	if len(b) != 2+4+4 || b[0] != 0x81 || b[1] != 0x80|4 {
		t.Fatalf("client encoding % x: want 81 84, a 4-byte key and 4 masked bytes", b)
	}
	unmasked := make([]byte, 4)
	for i := range unmasked {
		unmasked[i] = b[6+i] ^ b[2+i%4]
	}
	if string(unmasked) != "abcd" {
		t.Fatalf("client payload unmasks to %q", unmasked)
	}

	if b := server.EncodeFrame(f); !bytes.Equal(b, []byte("\x81\x04abcd")) {
		t.Fatalf("server encoding % x: want unmasked 81 04 61 62 63 64", b)
	}
}

func TestPayloadLengths(t *testing.T) {
	client, server := newPair(t, "", nil)
	for _, tc := range []struct {
		n         int
		indicator byte // 7-bit length field
		hdrLen    int  // header length without masking key
	}{
		{0, 0, 2},
		{125, 125, 2},
		{126, 126, 4},
		{65535, 126, 4},
		{65536, 127, 10},
		{70000, 127, 10},
	} {
		payload := make([]byte, tc.n)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		f := wstest.Frame{Fin: true, Opcode: wstest.OpBinary, Payload: payload}

		b := server.EncodeFrame(f)
		if b[1] != tc.indicator || len(b) != tc.hdrLen+tc.n {
			t.Fatalf("n=%d: length byte %d, encoded size %d; want %d, %d", tc.n, b[1], len(b), tc.indicator, tc.hdrLen+tc.n)
		}
		switch tc.indicator {
		case 126:
			if got := binary.BigEndian.Uint16(b[2:4]); int(got) != tc.n {
				t.Fatalf("n=%d: 16-bit length %d", tc.n, got)
			}
		case 127:
			if got := binary.BigEndian.Uint64(b[2:10]); got != uint64(tc.n) {
				t.Fatalf("n=%d: 64-bit length %d", tc.n, got)
			}
		}

		checkFrame(t, transfer(t, client, server, f), f)
		checkFrame(t, transfer(t, server, client, f), f)
	}
}

func TestCloseRoundTrip(t *testing.T) {
	client, server := newPair(t, "", nil)
	for _, tc := range []struct {
		code       int
		reason     string
		wantCode   int
		wantReason string
	}{
		{4001, "done", 4001, "done"},
		{1000, "", 1000, ""},
		{1001, "ünïcödé", 1001, "ünïcödé"},
		{-1, "", 1005, ""}, // empty close payload
	} {
		for _, dir := range []struct {
			name     string
			from, to *wstest.Peer
		}{{"client->server", client, server}, {"server->client", server, client}} {
			if err := dir.from.CloseFrame(tc.code, tc.reason); err != nil {
				t.Fatal(err)
			}
			code, reason, err := dir.to.ReadClose()
			if err != nil || code != tc.wantCode || reason != tc.wantReason {
				t.Fatalf("%s CloseFrame(%d, %q): ReadClose = %d, %q, %v; want %d, %q",
					dir.name, tc.code, tc.reason, code, reason, err, tc.wantCode, tc.wantReason)
			}
		}
	}

	if err := client.CloseFrame(-1, "reason"); err == nil {
		t.Fatal("CloseFrame(-1, non-empty reason) succeeded")
	}
	if err := client.CloseFrame(70000, ""); err == nil {
		t.Fatal("CloseFrame(70000) succeeded")
	}
}

func TestReadCloseDiscardsOtherFrames(t *testing.T) {
	client, server := newPair(t, "", nil)
	for _, f := range []wstest.Frame{
		{Fin: true, Opcode: wstest.OpText, Payload: []byte("data")},
		{Fin: true, Opcode: wstest.OpPing, Payload: []byte("ping")},
		{Fin: false, Opcode: wstest.OpBinary, Payload: []byte{1, 2}},
		{Fin: true, Opcode: wstest.OpPong},
		{Fin: true, Opcode: wstest.OpContinuation, Payload: []byte{3}},
	} {
		if err := server.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := server.CloseFrame(wstest.CloseGoingAway, "later"); err != nil {
		t.Fatal(err)
	}
	code, reason, err := client.ReadClose()
	if err != nil || code != 1001 || reason != "later" {
		t.Fatalf("ReadClose = %d, %q, %v; want 1001, \"later\"", code, reason, err)
	}
}

func TestReadCloseEOF(t *testing.T) {
	client, server := newPair(t, "", nil)
	if err := server.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if err := server.Close(); err != nil { // vanish without a close frame
		t.Fatal(err)
	}
	if _, _, err := client.ReadClose(); !errors.Is(err, io.EOF) {
		t.Fatalf("ReadClose after peer vanished: err = %v, want io.EOF", err)
	}
}

func TestWriteRawTruncatedFrame(t *testing.T) {
	client, server := newPair(t, "", nil)
	b := client.EncodeFrame(wstest.Frame{Fin: true, Opcode: wstest.OpBinary, Payload: make([]byte, 300)})
	if err := client.WriteRaw(b[:len(b)-10]); err != nil {
		t.Fatal(err)
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := server.ReadFrame(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadFrame of truncated frame: err = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestReadFrameProtocolErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		// write sends something invalid from one side; the other side's
		// ReadFrame must fail with ErrProtocol.
		write        func(client, server *wstest.Peer) error
		readAtServer bool
	}{
		{"masked frame to client", func(c, s *wstest.Peer) error {
			return s.WriteRaw(c.EncodeFrame(wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte("x")}))
		}, false},
		{"unmasked frame to server", func(c, s *wstest.Peer) error {
			return c.WriteRaw(s.EncodeFrame(wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte("x")}))
		}, true},
		{"reserved bit", func(c, s *wstest.Peer) error {
			b := s.EncodeFrame(wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte("x")})
			b[0] |= 0x40 // RSV1
			return s.WriteRaw(b)
		}, false},
		{"reserved opcode", func(c, s *wstest.Peer) error {
			return c.WriteFrame(wstest.Frame{Fin: true, Opcode: 0x3})
		}, true},
		{"fragmented ping", func(c, s *wstest.Peer) error {
			return s.WriteFrame(wstest.Frame{Fin: false, Opcode: wstest.OpPing})
		}, false},
		{"long ping", func(c, s *wstest.Peer) error {
			return c.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpPing, Payload: make([]byte, 126)})
		}, true},
		{"non-minimal length", func(c, s *wstest.Peer) error {
			return s.WriteRaw([]byte{0x82, 126, 0, 5, 1, 2, 3, 4, 5})
		}, false},
		{"one-byte close payload", func(c, s *wstest.Peer) error {
			return s.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: []byte{3}})
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := newPair(t, "", nil)
			if err := tc.write(client, server); err != nil {
				t.Fatal(err)
			}
			var err error
			switch {
			case tc.readAtServer:
				_, err = server.ReadFrame()
			case strings.HasPrefix(tc.name, "one-byte close"):
				_, _, err = client.ReadClose()
			default:
				_, err = client.ReadFrame()
			}
			if !errors.Is(err, wstest.ErrProtocol) {
				t.Fatalf("err = %v, want ErrProtocol", err)
			}
		})
	}
}

func TestWriteFrameBadOpcode(t *testing.T) {
	client, _ := newPair(t, "", nil)
	if err := client.WriteFrame(wstest.Frame{Opcode: 0x10}); err == nil {
		t.Fatal("WriteFrame with opcode 0x10 succeeded")
	}
}

func TestReadDeadline(t *testing.T) {
	client, server := newPair(t, "", nil)
	if err := client.SetDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := client.ReadFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrame past deadline: err = %v, want os.ErrDeadlineExceeded", err)
	}
	if err := server.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := server.ReadClose(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadClose past deadline: err = %v, want os.ErrDeadlineExceeded", err)
	}
}

func TestSubprotocol(t *testing.T) {
	offer := http.Header{}
	offer.Set("Sec-WebSocket-Protocol", "other, wsrpc.v1")
	for _, tc := range []struct {
		server string
		header http.Header
		want   string
	}{
		{"wsrpc.v1", offer, "wsrpc.v1"},
		{"*", offer, "other"},
		{"", offer, ""},
		{"wsrpc.v2", offer, ""},
		{"wsrpc.v1", nil, ""},
	} {
		client, server := newPair(t, tc.server, tc.header)
		if client.Subprotocol() != tc.want || server.Subprotocol() != tc.want {
			t.Errorf("server %q, offer %q: client chose %q, server chose %q; want %q",
				tc.server, tc.header.Get("Sec-WebSocket-Protocol"), client.Subprotocol(), server.Subprotocol(), tc.want)
		}
		if got, want := server.Header().Get("Sec-WebSocket-Protocol"), tc.header.Get("Sec-WebSocket-Protocol"); got != want {
			t.Errorf("server saw Sec-WebSocket-Protocol %q, want %q", got, want)
		}
	}
}

func TestAcceptHonoursContext(t *testing.T) {
	srv := newServer(t, "")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := srv.Accept(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Accept with cancelled context: err = %v, want context.Canceled", err)
	}

	// Cancel while Accept is (or is about to be) blocked.
	ctx, cancel = context.WithCancel(t.Context())
	accepted := acceptAsync(ctx, srv)
	cancel()
	if res := <-accepted; !errors.Is(res.err, context.Canceled) {
		t.Fatalf("Accept cancelled while waiting: err = %v, want context.Canceled", res.err)
	}

	// An expired deadline.
	ctx, cancel = context.WithDeadline(t.Context(), time.Now())
	defer cancel()
	if _, err := srv.Accept(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Accept with expired deadline: err = %v, want context.DeadlineExceeded", err)
	}

	// The server still works after all that.
	client, server := func() (*wstest.Peer, *wstest.Peer) {
		ctx := testContext(t)
		accepted := acceptAsync(ctx, srv)
		c, _, err := wstest.DialPeer(ctx, srv.URL(), nil)
		res := <-accepted
		if err != nil || res.err != nil {
			t.Fatalf("DialPeer: %v; Accept: %v", err, res.err)
		}
		return c, res.p
	}()
	defer client.Close()
	defer server.Close()
	f := wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte("still alive")}
	checkFrame(t, transfer(t, client, server, f), f)
}

func TestServerRejectsBadHandshake(t *testing.T) {
	ctx := testContext(t)
	srv := newServer(t, "")
	accepted := acceptAsync(ctx, srv)
	p, resp, err := wstest.DialPeer(ctx, srv.URL(), http.Header{"Sec-WebSocket-Version": {"8"}})
	res := <-accepted
	if err == nil {
		_ = p.Close()
		t.Fatal("DialPeer with version 8 succeeded")
	}
	if resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("DialPeer response %v, want 400", resp)
	}
	if res.err == nil {
		_ = res.p.Close()
		t.Fatal("Accept succeeded for a bad handshake")
	}
}

func TestDialPeerNon101(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusForbidden)
	}))
	defer ts.Close()

	p, resp, err := wstest.DialPeer(testContext(t), wsURL(ts), nil)
	if err == nil {
		_ = p.Close()
		t.Fatal("DialPeer succeeded against a non-WebSocket server")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("DialPeer response %v, want 403", resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if strings.TrimSpace(string(body)) != "nope" {
		t.Fatalf("response body %q, want \"nope\"", body)
	}
}

func wsURL(ts *httptest.Server) string { return "ws" + strings.TrimPrefix(ts.URL, "http") }

// TestDialPeerCoderServer checks DialPeer against a real WebSocket server.
func TestDialPeerCoderServer(t *testing.T) {
	ctx := testContext(t)
	handlerErr := make(chan error, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlerErr <- func() error {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"wsrpc.v1"}})
			if err != nil {
				return err
			}
			defer c.CloseNow()
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return err
			}
			if err := c.Write(ctx, typ, msg); err != nil {
				return err
			}
			return c.Close(4000, "bye")
		}()
	}))
	defer ts.Close()

	p, resp, err := wstest.DialPeer(ctx, wsURL(ts), http.Header{"Sec-WebSocket-Protocol": {"wsrpc.v1"}})
	if err != nil {
		t.Fatalf("DialPeer: %v", err)
	}
	defer p.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols || p.Subprotocol() != "wsrpc.v1" {
		t.Fatalf("status %d, subprotocol %q; want 101, wsrpc.v1", resp.StatusCode, p.Subprotocol())
	}

	// A fragmented text message, reassembled and echoed by the server.
	for _, f := range []wstest.Frame{
		{Fin: false, Opcode: wstest.OpText, Payload: []byte("echo ")},
		{Fin: true, Opcode: wstest.OpContinuation, Payload: []byte("me")},
	} {
		if err := p.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	f, err := p.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	checkFrame(t, f, wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte("echo me")})

	code, reason, err := p.ReadClose()
	if err != nil || code != 4000 || reason != "bye" {
		t.Fatalf("ReadClose = %d, %q, %v; want 4000, \"bye\"", code, reason, err)
	}
	// Complete the close handshake; the server then closes the TCP connection.
	if err := p.CloseFrame(code, reason); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ReadFrame(); err != io.EOF {
		t.Fatalf("ReadFrame after close handshake: err = %v, want io.EOF", err)
	}
	if err := <-handlerErr; err != nil {
		t.Fatalf("server: %v", err)
	}
}

// TestServerCoderClient checks Server against a real WebSocket client.
func TestServerCoderClient(t *testing.T) {
	ctx := testContext(t)
	srv := newServer(t, "wsrpc.v1")
	accepted := acceptAsync(ctx, srv)
	c, _, dialErr := websocket.Dial(ctx, srv.URL(), &websocket.DialOptions{Subprotocols: []string{"wsrpc.v1"}})
	res := <-accepted
	if dialErr != nil || res.err != nil {
		if dialErr == nil {
			_ = c.CloseNow()
		}
		if res.err == nil {
			_ = res.p.Close()
		}
		t.Fatalf("websocket.Dial: %v; Accept: %v", dialErr, res.err)
	}
	defer c.CloseNow()
	server := res.p
	defer server.Close()
	if c.Subprotocol() != "wsrpc.v1" {
		t.Fatalf("client subprotocol %q, want wsrpc.v1", c.Subprotocol())
	}

	if err := c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	f, err := server.ReadFrame() // fails unless the client masked it
	if err != nil {
		t.Fatal(err)
	}
	checkFrame(t, f, wstest.Frame{Fin: true, Opcode: wstest.OpBinary, Payload: []byte{1, 2, 3}})

	if err := server.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	typ, msg, err := c.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(msg) != "hi" {
		t.Fatalf("client Read = %v, %q, %v; want text \"hi\"", typ, msg, err)
	}

	if err := server.CloseFrame(4000, "bye"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != 4000 {
		t.Fatalf("client Read after close frame: err = %v, want close status 4000", err)
	}
	// The client answers the close frame.
	if code, _, err := server.ReadClose(); err != nil || code != 4000 {
		t.Fatalf("server ReadClose = %d, %v; want 4000", code, err)
	}
}

// TestConcurrentReadWrite exercises the documented guarantee that one reader
// and one writer may use a Peer at the same time.
func TestConcurrentReadWrite(t *testing.T) {
	client, server := newPair(t, "", nil)
	const n = 50
	payload := bytes.Repeat([]byte("x"), 1000)

	echoErr := make(chan error, 1)
	go func() { // server: echo n frames
		echoErr <- func() error {
			for range n {
				f, err := server.ReadFrame()
				if err != nil {
					return err
				}
				if err := server.WriteFrame(f); err != nil {
					return err
				}
			}
			return nil
		}()
	}()
	writeErr := make(chan error, 1)
	go func() { // client writer
		writeErr <- func() error {
			for range n {
				if err := client.WriteFrame(wstest.Frame{Fin: true, Opcode: wstest.OpBinary, Payload: payload}); err != nil {
					return err
				}
			}
			return nil
		}()
	}()
	var readErr error
	for i := 0; i < n && readErr == nil; i++ { // client reader
		var f wstest.Frame
		if f, readErr = client.ReadFrame(); readErr == nil && !bytes.Equal(f.Payload, payload) {
			readErr = errors.New("echoed payload differs")
		}
	}
	if readErr != nil { // unblock the goroutines before reporting
		_ = client.Close()
		_ = server.Close()
	}
	if err := <-writeErr; err != nil && readErr == nil {
		t.Fatalf("client write: %v", err)
	}
	if err := <-echoErr; err != nil && readErr == nil {
		t.Fatalf("server echo: %v", err)
	}
	if readErr != nil {
		t.Fatalf("client read: %v", readErr)
	}
}
