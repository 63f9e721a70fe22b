package cli

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/wsrpc/wsrpc/transport"
)

// newWSServer serves WebSocket connections with handle on httptest and
// returns its ws:// URL. The cleanup waits for every handler.
func newWSServer(t *testing.T, opts *transport.AcceptOptions, handle func(*transport.Conn)) string {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []*transport.Conn
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		c, err := transport.Accept(w, r, opts)
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		handle(c)
		c.CloseNow() // waits for the connection's goroutines
	}))
	t.Cleanup(func() {
		mu.Lock()
		for _, c := range conns {
			c.CloseNow()
		}
		mu.Unlock()
		ts.Close()
		wg.Wait()
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http")
}

// echoWS sends back every message until the connection ends.
func echoWS(c *transport.Conn) {
	for m := range c.Recv() {
		if c.Send(context.Background(), m) != nil {
			return
		}
	}
}

func TestConnectSession(t *testing.T) {
	url := newWSServer(t, &transport.AcceptOptions{Subprotocols: []string{"echo.v1"}}, echoWS)
	stdin, in := io.Pipe()
	b := start(t, stdin, "connect", "--no-time", "--subprotocol", "echo.v1", url)
	send := func(line string) {
		t.Helper()
		if _, err := io.WriteString(in, line+"\n"); err != nil {
			t.Fatalf("write %q: %v", line, err)
		}
	}
	b.stderr.waitFor(t, regexp.MustCompile(`connected to .* \(subprotocol: echo\.v1\)`), b.ended)
	send("hello")
	b.stdout.waitFor(t, regexp.MustCompile(`< text: hello\n`), b.ended)
	send("//slash")
	b.stdout.waitFor(t, regexp.MustCompile(`< text: /slash\n`), b.ended)
	send("/ping")
	b.stdout.waitFor(t, regexp.MustCompile(`< pong after \S+\n`), b.ended)
	send("/frob")
	b.stderr.waitFor(t, regexp.MustCompile(`unknown command /frob`), b.ended)
	send("/close 4001 bye now")
	if code := b.wait(t); code != exitOK {
		t.Errorf("code = %d, want 0; stderr:\n%s", code, b.stderr.String())
	}
	in.Close()
	out := regexp.MustCompile(`pong after \S+`).ReplaceAllString(b.stdout.String(), "pong after RTT")
	golden(t, "connect-session", out)
}

func TestConnectTimestamps(t *testing.T) {
	url := newWSServer(t, nil, echoWS)
	stdin, in := io.Pipe()
	b := start(t, stdin, "connect", "--linger", "0", url)
	io.WriteString(in, "hi\n")
	b.stdout.waitFor(t, regexp.MustCompile(`(?m)^< \d\d:\d\d:\d\d\.\d\d\d text: hi$`), b.ended)
	in.Close() // EOF closes with 1000
	if code := b.wait(t); code != exitOK {
		t.Errorf("code = %d, want 0", code)
	}
	if !strings.HasSuffix(b.stdout.String(), "closed: 1000 normal closure\n") {
		t.Errorf("stdout = %q, want the 1000 close at the end", b.stdout.String())
	}
}

func TestConnectBinary(t *testing.T) {
	url := newWSServer(t, nil, echoWS)
	tests := []struct {
		name string
		give []string
		line string
	}{
		{"hex", []string{"--binary"}, "0a 0b 0c"},
		{"base64", []string{"--base64"}, "CgsM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdin, in := io.Pipe()
			b := start(t, stdin, append(append([]string{"connect", "--no-time"}, tt.give...), url)...)
			io.WriteString(in, "not hex!\n")
			b.stderr.waitFor(t, regexp.MustCompile(`not sent: bad `), b.ended)
			io.WriteString(in, tt.line+"\n")
			b.stdout.waitFor(t, regexp.MustCompile(`< binary \(3 bytes\): 0a0b0c\n`), b.ended)
			io.WriteString(in, "/close\n")
			if code := b.wait(t); code != exitOK {
				t.Errorf("code = %d, want 0", code)
			}
			in.Close()
		})
	}
}

// TestConnectLinger pipes a line in and ends stdin at once: the echo still
// arrives before connect closes.
func TestConnectLinger(t *testing.T) {
	url := newWSServer(t, nil, echoWS)
	r := runCmd(t, "one\ntwo\n", "connect", "--no-time", url)
	if r.code != exitOK {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	if want := "< text: one\n< text: two\nclosed: 1000 normal closure\n"; r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
}

func TestConnectServerCloses(t *testing.T) {
	url := newWSServer(t, nil, func(c *transport.Conn) {
		c.Send(context.Background(), transport.Message{Type: transport.Text, Data: []byte("welcome")})
		c.Close(4000, "bye")
	})
	stdin, in := io.Pipe() // never written: connect must end on its own
	defer in.Close()
	r := runCtx(t, context.Background(), stdin, "connect", "--no-time", url)
	if r.code != exitOK {
		t.Errorf("code = %d, want 0; stderr %q", r.code, r.stderr)
	}
	if want := "< text: welcome\nclosed: 4000 \"bye\"\n"; r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
}

func TestConnectServerDrops(t *testing.T) {
	url := newWSServer(t, nil, func(c *transport.Conn) { c.CloseNow() })
	stdin, in := io.Pipe()
	defer in.Close()
	r := runCtx(t, context.Background(), stdin, "connect", "--no-time", url)
	if r.code != exitFailure {
		t.Errorf("code = %d, want 1 for an abnormal end", r.code)
	}
	if !strings.HasPrefix(r.stdout, "closed: 1006 abnormal closure") {
		t.Errorf("stdout = %q, want the 1006", r.stdout)
	}
}

func TestConnectInterrupted(t *testing.T) {
	url := newWSServer(t, nil, echoWS)
	stdin, in := io.Pipe()
	defer in.Close()
	b := start(t, stdin, "connect", "--no-time", url)
	b.stderr.waitFor(t, regexp.MustCompile(`connected to`), b.ended)
	b.cancel() // SIGINT
	if code := b.wait(t); code != exitOK {
		t.Errorf("code = %d, want 0", code)
	}
	if got := b.stdout.String(); got != "closed: 1000 normal closure\n" {
		t.Errorf("stdout = %q", got)
	}
}

func TestConnectOriginAndHeaders(t *testing.T) {
	got := make(chan http.Header, 1)
	url := newWSServer(t, &transport.AcceptOptions{OriginPatterns: []string{"example.com"}}, func(c *transport.Conn) {
		got <- c.HandshakeHeader()
		c.Close(transport.StatusNormalClosure, "")
	})
	stdin, in := io.Pipe()
	defer in.Close()
	r := runCtx(t, context.Background(), stdin, "connect", "--no-time", "--origin", "https://example.com", "-H", "X-Test: yes", url)
	if r.code != exitOK {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	h := <-got
	if h.Get("Origin") != "https://example.com" || h.Get("X-Test") != "yes" {
		t.Errorf("handshake headers = %v", h)
	}

	r = runCmd(t, "", "connect", "--origin", "https://evil.example", url)
	if r.code != exitFailure || !strings.Contains(r.stderr, "HTTP 403 Forbidden") {
		t.Errorf("a refused origin: code %d, stderr %q; want 1 and the 403", r.code, r.stderr)
	}
}

func TestConnectUnreachable(t *testing.T) {
	r := runCmd(t, "", "connect", "ws://127.0.0.1:1/")
	if r.code != exitFailure {
		t.Errorf("code = %d, want 1", r.code)
	}
	if got, want := oneLine(t, r), "wsrpc connect: dial ws://127.0.0.1:1/: connection refused"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

func TestSendableCode(t *testing.T) {
	tests := []struct {
		give int
		want bool
	}{{999, false}, {1000, true}, {1003, true}, {1004, false}, {1005, false}, {1006, false}, {1007, true}, {1015, false}, {2999, false}, {3000, true}, {4999, true}, {5000, false}}
	for _, tt := range tests {
		if got := sendableCode(tt.give); got != tt.want {
			t.Errorf("sendableCode(%d) = %v, want %v", tt.give, got, tt.want)
		}
	}
}
