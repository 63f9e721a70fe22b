package pubsub_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/internal/wstest"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// TestSlowSubscriber: a connection that stops reading is closed with
// CloseSlowSubscriber once its queued publications pass
// MaxQueuedPublicationBytes, and counted, while a subscriber that keeps reading gets every
// publication; the publisher never waits for the slow one.
func TestSlowSubscriber(t *testing.T) {
	const (
		limit  = 64 << 10
		size   = 16 << 10
		window = 2 // publications the fast subscriber may lag: well under limit
		most   = 4000
	)
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			ended := make(chan error, 4)
			e := newEnvWith(t, envConfig{
				hub: []pubsub.Option{
					pubsub.WithLimits(pubsub.Limits{MaxQueuedPublicationBytes: limit}),
					// The raw connection subscribes server-side: it never sends
					// anything, and never reads.
					pubsub.WithConnectSubscriptions(func(p *rpc.Peer) []string {
						if p.Header().Get("X-Slow") != "" {
							return []string{"feed"}
						}
						return nil
					}),
				},
				srv: []server.Option{server.WithOnDisconnect(func(p *rpc.Peer, err error) {
					if p.Header().Get("X-Slow") != "" {
						ended <- err
					}
				})},
			})
			ctx := ctxT(t)
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			slow, _, err := wstest.DialPeer(dctx, e.url, http.Header{"Sec-Websocket-Protocol": {codec}, "X-Slow": {"1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer slow.Close()
			if slow.Subprotocol() != codec {
				t.Fatalf("raw peer got subprotocol %q", slow.Subprotocol())
			}
			waitFor(t, "the slow connection's subscription", func() bool { return e.hub.Stats().Subscriptions == 1 })
			fast, err := e.dial(codec).Subscribe(ctx, "feed")
			if err != nil {
				t.Fatal(err)
			}

			data := `"` + strings.Repeat("x", size) + `"`
			var published, received uint64
			closedAt := uint64(0)
			var endErr error
			for closedAt == 0 || published < closedAt+10 {
				if published >= most {
					t.Fatalf("%d publications of %d bytes and the connection that reads nothing is still open (stats %+v)", published, size, e.hub.Stats())
				}
				start := time.Now()
				pos, err := e.hub.Publish(ctx, "feed", rpc.Raw(data))
				if err != nil {
					t.Fatal(err)
				}
				if d := time.Since(start); d > 2*time.Second {
					t.Fatalf("Publish took %v: it waited for a subscriber", d)
				}
				published = pos.Offset
				for published-received >= window {
					p := next(t, fast)
					if p.Offset != received+1 || p.Gap || len(p.Data) != len(data) {
						t.Fatalf("fast subscriber got offset %d (Gap %v, %d bytes), want %d", p.Offset, p.Gap, len(p.Data), received+1)
					}
					received++
				}
				if closedAt == 0 && e.hub.Stats().SlowClosed > 0 {
					closedAt = published
				}
				if closedAt == 0 && endErr == nil {
					select {
					case endErr = <-ended: // closed, but not counted: caught below
						closedAt = published
					default:
					}
				}
			}
			if st := e.hub.Stats(); st.SlowClosed != 1 {
				t.Errorf("the connection that read nothing ended (%v), and SlowClosed = %d, want 1", endErr, st.SlowClosed)
			}
			// Read what the socket holds: the close frame comes after it, if
			// the socket took it within the server's grace (a second): the
			// queue is dropped, not flushed, for a peer that does not read.
			_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
			code, reason, err := slow.ReadClose()
			if err == nil && (code != int(pubsub.CloseSlowSubscriber) || !strings.Contains(reason, "slow subscriber")) {
				t.Errorf("raw peer closed with %d %q, want %d", code, reason, pubsub.CloseSlowSubscriber)
			} else if err != nil {
				t.Logf("raw peer: dropped without a close frame (%v)", err)
			}
			if endErr == nil {
				select {
				case endErr = <-ended:
				case <-ctx.Done():
					t.Fatal("the slow connection did not end")
				}
			}
			{
				err := endErr
				var ce *transport.CloseError
				if !errors.As(err, &ce) || ce.Code != pubsub.CloseSlowSubscriber || ce.Remote || !errors.Is(err, transport.ErrSlowReader) {
					t.Errorf("slow connection ended with %v, want a local %d wrapping ErrSlowReader", err, pubsub.CloseSlowSubscriber)
				}
			}
			for received < published {
				p := next(t, fast)
				if p.Offset != received+1 || p.Gap {
					t.Fatalf("fast subscriber got %+v, want offset %d", p.Position(), received+1)
				}
				received++
			}
			if st := e.hub.Stats(); st.SlowClosed > 1 {
				t.Fatalf("SlowClosed = %d, want 1 (the fast subscriber must not be closed)", st.SlowClosed)
			}
			waitFor(t, "the slow connection detached", func() bool { return e.hub.Stats().Subscriptions == 1 })
			t.Logf("closed after %d publications (%d KiB)", closedAt, closedAt*size>>10)
		})
	}
}

// TestSlowClientReconnectsAndRecovers: a client whose subscription is not
// read fills its channel, stops reading the connection and is closed as a
// slow subscriber; once read again, it reconnects and recovers from the
// history: every publication once and in order, or a Gap where the replay
// could not reach back.
func TestSlowClientReconnectsAndRecovers(t *testing.T) {
	const size = 4 << 10
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{
				pubsub.WithLimits(pubsub.Limits{MaxQueuedPublicationBytes: 64 << 10, MaxReplay: 10000}),
				pubsub.WithRule("feed", pubsub.Rule{HistorySize: 10000}),
			}})
			ctx := ctxT(t)
			c := e.dial(codec)
			sub, err := c.Subscribe(ctx, "feed", client.Buffer(1))
			if err != nil {
				t.Fatal(err)
			}
			// Runs before the client's Close (cleanups run last first): a
			// reader of C lets Close through whatever happened.
			t.Cleanup(func() {
				go func() {
					for range sub.C() {
					}
				}()
			})
			first := c.Peer()
			data := rpc.Raw(`"` + strings.Repeat("y", size) + `"`)
			n := uint64(0)
			for e.hub.Stats().SlowClosed == 0 {
				if n >= 4000 {
					t.Fatalf("not closed after %d publications of %d bytes (first connection ended: %v; stats %+v)", n, size, first.Conn().Err(), e.hub.Stats())
				}
				pos, err := e.hub.Publish(ctx, "feed", data)
				if err != nil {
					t.Fatal(err)
				}
				n = pos.Offset
			}
			// Publish a few more: the reconnected client recovers them.
			for range 5 {
				pos, err := e.hub.Publish(ctx, "feed", data)
				if err != nil {
					t.Fatal(err)
				}
				n = pos.Offset
			}
			// Every publication arrives once, in order, or a Gap says that
			// those before it are lost (a replay is bounded in bytes).
			prev, gaps := uint64(0), 0
			for prev < n {
				p := next(t, sub)
				if p.Offset <= prev || (p.Offset != prev+1) != p.Gap {
					t.Fatalf("got offset %d (Gap %v) after %d", p.Offset, p.Gap, prev)
				}
				if p.Gap {
					gaps++
				}
				prev = p.Offset
			}
			if c.Peer() == first {
				t.Fatal("still on the first connection: it was not closed as slow")
			}
			// The client saw 4008, unless the socket was dropped before the
			// close frame could go out.
			var ce *transport.CloseError
			if err := first.Conn().Err(); !errors.As(err, &ce) || !ce.Remote ||
				ce.Code != pubsub.CloseSlowSubscriber && ce.Code != transport.StatusAbnormal {
				t.Fatalf("first connection ended with %v, want 4008 from the server", err)
			}
			t.Logf("%d publications, slow-closed %d times, %d gaps", n, e.hub.Stats().SlowClosed, gaps)
		})
	}
}

// TestCloseWithUnreadSubscription: Client.Close returns even when a
// subscription's channel is full and nobody reads it (delivery then holds
// the connection's reader).
func TestCloseWithUnreadSubscription(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{})
			ctx := ctxT(t)
			c := e.dial(codec)
			sub, err := c.Subscribe(ctx, "t", client.Buffer(1))
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, e.hub, "t", 1, 3)
			// The first fills C; the reader then waits to deliver the second.
			waitFor(t, "the channel to fill", func() bool { return len(sub.C()) == 1 })
			closed := make(chan error, 1)
			go func() { closed <- c.Close() }()
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Errorf("Client.Close has not returned after 5 s with an unread subscription")
				go func() {
					for range sub.C() {
					}
				}()
				<-closed
			}
			if _, ok := <-sub.C(); ok {
				for range sub.C() {
				}
			}
			if err := sub.Err(); err == nil {
				t.Fatal("subscription still active after Close")
			}
		})
	}
}
