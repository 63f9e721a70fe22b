package pubsub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

func allowAll(context.Context, *rpc.Peer, *pubsub.Message) error { return nil }

// TestLimitSubscriptions: a subscribe beyond MaxSubscriptions is refused
// with CodeBusy; ending one makes room.
func TestLimitSubscriptions(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{pubsub.WithLimits(pubsub.Limits{MaxSubscriptions: 2})}})
			ctx := ctxT(t)
			c := e.dial(codec)
			a, err := c.Subscribe(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Subscribe(ctx, "b.*"); err != nil {
				t.Fatal(err)
			}
			_, err = c.Subscribe(ctx, "c")
			wantCode(t, err, rpc.CodeBusy, "limit 2")
			_, err = rawSubscribe(t, c.Peer(), `{"topic":"d"}`)
			wantCode(t, err, rpc.CodeBusy)
			// The limit is per connection.
			if _, err := e.dial(codec).Subscribe(ctx, "c"); err != nil {
				t.Fatalf("another connection: %v", err)
			}
			if err := a.Unsubscribe(ctx); err != nil {
				t.Fatal(err)
			}
			c3, err := c.Subscribe(ctx, "c")
			if err != nil {
				t.Fatalf("after an unsubscribe: %v", err)
			}
			publishN(t, e.hub, "c", 1, 1)
			if p := next(t, c3); dataInt(t, p) != 1 {
				t.Fatalf("got %+v", p)
			}
		})
	}
}

// TestLimitTopics: topics longer than MaxTopicLen or with more tokens than
// MaxTopicTokens are invalid params, for subscribe and publish, and an error
// for Hub.Publish.
func TestLimitTopics(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{
				pubsub.WithLimits(pubsub.Limits{MaxTopicLen: 16, MaxTopicTokens: 3}),
				pubsub.WithRule(">", pubsub.Rule{Publish: allowAll}),
			}})
			ctx := ctxT(t)
			c := e.dial(codec)
			tests := []struct {
				give string
				ok   bool
			}{
				{"a.b.c", true},
				{strings.Repeat("x", 16), true},
				{strings.Repeat("x", 17), false},
				{"a.b.c.d", false},
				{"a.b.>", true},
				{"a.b.c.>", false},
			}
			for _, tt := range tests {
				_, err := c.Subscribe(ctx, tt.give)
				if tt.ok {
					if err != nil {
						t.Errorf("subscribe %q: %v", tt.give, err)
					}
				} else {
					wantCode(t, err, rpc.CodeInvalidParams)
				}
				if pubsub.IsPattern(tt.give) {
					continue
				}
				_, err = c.Publish(ctx, tt.give, 1)
				_, herr := e.hub.Publish(ctx, tt.give, 1)
				if tt.ok {
					if err != nil || herr != nil {
						t.Errorf("publish %q: client %v, hub %v", tt.give, err, herr)
					}
				} else {
					wantCode(t, err, rpc.CodeInvalidParams)
					if herr == nil {
						t.Errorf("Hub.Publish %q: no error", tt.give)
					}
				}
			}
			// The default limits, past the client's own check.
			e2 := newEnv(t)
			p := e2.dial(codec).Peer()
			long := strings.Repeat("x", pubsub.DefaultMaxTopicLen+1)
			many := strings.Repeat("a.", pubsub.DefaultMaxTopicTokens) + "a"
			for _, topic := range []string{long, many} {
				_, err := rawSubscribe(t, p, fmt.Sprintf(`{"topic":%q}`, topic))
				wantCode(t, err, rpc.CodeInvalidParams)
				if _, err := e2.hub.Publish(ctx, topic, 1); err == nil {
					t.Errorf("Hub.Publish on a %d-byte topic: no error", len(topic))
				}
			}
			if _, err := rawSubscribe(t, p, fmt.Sprintf(`{"topic":%q}`, strings.Repeat("x", pubsub.DefaultMaxTopicLen))); err != nil {
				t.Errorf("a topic at the default limit: %v", err)
			}
		})
	}
}

// TestLimitPublicationSize: data beyond MaxPublicationSize is refused from
// a client (invalid params) and from Go code (an error); at the limit it
// goes out.
func TestLimitPublicationSize(t *testing.T) {
	const limit = 1024
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{
				pubsub.WithLimits(pubsub.Limits{MaxPublicationSize: limit}),
				pubsub.WithRule(">", pubsub.Rule{Publish: allowAll}),
			}})
			ctx := ctxT(t)
			c := e.dial(codec)
			sub, err := e.dial(codec).Subscribe(ctx, "big")
			if err != nil {
				t.Fatal(err)
			}
			at := rpc.Raw(`"` + strings.Repeat("x", limit-2) + `"`)   // limit bytes of JSON
			over := rpc.Raw(`"` + strings.Repeat("x", limit-1) + `"`) // one more
			_, err = c.Publish(ctx, "big", json.RawMessage(over))
			wantCode(t, err, rpc.CodeInvalidParams, "exceed")
			if _, err := e.hub.Publish(ctx, "big", over); err == nil {
				t.Fatal("Hub.Publish of oversize data: no error")
			}
			if _, err := c.Publish(ctx, "big", json.RawMessage(at)); err != nil {
				t.Fatalf("client publish at the limit: %v", err)
			}
			if _, err := e.hub.Publish(ctx, "big", at); err != nil {
				t.Fatalf("Hub.Publish at the limit: %v", err)
			}
			for range 2 {
				if p := next(t, sub); len(p.Data) != limit {
					t.Fatalf("got %d bytes, want %d", len(p.Data), limit)
				}
			}
			if st := e.hub.Stats(); st.Published != 2 {
				t.Fatalf("Published = %d, want 2", st.Published)
			}
			// The hub refuses what cannot be a publication too.
			if _, err := e.hub.Publish(ctx, "big.*", 1); err == nil {
				t.Error("Hub.Publish on a pattern: no error")
			}
			if _, err := e.hub.Publish(ctx, "big", rpc.Raw(`{"a":`)); err == nil {
				t.Error("Hub.Publish of invalid JSON: no error")
			}
			if _, err := e.hub.Publish(ctx, "big", func() {}); err == nil {
				t.Error("Hub.Publish of a func: no error")
			}
		})
	}
}

// TestLimitBrokerTopics: a MemoryBroker keeps at most its maxTopics
// streams; a publication or subscription on one more is refused with an
// error reply, and the connection stays up.
func TestLimitBrokerTopics(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{
				pubsub.WithBroker(pubsub.NewMemoryBroker(2)),
				pubsub.WithRule(">", pubsub.Rule{Publish: allowAll, HistorySize: 1}),
			}})
			ctx := ctxT(t)
			c := e.dial(codec)
			publishN(t, e.hub, "t1", 1, 1)
			if _, err := c.Publish(ctx, "t2", 1); err != nil {
				t.Fatal(err)
			}
			if _, err := e.hub.Publish(ctx, "t3", 1); err == nil || !strings.Contains(err.Error(), "too many topics") {
				t.Fatalf("Hub.Publish on a third topic: %v", err)
			}
			_, err := c.Publish(ctx, "t3", 1)
			var re *rpc.Error
			if err == nil || !errors.As(err, &re) || !strings.Contains(re.Message, "too many topics") {
				t.Fatalf("client publish on a third topic: %v", err)
			}
			_, err = c.Subscribe(ctx, "t3")
			if err == nil || !errors.As(err, &re) || !strings.Contains(re.Message, "too many topics") {
				t.Fatalf("subscribe to a third topic: %v", err)
			}
			if st := e.hub.Stats(); st.Subscriptions != 0 {
				t.Fatalf("a refused subscription is kept: %+v", st)
			}
			if _, err := c.Subscribe(ctx, "t1"); err != nil {
				t.Fatalf("subscribe to a kept topic: %v", err)
			}
		})
	}
}

// TestReplayBeyondReadLimit: a recovery whose replay would not fit in one
// message the client accepts (its read limit, 1 MiB by default) must not
// break the subscribe: it succeeds, on the same connection, and delivers
// the most recent publications in order up to the last (with Gap if it
// could not replay them all).
func TestReplayBeyondReadLimit(t *testing.T) {
	const size = 16 << 10
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{pubsub.WithRule(">", pubsub.Rule{HistorySize: 1000})}})
			ctx := ctxT(t)
			data := rpc.Raw(`"` + strings.Repeat("z", size) + `"`)
			var last pubsub.Position
			for range 128 { // 2 MiB of history
				pos, err := e.hub.Publish(ctx, "big", data)
				if err != nil {
					t.Fatal(err)
				}
				last = pos
			}
			c := e.dial(codec)
			p := c.Peer()
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			sub, err := c.Subscribe(sctx, "big", client.Since(pubsub.Position{Epoch: last.Epoch}))
			if err != nil {
				t.Fatalf("subscribe with a 2 MiB replay: %v", err)
			}
			if c.Peer() != p {
				t.Fatal("the subscribe cost the connection")
			}
			prev := uint64(0)
			for prev < last.Offset {
				pub := next(t, sub)
				if pub.Offset <= prev || (prev > 0 && pub.Offset != prev+1) || pub.Gap != (pub.Offset != 1 && prev == 0) {
					t.Fatalf("got offset %d (Gap %v) after %d", pub.Offset, pub.Gap, prev)
				}
				prev = pub.Offset
			}
		})
	}
}

// TestReplayBytes: a replay is bounded in bytes too (MaxReplayBytes, data
// and envelope): the most recent publications that fit, and recovery
// reported incomplete.
func TestReplayBytes(t *testing.T) {
	const bound = 500
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{
				pubsub.WithRule(">", pubsub.Rule{HistorySize: 100}),
				pubsub.WithLimits(pubsub.Limits{MaxReplayBytes: bound}),
			}})
			ctx := ctxT(t)
			data := rpc.Raw(`"` + strings.Repeat("b", 98) + `"`) // 100 bytes
			var last pubsub.Position
			for range 10 {
				pos, err := e.hub.Publish(ctx, "h.a", data)
				if err != nil {
					t.Fatal(err)
				}
				last = pos
			}
			p := e.dial(codec).Peer()
			r, err := rawSubscribe(t, p, fmt.Sprintf(`{"topic":"h.a","since":{"offset":0,"epoch":%q}}`, last.Epoch))
			if err != nil {
				t.Fatal(err)
			}
			n := len(r.Publications)
			if r.Recovered == nil || *r.Recovered || n == 0 || n >= 10 {
				t.Fatalf("reply: recovered %v, publications %v; want some of the most recent, not recovered", r.Recovered, offsetsOf(r.Publications))
			}
			size := 0
			for i, pub := range r.Publications {
				if pub.Offset != uint64(10-n+1+i) {
					t.Fatalf("replayed %v, want the most recent, in order, up to 10", offsetsOf(r.Publications))
				}
				b, _ := json.Marshal(pub)
				size += len(b)
			}
			if size > bound {
				t.Fatalf("replayed %d bytes of publications, bound %d", size, bound)
			}
			unsubscribeRaw(t, p, r.Sub)
			// What is missed fits: complete.
			r, err = rawSubscribe(t, p, fmt.Sprintf(`{"topic":"h.a","since":{"offset":%d,"epoch":%q}}`, 10-n, last.Epoch))
			if err != nil {
				t.Fatal(err)
			}
			if r.Recovered == nil || !*r.Recovered || len(r.Publications) != n {
				t.Fatalf("%d missed, %d fit: recovered %v, %v", n, n, r.Recovered, offsetsOf(r.Publications))
			}
		})
	}
}

// TestReplayManySmall: many small publications replayed make a reply of
// their envelopes more than of their data; it must still fit the client's
// read limit (1 MiB by default).
func TestReplayManySmall(t *testing.T) {
	const n = 20000
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{
				pubsub.WithRule(">", pubsub.Rule{HistorySize: n}),
				pubsub.WithLimits(pubsub.Limits{MaxReplay: n}),
			}})
			ctx := ctxT(t)
			topic := "replay.many.small.publications"
			publishN(t, e.hub, topic, 1, n)
			c := e.dial(codec)
			p := c.Peer()
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			sub, err := c.Subscribe(sctx, topic, client.Since(pubsub.Position{}), client.Buffer(n))
			if err != nil {
				t.Fatalf("subscribe replaying %d small publications: %v", n, err)
			}
			if c.Peer() != p {
				t.Fatal("the subscribe cost the connection")
			}
			prev := uint64(0)
			for prev < n {
				pub := next(t, sub)
				if pub.Offset <= prev || (pub.Offset != prev+1) != pub.Gap {
					t.Fatalf("got offset %d (Gap %v) after %d", pub.Offset, pub.Gap, prev)
				}
				prev = pub.Offset
			}
		})
	}
}

func offsetsOf(ps []wirePub) []uint64 {
	out := make([]uint64, len(ps))
	for i, p := range ps {
		out[i] = p.Offset
	}
	return out
}
