package cli

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/pubsub"
)

// fakeBroker is an in-memory broker standing for NATS: it counts the
// publications of each topic, and can refuse to open.
type fakeBroker struct {
	*pubsub.MemoryBroker
	openErr error

	mu        sync.Mutex
	published map[string]int
	closed    bool
}

func newFakeBroker() *fakeBroker {
	return &fakeBroker{MemoryBroker: pubsub.NewMemoryBroker(0), published: map[string]int{}}
}

func (b *fakeBroker) Open(deliver func(pubsub.Publication)) error {
	if b.openErr != nil {
		return b.openErr
	}
	return b.MemoryBroker.Open(deliver)
}

func (b *fakeBroker) Publish(ctx context.Context, topic string, data []byte, opts pubsub.PublishOptions) (pubsub.Position, error) {
	b.mu.Lock()
	b.published[topic]++
	b.mu.Unlock()
	return b.MemoryBroker.Publish(ctx, topic, data, opts)
}

func (b *fakeBroker) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return b.MemoryBroker.Close()
}

func (b *fakeBroker) count(topic string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.published[topic]
}

func (b *fakeBroker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// brokerExt is the Extensions of a NATS build whose Broker func returns
// b and err, and records the calls it gets.
type brokerExt struct {
	b   pubsub.Broker
	err error

	mu       sync.Mutex
	urls     []string
	deadline time.Duration // of the ctx of the last call: how long it had left
}

func (x *brokerExt) ext() Extensions {
	return Extensions{Broker: func(ctx context.Context, url string) (pubsub.Broker, error) {
		x.mu.Lock()
		defer x.mu.Unlock()
		x.urls = append(x.urls, url)
		if d, ok := ctx.Deadline(); ok {
			x.deadline = time.Until(d)
		}
		return x.b, x.err
	}}
}

func (x *brokerExt) calls() ([]string, time.Duration) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]string(nil), x.urls...), x.deadline
}

// TestServeNATSCoreBuild: the core build has no broker for --nats.
func TestServeNATSCoreBuild(t *testing.T) {
	const want = "wsrpc serve: --nats needs the NATS build of wsrpc: go install github.com/wsrpc/wsrpc/natsbroker/cmd/wsrpc@latest"
	for _, args := range [][]string{
		{"serve", "--nats", "nats://127.0.0.1:4222"},
		{"serve", "--addr", "127.0.0.1:0", "--demo-topics=false", "--nats=nats://127.0.0.1:4222"},
		{"serve", "--nats="},
	} {
		r := runCmd(t, "", args...)
		if got := oneLine(t, r); r.code != exitUsage || got != want {
			t.Errorf("%q: code %d, stderr %q; want 2 and %q", args, r.code, got, want)
		}
	}
}

// TestServeNATS: serve --nats makes its hub on the build's broker, and
// publications go through it.
func TestServeNATS(t *testing.T) {
	fb := newFakeBroker()
	x := &brokerExt{b: fb}
	srv, url := startServeExt(t, x.ext(), "--nats", "nats://alice:secret@127.0.0.1:4222")

	urls, left := x.calls()
	if len(urls) != 1 || urls[0] != "nats://alice:secret@127.0.0.1:4222" {
		t.Errorf("the Broker func got %q, want the --nats URL once", urls)
	}
	if left <= 0 || left > brokerTimeout {
		t.Errorf("the Broker func's ctx had %s left, want a deadline within %s", left, brokerTimeout)
	}

	r := runCmd(t, "", "publish", url, "chat.room", `"one"`)
	m := positionRE.FindStringSubmatch(r.stdout)
	if r.code != exitOK || m == nil || m[1] != "1" {
		t.Fatalf("publish: code %d, stdout %q, stderr %q; want 0 and 1:EPOCH", r.code, r.stdout, r.stderr)
	}
	// From the start of the epoch: one recovered, two live or recovered.
	sub := start(t, strings.NewReader(""), "subscribe", "--since", "0:"+m[2], "--count", "2", url, "chat.room")
	if r := runCmd(t, "", "publish", url, "chat.room", `"two"`); r.code != exitOK || r.stdout != "2:"+m[2]+"\n" {
		t.Fatalf("publish two: code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if code := sub.wait(t); code != exitOK {
		t.Fatalf("subscribe: code %d; stderr:\n%s", code, sub.stderr.String())
	}
	var data []string
	for _, l := range strings.Split(strings.TrimSpace(sub.stdout.String()), "\n") {
		var p publicationLine
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		data = append(data, string(p.Data))
	}
	if strings.Join(data, " ") != `"one" "two"` {
		t.Errorf("subscribe got %q, want one and two", data)
	}
	if n := fb.count("chat.room"); n != 2 {
		t.Errorf("the broker got %d publications on chat.room, want 2", n)
	}
	// The demo topics are there too, and their rules.
	if r := runCmd(t, "", "publish", url, "time", `"noon"`); r.code != exitNotAllowed {
		t.Errorf("publish on time: code %d, want 9 (permission denied)", r.code)
	}

	srv.cancel()
	if code := srv.wait(t); code != exitOK {
		t.Errorf("serve: code %d; stderr:\n%s", code, srv.stderr.String())
	}
	logs := srv.stderr.String()
	for _, want := range []string{"pub/sub broker: NATS nats://alice:xxxxx@127.0.0.1:4222", "pub/sub topics: time"} {
		if !strings.Contains(logs, want) {
			t.Errorf("serve does not log %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "secret") {
		t.Errorf("serve logs the password:\n%s", logs)
	}
	if !fb.isClosed() {
		t.Error("the broker is not closed once serve has ended")
	}
}

// TestServeNATSWithoutDemoTopics: --nats alone serves pub/sub without
// rules: clients subscribe, and get what is published on the broker, but
// may not publish.
func TestServeNATSWithoutDemoTopics(t *testing.T) {
	fb := newFakeBroker()
	x := &brokerExt{b: fb}
	srv, url := startServeExt(t, x.ext(), "--demo-topics=false", "--nats", "nats://127.0.0.1:4222")

	sub := start(t, strings.NewReader(""), "subscribe", "--count", "1", url, "news")
	// Another node publishing on the broker; until the subscription is
	// made, its publications go nowhere.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
publishing:
	for {
		select {
		case <-sub.ended:
			break publishing
		case <-tick.C:
			if _, err := fb.Publish(context.Background(), "news", []byte(`"extra"`), pubsub.PublishOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if code := sub.wait(t); code != exitOK || !strings.Contains(sub.stdout.String(), `"data":"extra"`) {
		t.Fatalf("subscribe: code %d, stdout %q, stderr %q", code, sub.stdout.String(), sub.stderr.String())
	}
	r := runCmd(t, "", "publish", url, "news", "1")
	if got := oneLine(t, r); r.code != exitNotAllowed || !strings.HasPrefix(got, "error -32005: ") {
		t.Errorf("publish: code %d, stderr %q; want 9 and -32005", r.code, got)
	}

	srv.cancel()
	if code := srv.wait(t); code != exitOK {
		t.Errorf("serve: code %d; stderr:\n%s", code, srv.stderr.String())
	}
	logs := srv.stderr.String()
	if !strings.Contains(logs, "pub/sub broker: NATS nats://127.0.0.1:4222") || strings.Contains(logs, "pub/sub topics") {
		t.Errorf("serve logs, want the broker and no demo topics:\n%s", logs)
	}
	if !fb.isClosed() {
		t.Error("the broker is not closed once serve has ended")
	}
}

// TestServeNATSFails: a broker that cannot be made or opened ends serve
// with 1 and one line, before it listens, and closes what it got.
func TestServeNATSFails(t *testing.T) {
	failing := newFakeBroker()
	failing.openErr = errors.New("JetStream not enabled")
	tests := []struct {
		name   string
		x      *brokerExt
		url    string
		want   string
		closed *fakeBroker // closed by serve
	}{
		{
			name: "no connection",
			x:    &brokerExt{err: errors.New("nats: no servers available for connection")},
			url:  "nats://s3cr3t@127.0.0.1:1",
			want: "wsrpc serve: --nats nats://xxxxx@127.0.0.1:1: nats: no servers available for connection",
		},
		{
			name: "timeout",
			x:    &brokerExt{err: context.DeadlineExceeded},
			url:  "nats://127.0.0.1:1",
			want: "wsrpc serve: --nats nats://127.0.0.1:1: no broker within 10s: context deadline exceeded",
		},
		{
			name: "no broker",
			x:    &brokerExt{},
			url:  "nats://127.0.0.1:1",
			want: "wsrpc serve: --nats nats://127.0.0.1:1: the broker func returned no broker",
		},
		{
			name:   "open fails",
			x:      &brokerExt{b: failing},
			url:    "nats://127.0.0.1:1",
			want:   "wsrpc serve: --nats nats://127.0.0.1:1: pubsub: open broker: JetStream not enabled",
			closed: failing,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runExt(t, tt.x.ext(), "", "serve", "--addr", "127.0.0.1:0", "--nats", tt.url)
			if got := oneLine(t, r); r.code != exitFailure || got != tt.want {
				t.Errorf("code %d, stderr %q; want 1 and %q", r.code, got, tt.want)
			}
			if tt.closed != nil && !tt.closed.isClosed() {
				t.Error("the broker the hub did not take is not closed")
			}
		})
	}
}

// TestServeNATSUsage: --nats without a URL is a mistake in the line, and
// makes no broker.
func TestServeNATSUsage(t *testing.T) {
	x := &brokerExt{b: newFakeBroker()}
	r := runExt(t, x.ext(), "", "serve", "--nats=")
	if got, want := oneLine(t, r), "wsrpc serve: --nats needs a URL (run 'wsrpc serve --help')"; r.code != exitUsage || got != want {
		t.Errorf("code %d, stderr %q; want 2 and %q", r.code, got, want)
	}
	if urls, _ := x.calls(); len(urls) != 0 {
		t.Errorf("the Broker func was called with %q", urls)
	}
}

// flakyExt is the Extensions of a NATS build whose Broker func fails
// until its failures are used up (every time with failures < 0), then
// returns b.
type flakyExt struct {
	b        pubsub.Broker
	failures int

	mu    sync.Mutex
	calls int
}

func (x *flakyExt) ext() Extensions {
	return Extensions{Broker: func(ctx context.Context, url string) (pubsub.Broker, error) {
		x.mu.Lock()
		defer x.mu.Unlock()
		x.calls++
		if x.failures < 0 || x.calls <= x.failures {
			return nil, errors.New("nats: no servers available for connection")
		}
		return x.b, nil
	}}
}

func (x *flakyExt) called() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.calls
}

// TestServeNATSWait: with --nats-wait, serve keeps trying to reach NATS
// with backoff, logging each failure, and serves once it can; when the wait
// runs out it gives up with the last error and the attempts it made. Without
// it, one failure ends serve (TestServeNATSFails).
func TestServeNATSWait(t *testing.T) {
	x := &flakyExt{b: newFakeBroker(), failures: 2}
	srv, url := startServeExt(t, x.ext(), "--nats", "nats://127.0.0.1:4222", "--nats-wait", "30s")
	if n := x.called(); n != 3 {
		t.Errorf("the Broker func was called %d times, want 3 (two failures, then the broker)", n)
	}
	if got := strings.Count(srv.stderr.String(), "NATS not reachable yet; trying again"); got != 2 {
		t.Errorf("%d retries logged, want 2:\n%s", got, srv.stderr.String())
	}
	if r := runCmd(t, "", "publish", url, "chat.room", `"one"`); r.code != exitOK {
		t.Errorf("publish: code %d, stderr %q", r.code, r.stderr)
	}

	never := &flakyExt{failures: -1}
	r := runExt(t, never.ext(), "", "serve", "--addr", "127.0.0.1:0", "--nats", "nats://127.0.0.1:1", "--nats-wait", "600ms")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	got := lines[len(lines)-1]
	if len(lines) != 2 || !strings.Contains(lines[0], "NATS not reachable yet") {
		t.Errorf("stderr %q: want one retry logged, then the error", r.stderr)
	}
	// 250 ms, then 500 ms would pass the 600 ms: two attempts.
	if want := "wsrpc serve: --nats nats://127.0.0.1:1: 2 attempts over 600ms: nats: no servers available for connection"; r.code != exitFailure || got != want {
		t.Errorf("code %d, stderr %q; want 1 and %q", r.code, got, want)
	}
	if n := never.called(); n != 2 {
		t.Errorf("the Broker func was called %d times, want 2", n)
	}

	for _, tc := range []struct{ args []string }{
		{[]string{"serve", "--nats", "nats://127.0.0.1:1", "--nats-wait", "-1s"}},
		{[]string{"serve", "--nats-wait", "5s"}},
	} {
		x := &flakyExt{b: newFakeBroker()}
		r := runExt(t, x.ext(), "", tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--nats-wait") {
			t.Errorf("%q: code %d, stderr %q; want a usage error about --nats-wait", tc.args, r.code, r.stderr)
		}
		if x.called() != 0 {
			t.Errorf("%q: the Broker func was called", tc.args)
		}
	}
}
