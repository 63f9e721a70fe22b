package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// streamServer is a server with the demo services, pub/sub with the demo
// topics and the streaming services, on httptest. ended receives how each
// countdown and tail call ended ("countdown: context canceled").
type streamServer struct {
	url   string
	tap   *brokerTap
	hub   *pubsub.Hub
	ended chan string
}

func newStreamServer(t *testing.T) *streamServer {
	t.Helper()
	hub, tap, err := demoHub(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := newStreaming(hub, tap)
	ss := &streamServer{tap: tap, hub: hub, ended: make(chan string, 16)}
	mux := services(true, nil, st)
	mux.Use(func(next handler.Handler) handler.Handler {
		return handler.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			result, err := next.ServeRPC(ctx, req)
			if req.Method == "countdown" || req.Method == "tail" {
				why := "ok"
				if err != nil {
					why = err.Error()
				}
				ss.ended <- req.Method + ": " + why
			}
			return result, err
		})
	})
	// Cleanups run last first: the streams end, then the server closes,
	// then the hub.
	t.Cleanup(func() { hub.Close() })
	ss.url = mountTestServer(t, mux, server.WithHub(hub)).url
	t.Cleanup(st.Stop)
	return ss
}

// waitEnded waits for the server's report that method ended, and returns
// how.
func (ss *streamServer) waitEnded(t *testing.T, method string) string {
	t.Helper()
	for {
		select {
		case s := <-ss.ended:
			if how, ok := strings.CutPrefix(s, method+": "); ok {
				return how
			}
		case <-time.After(testTimeout):
			t.Fatalf("%s never ended on the server", method)
			return ""
		}
	}
}

func TestCallStreamCountdown(t *testing.T) {
	_, url := startServe(t)
	for _, codec := range []string{"auto", "binary", "json"} {
		for _, window := range []string{"1", "2", "64", "65536"} {
			r := runCmd(t, "", "call", "--stream", "--codec", codec, "--window", window, url, "countdown", `{"from":5,"interval_ms":0}`)
			if r.code != exitOK || r.stdout != "5\n4\n3\n2\n1\n" || r.stderr != "end: \"liftoff\"\n" {
				t.Errorf("--codec %s --window %s: code %d, stdout %q, stderr %q; want 0, 5..1 and the end on stderr",
					codec, window, r.code, r.stdout, r.stderr)
			}
		}
	}
	// Paced: the results come at the interval, and the last is followed by
	// one more before the end.
	start := time.Now()
	r := runCmd(t, "", "call", "--stream", url, "countdown", `{"from":3,"interval_ms":50}`)
	if took := time.Since(start); r.code != exitOK || r.stdout != "3\n2\n1\n" || took < 150*time.Millisecond {
		t.Errorf("paced: code %d, stdout %q, stderr %q after %s", r.code, r.stdout, r.stderr, took)
	}
	// Nothing to count: no result, the end.
	r = runCmd(t, "", "call", "--stream", url, "countdown", `{"from":0}`)
	if r.code != exitOK || r.stdout != "" || r.stderr != "end: \"liftoff\"\n" {
		t.Errorf("from 0: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// A plain call waits the countdown out and gets the end alone.
	r = runCmd(t, "", "call", url, "countdown", `{"from":2,"interval_ms":1}`)
	if r.code != exitOK || r.stdout != "\"liftoff\"\n" || r.stderr != "" {
		t.Errorf("plain call: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// A method that does not stream just answers: that is the end; a null
	// end prints nothing.
	r = runCmd(t, "", "call", "--stream", url, "add", `[1,2]`)
	if r.code != exitOK || r.stdout != "" || r.stderr != "end: 3\n" {
		t.Errorf("add: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, "", "call", "--stream", url, "echo", `[{"a": [1, 2]}]`)
	if r.code != exitOK || r.stdout != "" || r.stderr != "end: [{\"a\":[1,2]}]\n" {
		t.Errorf("echo: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, "", "call", "--stream", url, "echo", `[null]`)
	if r.code != exitOK || r.stderr != "end: [null]\n" {
		t.Errorf("echo [null]: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestCallStreamErrors(t *testing.T) {
	_, url := startServe(t)
	tests := []struct {
		name string
		give []string
		want string // the one line on stderr
		code int    // the exit status
	}{
		{"from too big", []string{"countdown", `{"from":10001}`}, "error -32602: from must be between 0 and 10000", exitInvalid},
		{"interval too long", []string{"countdown", `{"from":1,"interval_ms":10001}`}, "error -32602: interval_ms must be between 0 and 10000", exitInvalid},
		{"negative interval", []string{"countdown", `{"from":1,"interval_ms":-1}`}, "error -32602: interval_ms must be between 0 and 10000", exitInvalid},
		{"tail without topic", []string{"tail", `{}`}, "error -32602: ", exitInvalid},
		{"tail bad topic", []string{"tail", `{"topic":"a..b"}`}, "error -32602: ", exitInvalid},
		{"unknown method", []string{"nope"}, `error -32601: method "nope" not found`, exitMethodNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, codec := range []string{"binary", "json"} {
				r := runCmd(t, "", append([]string{"call", "--stream", "--codec", codec, url}, tt.give...)...)
				if r.code != tt.code {
					t.Errorf("%s: code = %d, want %d", codec, r.code, tt.code)
				}
				if got := oneLine(t, r); !strings.HasPrefix(got, tt.want) {
					t.Errorf("%s: stderr = %q, want %q", codec, got, tt.want)
				}
			}
		})
	}
	// A plain call of tail must give max: tail never ends by itself.
	r := runCmd(t, "", "call", url, "tail", `{"topic":"time"}`)
	if got := oneLine(t, r); r.code != exitInvalid || !strings.Contains(got, "call it as a stream") {
		t.Errorf("plain tail: code %d, stderr %q", r.code, got)
	}
}

// fakeStreamServer serves one JSON-RPC stream by hand: it checks the
// window the request asked for, sends results as the credit allows, and
// ends as end says. It reports what it saw on the returned channel.
func fakeStreamServer(t *testing.T, results int, end string) (string, <-chan string) {
	t.Helper()
	seen := make(chan string, 16)
	url := newWSServer(t, &transport.AcceptOptions{Subprotocols: []string{rpc.SubprotocolJSON}}, func(c *transport.Conn) {
		ctx := context.Background()
		send := func(s string) { _ = c.Send(ctx, transport.Message{Type: transport.Text, Data: []byte(s)}) }
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Stream *uint64         `json:"$stream"`
		}
		m, ok := <-c.Recv()
		if !ok || json.Unmarshal(m.Data, &req) != nil || req.Stream == nil {
			seen <- "not a stream: " + string(m.Data)
			return
		}
		seen <- fmt.Sprintf("%s $stream %d", req.Method, *req.Stream)
		credit := *req.Stream
		for i := 1; i <= results; i++ {
			for credit == 0 {
				m, ok := <-c.Recv()
				if !ok {
					return
				}
				var cr struct {
					Method string `json:"method"`
					Params struct {
						Credit uint64 `json:"credit"`
					} `json:"params"`
				}
				if json.Unmarshal(m.Data, &cr) == nil && cr.Method == "$/stream.credit" {
					seen <- fmt.Sprintf("credit %d after %d", cr.Params.Credit, i-1)
					credit += cr.Params.Credit
				}
			}
			credit--
			send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"$/stream.item","params":{"id":%s,"item":{"n":%d}}}`, req.ID, i))
		}
		send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,%s}`, req.ID, end))
		for range c.Recv() { // until the client closes
		}
	})
	return url, seen
}

// TestCallStreamWindow: --window is the stream's credit on the wire; the
// caller grants more as it prints.
func TestCallStreamWindow(t *testing.T) {
	url, seen := fakeStreamServer(t, 7, `"result":{"done":true}`)
	r := runCmd(t, "", "call", "--stream", "--window", "3", url, "feed")
	if r.code != exitOK || r.stderr != "end: {\"done\":true}\n" {
		t.Fatalf("code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	var want strings.Builder
	for i := 1; i <= 7; i++ {
		fmt.Fprintf(&want, "{\"n\":%d}\n", i)
	}
	if r.stdout != want.String() {
		t.Errorf("stdout = %q, want %q", r.stdout, want.String())
	}
	if got := <-seen; got != "feed $stream 3" {
		t.Fatalf("the server saw %q, want a window of 3", got)
	}
	// 3 results on the initial credit; then grants, after at least those
	// 3 (small results let the window grow past 3: rpc.StreamWindowBytes).
	for len(seen) > 0 {
		if got := <-seen; !regexp.MustCompile(`^credit \d+ after [3-6]$`).MatchString(got) {
			t.Errorf("the server saw %q", got)
		}
	}
}

// A stream that ends with an error prints the results it sent, then the
// error as call prints it, and exits with 1.
func TestCallStreamEndsWithError(t *testing.T) {
	url, seen := fakeStreamServer(t, 2, `"error":{"code":-32050,"message":"the feed broke","data":{"at":2}}`)
	r := runCmd(t, "", "call", "--stream", "--codec", "json", url, "feed", `{"x":1}`)
	if r.code != exitFailure || r.stdout != "{\"n\":1}\n{\"n\":2}\n" || r.stderr != "error -32050: the feed broke (data: {\"at\":2})\n" {
		t.Errorf("code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if got := <-seen; got != fmt.Sprintf("feed $stream %d", rpc.DefaultStreamWindow) {
		t.Errorf("the server saw %q, want the default window", got)
	}
}

// SIGINT mid-stream cancels the call on the server (its handler's ctx
// ends) and exits with 130, saying so.
func TestCallStreamInterrupted(t *testing.T) {
	ss := newStreamServer(t)
	for _, codec := range []string{"binary", "json"} {
		b := start(t, strings.NewReader(""), "call", "--stream", "--codec", codec, "--window", "2", ss.url, "countdown", `{"from":10000,"interval_ms":5}`)
		b.stdout.waitFor(t, regexp.MustCompile(`^10000\n9999\n9998\n`), b.ended)
		b.cancel()
		if code := b.wait(t); code != exitInterrupted {
			t.Errorf("%s: code %d, want 130", codec, code)
		}
		if got := b.stderr.String(); !regexp.MustCompile(`^wsrpc call: interrupted after \d+ results\n$`).MatchString(got) {
			t.Errorf("%s: stderr %q", codec, got)
		}
		if how := ss.waitEnded(t, "countdown"); how != "context canceled" {
			t.Errorf("%s: the handler ended with %q, want its ctx cancelled", codec, how)
		}
	}
}

// --timeout bounds the whole stream only when given.
func TestCallStreamTimeout(t *testing.T) {
	ss := newStreamServer(t)
	r := runCmd(t, "", "call", "--stream", "--timeout", "300ms", ss.url, "countdown", `{"from":100,"interval_ms":50}`)
	if r.code != exitTimeout || !strings.HasPrefix(r.stdout, "100\n99\n") {
		t.Errorf("code %d, stdout %q", r.code, r.stdout)
	}
	if got := r.stderr; !regexp.MustCompile(`^(wsrpc call: timed out after 300ms|error -32002: .*)\n$`).MatchString(got) {
		t.Errorf("stderr = %q, want a timeout", got)
	}
	if how := ss.waitEnded(t, "countdown"); !strings.Contains(how, "deadline exceeded") && how != "context canceled" {
		t.Errorf("the handler ended with %q", how)
	}
}

func TestCallStreamTail(t *testing.T) {
	ss := newStreamServer(t)
	for _, codec := range []string{"binary", "json"} {
		topic := "chat." + codec
		b := start(t, strings.NewReader(""), "call", "--stream", "--codec", codec, ss.url, "tail", `{"topic":"chat.>","max":2}`)
		// Publish until the tail has taken two (it may subscribe after the
		// first publications).
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		for n := 1; ; n++ {
			if _, err := ss.hub.Publish(ctx, topic, map[string]int{"n": n}); err != nil {
				t.Fatal(err)
			}
			select {
			case <-b.ended:
			case <-time.After(20 * time.Millisecond):
				continue
			}
			break
		}
		cancel()
		if code := b.wait(t); code != exitOK || b.stderr.String() != "" {
			t.Fatalf("%s: code %d, stderr %q", codec, code, b.stderr.String())
		}
		lines := strings.Split(strings.TrimSuffix(b.stdout.String(), "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("%s: %d lines, want 2: %q", codec, len(lines), b.stdout.String())
		}
		var prev tailItem
		for i, line := range lines {
			var it tailItem
			if err := json.Unmarshal([]byte(line), &it); err != nil {
				t.Fatalf("%s: %q: %v", codec, line, err)
			}
			if it.Topic != topic || it.Epoch == "" || it.Dropped != 0 || !regexp.MustCompile(`^\{"n":\d+\}$`).Match(it.Data) {
				t.Errorf("%s: result %q", codec, line)
			}
			if i > 0 && it.Offset != prev.Offset+1 {
				t.Errorf("%s: offsets %d then %d", codec, prev.Offset, it.Offset)
			}
			prev = it
		}
		if how := ss.waitEnded(t, "tail"); how != "ok" {
			t.Errorf("%s: tail ended with %q", codec, how)
		}
	}

	// Interrupted: the tail's subscription goes with it.
	b := start(t, strings.NewReader(""), "call", "--stream", ss.url, "tail", `{"topic":"time"}`)
	deadline := time.Now().Add(testTimeout)
	for tails(ss.tap) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := ss.hub.Publish(context.Background(), timeTopic, "noon"); err != nil {
		t.Fatal(err)
	}
	b.stdout.waitFor(t, regexp.MustCompile(`^\{"topic":"time","offset":\d+,"epoch":"\w+","data":"noon"\}\n$`), b.ended)
	b.cancel()
	if code := b.wait(t); code != exitInterrupted || b.stderr.String() != "wsrpc call: interrupted after 1 result\n" {
		t.Errorf("code %d, stderr %q", code, b.stderr.String())
	}
	if how := ss.waitEnded(t, "tail"); how != "context canceled" {
		t.Errorf("tail ended with %q", how)
	}
	if n := tails(ss.tap); n != 0 {
		t.Errorf("%d tails left on the tap", n)
	}
}

func tails(b *brokerTap) int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.tails)
}

// A tail whose caller does not keep up holds tailBuffer publications and
// drops the rest, counting them on the next one it keeps; the publisher
// never waits.
func TestTapDropsAndReports(t *testing.T) {
	tap := newBrokerTap(pubsub.NewMemoryBroker(0))
	if err := tap.Open(func(pubsub.Publication) {}); err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	ctx := context.Background()
	tl, err := tap.open(ctx, "t.*")
	if err != nil {
		t.Fatal(err)
	}
	publish := func(topic string, n int) {
		for i := range n {
			if _, err := tap.Publish(ctx, topic, fmt.Appendf(nil, "%d", i), pubsub.PublishOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish("t.a", tailBuffer+36)
	publish("other", 5) // not matched
	if len(tl.items) != tailBuffer {
		t.Fatalf("%d held, want %d", len(tl.items), tailBuffer)
	}
	<-tl.items
	publish("t.b", 1)
	for range tailBuffer - 1 {
		if it := <-tl.items; it.Dropped != 0 || it.Topic != "t.a" {
			t.Fatalf("%+v", it)
		}
	}
	if it := <-tl.items; it.Topic != "t.b" || it.Dropped != 36 || string(it.Data) != "0" {
		t.Errorf("the first after the drops: %+v, want 36 dropped", it)
	}
	tap.close(tl)
	publish("t.a", 1)
	if len(tl.items) != 0 || tails(tap) != 0 {
		t.Errorf("a closed tail still receives")
	}
}

// serve ends its streams when it shuts down: a tail does not hold the
// drain up, and its caller learns why it ended.
func TestServeEndsStreams(t *testing.T) {
	srv, url := startServe(t)
	b := start(t, strings.NewReader(""), "call", "--stream", url, "tail", `{"topic":"time"}`)
	b.stdout.waitFor(t, regexp.MustCompile(`"topic":"time"`), b.ended) // a tick a second
	start := time.Now()
	srv.cancel()
	if code := srv.wait(t); code != exitOK {
		t.Errorf("serve: code %d, stderr:\n%s", code, srv.stderr.String())
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("serve took %s to stop", took)
	}
	if code := b.wait(t); code == exitOK || code == exitUsage {
		t.Errorf("call: code %d", code)
	}
	if got := b.stderr.String(); !regexp.MustCompile(`^error -32\d{3}: stream ended: server shutting down\n$`).MatchString(got) {
		t.Errorf("call: stderr %q", got)
	}
	if !strings.Contains(srv.stderr.String(), "stopped; every call finished") {
		t.Errorf("serve did not drain cleanly:\n%s", srv.stderr.String())
	}
}

// Without pub/sub, tail says so.
func TestTailWithoutPubSub(t *testing.T) {
	_, url := startServe(t, "--demo-topics=false")
	r := runCmd(t, "", "call", "--stream", url, "tail", `{"topic":"time"}`)
	if got := oneLine(t, r); r.code != exitRetryLater || got != "error -32000: tail: this server has no pub/sub hub" {
		t.Errorf("code %d, stderr %q", r.code, got)
	}
	ts := newTestServer(t) // services without streaming: countdown still works
	r = runCmd(t, "", "call", "--stream", ts.url, "countdown", `{"from":2,"interval_ms":0}`)
	if r.code != exitOK || r.stdout != "2\n1\n" {
		t.Errorf("countdown: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// tail keeps the hub's subscribe rules: a topic the caller may not
// subscribe to is not tailed either, with the refusal a $/subscribe gets.
func TestTailKeepsSubscribeRules(t *testing.T) {
	hub, tap, err := newHub(nil, nil, pubsub.WithRule("secret.>", pubsub.Rule{
		Subscribe: func(context.Context, *rpc.Peer, string) error { return errors.New("staff only") },
	}))
	if err != nil {
		t.Fatal(err)
	}
	st := newStreaming(hub, tap)
	t.Cleanup(func() { hub.Close() })
	url := mountTestServer(t, services(false, nil, st), server.WithHub(hub)).url
	t.Cleanup(st.Stop)
	for _, topic := range []string{"secret.plans", "secret.>", ">"} {
		r := runCmd(t, "", "call", "--stream", url, "tail", `{"topic":"`+topic+`"}`)
		if got := oneLine(t, r); r.code != exitNotAllowed || !strings.Contains(got, "-32005") || !strings.Contains(got, "not allowed: staff only") {
			t.Errorf("tail %s: code %d, stderr %q", topic, r.code, got)
		}
	}
	r := runCmd(t, "", "call", url, "tail", `{"topic":"public","max":0}`)
	if r.code == exitOK {
		t.Errorf("a plain tail with no max succeeded: %q", r.stdout)
	}
}
