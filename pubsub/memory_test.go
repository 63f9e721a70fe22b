package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

// memBroker returns an opened MemoryBroker whose deliveries are recorded.
func memBroker(t *testing.T, maxTopics int) (*pubsub.MemoryBroker, func() []pubsub.Publication) {
	t.Helper()
	b := pubsub.NewMemoryBroker(maxTopics)
	var mu sync.Mutex
	var got []pubsub.Publication
	if err := b.Open(func(p pubsub.Publication) {
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, func() []pubsub.Publication {
		mu.Lock()
		defer mu.Unlock()
		return append([]pubsub.Publication(nil), got...)
	}
}

func pubData(i int) []byte { return []byte(fmt.Sprint(i)) }

// offsets are the offsets of ps.
func offsets(ps []pubsub.Publication) []uint64 {
	out := make([]uint64, len(ps))
	for i, p := range ps {
		out[i] = p.Offset
	}
	return out
}

func equalOffsets(a []uint64, from, to uint64) bool {
	if to < from {
		return len(a) == 0
	}
	if uint64(len(a)) != to-from+1 {
		return false
	}
	for i, o := range a {
		if o != from+uint64(i) {
			return false
		}
	}
	return true
}

func TestMemoryBrokerOffsetsAndEpochs(t *testing.T) {
	b, delivered := memBroker(t, 0)
	ctx := context.Background()
	var epochA, epochB string
	for i := 1; i <= 3; i++ {
		pa, err := b.Publish(ctx, "a", pubData(i), pubsub.PublishOptions{Publisher: "conn1"})
		if err != nil {
			t.Fatal(err)
		}
		pb, err := b.Publish(ctx, "b", pubData(i), pubsub.PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pa.Offset != uint64(i) || pb.Offset != uint64(i) {
			t.Fatalf("publication %d: positions %+v and %+v, want offset %d on each topic", i, pa, pb, i)
		}
		if i == 1 {
			epochA, epochB = pa.Epoch, pb.Epoch
		}
		if pa.Epoch != epochA || pb.Epoch != epochB || epochA == "" {
			t.Fatalf("epochs changed: %+v %+v", pa, pb)
		}
	}
	if epochA == epochB {
		t.Fatalf("two topics share the epoch %q; each stream has its own", epochA)
	}
	got := delivered()
	if len(got) != 6 {
		t.Fatalf("%d delivered, want 6", len(got))
	}
	for i, p := range got {
		want := uint64(i/2 + 1)
		topic := "a"
		if i%2 == 1 {
			topic = "b"
		}
		if p.Topic != topic || p.Offset != want || string(p.Data) != fmt.Sprint(want) {
			t.Fatalf("delivery %d: %+v, want %d on %s", i, p, want, topic)
		}
		if (topic == "a") != (p.Publisher == "conn1") {
			t.Fatalf("delivery %d: publisher %q", i, p.Publisher)
		}
	}
	// History without since: the top only; the topic asked about exists.
	h, err := b.History(ctx, "a", pubsub.HistoryRequest{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if h.Top != (pubsub.Position{Offset: 3, Epoch: epochA}) || len(h.Publications) != 0 {
		t.Fatalf("History(a) = %+v", h)
	}
	h, err = b.History(ctx, "c", pubsub.HistoryRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if h.Top.Offset != 0 || h.Top.Epoch == "" {
		t.Fatalf("History of a new topic = %+v, want offset 0 in an epoch", h)
	}
	pc, err := b.Publish(ctx, "c", pubData(1), pubsub.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pc != (pubsub.Position{Offset: 1, Epoch: h.Top.Epoch}) {
		t.Fatalf("first publication on c at %+v, want 1 in the epoch History gave (%s)", pc, h.Top.Epoch)
	}
	// Concurrent publishers on one topic: offsets stay dense and delivery
	// stays in offset order.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 250 {
				if _, err := b.Publish(ctx, "d", pubData(0), pubsub.PublishOptions{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var d []pubsub.Publication
	for _, p := range delivered() {
		if p.Topic == "d" {
			d = append(d, p)
		}
	}
	if !equalOffsets(offsets(d), 1, 1000) {
		t.Fatalf("topic d delivered offsets %v..., want 1..1000 in order", offsets(d)[:min(10, len(d))])
	}
}

func TestMemoryBrokerHistory(t *testing.T) {
	b, _ := memBroker(t, 0)
	ctx := context.Background()
	opts := pubsub.PublishOptions{HistorySize: 5}
	var epoch string
	for i := 1; i <= 8; i++ {
		pos, err := b.Publish(ctx, "t", pubData(i), opts)
		if err != nil {
			t.Fatal(err)
		}
		epoch = pos.Epoch
	}
	tests := []struct {
		name     string
		since    pubsub.Position
		limit    int
		from, to uint64 // 0, 0: none
	}{
		{"all kept", pubsub.Position{Offset: 0, Epoch: epoch}, 100, 4, 8},
		{"from within", pubsub.Position{Offset: 5, Epoch: epoch}, 100, 6, 8},
		{"from the top", pubsub.Position{Offset: 8, Epoch: epoch}, 100, 0, 0},
		{"beyond the top", pubsub.Position{Offset: 20, Epoch: epoch}, 100, 0, 0},
		{"limit: the most recent", pubsub.Position{Offset: 0, Epoch: epoch}, 2, 7, 8},
		{"limit above what is missed", pubsub.Position{Offset: 6, Epoch: epoch}, 3, 7, 8},
		{"limit 0", pubsub.Position{Offset: 0, Epoch: epoch}, 0, 0, 0},
		{"another epoch", pubsub.Position{Offset: 5, Epoch: "other"}, 100, 0, 0},
	}
	for _, tt := range tests {
		since := tt.since
		h, err := b.History(ctx, "t", pubsub.HistoryRequest{Since: &since, Limit: tt.limit})
		if err != nil {
			t.Fatal(err)
		}
		if h.Top != (pubsub.Position{Offset: 8, Epoch: epoch}) {
			t.Errorf("%s: top %+v", tt.name, h.Top)
		}
		if tt.to == 0 {
			if len(h.Publications) != 0 {
				t.Errorf("%s: %v, want none", tt.name, offsets(h.Publications))
			}
			continue
		}
		if !equalOffsets(offsets(h.Publications), tt.from, tt.to) {
			t.Errorf("%s: offsets %v, want %d..%d", tt.name, offsets(h.Publications), tt.from, tt.to)
		}
		for _, p := range h.Publications {
			if string(p.Data) != fmt.Sprint(p.Offset) || p.Epoch != epoch || p.Topic != "t" {
				t.Errorf("%s: %+v", tt.name, p)
			}
		}
	}
	// A smaller size trims at once; a publication without history drops it.
	if _, err := b.Publish(ctx, "t", pubData(9), pubsub.PublishOptions{HistorySize: 2}); err != nil {
		t.Fatal(err)
	}
	h, _ := b.History(ctx, "t", pubsub.HistoryRequest{Since: &pubsub.Position{Epoch: epoch}, Limit: 100})
	if !equalOffsets(offsets(h.Publications), 8, 9) {
		t.Fatalf("after HistorySize 2: %v, want 8..9", offsets(h.Publications))
	}
	if _, err := b.Publish(ctx, "t", pubData(10), pubsub.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	h, _ = b.History(ctx, "t", pubsub.HistoryRequest{Since: &pubsub.Position{Epoch: epoch}, Limit: 100})
	if len(h.Publications) != 0 || h.Top.Offset != 10 || h.Top.Epoch != epoch {
		t.Fatalf("after a publication without history: %+v", h)
	}
}

func TestMemoryBrokerHistoryTTL(t *testing.T) {
	const ttl = 50 * time.Millisecond
	b, _ := memBroker(t, 0)
	ctx := context.Background()
	start := time.Now()
	pos, err := b.Publish(ctx, "t", pubData(1), pubsub.PublishOptions{HistorySize: 10, HistoryTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	since := &pubsub.Position{Epoch: pos.Epoch}
	if _, err := b.Publish(ctx, "t", pubData(2), pubsub.PublishOptions{HistorySize: 10, HistoryTTL: ttl}); err != nil {
		t.Fatal(err)
	}
	// A publication kept without a TTL stays.
	if _, err := b.Publish(ctx, "forever", pubData(1), pubsub.PublishOptions{HistorySize: 10}); err != nil {
		t.Fatal(err)
	}
	h, _ := b.History(ctx, "t", pubsub.HistoryRequest{Since: since, Limit: 10})
	if time.Since(start) < ttl && len(h.Publications) != 2 {
		t.Fatalf("within the TTL: %v, want 1..2", offsets(h.Publications))
	}
	waitFor(t, "the history to expire", func() bool {
		h, err := b.History(ctx, "t", pubsub.HistoryRequest{Since: since, Limit: 10})
		return err == nil && len(h.Publications) == 0
	})
	if d := time.Since(start); d < ttl {
		t.Fatalf("expired after %v, before the TTL of %v", d, ttl)
	}
	h, _ = b.History(ctx, "t", pubsub.HistoryRequest{Since: since, Limit: 10})
	if h.Top != (pubsub.Position{Offset: 2, Epoch: pos.Epoch}) {
		t.Fatalf("expiry changed the stream's position: %+v", h.Top)
	}
	// The stream goes on in the same epoch.
	pos3, err := b.Publish(ctx, "t", pubData(3), pubsub.PublishOptions{HistorySize: 10, HistoryTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if pos3 != (pubsub.Position{Offset: 3, Epoch: pos.Epoch}) {
		t.Fatalf("after expiry: %+v", pos3)
	}
	h, _ = b.History(ctx, "t", pubsub.HistoryRequest{Since: since, Limit: 10})
	if !equalOffsets(offsets(h.Publications), 3, 3) {
		t.Fatalf("after expiry and one more: %v, want 3", offsets(h.Publications))
	}
	fh, _ := b.History(ctx, "forever", pubsub.HistoryRequest{Since: &pubsub.Position{}, Limit: 10})
	fh, _ = b.History(ctx, "forever", pubsub.HistoryRequest{Since: &pubsub.Position{Epoch: fh.Top.Epoch}, Limit: 10})
	if !equalOffsets(offsets(fh.Publications), 1, 1) {
		t.Fatalf("history without a TTL: %v, want 1", offsets(fh.Publications))
	}
}

func TestMemoryBrokerMaxTopics(t *testing.T) {
	b, _ := memBroker(t, 2)
	ctx := context.Background()
	for _, topic := range []string{"a", "b"} {
		if _, err := b.Publish(ctx, topic, pubData(1), pubsub.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Publish(ctx, "c", pubData(1), pubsub.PublishOptions{}); err == nil {
		t.Fatal("a third topic with maxTopics 2: no error")
	}
	if _, err := b.History(ctx, "c", pubsub.HistoryRequest{}); err == nil {
		t.Fatal("History of a third topic with maxTopics 2: no error")
	}
	// The kept ones go on.
	if pos, err := b.Publish(ctx, "a", pubData(2), pubsub.PublishOptions{}); err != nil || pos.Offset != 2 {
		t.Fatalf("topic a: %+v, %v", pos, err)
	}
}

func TestMemoryBrokerClose(t *testing.T) {
	b, delivered := memBroker(t, 0)
	ctx := context.Background()
	if err := b.Open(func(pubsub.Publication) {}); err == nil {
		t.Fatal("a second Open: no error")
	}
	if err := b.Subscribe(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, "a", pubData(1), pubsub.PublishOptions{}); !errors.Is(err, pubsub.ErrBrokerClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	if _, err := b.History(ctx, "a", pubsub.HistoryRequest{}); !errors.Is(err, pubsub.ErrBrokerClosed) {
		t.Fatalf("History after Close: %v", err)
	}
	if err := b.Subscribe(ctx, "b"); !errors.Is(err, pubsub.ErrBrokerClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	if err := b.Open(func(pubsub.Publication) {}); err == nil {
		t.Fatal("Open after Close: no error")
	}
	if n := len(delivered()); n != 0 {
		t.Fatalf("%d delivered after Close", n)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}

// TestHubClose: after Hub.Close, publishing fails and subscribes are
// refused; connections stay up.
func TestHubClose(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{})
			ctx := ctxT(t)
			c := e.dial(codec)
			if _, err := c.Subscribe(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			if err := e.hub.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := e.hub.Publish(ctx, "a", 1); err == nil {
				t.Fatal("Publish after Close: no error")
			}
			_, err := rawSubscribe(t, c.Peer(), `{"topic":"b"}`)
			if err == nil {
				t.Fatal("subscribe after Close: no error")
			}
			if res, err := rawCall(t, c.Peer(), "echo", `[1]`); err != nil || string(res) != "[1]" {
				t.Fatalf("the connection after Hub.Close: %s, %v", res, err)
			}
		})
	}
}

// failingBroker is a MemoryBroker that fails every call while down is set,
// as a broker that lost its connection would.
type failingBroker struct {
	*pubsub.MemoryBroker
	down atomic.Bool
}

var errBrokerDown = errors.New("broker down")

func (b *failingBroker) Subscribe(ctx context.Context, pattern string) error {
	if b.down.Load() {
		return errBrokerDown
	}
	return b.MemoryBroker.Subscribe(ctx, pattern)
}

func (b *failingBroker) Publish(ctx context.Context, topic string, data []byte, o pubsub.PublishOptions) (pubsub.Position, error) {
	if b.down.Load() {
		return pubsub.Position{}, errBrokerDown
	}
	return b.MemoryBroker.Publish(ctx, topic, data, o)
}

func (b *failingBroker) History(ctx context.Context, topic string, req pubsub.HistoryRequest) (pubsub.History, error) {
	if b.down.Load() {
		return pubsub.History{}, errBrokerDown
	}
	return b.MemoryBroker.History(ctx, topic, req)
}

// TestBrokerUnavailable: while the broker fails, subscribe and publish are
// answered with -32000 unavailable (docs/PROTOCOL.md, section 13), nothing
// is left subscribed, and all works again once it is back.
func TestBrokerUnavailable(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			b := &failingBroker{MemoryBroker: pubsub.NewMemoryBroker(0)}
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{
				pubsub.WithBroker(b),
				pubsub.WithRule(">", pubsub.Rule{Publish: allowAll}),
			}})
			ctx := ctxT(t)
			c := e.dial(codec)
			b.down.Store(true)
			for _, topic := range []string{"a", "a.*"} {
				_, err := rawSubscribe(t, c.Peer(), fmt.Sprintf(`{"topic":%q}`, topic))
				if rpc.CodeOf(err) != rpc.CodeUnavailable || !strings.Contains(err.Error(), "broker down") {
					t.Errorf("subscribe to %s with the broker down: %v, want -32000 unavailable", topic, err)
				}
			}
			// Publish: -32000, not published (a raw call: the client would
			// retry a call that was not started, with backoff).
			err := c.Peer().Call(ctx, pubsub.MethodPublish, rpc.Raw(`{"topic":"a","data":1}`), nil)
			if rpc.CodeOf(err) != rpc.CodeUnavailable || !strings.Contains(err.Error(), "broker down") {
				t.Errorf("publish with the broker down: %v, want -32000 unavailable", err)
			}
			if _, err := e.hub.Publish(ctx, "a", 1); !errors.Is(err, errBrokerDown) {
				t.Fatalf("Hub.Publish with the broker down: %v", err)
			}
			if st := e.hub.Stats(); st.Subscriptions != 0 || st.Topics != 0 {
				t.Fatalf("failed subscribes left %+v", st)
			}
			b.down.Store(false)
			sub, err := c.Subscribe(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Publish(ctx, "a", 2); err != nil { // its own: not delivered to it
				t.Fatal(err)
			}
			publishN(t, e.hub, "a", 3, 3)
			if p := next(t, sub); dataInt(t, p) != 3 || p.Offset != 2 {
				t.Fatalf("got %+v", p)
			}
		})
	}
}
