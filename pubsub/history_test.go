package pubsub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

// wantPubs checks a raw reply's publications: offsets from..to on topic,
// each carrying its offset as data (as publishN publishes them) and the
// reply's sub id.
func wantPubs(t testing.TB, r subReply, topic, epoch string, from, to int) {
	t.Helper()
	if len(r.Publications) != to-from+1 {
		t.Fatalf("reply has %d publications, want offsets %d..%d: %+v", len(r.Publications), from, to, r.Publications)
	}
	for i, p := range r.Publications {
		want := from + i
		if p.Offset != uint64(want) || string(p.Data) != fmt.Sprint(want) || p.Topic != topic || p.Epoch != epoch || p.Sub != r.Sub {
			t.Fatalf("publication %d is %+v (data %s), want offset %d on %q epoch %q sub %d", i, p, p.Data, want, topic, epoch, r.Sub)
		}
	}
}

// unsubscribeRaw ends a raw subscription.
func unsubscribeRaw(t testing.TB, p *rpc.Peer, sub uint64) {
	t.Helper()
	res, err := rawCall(t, p, pubsub.MethodUnsubscribe, fmt.Sprintf(`{"sub":%d}`, sub))
	if err != nil || string(res) != "true" {
		t.Fatalf("$/unsubscribe %d: %s, %v", sub, res, err)
	}
}

// TestSubscribeResultFields checks $/subscribe's result on the wire: the
// position for exact topics only, and recovered and publications only
// with since.
func TestSubscribeResultFields(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{pubsub.WithRule("h.>", pubsub.Rule{HistorySize: 10})}})
			ctx := ctxT(t)
			pos, err := e.hub.Publish(ctx, "h.a", 1)
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, e.hub, "h.a", 2, 3)
			c := e.dial(codec)
			p := c.Peer()

			r, err := rawSubscribe(t, p, `{"topic":"h.a"}`)
			if err != nil {
				t.Fatal(err)
			}
			if r.Sub == 0 || r.Topic != "h.a" || r.Position == nil || *r.Position != (pubsub.Position{Offset: 3, Epoch: pos.Epoch}) {
				t.Fatalf("reply %+v (position %v), want sub, topic h.a and position 3/%s", r, r.Position, pos.Epoch)
			}
			if _, ok := r.fields["recovered"]; ok {
				t.Fatalf("reply without since has recovered: %v", r.fields)
			}
			if _, ok := r.fields["publications"]; ok {
				t.Fatalf("reply without since has publications: %v", r.fields)
			}
			unsubscribeRaw(t, p, r.Sub)

			r, err = rawSubscribe(t, p, fmt.Sprintf(`{"topic":"h.a","since":{"offset":1,"epoch":%q}}`, pos.Epoch))
			if err != nil {
				t.Fatal(err)
			}
			if r.Recovered == nil || !*r.Recovered || *r.Position != (pubsub.Position{Offset: 3, Epoch: pos.Epoch}) {
				t.Fatalf("reply %+v, want recovered and position 3", r)
			}
			wantPubs(t, r, "h.a", pos.Epoch, 2, 3)
			unsubscribeRaw(t, p, r.Sub)

			// Since the top: recovered, nothing to replay (an empty array).
			r, err = rawSubscribe(t, p, fmt.Sprintf(`{"topic":"h.a","since":{"offset":3,"epoch":%q}}`, pos.Epoch))
			if err != nil {
				t.Fatal(err)
			}
			if r.Recovered == nil || !*r.Recovered || string(r.fields["publications"]) != "[]" {
				t.Fatalf("reply since the top: %+v %s, want recovered and []", r, r.fields["publications"])
			}
			unsubscribeRaw(t, p, r.Sub)

			// Since beyond the top: not recoverable.
			r, err = rawSubscribe(t, p, fmt.Sprintf(`{"topic":"h.a","since":{"offset":9,"epoch":%q}}`, pos.Epoch))
			if err != nil {
				t.Fatal(err)
			}
			if r.Recovered == nil || *r.Recovered || len(r.Publications) != 0 {
				t.Fatalf("reply since offset 9 of 3: %+v, want recovered false", r)
			}
			unsubscribeRaw(t, p, r.Sub)

			// A pattern: no position.
			r, err = rawSubscribe(t, p, `{"topic":"h.*"}`)
			if err != nil {
				t.Fatal(err)
			}
			if r.Topic != "h.*" || r.Sub == 0 {
				t.Fatalf("pattern reply %+v", r)
			}
			for _, k := range []string{"position", "recovered", "publications"} {
				if _, ok := r.fields[k]; ok {
					t.Fatalf("pattern reply has %s: %v", k, r.fields)
				}
			}
			// A topic nothing was published on has offset 0 in an epoch of its own.
			r, err = rawSubscribe(t, p, `{"topic":"h.empty"}`)
			if err != nil {
				t.Fatal(err)
			}
			if r.Position == nil || r.Position.Offset != 0 || r.Position.Epoch == "" {
				t.Fatalf("empty topic reply %+v", r)
			}
		})
	}
}

// TestHistoryCountBound: a topic keeps its last HistorySize publications;
// recovery from before them is incomplete (Gap on the first delivered),
// from within them complete.
func TestHistoryCountBound(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{
				pubsub.WithRule("h.short", pubsub.Rule{HistorySize: 3}),
				pubsub.WithRule("h.>", pubsub.Rule{HistorySize: 100}), // the first matching rule decides
			}})
			ctx := ctxT(t)
			pos, err := e.hub.Publish(ctx, "h.short", 1)
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, e.hub, "h.short", 2, 5)
			epoch := pos.Epoch
			c := e.dial(codec)

			r, err := rawSubscribe(t, c.Peer(), fmt.Sprintf(`{"topic":"h.short","since":{"offset":0,"epoch":%q}}`, epoch))
			if err != nil {
				t.Fatal(err)
			}
			if r.Recovered == nil || *r.Recovered {
				t.Fatalf("recovery from 0 with 3 kept: %+v, want recovered false", r)
			}
			wantPubs(t, r, "h.short", epoch, 3, 5)
			unsubscribeRaw(t, c.Peer(), r.Sub)

			// Through the client: incomplete from 1, Gap on the first delivered.
			sub, err := c.Subscribe(ctx, "h.short", client.Since(pubsub.Position{Offset: 1, Epoch: epoch}))
			if err != nil {
				t.Fatal(err)
			}
			for want := 3; want <= 5; want++ {
				p := next(t, sub)
				if p.Offset != uint64(want) || dataInt(t, p) != want || p.Gap != (want == 3) {
					t.Fatalf("got %+v, want offset %d with Gap %v", p, want, want == 3)
				}
			}
			publishN(t, e.hub, "h.short", 6, 6)
			if p := next(t, sub); p.Offset != 6 || p.Gap {
				t.Fatalf("live after recovery: %+v", p)
			}
			waitFor(t, "Position() at 6", func() bool { return sub.Position() == (pubsub.Position{Offset: 6, Epoch: epoch}) })
			if err := sub.Unsubscribe(ctx); err != nil {
				t.Fatal(err)
			}

			// Complete from 3 (4..6 are kept).
			sub, err = c.Subscribe(ctx, "h.short", client.Since(pubsub.Position{Offset: 3, Epoch: epoch}))
			if err != nil {
				t.Fatal(err)
			}
			for want := 4; want <= 6; want++ {
				if p := next(t, sub); p.Offset != uint64(want) || p.Gap {
					t.Fatalf("got %+v, want offset %d without Gap", p, want)
				}
			}
			none(t, sub)

			// The other rule keeps 100.
			publishN(t, e.hub, "h.long", 1, 20)
			r, err = rawSubscribe(t, c.Peer(), fmt.Sprintf(`{"topic":"h.long","since":{"offset":0,"epoch":""}}`))
			if err != nil {
				t.Fatal(err)
			}
			if r.Recovered == nil || !*r.Recovered {
				t.Fatalf("h.long from the start: %+v", r)
			}
			wantPubs(t, r, "h.long", r.Position.Epoch, 1, 20)
		})
	}
}

// TestHistoryAgeBound: publications older than HistoryTTL are no longer
// replayed.
func TestHistoryAgeBound(t *testing.T) {
	const ttl = 50 * time.Millisecond
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			broker := pubsub.NewMemoryBroker(0)
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{
				pubsub.WithBroker(broker),
				pubsub.WithRule("h.>", pubsub.Rule{HistorySize: 100, HistoryTTL: ttl}),
			}})
			ctx := ctxT(t)
			start := time.Now()
			pos, err := e.hub.Publish(ctx, "h.a", 1)
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, e.hub, "h.a", 2, 3)
			epoch := pos.Epoch
			since := &pubsub.Position{Offset: 0, Epoch: epoch}
			h, err := broker.History(ctx, "h.a", pubsub.HistoryRequest{Since: since, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if time.Since(start) < ttl && len(h.Publications) != 3 {
				t.Fatalf("history within the TTL holds %d, want 3", len(h.Publications))
			}
			waitFor(t, "the history to expire", func() bool {
				h, err := broker.History(ctx, "h.a", pubsub.HistoryRequest{Since: since, Limit: 100})
				return err == nil && len(h.Publications) == 0
			})
			if d := time.Since(start); d < ttl {
				t.Fatalf("history expired after %v, before its TTL of %v", d, ttl)
			}
			c := e.dial(codec)
			sub, err := c.Subscribe(ctx, "h.a", client.Since(pubsub.Position{Offset: 1, Epoch: epoch}))
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, e.hub, "h.a", 4, 4)
			if p := next(t, sub); p.Offset != 4 || !p.Gap || p.Epoch != epoch {
				t.Fatalf("after expiry: %+v, want offset 4 of the same epoch with Gap", p)
			}
		})
	}
}

// TestRecoverOtherEpoch: a since of another epoch is not recoverable: the
// reply says so, replays nothing, and the client sets Gap.
func TestRecoverOtherEpoch(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{pubsub.WithRule(">", pubsub.Rule{HistorySize: 10})}})
			ctx := ctxT(t)
			pos, err := e.hub.Publish(ctx, "h.a", 1)
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, e.hub, "h.a", 2, 3)
			c := e.dial(codec)
			r, err := rawSubscribe(t, c.Peer(), `{"topic":"h.a","since":{"offset":1,"epoch":"not-this-one"}}`)
			if err != nil {
				t.Fatal(err)
			}
			if r.Recovered == nil || *r.Recovered || len(r.Publications) != 0 ||
				r.Position == nil || *r.Position != (pubsub.Position{Offset: 3, Epoch: pos.Epoch}) {
				t.Fatalf("reply %+v (position %v), want recovered false, no publications, position 3/%s", r, r.Position, pos.Epoch)
			}
			unsubscribeRaw(t, c.Peer(), r.Sub)

			sub, err := c.Subscribe(ctx, "h.a", client.Since(pubsub.Position{Offset: 2, Epoch: "not-this-one"}))
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, e.hub, "h.a", 4, 5)
			if p := next(t, sub); p.Offset != 4 || !p.Gap || p.Epoch != pos.Epoch || dataInt(t, p) != 4 {
				t.Fatalf("first after another epoch: %+v, want 4 with Gap", p)
			}
			if p := next(t, sub); p.Offset != 5 || p.Gap {
				t.Fatalf("second: %+v, want 5 without Gap", p)
			}
		})
	}
}

// TestRecoverFromEpochStart: a since with an empty epoch means the start of
// the current epoch.
func TestRecoverFromEpochStart(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{pubsub.WithRule(">", pubsub.Rule{HistorySize: 10})}})
			ctx := ctxT(t)
			publishN(t, e.hub, "h.a", 1, 4)
			c := e.dial(codec)
			sub, err := c.Subscribe(ctx, "h.a", client.Since(pubsub.Position{}))
			if err != nil {
				t.Fatal(err)
			}
			for want := 1; want <= 4; want++ {
				if p := next(t, sub); p.Offset != uint64(want) || p.Gap || dataInt(t, p) != want {
					t.Fatalf("got %+v, want offset %d", p, want)
				}
			}
			// With more published than kept, it is incomplete.
			publishN(t, e.hub, "h.b", 1, 12)
			var res rpc.Raw
			err = c.Peer().Call(ctx, pubsub.MethodSubscribe, map[string]any{"topic": "h.b", "since": map[string]any{"offset": 0, "epoch": ""}}, &res)
			if err != nil {
				t.Fatal(err)
			}
			var r struct {
				Recovered    bool      `json:"recovered"`
				Publications []wirePub `json:"publications"`
			}
			if err := json.Unmarshal(res, &r); err != nil {
				t.Fatal(err)
			}
			if r.Recovered || len(r.Publications) != 10 || r.Publications[0].Offset != 3 {
				t.Fatalf("h.b from the start with 12 published, 10 kept: %s", res)
			}
		})
	}
}

// TestReplayCap: one subscribe replays at most Limits.MaxReplay
// publications, the most recent; more missed is an incomplete recovery.
func TestReplayCap(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{
				pubsub.WithRule(">", pubsub.Rule{HistorySize: 10}),
				pubsub.WithLimits(pubsub.Limits{MaxReplay: 3}),
			}})
			ctx := ctxT(t)
			pos, err := e.hub.Publish(ctx, "h.a", 1)
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, e.hub, "h.a", 2, 8)
			c := e.dial(codec)
			r, err := rawSubscribe(t, c.Peer(), fmt.Sprintf(`{"topic":"h.a","since":{"offset":0,"epoch":%q}}`, pos.Epoch))
			if err != nil {
				t.Fatal(err)
			}
			if r.Recovered == nil || *r.Recovered {
				t.Fatalf("8 missed, cap 3: %+v, want recovered false", r)
			}
			wantPubs(t, r, "h.a", pos.Epoch, 6, 8)
			unsubscribeRaw(t, c.Peer(), r.Sub)
			// Exactly the cap missed: complete.
			r, err = rawSubscribe(t, c.Peer(), fmt.Sprintf(`{"topic":"h.a","since":{"offset":5,"epoch":%q}}`, pos.Epoch))
			if err != nil {
				t.Fatal(err)
			}
			if r.Recovered == nil || !*r.Recovered {
				t.Fatalf("3 missed, cap 3: %+v, want recovered", r)
			}
			wantPubs(t, r, "h.a", pos.Epoch, 6, 8)
			unsubscribeRaw(t, c.Peer(), r.Sub)

			sub, err := c.Subscribe(ctx, "h.a", client.Since(pubsub.Position{Offset: 2, Epoch: pos.Epoch}))
			if err != nil {
				t.Fatal(err)
			}
			for want := 6; want <= 8; want++ {
				if p := next(t, sub); p.Offset != uint64(want) || p.Gap != (want == 6) {
					t.Fatalf("got %+v, want offset %d with Gap %v", p, want, want == 6)
				}
			}
		})
	}
}

// TestHistoryRaceFreeSubscribe: subscribes made while a publisher runs
// lose and duplicate nothing: the live stream continues exactly where the
// reply's position (or its replay) ended.
func TestHistoryRaceFreeSubscribe(t *testing.T) {
	const total = 10000
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{
				pubsub.WithRule("fast", pubsub.Rule{HistorySize: total}),
				// The whole stream fits one reply: 10,000 entries of about 80 bytes,
				// under the client's 1 MiB read limit.
				pubsub.WithLimits(pubsub.Limits{MaxReplay: total, MaxReplayBytes: 1000 << 10, MaxQueuedPublicationBytes: 256 << 20, MaxJoinBuffer: total}),
			}})
			ctx := ctxT(t)
			rawPubs := newPubCollector()
			live := e.dial(codec)
			fromStart := e.dial(codec)
			raw := e.dial(codec, client.WithOnPublication(rawPubs.add))

			started := make(chan struct{})
			pubErr := make(chan error, 1)
			go func() {
				for i := 1; i <= total; i++ {
					if _, err := e.hub.Publish(context.Background(), "fast", i); err != nil {
						pubErr <- err
						return
					}
					if i == total/10 {
						close(started)
					}
				}
				pubErr <- nil
			}()
			<-started
			type result struct {
				name string
				got  []pubsub.Publication
				err  error
			}
			results := make(chan result, 2)
			collect := func(name string, s *client.Subscription, err error) {
				if err != nil {
					results <- result{name: name, err: err}
					return
				}
				var got []pubsub.Publication
				if s.Position().Offset >= total && len(s.C()) == 0 {
					// Subscribed at the last publication: there is nothing to
					// see. (Position moves only after a publication is on C.)
					results <- result{name: name}
					return
				}
				timeout := time.After(20 * time.Second)
				for {
					select {
					case p, ok := <-s.C():
						if !ok {
							results <- result{name, got, fmt.Errorf("ended: %v", s.Err())}
							return
						}
						got = append(got, p)
						if p.Offset >= total {
							results <- result{name, got, nil}
							return
						}
					case <-timeout:
						results <- result{name, got, fmt.Errorf("timed out with %d", len(got))}
						return
					}
				}
			}
			go func() {
				s, err := live.Subscribe(ctx, "fast", client.Buffer(total))
				collect("live", s, err)
			}()
			go func() {
				s, err := fromStart.Subscribe(ctx, "fast", client.Since(pubsub.Position{}), client.Buffer(total))
				collect("since {0,\"\"}", s, err)
			}()
			// The same on the wire: the reply's replay and the live
			// notifications after it.
			rr, rerr := rawSubscribe(t, raw.Peer(), `{"topic":"fast","since":{"offset":0,"epoch":""}}`)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if err := <-pubErr; err != nil {
				t.Fatal(err)
			}
			liveOffsets := func(ps []pubsub.Publication) bool {
				return len(ps) > 0 && ps[len(ps)-1].Offset == total
			}
			var rawLive []pubsub.Publication
			if rr.Position.Offset < total {
				rawLive = rawPubs.wait(t, "the raw subscription's live publications", liveOffsets)
			}
			if rr.Recovered == nil || !*rr.Recovered {
				t.Errorf("raw: recovered = %v, want true", rr.Recovered)
			}
			next := uint64(1)
			for _, p := range rr.Publications {
				if p.Offset != next || string(p.Data) != fmt.Sprint(next) {
					t.Fatalf("raw replay: offset %d (data %s), want %d", p.Offset, p.Data, next)
				}
				next++
			}
			if next-1 != rr.Position.Offset {
				t.Fatalf("raw replay ends at %d, position %d", next-1, rr.Position.Offset)
			}
			for _, p := range rawLive {
				if p.Offset != next {
					t.Fatalf("raw live: offset %d, want %d (replay ended at %d)", p.Offset, next, rr.Position.Offset)
				}
				next++
			}
			if next-1 != total {
				t.Fatalf("raw: saw up to %d, want %d", next-1, total)
			}
			t.Logf("raw subscribe: %d replayed, %d live", len(rr.Publications), len(rawLive))

			for range 2 {
				r := <-results
				if r.err != nil {
					t.Fatalf("%s: %v", r.name, r.err)
				}
				if len(r.got) == 0 {
					t.Logf("%s: subscribed after the last publication", r.name)
					continue
				}
				first := r.got[0].Offset
				if r.name != "live" && first != 1 {
					t.Fatalf("%s: first offset %d, want 1", r.name, first)
				}
				for i, p := range r.got {
					if p.Offset != first+uint64(i) || p.Gap || dataInt(t, p) != int(p.Offset) {
						t.Fatalf("%s: publication %d is %+v, want offset %d without Gap", r.name, i, p, first+uint64(i))
					}
				}
				t.Logf("%s: offsets %d..%d", r.name, first, r.got[len(r.got)-1].Offset)
			}
			if st := e.hub.Stats(); st.SlowClosed != 0 || st.Lost != 0 {
				t.Fatalf("stats %+v: the test needs every subscriber kept up", st)
			}
		})
	}
}
