package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
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

// TestConnectSession: with stdout not a terminal, stdout holds the
// messages alone, one a line (for jq), and the rest goes to stderr.
func TestConnectSession(t *testing.T) {
	url := newWSServer(t, &transport.AcceptOptions{Subprotocols: []string{"echo.v1"}}, echoWS)
	stdin, in := io.Pipe()
	b := start(t, stdin, "connect", "--subprotocol", "echo.v1", url)
	send := func(line string) {
		t.Helper()
		if _, err := io.WriteString(in, line+"\n"); err != nil {
			t.Fatalf("write %q: %v", line, err)
		}
	}
	b.stderr.waitFor(t, regexp.MustCompile(`connected to .* \(subprotocol: echo\.v1\)`), b.ended)
	send(`{"hello": [1, 2]}`)
	b.stdout.waitFor(t, regexp.MustCompile(`^\{"hello": \[1, 2\]\}\n$`), b.ended)
	send("//slash")
	b.stdout.waitFor(t, regexp.MustCompile(`\n/slash\n$`), b.ended)
	send("/ping")
	b.stderr.waitFor(t, regexp.MustCompile(`< [\d:.]+ pong after \S+\n`), b.ended)
	send("/frob")
	b.stderr.waitFor(t, regexp.MustCompile(`unknown command /frob`), b.ended)
	send("/close 4001 bye now")
	if code := b.wait(t); code != exitOK {
		t.Errorf("code = %d, want 0; stderr:\n%s", code, b.stderr.String())
	}
	in.Close()
	golden(t, "connect-session", b.stdout.String())
	if !strings.HasSuffix(b.stderr.String(), "closed: 4001 \"bye now\"\n") {
		t.Errorf("stderr = %q, want the close at the end", b.stderr.String())
	}
}

func TestConnectBinary(t *testing.T) {
	url := newWSServer(t, nil, echoWS)
	tests := []struct {
		name string
		give []string
		line string
		want string // the echo on stdout
	}{
		{"hex", []string{"--binary"}, "0a 0b 0c", "0a0b0c\n"},
		{"base64", []string{"--base64"}, "CgsM", "CgsM\n"},
		{"raw", []string{"--binary", "--raw"}, "0a0b0c", "\x0a\x0b\x0c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdin, in := io.Pipe()
			b := start(t, stdin, append(append([]string{"connect"}, tt.give...), url)...)
			io.WriteString(in, "not hex!\n")
			b.stderr.waitFor(t, regexp.MustCompile(`not sent: bad `), b.ended)
			io.WriteString(in, tt.line+"\n")
			b.stdout.waitFor(t, regexp.MustCompile("^"+regexp.QuoteMeta(tt.want)+"$"), b.ended)
			io.WriteString(in, "/close\n")
			if code := b.wait(t); code != exitOK {
				t.Errorf("code = %d, want 0", code)
			}
			in.Close()
		})
	}
}

// TestConnectRaw: --raw writes each payload exactly: text and a newline,
// binary as its bytes.
func TestConnectRaw(t *testing.T) {
	url := newWSServer(t, nil, func(c *transport.Conn) {
		ctx := context.Background()
		c.Send(ctx, transport.Message{Type: transport.Text, Data: []byte(`{"a":1}`)})
		c.Send(ctx, transport.Message{Type: transport.Binary, Data: []byte{0, 1, 2}})
		c.Send(ctx, transport.Message{Type: transport.Text, Data: []byte("two\nlines")})
		c.Close(transport.StatusNormalClosure, "")
	})
	stdin, in := io.Pipe()
	defer in.Close()
	r := runCtx(t, context.Background(), stdin, "connect", "--raw", url)
	if r.code != exitOK {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	if want := "{\"a\":1}\n\x00\x01\x02two\nlines\n"; r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
}

// TestConnectPretty: --pretty indents JSON messages, and leaves the others
// as they came.
func TestConnectPretty(t *testing.T) {
	url := newWSServer(t, nil, func(c *transport.Conn) {
		ctx := context.Background()
		c.Send(ctx, transport.Message{Type: transport.Text, Data: []byte(`{"a":[1,2]}`)})
		c.Send(ctx, transport.Message{Type: transport.Text, Data: []byte(`not {json`)})
		c.Close(transport.StatusNormalClosure, "")
	})
	stdin, in := io.Pipe()
	defer in.Close()
	r := runCtx(t, context.Background(), stdin, "connect", "--pretty", url)
	if want := "{\n  \"a\": [\n    1,\n    2\n  ]\n}\nnot {json\n"; r.code != exitOK || r.stdout != want {
		t.Errorf("code %d, stdout %q, want %q", r.code, r.stdout, want)
	}
}

// TestConnectJSONRPC: 'METHOD [PARAMS]' lines become requests with ids 1,
// 2, ...; /notify sends a notification; a line starting with [ or { goes as
// it is; the replies are pretty-printed.
func TestConnectJSONRPC(t *testing.T) {
	got := make(chan string, 8)
	url := newWSServer(t, nil, func(c *transport.Conn) {
		n := 0
		for m := range c.Recv() {
			got <- string(m.Data)
			var req struct {
				ID json.RawMessage `json:"id"`
			}
			if json.Unmarshal(m.Data, &req) == nil && len(req.ID) > 0 {
				c.Send(context.Background(), transport.Message{Type: transport.Text, Data: []byte(`{"jsonrpc":"2.0","id":` + string(req.ID) + `,"result":true}`)})
			}
			if n++; n == 4 { // all that is sent: the server ends the session
				c.Close(transport.StatusNormalClosure, "")
			}
		}
	})
	stdin := strings.Join([]string{
		`add [1,2]`,
		`time`,
		`bad 5`,
		`/notify log {"text":"hi"}`,
		`[{"jsonrpc":"2.0","id":"x","method":"m"}]`,
		`add {"a":`,
	}, "\n") + "\n"
	r := runCmd(t, stdin, "connect", "--jsonrpc", "--linger", "1m", url)
	if r.code != exitOK {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	var sent []string
	for range 4 {
		sent = append(sent, <-got)
	}
	want := []string{
		`{"jsonrpc":"2.0","id":1,"method":"add","params":[1,2]}`,
		`{"jsonrpc":"2.0","id":2,"method":"time"}`,
		`{"jsonrpc":"2.0","method":"log","params":{"text":"hi"}}`,
		`[{"jsonrpc":"2.0","id":"x","method":"m"}]`,
	}
	if !slices.Equal(sent, want) {
		t.Errorf("sent %q\nwant %q", sent, want)
	}
	reply := func(id string) string {
		return "{\n  \"jsonrpc\": \"2.0\",\n  \"id\": " + id + ",\n  \"result\": true\n}\n"
	}
	if wantOut := reply("1") + reply("2"); r.stdout != wantOut {
		t.Errorf("stdout = %q, want %q", r.stdout, wantOut)
	}
	for _, want := range []string{
		"not sent: PARAMS must be a JSON array or object, not 5",
		`not sent: PARAMS is not valid JSON: {"a":`,
		"closed: 1000 normal closure",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// TestConnectJSONRPCToWsrpc: --jsonrpc against a wsrpc server, which
// speaks JSON-RPC when no subprotocol is offered.
func TestConnectJSONRPCToWsrpc(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, "add [1,2,3]\nnope\n", "connect", "--jsonrpc", ts.url) // the default linger: 1s of quiet
	if r.code != exitOK {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	replies := map[float64]map[string]any{}             // by id: the server answers in any order
	dec := json.NewDecoder(strings.NewReader(r.stdout)) // pretty-printed documents, one after the other
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%v in %q", err, r.stdout)
		}
		id, _ := m["id"].(float64)
		replies[id] = m
	}
	if len(replies) != 2 || replies[1]["result"] != 6.0 || replies[2]["error"] == nil {
		t.Errorf("replies = %v", replies)
	}
}

// TestConnectLinger pipes a line in and ends stdin at once: the echo still
// arrives before connect closes.
func TestConnectLinger(t *testing.T) {
	url := newWSServer(t, nil, echoWS)
	r := runCmd(t, "one\ntwo\n", "connect", url)
	if r.code != exitOK {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	if want := "one\ntwo\n"; r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
	if !strings.HasSuffix(r.stderr, "\nclosed: 1000 normal closure\n") {
		t.Errorf("stderr = %q, want the close at the end", r.stderr)
	}
}

func TestConnectServerCloses(t *testing.T) {
	url := newWSServer(t, nil, func(c *transport.Conn) {
		c.Send(context.Background(), transport.Message{Type: transport.Text, Data: []byte("welcome")})
		c.Close(4000, "bye")
	})
	stdin, in := io.Pipe() // never written: connect must end on its own
	defer in.Close()
	r := runCtx(t, context.Background(), stdin, "connect", url)
	if r.code != exitOK {
		t.Errorf("code = %d, want 0; stderr %q", r.code, r.stderr)
	}
	if r.stdout != "welcome\n" || !strings.HasSuffix(r.stderr, "\nclosed: 4000 \"bye\"\n") {
		t.Errorf("stdout = %q, stderr = %q", r.stdout, r.stderr)
	}
}

func TestConnectServerDrops(t *testing.T) {
	url := newWSServer(t, nil, func(c *transport.Conn) { c.CloseNow() })
	stdin, in := io.Pipe()
	defer in.Close()
	r := runCtx(t, context.Background(), stdin, "connect", url)
	if r.code != exitFailure {
		t.Errorf("code = %d, want 1 for an abnormal end", r.code)
	}
	if r.stdout != "" || !strings.Contains(r.stderr, "\nclosed: 1006 abnormal closure") {
		t.Errorf("stdout = %q, stderr = %q, want the 1006", r.stdout, r.stderr)
	}
}

func TestConnectInterrupted(t *testing.T) {
	url := newWSServer(t, nil, echoWS)
	stdin, in := io.Pipe()
	defer in.Close()
	b := start(t, stdin, "connect", url)
	b.stderr.waitFor(t, regexp.MustCompile(`connected to`), b.ended)
	b.cancel() // SIGINT
	if code := b.wait(t); code != exitOK {
		t.Errorf("code = %d, want 0", code)
	}
	if got := b.stdout.String(); got != "" || !strings.HasSuffix(b.stderr.String(), "\nclosed: 1000 normal closure\n") {
		t.Errorf("stdout = %q, stderr = %q", got, b.stderr.String())
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
