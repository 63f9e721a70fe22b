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
	if r.code != exitNotAllowed {
		t.Errorf("without the header: code %d, want 9", r.code)
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
		code int    // the exit status: the error's class
	}{
		{"unknown method", []string{"nope"}, `error -32601: method "nope" not found`, exitMethodNotFound},
		{"invalid params", []string{"add", `{"a":1}`}, "error -32602: invalid params: json: cannot unmarshal object into Go value of type []float64", exitInvalid},
		{"bad sleep", []string{"sleep", `{"ms":-1}`}, "error -32602: ms must be between 0 and 600000", exitInvalid},
		{"callback without method", []string{"callback", `{}`}, `error -32602: want {"method": M, "params": P}`, exitInvalid},
		{"broadcast scalar", []string{"broadcast", `"hi"`}, "error -32602: params must be an array or an object (JSON-RPC clients accept nothing else)", exitInvalid},
		{"unanswered callback", []string{"callback", `{"method":"client.nope"}`},
			"error -32601: the client answered the callback client.nope: method not found: client.nope (no --answer for it)", exitMethodNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, "", append([]string{"call", ts.url}, tt.give...)...)
			if r.code != tt.code {
				t.Errorf("code = %d, want %d", r.code, tt.code)
			}
			if got := oneLine(t, r); got != tt.want {
				t.Errorf("stderr = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCallUnreachable(t *testing.T) {
	r := runCmd(t, "", "call", "ws://127.0.0.1:1/rpc", "add", "[1]")
	if r.code != exitNoConnection {
		t.Errorf("code = %d, want 3", r.code)
	}
	if got, want := oneLine(t, r), "wsrpc call: dial ws://127.0.0.1:1/rpc: connection refused"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

func TestCallNotWebSocket(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, "", "call", strings.TrimSuffix(ts.url, "/rpc")+"/elsewhere", "add", "[1]")
	if r.code != exitNoConnection {
		t.Errorf("code = %d, want 3", r.code)
	}
	if got := oneLine(t, r); !strings.Contains(got, "HTTP 404 Not Found") {
		t.Errorf("stderr = %q, want the 404", got)
	}
}

func TestCallTimeout(t *testing.T) {
	ts := newTestServer(t)
	r := runCmd(t, "", "call", "--timeout", "200ms", ts.url, "sleep", `{"ms":5000}`)
	if r.code != exitTimeout {
		t.Errorf("code = %d, want 4", r.code)
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
	if r.code != exitInterrupted {
		t.Errorf("code = %d, want 130", r.code)
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
	if r.code != exitNoConnection {
		t.Errorf("code = %d, want 3", r.code)
	}
	if got, want := oneLine(t, r), "wsrpc notify: dial ws://127.0.0.1:1/rpc: connection refused"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

// discoverDoc is an OpenRPC document in the shape handler.Mux answers
// rpc.discover with.
const discoverDoc = `{"openrpc":"1.3.2","info":{"title":"demo","version":"0.1.0"},"methods":[
 {"name":"greet","summary":"says hello","params":[{"name":"params","schema":{"type":"object","properties":{"name":{"type":"string"},"polite":{"type":"boolean"}},"required":["name"]}}],"result":{"name":"result","schema":{"type":"string"}}},
 {"name":"add","params":[{"name":"params","schema":{"type":"array","items":{"type":"number"}}}],"result":{"name":"result","schema":{"type":"number"}}},
 {"name":"pair","description":"a tuple\nand more","params":[{"name":"params","schema":{"type":"array","prefixItems":[{"type":"integer"},{"type":["string","null"]}]}}],"result":{"name":"result","schema":{"enum":["a","b"]}}},
 {"name":"legacy","deprecated":true,"params":[{"name":"a","required":true,"schema":{"$ref":"#/components/schemas/Thing"}},{"name":"b","schema":{}}]},
 {"name":"free","params":[],"result":{"name":"result","schema":{"type":["object","null"],"additionalProperties":{"type":"integer"}}}},
 {"name":"echo"},
 {"name":"log","params":[{"name":"params","schema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}}]},
 {"name":"countdown","x-wsrpc-stream":true,"params":[{"name":"params","schema":{"type":"object","properties":{"from":{"type":"integer"}}}}],"result":{"name":"result","schema":{"type":"array","items":{"type":"integer"}}}},
 {"name":"point","params":[{"name":"params","schema":{"type":"array","items":{"type":"number"},"minItems":2,"maxItems":2}}],"result":{"name":"result","schema":{"$ref":"#/components/schemas/Point"}}},
 {"name":"tree","params":[],"result":{"name":"result","schema":{"$ref":"#/components/schemas/Tree"}}}
],"components":{"schemas":{
 "Point":{"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"}},"required":["x","y"]},
 "Tree":{"type":"object","properties":{"kids":{"type":["array","null"],"items":{"$ref":"#/components/schemas/Tree"}}}}}}}`

// discoverServer answers rpc.discover with doc (or method-not-found when
// doc is empty) and echo otherwise.
func discoverServer(t *testing.T, doc string) string {
	t.Helper()
	return newRPCServer(t, nil, func(_ context.Context, req *rpc.Request) ([]byte, error) {
		if req.Method == "rpc.discover" && doc != "" {
			return []byte(doc), nil
		}
		return nil, rpc.Errorf(rpc.CodeMethodNotFound, "method %q not found", req.Method)
	})
}

func TestCallList(t *testing.T) {
	url := discoverServer(t, discoverDoc)
	r := runCmd(t, "", "call", "--list", url)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	golden(t, "call-list", r.stdout)

	r = runCmd(t, "", "call", "--list", discoverServer(t, ""))
	if got := oneLine(t, r); r.code != exitMethodNotFound || got != "wsrpc call: the server does not list its methods: rpc.discover: method not found" {
		t.Errorf("no discovery: code %d, stderr %q", r.code, got)
	}
	r = runCmd(t, "", "call", "--list", discoverServer(t, `[1,2]`))
	if got := oneLine(t, r); r.code != exitFailure || !strings.HasPrefix(got, "wsrpc call: rpc.discover answered what is not an OpenRPC document") {
		t.Errorf("not a document: code %d, stderr %q", r.code, got)
	}
	for _, args := range [][]string{{"--list", url, "add"}, {"--list"}, {"--list", "--stream", url}} {
		r := runCmd(t, "", append([]string{"call"}, args...)...)
		if r.code != exitUsage {
			t.Errorf("%q: code %d, want 2 (stderr %q)", args, r.code, r.stderr)
		}
	}
}

func TestSchemaType(t *testing.T) {
	tests := []struct{ give, want string }{
		{``, "any"},
		{`true`, "any"},
		{`{}`, "any"},
		{`false`, "never"},
		{`{"type":"string"}`, "string"},
		{`{"type":["number","null"]}`, "number|null"},
		{`{"type":"array","items":{"type":"string"}}`, "[]string"},
		{`{"type":["array","null"],"items":{"type":"number"}}`, "[]number|null"},
		{`{"type":"array","items":{"type":"number"},"minItems":3,"maxItems":3}`, "[3]number"},
		{`{"type":"array"}`, "[]any"},
		{`{"type":"array","items":[{"type":"integer"},{"type":"string"}]}`, "[integer, string]"},
		{`{"type":"object","properties":{"b":{"type":"integer"},"a":{"type":"string"}},"required":["b"]}`, "{a?: string, b: integer}"},
		{`{"properties":{"x":{"type":"number"}}}`, "{x?: number}"},
		{`{"type":"object"}`, "object"},
		{`{"type":"object","additionalProperties":{"type":"number"}}`, "map[string]number"},
		{`{"description":"any JSON value (T has its own MarshalJSON)"}`, "any"},
		{`{"type":"string","format":"date-time"}`, "string"},
		{`{"$ref":"#/components/schemas/Point"}`, "Point"},
		{`{"const":"on"}`, `"on"`},
		{`{"enum":[1,"two",null]}`, `1|"two"|null`},
		{`{"anyOf":[{"type":"string"},{"type":"array","items":{"type":"string"}}]}`, "string|[]string"},
		{`{"oneOf":[{"type":"integer"},{"const":false}]}`, "integer|false"},
		{`{"type":"array","items":{"type":"array","items":{"type":"array","items":{"type":"array"}}}}`, "[][][]…"},
		{`"nonsense"`, "?"},
	}
	for _, tt := range tests {
		if got := schemaType(json.RawMessage(tt.give), 0); got != tt.want {
			t.Errorf("schemaType(%s) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

// TestSchemaRefs: a $ref is described as the component it names, once:
// a type that refers to itself shows its name there.
func TestSchemaRefs(t *testing.T) {
	x := &schemaText{components: map[string]json.RawMessage{
		"P":    json.RawMessage(`{"type":"object","properties":{"x":{"type":"number"}},"required":["x"]}`),
		"List": json.RawMessage(`{"type":"object","properties":{"next":{"anyOf":[{"$ref":"#/components/schemas/List"},{"type":"null"}]}}}`),
	}}
	tests := []struct{ give, want string }{
		{`{"$ref":"#/components/schemas/P"}`, "{x: number}"},
		{`{"type":"array","items":{"$ref":"#/components/schemas/P"}}`, "[]{x: number}"},
		{`{"$ref":"#/components/schemas/List"}`, "{next?: List|null}"},
		{`{"$ref":"#/components/schemas/Missing"}`, "Missing"},
		{`{"$ref":"http://example.com/P"}`, "P"},
	}
	for _, tt := range tests {
		if got := x.of(json.RawMessage(tt.give), 0); got != tt.want {
			t.Errorf("of(%s) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestCallVerbose(t *testing.T) {
	ts := newTestServer(t, server.WithAuth(func(r *http.Request) (any, error) { return r.Header.Get("Authorization"), nil }))
	r := runCmd(t, "", "call", "-v", "-H", "Authorization: Bearer s3cret-token", "--codec", "json", ts.url, "add", "[1,2]")
	if r.code != exitOK || r.stdout != "3\n" {
		t.Fatalf("code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(ts.url, "ws://"), "/rpc")
	for _, re := range []string{
		`^\* connected to ` + regexp.QuoteMeta(host) + ` in [\d.]+ms\n> GET /rpc HTTP/1\.1\n> Host: ` + regexp.QuoteMeta(host) + `\n`,
		`(?m)^> Authorization: Bearer <hidden, 12 bytes>$`,
		`(?m)^> Sec-Websocket-Protocol: jsonrpc2\.0$`,
		`(?m)^> Upgrade: websocket$`,
		`(?m)^>\n< HTTP/1\.1 101 Switching Protocols\n`,
		`(?m)^< Sec-Websocket-Protocol: jsonrpc2\.0$`,
		`(?m)^<\n\* WebSocket handshake done in [\d.]+ms \(response after [\d.]+ms\), subprotocol jsonrpc2\.0\n\* call add: result after [\d.]+ms\n$`,
	} {
		if !regexp.MustCompile(re).MatchString(r.stderr) {
			t.Errorf("stderr does not match %s:\n%s", re, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "s3cret") {
		t.Errorf("-v shows the credentials:\n%s", r.stderr)
	}

	// A refused handshake is shown too, and so is a failed call.
	r = runCmd(t, "", "call", "-v", strings.TrimSuffix(ts.url, "/rpc")+"/nowhere", "add", "[1]")
	if r.code != exitNoConnection || !regexp.MustCompile(`(?m)^< HTTP/1\.1 404 Not Found\n(.|\n)*^\* handshake failed after [\d.]+ms\nwsrpc call: dial .*404`).MatchString(r.stderr) {
		t.Errorf("refused: code %d, stderr:\n%s", r.code, r.stderr)
	}
	r = runCmd(t, "", "call", "-v", ts.url, "nope")
	if r.code != exitMethodNotFound || !regexp.MustCompile(`(?m)^\* call nope: error after [\d.]+ms\nerror -32601: `).MatchString(r.stderr) {
		t.Errorf("failed call: code %d, stderr:\n%s", r.code, r.stderr)
	}
}

func TestExitStatusOf(t *testing.T) {
	tests := []struct {
		give rpc.Code
		want int
	}{
		{rpc.CodeConnectionLost, 3}, {rpc.CodeDeadlineExceeded, 4}, {rpc.CodeMethodNotFound, 5},
		{rpc.CodeInvalidParams, 6}, {rpc.CodeInvalidRequest, 6}, {rpc.CodeParseError, 6},
		{rpc.CodeInternalError, 7}, {rpc.CodeUnavailable, 8}, {rpc.CodeBusy, 8},
		{rpc.CodeUnauthenticated, 9}, {rpc.CodePermissionDenied, 9}, {rpc.CodeCanceled, 10},
		{42, 1}, {-32099, 1},
	}
	for _, tt := range tests {
		if got := exitStatusOf(tt.give); got != tt.want {
			t.Errorf("exitStatusOf(%d) = %d, want %d", tt.give, got, tt.want)
		}
	}
}

// TestServeList: call --list against the real wsrpc serve, which answers
// rpc.discover with the schemas of its Go types.
func TestServeList(t *testing.T) {
	b, url := startServe(t, "--log-level", "error")
	r := runCmd(t, "", "call", "--list", url)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("code %d, stderr %q", r.code, r.stderr)
	}
	for _, re := range []string{
		`^wsrpc serve \S+: \d+ methods\nMETHOD +PARAMS +RESULT\n`,
		`(?m)^add +\[\]number(\|null)? +number$`,
		`(?m)^sleep +\{ms: integer\} +\{slept_ms: integer\}$`,
		`(?m)^tail +\{max: integer, topic: string\} +stream of \{data: any, `,
		`(?m)^whoami +- +\{conn_id: string, `,
	} {
		if !regexp.MustCompile(re).MatchString(r.stdout) {
			t.Errorf("the list does not match %s:\n%s", re, r.stdout)
		}
	}
	b.cancel()
	b.wait(t)
}
