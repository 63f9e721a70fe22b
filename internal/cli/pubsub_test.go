package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// pubsubServer is a test server with a hub of its own: secret.> may not
// be subscribed to, drop.> publications are dropped, and every other topic
// keeps history and may be published on by clients.
type pubsubServer struct {
	url        string
	hub        *pubsub.Hub
	subscribed chan subscription // each subscription made
}

// subscription is a subscription the server made.
type subscription struct {
	peer    *rpc.Peer
	pattern string
}

func newPubsubServer(t *testing.T) *pubsubServer {
	t.Helper()
	ps := &pubsubServer{subscribed: make(chan subscription, 16)}
	allow := func(context.Context, *rpc.Peer, *pubsub.Message) error { return nil }
	hub, err := pubsub.New(
		pubsub.WithRule("secret.>", pubsub.Rule{
			Subscribe: func(context.Context, *rpc.Peer, string) error { return errors.New("secrets stay secret") },
		}),
		pubsub.WithRule("drop.>", pubsub.Rule{
			Publish: func(context.Context, *rpc.Peer, *pubsub.Message) error { return pubsub.ErrDrop },
		}),
		pubsub.WithRule(">", pubsub.Rule{
			HistorySize: 100,
			Publish:     allow,
			AfterSubscribe: func(p *rpc.Peer, pattern string) {
				select {
				case ps.subscribed <- subscription{p, pattern}:
				default:
				}
			},
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Close() }) // after the server's cleanup below
	ps.hub = hub
	ps.url = newTestServer(t, server.WithHub(hub)).url
	return ps
}

// waitSubscribed waits until the server has made n subscriptions and
// returns their patterns, sorted, and the connection of the last one.
func (ps *pubsubServer) waitSubscribed(t *testing.T, b *bg, n int) ([]string, *rpc.Peer) {
	t.Helper()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	var got []string
	var peer *rpc.Peer
	for len(got) < n {
		select {
		case s := <-ps.subscribed:
			got, peer = append(got, s.pattern), s.peer
		case <-b.ended:
			t.Fatalf("subscribe ended (code %d) after %d subscription(s); stderr:\n%s", b.code, len(got), b.stderr.String())
		case <-deadline.C:
			t.Fatalf("%d subscription(s) within %s, want %d", len(got), testTimeout, n)
		}
	}
	slices.Sort(got)
	return got, peer
}

func (ps *pubsubServer) publish(t *testing.T, topic string, v any) pubsub.Position {
	t.Helper()
	pos, err := ps.hub.Publish(context.Background(), topic, v)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// lines splits output into its lines, sorted.
func lines(out string) []string {
	l := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	slices.Sort(l)
	return l
}

var positionRE = regexp.MustCompile(`^(\d+):([0-9a-f]{8})\n$`)

// TestServePubSub is the session of the help texts: publish on chat.room
// of `wsrpc serve`, then subscribe from the first position and get the
// rest, then get a tick of the time topic.
func TestServePubSub(t *testing.T) {
	srv, url := startServe(t)
	r := runCmd(t, "", "publish", url, "chat.room", `{"text":"one"}`)
	m := positionRE.FindStringSubmatch(r.stdout)
	if r.code != exitOK || m == nil || m[1] != "1" {
		t.Fatalf("publish: code %d, stdout %q, stderr %q; want 0 and 1:EPOCH", r.code, r.stdout, r.stderr)
	}
	epoch := m[2]

	sub := start(t, strings.NewReader(""), "subscribe", "--since", "1:"+epoch, "--count", "2", url, "chat.room")
	// Whether subscribe is made before these two or after, it gets them:
	// live, or recovered from the history.
	r = runCmd(t, `{"text": "two"}`+"\n"+`"three"`, "publish", url, "chat.room")
	if want := "2:" + epoch + "\n3:" + epoch + "\n"; r.code != exitOK || r.stdout != want {
		t.Fatalf("publish from stdin: code %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, want)
	}
	if code := sub.wait(t); code != exitOK {
		t.Fatalf("subscribe: code %d; stderr:\n%s", code, sub.stderr.String())
	}
	want := `{"topic":"chat.room","offset":2,"epoch":"` + epoch + `","data":{"text":"two"}}` + "\n" +
		`{"topic":"chat.room","offset":3,"epoch":"` + epoch + `","data":"three"}` + "\n"
	if got := sub.stdout.String(); got != want {
		t.Errorf("subscribe printed\n%s\nwant\n%s", got, want)
	}
	if got := sub.stderr.String(); got != "" {
		t.Errorf("subscribe: stderr %q, want nothing", got)
	}

	// The server publishes the time every second.
	r = runCmd(t, "", "subscribe", "--count", "1", url, "time")
	var tick publicationLine
	if r.code != exitOK || json.Unmarshal([]byte(r.stdout), &tick) != nil || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("subscribe time: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	var at string
	if err := json.Unmarshal(tick.Data, &at); err != nil {
		t.Fatalf("time data %s: %v", tick.Data, err)
	}
	if _, err := time.Parse(time.RFC3339, at); err != nil || tick.Topic != "time" || tick.Offset < 1 || tick.Epoch == "" {
		t.Errorf("time publication %s: want the RFC 3339 time, offset 1 or more, an epoch (%v)", r.stdout, err)
	}

	// Clients may not publish on time, nor more than 4 KiB on chat.>.
	r = runCmd(t, "", "publish", url, "time", `"noon"`)
	if got := oneLine(t, r); r.code != exitNotAllowed || got != `error -32005: $/publish: clients may not publish on "time"` {
		t.Errorf("publish on time: code %d, stderr %q", r.code, got)
	}
	big := `"` + strings.Repeat("x", maxChatBytes) + `"`
	r = runCmd(t, "", "publish", url, "chat.room", big)
	if got := oneLine(t, r); r.code != exitInvalid || !strings.HasPrefix(got, "error -32602: a chat publication holds at most 4096 bytes") {
		t.Errorf("publish a big one: code %d, stderr %q", r.code, got)
	}

	srv.cancel()
	if code := srv.wait(t); code != exitOK {
		t.Errorf("serve: code %d; stderr:\n%s", code, srv.stderr.String())
	}
	if !strings.Contains(srv.stderr.String(), "pub/sub topics: time") {
		t.Errorf("serve does not log its topics:\n%s", srv.stderr.String())
	}
}

func TestServeWithoutDemoTopics(t *testing.T) {
	_, url := startServe(t, "--demo-topics=false")
	r := runCmd(t, "", "subscribe", url, "time")
	got := oneLine(t, r)
	if r.code != exitFailure || !strings.HasPrefix(got, "wsrpc subscribe: subscribe time: error -32601: ") || !strings.HasSuffix(got, "(the server has no pub/sub)") {
		t.Errorf("code %d, stderr %q; want 1 and method not found", r.code, got)
	}
}

// TestSubscribeLive subscribes to a pattern and a topic, which recover
// nothing, so the publications are made once the server has made both.
func TestSubscribeLive(t *testing.T) {
	for _, codec := range []string{"binary", "json"} {
		t.Run(codec, func(t *testing.T) {
			ps := newPubsubServer(t)
			sub := start(t, strings.NewReader(""), "subscribe", "--codec", codec, "--count", "3", ps.url, "news.*", "alerts")
			if got, _ := ps.waitSubscribed(t, sub, 2); !slices.Equal(got, []string{"alerts", "news.*"}) {
				t.Fatalf("subscribed to %q", got)
			}
			a := ps.publish(t, "news.sport", rpc.Raw(`{"score":[1,0]}`))
			b := ps.publish(t, "alerts", "fire drill")
			ps.publish(t, "weather", 20) // subscribed to by nobody
			c := ps.publish(t, "news.tech", nil)
			if code := sub.wait(t); code != exitOK {
				t.Fatalf("code %d; stderr:\n%s", code, sub.stderr.String())
			}
			// One channel per subscription: the order between them is not
			// kept.
			want := lines(`{"topic":"news.sport","offset":1,"epoch":"` + a.Epoch + `","data":{"score":[1,0]}}` + "\n" +
				`{"topic":"alerts","offset":1,"epoch":"` + b.Epoch + `","data":"fire drill"}` + "\n" +
				`{"topic":"news.tech","offset":1,"epoch":"` + c.Epoch + `","data":null}` + "\n")
			if got := lines(sub.stdout.String()); !slices.Equal(got, want) {
				t.Errorf("printed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// TestSubscribeInterrupted: SIGINT is the normal end of subscribe.
func TestSubscribeInterrupted(t *testing.T) {
	ps := newPubsubServer(t)
	sub := start(t, strings.NewReader(""), "subscribe", ps.url, "a.b")
	ps.waitSubscribed(t, sub, 1)
	sub.cancel()
	if code := sub.wait(t); code != exitOK || sub.stdout.String() != "" || sub.stderr.String() != "" {
		t.Errorf("code %d, stdout %q, stderr %q; want 0 and nothing", code, sub.stdout.String(), sub.stderr.String())
	}
}

// TestSubscribeSinceOtherEpoch: a position of another epoch cannot be
// recovered from; the next publication says so with gap.
func TestSubscribeSinceOtherEpoch(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			ps := newPubsubServer(t)
			ps.publish(t, "room", 1)
			ps.publish(t, "room", 2)
			sub := start(t, strings.NewReader(""), "subscribe", "--format", format, "--since", "1:00000000", "--count", "2", ps.url, "room")
			ps.waitSubscribed(t, sub, 1)
			p := ps.publish(t, "room", map[string]int{"n": 3})
			ps.publish(t, "room", 4)
			if code := sub.wait(t); code != exitOK {
				t.Fatalf("code %d; stderr:\n%s", code, sub.stderr.String())
			}
			want := `{"topic":"room","offset":3,"epoch":"` + p.Epoch + `","data":{"n":3},"gap":true}` + "\n" +
				`{"topic":"room","offset":4,"epoch":"` + p.Epoch + `","data":4}` + "\n"
			if format == "text" {
				want = "room 3:" + p.Epoch + ` {"n":3}  (gap: publications before this one were lost)` + "\n" +
					"room 4:" + p.Epoch + " 4\n"
			}
			if got := sub.stdout.String(); got != want {
				t.Errorf("printed\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestSubscribeSinceRecovers: the publications after the position come
// with the subscribe, before any live one.
func TestSubscribeSinceRecovers(t *testing.T) {
	ps := newPubsubServer(t)
	var last pubsub.Position
	for i := 1; i <= 5; i++ {
		last = ps.publish(t, "log", i)
	}
	r := runCmd(t, "", "subscribe", "--since", "2:"+last.Epoch, "--count", "3", ps.url, "log")
	want := ""
	for i := 3; i <= 5; i++ {
		want += fmt.Sprintf(`{"topic":"log","offset":%d,"epoch":"%s","data":%d}`+"\n", i, last.Epoch, i)
	}
	if r.code != exitOK || r.stdout != want || r.stderr != "" {
		t.Errorf("code %d, stdout\n%s\nstderr %q; want 0 and\n%s", r.code, r.stdout, r.stderr, want)
	}
}

// TestSubscribeReconnects: when the connection drops, subscribe
// reconnects and recovers what was published meanwhile, without a gap.
func TestSubscribeReconnects(t *testing.T) {
	ps := newPubsubServer(t)
	sub := start(t, strings.NewReader(""), "subscribe", "--count", "3", ps.url, "room")
	_, conn := ps.waitSubscribed(t, sub, 1)
	first := ps.publish(t, "room", 1)
	sub.stdout.waitFor(t, regexp.MustCompile(`"data":1\}\n`), sub.ended)
	conn.CloseNow() // as a failing network would
	ps.publish(t, "room", 2)
	ps.publish(t, "room", 3)
	if code := sub.wait(t); code != exitOK {
		t.Fatalf("code %d; stderr:\n%s", code, sub.stderr.String())
	}
	want := ""
	for i := 1; i <= 3; i++ {
		want += fmt.Sprintf(`{"topic":"room","offset":%d,"epoch":"%s","data":%d}`+"\n", i, first.Epoch, i)
	}
	if got := sub.stdout.String(); got != want {
		t.Errorf("printed\n%s\nwant\n%s", got, want)
	}
	if got, want := sub.stderr.String(), "wsrpc subscribe: disconnected; reconnecting\n"+
		"wsrpc subscribe: reconnected; subscribed again, recovering what was missed where the topics keep history\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
}

func TestSubscribeRefused(t *testing.T) {
	ps := newPubsubServer(t)
	tests := []struct {
		give []string
		want string
	}{
		{[]string{"secret.plans"}, `wsrpc subscribe: subscribe secret.plans: error -32005: subscribing to "secret.plans" is not allowed: secrets stay secret`},
		// The first subscription is made and printed from; the second is
		// refused: the command fails.
		{[]string{"open", "secret.>"}, `wsrpc subscribe: subscribe secret.>: error -32005: subscribing to "secret.>" is not allowed: secrets stay secret`},
		// A rule guarding secret.> is asked about a pattern that overlaps it.
		{[]string{"*.plans"}, `wsrpc subscribe: subscribe *.plans: error -32005: subscribing to "*.plans" is not allowed: secrets stay secret`},
	}
	for _, tt := range tests {
		r := runCmd(t, "", append([]string{"subscribe", ps.url}, tt.give...)...)
		if got := oneLine(t, r); r.code != exitFailure || got != tt.want {
			t.Errorf("%q: code %d, stderr %q; want 1 and %q", tt.give, r.code, got, tt.want)
		}
	}
}

func TestPublish(t *testing.T) {
	ps := newPubsubServer(t)
	sub := start(t, strings.NewReader(""), "subscribe", "--count", "3", ps.url, "chat.>")
	ps.waitSubscribed(t, sub, 1)

	r := runCmd(t, "", "publish", ps.url, "chat.a", "--", "-1.5")
	m := positionRE.FindStringSubmatch(r.stdout)
	if r.code != exitOK || m == nil || m[1] != "1" {
		t.Fatalf("publish: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// A stream on stdin: each value published as it is read. A value that
	// is not JSON stops it, after the ones before it.
	r = runCmd(t, "[1,\n 2]\n{\"b\": true}\n{oops", "publish", "--codec", "json", ps.url, "chat.b", "-")
	if got := oneLine(t, result{stderr: r.stderr}); r.code != exitFailure ||
		!regexp.MustCompile(`^1:[0-9a-f]{8}\n2:[0-9a-f]{8}\n$`).MatchString(r.stdout) ||
		!strings.HasPrefix(got, "wsrpc publish: value 3 on stdin is not valid JSON: ") || !strings.HasSuffix(got, "; 2 published before it") {
		t.Errorf("publish a stream: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if code := sub.wait(t); code != exitOK {
		t.Fatalf("subscribe: code %d; stderr:\n%s", code, sub.stderr.String())
	}
	var data []string
	for _, l := range strings.Split(strings.TrimSpace(sub.stdout.String()), "\n") {
		var p publicationLine
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatal(err)
		}
		data = append(data, p.Topic+" "+string(p.Data))
	}
	if want := []string{"chat.a -1.5", "chat.b [1,2]", `chat.b {"b":true}`}; !slices.Equal(data, want) {
		t.Errorf("subscribe got %q, want %q", data, want)
	}

	r = runCmd(t, "", "publish", ps.url, "drop.it", "1")
	if r.code != exitOK || r.stdout != "dropped\n" || r.stderr != "" {
		t.Errorf("a dropped publication: code %d, stdout %q, stderr %q; want 0 and dropped", r.code, r.stdout, r.stderr)
	}
}

func TestPubSubUsageErrors(t *testing.T) {
	const url = "ws://127.0.0.1:1/rpc" // nothing is dialed
	tests := []struct {
		name  string
		give  []string
		stdin string
		want  string
	}{
		{"subscribe without topic", []string{"subscribe", url}, "", "want URL TOPIC..., got 1 argument(s)"},
		{"subscribe bad topic", []string{"subscribe", url, "a..b"}, "", `bad TOPIC: pattern "a..b": empty token at byte 2`},
		{"subscribe bad pattern", []string{"subscribe", url, ">.a"}, "", `bad TOPIC: pattern ">.a"`},
		{"subscribe topic twice", []string{"subscribe", url, "a", "b", "a"}, "", `TOPIC "a" given twice`},
		{"subscribe since pattern", []string{"subscribe", "--since", "1:ab", url, "a.*"}, "", "--since needs exactly one TOPIC, an exact one"},
		{"subscribe since two topics", []string{"subscribe", "--since", "1:ab", url, "a", "b"}, "", "--since needs exactly one TOPIC"},
		{"subscribe since no epoch", []string{"subscribe", "--since", "1", url, "a"}, "", `--since: want OFFSET:EPOCH as subscribe and publish print it (42:5f2a9c1e), not "1"`},
		{"subscribe since bad offset", []string{"subscribe", "--since", "x:ab", url, "a"}, "", "--since: want OFFSET:EPOCH"},
		{"subscribe negative count", []string{"subscribe", "--count", "-1", url, "a"}, "", "--count must not be negative"},
		{"subscribe bad format", []string{"subscribe", "--format", "yaml", url, "a"}, "", `--format must be one of auto, json, text, not "yaml"`},
		{"subscribe bad codec", []string{"subscribe", "--codec", "xml", url, "a"}, "", `--codec must be one of auto, binary, json`},
		{"subscribe unknown flag", []string{"subscribe", "--tail", url, "a"}, "", "flag provided but not defined: -tail"},
		{"publish without topic", []string{"publish", url}, "", "want URL TOPIC [DATA], got 1 argument(s)"},
		{"publish extra arg", []string{"publish", url, "a", "1", "2"}, "", `unexpected argument "2" (quote DATA as one argument)`},
		{"publish pattern", []string{"publish", url, "a.*", "1"}, "", `bad TOPIC: topic "a.*": wildcard '*'`},
		{"publish not JSON", []string{"publish", url, "a", "hello"}, "", `DATA is not valid JSON: invalid character 'h' looking for beginning of value (a string must be quoted: '"hello"')`},
		{"publish two values", []string{"publish", url, "a", "1 2"}, "", "DATA is not valid JSON"},
		{"publish stdin not JSON", []string{"publish", url, "a"}, "{nope", "value 1 on stdin is not valid JSON"},
		{"publish empty stdin", []string{"publish", url, "a"}, " \n", "no DATA: give it as an argument or on stdin"},
		{"publish bad scheme", []string{"publish", "ftp://x/rpc", "a", "1"}, "", "the scheme must be ws://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, tt.stdin, tt.give...)
			if r.code != exitUsage {
				t.Errorf("code = %d, want 2 (stderr %q)", r.code, r.stderr)
			}
			line := oneLine(t, r)
			prefix := "wsrpc " + tt.give[0] + ": "
			if !strings.HasPrefix(line, prefix+tt.want) && !strings.Contains(line, tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", line, tt.want)
			}
			if !strings.HasPrefix(line, prefix) || !strings.HasSuffix(line, "(run 'wsrpc "+tt.give[0]+" --help')") {
				t.Errorf("stderr = %q, want %q ... (run 'wsrpc %s --help')", line, prefix, tt.give[0])
			}
		})
	}
}

func TestParsePosition(t *testing.T) {
	tests := []struct {
		give    string
		want    pubsub.Position
		wantErr bool
	}{
		{give: "42:5f2a9c1e", want: pubsub.Position{Offset: 42, Epoch: "5f2a9c1e"}},
		{give: "0:e", want: pubsub.Position{Epoch: "e"}},
		{give: "7:a:b", want: pubsub.Position{Offset: 7, Epoch: "a:b"}}, // an epoch is opaque
		{give: "", wantErr: true},
		{give: "42", wantErr: true},
		{give: "42:", wantErr: true},
		{give: ":e", wantErr: true},
		{give: "-1:e", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parsePosition(tt.give)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parsePosition(%q) = %v, %v; want %v, error %v", tt.give, got, err, tt.want, tt.wantErr)
		}
		if err == nil && formatPosition(got) != tt.give {
			t.Errorf("formatPosition(%v) = %q, want %q", got, formatPosition(got), tt.give)
		}
	}
}
