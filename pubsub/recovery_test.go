package pubsub_test

import (
	"context"
	"sync"
	"testing"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

// dropConn cuts the client's connection from the server side (as a network
// failure would, no close handshake), keeps it from reconnecting until the
// returned func is called, and waits until the hub has detached it.
func dropConn(t testing.TB, e *env, g *gate) (reopen func()) {
	t.Helper()
	g.close()
	// The server's peer serves calls from the handshake on, before the
	// server registers the connection: a handler may have run already.
	var conns []*rpc.Peer
	waitFor(t, "the server to register the one connection", func() bool {
		conns = e.srv.Conns()
		return len(conns) == 1
	})
	_ = conns[0].CloseNow()
	waitFor(t, "the hub to detach the connection", func() bool {
		st := e.hub.Stats()
		return st.Connections == 0 && st.Subscriptions == 0
	})
	return g.open
}

// TestRecoveryAfterDrop: a client whose connection dropped reconnects by
// itself and its subscription delivers what was published meanwhile, in
// order and without Gap, from the topic's history.
func TestRecoveryAfterDrop(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			g := &gate{}
			t.Cleanup(g.open)
			e := newEnvWith(t, envConfig{
				hub:  []pubsub.Option{pubsub.WithRule("h.>", pubsub.Rule{HistorySize: 100})},
				wrap: g.wrap,
			})
			ctx := ctxT(t)
			c := e.dial(codec)
			sub, err := c.Subscribe(ctx, "h.a")
			if err != nil {
				t.Fatal(err)
			}
			pat, err := c.Subscribe(ctx, "h.*") // a pattern resubscribes, without recovery
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, e.hub, "h.a", 1, 3)
			for want := 1; want <= 3; want++ {
				if p := next(t, sub); p.Offset != uint64(want) {
					t.Fatalf("before the drop: %+v", p)
				}
				next(t, pat)
			}
			old := c.Peer()
			reopen := dropConn(t, e, g)
			publishN(t, e.hub, "h.a", 4, 9)
			reopen()
			for want := 4; want <= 9; want++ {
				p := next(t, sub)
				if p.Offset != uint64(want) || dataInt(t, p) != want || p.Gap {
					t.Fatalf("after reconnecting: %+v, want offset %d without Gap", p, want)
				}
			}
			if c.Peer() == old {
				t.Fatal("recovered without a new connection")
			}
			waitFor(t, "both subscriptions made again", func() bool { return e.hub.Stats().Subscriptions == 2 })
			publishN(t, e.hub, "h.a", 10, 10)
			if p := next(t, sub); p.Offset != 10 || p.Gap {
				t.Fatalf("live after recovery: %+v", p)
			}
			// The pattern subscription missed 4..9 and says so.
			p := next(t, pat)
			if dataInt(t, p) != 10 {
				t.Fatalf("pattern after reconnecting: %+v (data %s), want 10", p, p.Data)
			}
			none(t, sub)
		})
	}
}

// TestReconnectWithoutHistory: without history, what was published while
// disconnected is lost, and the next publication says so with Gap; when
// nothing was missed, there is no Gap.
func TestReconnectWithoutHistory(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			g := &gate{}
			t.Cleanup(g.open)
			e := newEnvWith(t, envConfig{wrap: g.wrap})
			ctx := ctxT(t)
			c := e.dial(codec)
			sub, err := c.Subscribe(ctx, "t")
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, e.hub, "t", 1, 1)
			if p := next(t, sub); p.Offset != 1 || p.Gap {
				t.Fatalf("got %+v", p)
			}

			// Nothing missed.
			dropConn(t, e, g)()
			waitFor(t, "the subscription made again", func() bool { return e.hub.Stats().Subscriptions == 1 })
			publishN(t, e.hub, "t", 2, 2)
			if p := next(t, sub); p.Offset != 2 || p.Gap {
				t.Fatalf("nothing missed: got %+v, want offset 2 without Gap", p)
			}

			// Two missed.
			reopen := dropConn(t, e, g)
			publishN(t, e.hub, "t", 3, 4)
			reopen()
			waitFor(t, "the subscription made again", func() bool { return e.hub.Stats().Subscriptions == 1 })
			publishN(t, e.hub, "t", 5, 6)
			if p := next(t, sub); p.Offset != 5 || !p.Gap || dataInt(t, p) != 5 {
				t.Fatalf("3 and 4 missed: got %+v, want offset 5 with Gap", p)
			}
			if p := next(t, sub); p.Offset != 6 || p.Gap {
				t.Fatalf("got %+v, want offset 6 without Gap", p)
			}
		})
	}
}

// resettableBroker is a MemoryBroker that a test can replace with a fresh
// one, as a broker that lost its state would be: every topic starts again
// in a new epoch.
type resettableBroker struct {
	mu      sync.Mutex
	b       *pubsub.MemoryBroker
	deliver func(pubsub.Publication)
	subs    []string
}

func (r *resettableBroker) cur() *pubsub.MemoryBroker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b
}

func (r *resettableBroker) Open(deliver func(pubsub.Publication)) error {
	r.mu.Lock()
	r.deliver = deliver
	r.b = pubsub.NewMemoryBroker(0)
	r.mu.Unlock()
	return r.b.Open(deliver)
}

func (r *resettableBroker) reset(t testing.TB) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.b.Close()
	r.b = pubsub.NewMemoryBroker(0)
	if err := r.b.Open(r.deliver); err != nil {
		t.Fatal(err)
	}
	for _, p := range r.subs {
		_ = r.b.Subscribe(context.Background(), p)
	}
}

func (r *resettableBroker) Subscribe(ctx context.Context, pattern string) error {
	r.mu.Lock()
	r.subs = append(r.subs, pattern)
	r.mu.Unlock()
	return r.cur().Subscribe(ctx, pattern)
}

func (r *resettableBroker) Unsubscribe(ctx context.Context, pattern string) error {
	r.mu.Lock()
	for i, p := range r.subs {
		if p == pattern {
			r.subs = append(r.subs[:i], r.subs[i+1:]...)
			break
		}
	}
	r.mu.Unlock()
	return r.cur().Unsubscribe(ctx, pattern)
}

func (r *resettableBroker) Publish(ctx context.Context, topic string, data []byte, o pubsub.PublishOptions) (pubsub.Position, error) {
	return r.cur().Publish(ctx, topic, data, o)
}

func (r *resettableBroker) History(ctx context.Context, topic string, req pubsub.HistoryRequest) (pubsub.History, error) {
	return r.cur().History(ctx, topic, req)
}

func (r *resettableBroker) Close() error { return r.cur().Close() }

// TestEpochChangeOnReconnect: a client that reconnects after the broker lost
// the topic's stream cannot recover: it is told with Gap, and continues in
// the new epoch.
func TestEpochChangeOnReconnect(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			g := &gate{}
			t.Cleanup(g.open)
			rb := &resettableBroker{}
			e := newEnvWith(t, envConfig{
				hub:  []pubsub.Option{pubsub.WithBroker(rb), pubsub.WithRule(">", pubsub.Rule{HistorySize: 100})},
				wrap: g.wrap,
			})
			ctx := ctxT(t)
			c := e.dial(codec)
			sub, err := c.Subscribe(ctx, "h.a")
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, e.hub, "h.a", 1, 3)
			var old pubsub.Position
			for range 3 {
				p := next(t, sub)
				old = p.Position()
			}
			reopen := dropConn(t, e, g)
			rb.reset(t)
			pos, err := e.hub.Publish(ctx, "h.a", 100)
			if err != nil {
				t.Fatal(err)
			}
			if pos.Epoch == old.Epoch || pos.Offset != 1 {
				t.Fatalf("after the reset: %+v, want offset 1 of a new epoch (old %+v)", pos, old)
			}
			reopen()
			// 100 is in the new epoch's history, but the client's since is of
			// the old epoch: nothing can be recovered, and it says so.
			waitFor(t, "the subscription made again", func() bool { return e.hub.Stats().Subscriptions == 1 })
			publishN(t, e.hub, "h.a", 101, 101)
			p := next(t, sub)
			if p.Epoch != pos.Epoch || !p.Gap || p.Offset != 2 || dataInt(t, p) != 101 {
				t.Fatalf("after the epoch change: %+v (data %s), want offset 2 of %s with Gap", p, p.Data, pos.Epoch)
			}
			publishN(t, e.hub, "h.a", 102, 102)
			if p := next(t, sub); p.Offset != 3 || p.Gap {
				t.Fatalf("got %+v, want offset 3 without Gap", p)
			}
		})
	}
}

// TestEpochChangeLive: a live publication of a new epoch (the broker lost
// the stream while the client stayed connected) is delivered, with Gap:
// what came before it in the old epoch may be lost, but it was not.
func TestEpochChangeLive(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			rb := &resettableBroker{}
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{pubsub.WithBroker(rb), pubsub.WithRule(">", pubsub.Rule{HistorySize: 100})}})
			ctx := ctxT(t)
			c := e.dial(codec)
			sub, err := c.Subscribe(ctx, "h.a")
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, e.hub, "h.a", 1, 2)
			next(t, sub)
			last := next(t, sub)
			old := last.Position()
			rb.reset(t)
			publishN(t, e.hub, "h.a", 1, 3)
			for want := 1; want <= 3; want++ {
				p := next(t, sub)
				if p.Offset != uint64(want) || p.Epoch == old.Epoch || p.Gap != (want == 1) {
					t.Fatalf("got %+v, want offset %d of a new epoch, Gap %v", p, want, want == 1)
				}
			}
		})
	}
}

// TestRecoveryFromSavedPosition: a position kept from an earlier run (a new
// client) recovers through client.Since.
func TestRecoveryFromSavedPosition(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{pubsub.WithRule(">", pubsub.Rule{HistorySize: 100})}})
			ctx := ctxT(t)
			first := e.dial(codec)
			sub, err := first.Subscribe(ctx, "h.a")
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, e.hub, "h.a", 1, 5)
			var last pubsub.Publication
			for range 5 {
				last = next(t, sub)
			}
			saved := last.Position()
			if saved.Offset != 5 {
				t.Fatalf("last position %+v, want offset 5", saved)
			}
			// Position follows (it is set once the publication is on C).
			waitFor(t, "Position() to reach the last publication", func() bool { return sub.Position() == saved })
			_ = first.Close()
			publishN(t, e.hub, "h.a", 6, 8)
			second := e.dial(codec)
			sub, err = second.Subscribe(ctx, "h.a", client.Since(saved))
			if err != nil {
				t.Fatal(err)
			}
			for want := 6; want <= 8; want++ {
				if p := next(t, sub); p.Offset != uint64(want) || p.Gap {
					t.Fatalf("got %+v, want offset %d", p, want)
				}
			}
			_, err = second.Subscribe(ctx, "h.*", client.Since(saved))
			wantCode(t, err, rpc.CodeInvalidParams, "pattern")
		})
	}
}

// TestSubscribeDuringReconnect: a Subscribe whose connection drops before
// the reply is made on the next connection, once: it succeeds and the
// subscription delivers, with one subscription on the server.
func TestSubscribeDuringReconnect(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			g := &gate{}
			t.Cleanup(g.open)
			entered := make(chan struct{}, 1)
			var first sync.Once
			e := newEnvWith(t, envConfig{
				wrap: g.wrap,
				hub: []pubsub.Option{pubsub.WithRule("slow", pubsub.Rule{
					Subscribe: func(ctx context.Context, p *rpc.Peer, pattern string) error {
						hold := false
						first.Do(func() { hold = true })
						if hold { // the first subscribe waits for its connection to drop
							entered <- struct{}{}
							<-ctx.Done()
							return ctx.Err()
						}
						return nil
					},
				})},
			})
			ctx := ctxT(t)
			c := e.dial(codec)
			type result struct {
				sub *client.Subscription
				err error
			}
			done := make(chan result, 1)
			go func() {
				s, err := c.Subscribe(ctx, "slow")
				done <- result{s, err}
			}()
			select {
			case <-entered:
			case <-ctx.Done():
				t.Fatal("the subscribe did not reach the server")
			}
			dropConn(t, e, g)()
			var r result
			select {
			case r = <-done:
			case <-ctx.Done():
				t.Fatal("Subscribe did not return")
			}
			if r.err != nil {
				t.Fatalf("Subscribe across a reconnect: %v", r.err)
			}
			waitFor(t, "the subscription on the new connection", func() bool { return e.hub.Stats().Subscriptions >= 1 })
			publishN(t, e.hub, "slow", 1, 2)
			for want := 1; want <= 2; want++ {
				if p := next(t, r.sub); p.Offset != uint64(want) {
					t.Fatalf("got %+v, want offset %d", p, want)
				}
			}
			if st := e.hub.Stats(); st.Subscriptions != 1 {
				t.Fatalf("Subscriptions = %d, want 1", st.Subscriptions)
			}
			if err := r.sub.Err(); err != nil {
				t.Fatalf("subscription ended: %v", err)
			}
		})
	}
}
