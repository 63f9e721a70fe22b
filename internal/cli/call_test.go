package cli

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

func TestCallAdd(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, "", "call", ts.url, "add", "[1,2,3]")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	golden(t, "call-add", r.stdout)
}

func TestCallEchoFromStdin(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, `{"list": [1, 2], "text": "héllo"}`, "call", ts.url, "echo", "-")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	golden(t, "call-echo-stdin", r.stdout)
}

func TestCallTime(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, "", "call", ts.url, "time")
	if r.code != exitOK {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	var s string
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339, s); err != nil {
		t.Errorf("time = %q: %v", s, err)
	}
}

func TestCallFlagsAfterArguments(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, "", "call", ts.url, "add", "[1,2]", "--codec", "json", "--timeout", "5s")
	if r.code != exitOK || r.stdout != "3\n" {
		t.Errorf("code %d, stdout %q, stderr %q; want 0 and 3", r.code, r.stdout, r.stderr)
	}
}

func TestCallCodecs(t *testing.T) {
	ts := newTestServer(t)
	jsonOnly := newTestServer(t, rpc.WithSubprotocols(rpc.SubprotocolJSON))
	for _, tt := range []struct {
		url  string
		give []string // the --codec flag, if any
		want string
	}{
		{ts.url, nil, rpc.SubprotocolBinary},     // the default: binary first...
		{jsonOnly.url, nil, rpc.SubprotocolJSON}, // ...then JSON-RPC
		{ts.url, []string{"--codec", "auto"}, rpc.SubprotocolBinary},
		{ts.url, []string{"--codec", "binary"}, rpc.SubprotocolBinary},
		{ts.url, []string{"--codec", "json"}, rpc.SubprotocolJSON},
	} {
		args := append(append([]string{"call"}, tt.give...), tt.url, "whoami")
		r := runCmd(t, "", args...)
		if r.code != exitOK {
			t.Fatalf("%q: code %d, stderr %q", args, r.code, r.stderr)
		}
		var id identity
		if err := json.Unmarshal([]byte(r.stdout), &id); err != nil {
			t.Fatalf("%q: %v in %q", args, err, r.stdout)
		}
		if id.Subprotocol != tt.want || id.ConnID == "" || !strings.HasPrefix(id.RemoteAddr, "127.0.0.1:") {
			t.Errorf("%q: whoami = %+v, want subprotocol %s", args, id, tt.want)
		}
		if strings.Contains(r.stdout, `"metadata"`) {
			t.Errorf("%q: whoami of a call without metadata shows some:\n%s", args, r.stdout)
		}
	}
}

// TestWhoamiMetadata: whoami shows the metadata its call carries.
func TestWhoamiMetadata(t *testing.T) {
	ts := newTestServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, codec := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		c, err := dialClient(ctx, ts.url, rpc.WithSubprotocols(codec))
		if err != nil {
			t.Fatal(err)
		}
		md := rpc.Metadata{"request-id": "r1", "tenant": "acme"}
		var id identity
		err = c.Call(ctx, "whoami", nil, &id, client.WithMetadata(md))
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v", codec, err)
		}
		if !maps.Equal(id.Metadata, md) || id.Subprotocol != codec {
			t.Errorf("%s: whoami = %+v, want metadata %v", codec, id, md)
		}
	}
}

func TestCallHeaders(t *testing.T) {
	ts := newTestServer(t, server.WithAuth(func(r *http.Request) (any, error) {
		if tok := r.Header.Get("X-Token"); tok != "" {
			return tok, nil
		}
		return nil, errors.New("no token")
	}))
	r := runCmd(t, "", "call", "-H", "X-Token: s3cret", "-H", "X-Other: 1", ts.url, "whoami")
	if r.code != exitOK {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	var id identity
	if err := json.Unmarshal([]byte(r.stdout), &id); err != nil {
		t.Fatal(err)
	}
	if id.Principal != "s3cret" {
		t.Errorf("principal = %v, want the token sent with -H", id.Principal)
	}

	r = runCmd(t, "", "call", ts.url, "whoami")
	if r.code != exitFailure {
		t.Errorf("without the header: code %d, want 1", r.code)
	}
	want := "wsrpc call: dial " + ts.url + ": the server answered HTTP 401 Unauthorized instead of switching protocols"
	if got := oneLine(t, r); got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

func TestCallErrors(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		name string
		give []string
		want string // the one line on stderr
	}{
		{"unknown method", []string{"nope"}, `error -32601: method "nope" not found`},
		{"invalid params", []string{"add", `{"a":1}`}, "error -32602: invalid params: json: cannot unmarshal object into Go value of type []float64"},
		{"bad sleep", []string{"sleep", `{"ms":-1}`}, "error -32602: ms must be between 0 and 600000"},
		{"callback without method", []string{"callback", `{}`}, `error -32602: want {"method": M, "params": P}`},
		{"broadcast scalar", []string{"broadcast", `"hi"`}, "error -32602: params must be an array or an object (JSON-RPC clients accept nothing else)"},
		{"unanswered callback", []string{"callback", `{"method":"client.nope"}`},
			"error -32601: the client answered the callback client.nope: method not found: client.nope (no --answer for it)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, "", append([]string{"call", ts.url}, tt.give...)...)
			if r.code != exitFailure {
				t.Errorf("code = %d, want 1", r.code)
			}
			if got := oneLine(t, r); got != tt.want {
				t.Errorf("stderr = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCallUnreachable(t *testing.T) {
	r := runCmd(t, "", "call", "ws://127.0.0.1:1/rpc", "add", "[1]")
	if r.code != exitFailure {
		t.Errorf("code = %d, want 1", r.code)
	}
	if got, want := oneLine(t, r), "wsrpc call: dial ws://127.0.0.1:1/rpc: connection refused"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

func TestCallNotWebSocket(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, "", "call", strings.TrimSuffix(ts.url, "/rpc")+"/elsewhere", "add", "[1]")
	if r.code != exitFailure {
		t.Errorf("code = %d, want 1", r.code)
	}
	if got := oneLine(t, r); !strings.Contains(got, "HTTP 404 Not Found") {
		t.Errorf("stderr = %q, want the 404", got)
	}
}

func TestCallTimeout(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, "", "call", "--timeout", "200ms", ts.url, "sleep", `{"ms":5000}`)
	if r.code != exitFailure {
		t.Errorf("code = %d, want 1", r.code)
	}
	// The deadline travels with the call: whichever side sees it pass first
	// reports it.
	if got := oneLine(t, r); !regexp.MustCompile(`^(wsrpc call: timed out after 200ms|error -32002: .*)$`).MatchString(got) {
		t.Errorf("stderr = %q, want a timeout", got)
	}
}

func TestCallInterrupted(t *testing.T) {
	ts := newTestServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	timer := time.AfterFunc(100*time.Millisecond, cancel)
	defer timer.Stop()
	r := runCtx(t, ctx, strings.NewReader(""), "call", ts.url, "sleep", `{"ms":5000}`)
	if r.code != exitFailure {
		t.Errorf("code = %d, want 1", r.code)
	}
	if got := oneLine(t, r); got != "wsrpc call: interrupted" {
		t.Errorf("stderr = %q", got)
	}
}

func TestCallAnswersCallbacks(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, "", "call", "--answer", "testdata/answers.json", ts.url, "callback", `{"method":"client.version","params":[]}`)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	golden(t, "call-callback", r.stdout)

	r = runCmd(t, "", "call", "--codec", "json", "--answer", "testdata/answers.json", ts.url, "callback", `{"method":"client.ping"}`)
	if r.code != exitOK || r.stdout != "\"pong\"\n" {
		t.Errorf("over JSON-RPC: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// listenBroadcasts connects a JSON-RPC client that records the
// notifications it receives.
func listenBroadcasts(t *testing.T, url string) <-chan string {
	t.Helper()
	notes := make(chan string, 4)
	c, err := dialClient(context.Background(), url, rpc.WithSubprotocols(rpc.SubprotocolJSON),
		rpc.WithHandler(rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
			if req.IsNotification() {
				notes <- req.Method + " " + string(req.Params)
			}
			return nil, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return notes
}

func TestNotify(t *testing.T) {
	// The server registers a connection just after its handshake: wait for
	// the listener to be in the registry, or the broadcast may miss it.
	registered := make(chan struct{}, 1)
	ts := newTestServer(t, server.WithOnConnect(func(*rpc.Peer) {
		select {
		case registered <- struct{}{}:
		default:
		}
	}))
	notes := listenBroadcasts(t, ts.url)
	select {
	case <-registered:
	case <-time.After(testTimeout):
		t.Fatal("the listener never appeared in the server's registry")
	}
	for _, codec := range []string{"auto", "binary", "json"} {
		r := runCmd(t, "", "notify", "--codec", codec, ts.url, "broadcast", `{"text":"hi"}`)
		if r.code != exitOK || r.stdout != "" || r.stderr != "" {
			t.Fatalf("--codec %s: code %d, stdout %q, stderr %q; want 0 and silence", codec, r.code, r.stdout, r.stderr)
		}
		select {
		case n := <-notes:
			if n != `broadcast {"text":"hi"}` {
				t.Errorf("the listener got %q", n)
			}
		case <-time.After(testTimeout):
			t.Fatal("the listener got no broadcast")
		}
	}
}

// TestNotifyOnTheWire checks the notification's frame and the clean close
// that follows it.
func TestNotifyOnTheWire(t *testing.T) {
	type seen struct {
		msgs []string
		err  error
	}
	got := make(chan seen, 1)
	url := newWSServer(t, &transport.AcceptOptions{Subprotocols: []string{rpc.SubprotocolJSON}}, func(c *transport.Conn) {
		var s seen
		for m := range c.Recv() {
			s.msgs = append(s.msgs, string(m.Data))
		}
		<-c.Done()
		s.err = c.Err()
		got <- s
	})
	r := runCmd(t, "", "notify", "--codec", "json", url, "ping", `[1,"two"]`)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	s := <-got
	if want := `{"jsonrpc":"2.0","method":"ping","params":[1,"two"]}`; len(s.msgs) != 1 || s.msgs[0] != want {
		t.Errorf("the server received %q, want [%s]", s.msgs, want)
	}
	var ce *transport.CloseError
	if !errors.As(s.err, &ce) || ce.Code != transport.StatusNormalClosure || !ce.Remote {
		t.Errorf("the connection ended with %v, want a 1000 from the client", s.err)
	}
}

func TestNotifyUnreachable(t *testing.T) {
	r := runCmd(t, "", "notify", "ws://127.0.0.1:1/rpc", "m")
	if r.code != exitFailure {
		t.Errorf("code = %d, want 1", r.code)
	}
	if got, want := oneLine(t, r), "wsrpc notify: dial ws://127.0.0.1:1/rpc: connection refused"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}
