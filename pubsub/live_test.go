package pubsub_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

// liveBroker keeps no stream: what a NATS broker without JetStream is.
// Publish delivers at once, with no position, or fails with err.
type liveBroker struct {
	mu        sync.Mutex
	deliver   func(pubsub.Publication)
	err       error
	published atomic.Int32
}

func (b *liveBroker) Open(deliver func(pubsub.Publication)) error { b.deliver = deliver; return nil }
func (b *liveBroker) Subscribe(context.Context, string) error     { return nil }
func (b *liveBroker) Unsubscribe(context.Context, string) error   { return nil }
func (b *liveBroker) Close() error                                { return nil }

func (b *liveBroker) Publish(_ context.Context, topic string, data []byte, opts pubsub.PublishOptions) (pubsub.Position, error) {
	b.published.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return pubsub.Position{}, b.err
	}
	b.deliver(pubsub.Publication{Topic: topic, Data: data, Publisher: opts.Publisher})
	return pubsub.Position{}, nil
}

func (b *liveBroker) History(context.Context, string, pubsub.HistoryRequest) (pubsub.History, error) {
	return pubsub.History{Live: true}, nil
}

// A topic whose broker keeps no stream: publications arrive with no
// position, and a subscriber asking to recover is told it could not.
func TestLiveBrokerTopics(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			b := &liveBroker{}
			g := &gate{}
			t.Cleanup(g.open)
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{pubsub.WithBroker(b), pubsub.WithRule("news.>", pubsub.Rule{HistorySize: 10})}, wrap: g.wrap})
			c := e.dial(codec)
			ctx := ctxT(t)
			s, err := c.Subscribe(ctx, "news.eu")
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				if _, err := e.hub.Publish(ctx, "news.eu", i); err != nil {
					t.Fatal(err)
				}
			}
			for i := 1; i <= 3; i++ {
				if p := next(t, s); dataInt(t, p) != i || p.Offset != 0 || p.Epoch != "" || p.Gap {
					t.Fatalf("publication %d: %+v", i, p)
				}
			}
			r, err := c.Subscribe(ctx, "news.us", client.Since(pubsub.Position{Offset: 4, Epoch: "e"}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.hub.Publish(ctx, "news.us", 1); err != nil {
				t.Fatal(err)
			}
			if p := next(t, r); dataInt(t, p) != 1 || !p.Gap {
				t.Fatalf("%+v: want it flagged as after a gap (nothing recovered)", p)
			}
			// After a reconnect, a live topic's next publication is flagged:
			// what was published meanwhile is lost.
			old := c.Peer()
			dropConn(t, e, g)()
			waitFor(t, "the client to reconnect and resubscribe", func() bool {
				return c.Peer() != old && e.hub.Stats().Subscriptions == 2
			})
			if _, err := e.hub.Publish(ctx, "news.eu", 9); err != nil {
				t.Fatal(err)
			}
			if p := next(t, s); dataInt(t, p) != 9 || !p.Gap || p.Offset != 0 {
				t.Fatalf("after the reconnect: %+v, want a live publication flagged Gap", p)
			}
		})
	}
}

// A broker that may have published (ErrPublishUnknown) makes $/publish
// fail with CodeInternalError, which the client does not retry.
func TestPublishOutcomeUnknownIsNotRetried(t *testing.T) {
	b := &liveBroker{err: fmt.Errorf("%w: no acknowledgement", pubsub.ErrPublishUnknown)}
	e := newEnv(t, pubsub.WithBroker(b), pubsub.WithRule("chat.>", pubsub.Rule{Publish: func(context.Context, *rpc.Peer, *pubsub.Message) error { return nil }}))
	c := e.dial(rpc.SubprotocolJSON)
	_, err := c.Publish(ctxT(t), "chat.x", "hi")
	if rpc.CodeOf(err) != rpc.CodeInternalError {
		t.Fatalf("publish: %v (code %v), want CodeInternalError", err, rpc.CodeOf(err))
	}
	if n := b.published.Load(); n != 1 {
		t.Fatalf("the broker was asked to publish %d times, want 1", n)
	}
	// A plain broker error means not published: CodeUnavailable, which the
	// client makes again until its context ends.
	b.mu.Lock()
	b.err = fmt.Errorf("refused")
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctxT(t), 500*time.Millisecond)
	defer cancel()
	if _, err := c.Publish(ctx, "chat.x", "hi"); err == nil {
		t.Fatal("publish succeeded on a refusing broker")
	}
	if n := b.published.Load(); n < 3 {
		t.Fatalf("the refused publish was made %d times in all, want it retried", n)
	}
}

// skippingBroker is the memory broker, but the live delivery of one
// publication (by offset) never reaches the node: a subscriber sees a
// hole in the offsets, while the history still holds the publication.
type skippingBroker struct {
	pubsub.Broker
	skip       uint64
	subscribes atomic.Int32
}

func (b *skippingBroker) Open(deliver func(pubsub.Publication)) error {
	return b.Broker.Open(func(p pubsub.Publication) {
		if p.Offset != b.skip {
			deliver(p)
		}
	})
}

func (b *skippingBroker) Subscribe(ctx context.Context, pattern string) error {
	b.subscribes.Add(1)
	return b.Broker.Subscribe(ctx, pattern)
}

// A subscriber that sees a gap in the offsets on the live path recovers
// what it missed from the history, and gets every publication once, in
// order, without being told of a gap.
func TestLiveGapIsRecovered(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			b := &skippingBroker{Broker: pubsub.NewMemoryBroker(0), skip: 3}
			e := newEnv(t, pubsub.WithBroker(b), pubsub.WithRule("news.>", pubsub.Rule{HistorySize: 10}))
			c := e.dial(codec)
			ctx := ctxT(t)
			s, err := c.Subscribe(ctx, "news.eu")
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 6; i++ {
				if _, err := e.hub.Publish(ctx, "news.eu", i); err != nil {
					t.Fatal(err)
				}
			}
			for i := 1; i <= 6; i++ {
				p := next(t, s)
				if dataInt(t, p) != i || p.Offset != uint64(i) || p.Gap {
					t.Fatalf("publication %d: %+v (data %s)", i, p, p.Data)
				}
			}
		})
	}
}

// The node subscribes to the broker once per pattern, however many of its
// connections subscribe to it, and unsubscribes when the last one goes.
func TestNodeSubscribesOncePerPattern(t *testing.T) {
	b := &skippingBroker{Broker: pubsub.NewMemoryBroker(0)}
	e := newEnv(t, pubsub.WithBroker(b))
	ctx := ctxT(t)
	var subs []*client.Subscription
	for range 5 {
		c := e.dial(rpc.SubprotocolBinary)
		for _, pattern := range []string{"room.a", "room.>"} {
			s, err := c.Subscribe(ctx, pattern)
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, s)
		}
	}
	if n := b.subscribes.Load(); n != 2 {
		t.Fatalf("%d broker subscriptions for 10 subscriptions to 2 patterns, want 2", n)
	}
	if _, err := e.hub.Publish(ctx, "room.a", 1); err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		if p := next(t, s); dataInt(t, p) != 1 {
			t.Fatalf("%s: %+v", s.Topic(), p)
		}
	}
}
