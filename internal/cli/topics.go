package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

// The demo topics that serve and demo share.
const (
	timeTopic    = "time"   // the server publishes its time every second
	timeHistory  = 60       // a minute of ticks, for a subscriber to recover
	chatTopics   = "chat.>" // clients may publish
	chatHistory  = 1000
	maxChatBytes = 4 << 10 // of JSON, per client publication
)

// demoHub returns the pub/sub hub of the demo topics: time, which only the
// server publishes on (clients are refused), and chat.>, which clients may
// publish on (at most maxChatBytes a publication). Both keep history, so
// that a subscriber that reconnects recovers what it missed. Other topics
// may be subscribed to (nothing publishes there) but not published on.
// See newHub for b and the tap.
func demoHub(logger *slog.Logger, b pubsub.Broker) (*pubsub.Hub, *brokerTap, error) {
	return newHub(logger, b,
		pubsub.WithRule(timeTopic, pubsub.Rule{HistorySize: timeHistory}),
		pubsub.WithRule(chatTopics, pubsub.Rule{HistorySize: chatHistory, Publish: chatPublish}))
}

// newHub returns a hub with opts over broker b (nil: an in-process
// MemoryBroker; serve's --nats broker otherwise), and the tap on b through
// which the tail service reads its publications. The hub owns b: its Close
// closes it (when New fails, b is not closed).
func newHub(logger *slog.Logger, b pubsub.Broker, opts ...pubsub.Option) (*pubsub.Hub, *brokerTap, error) {
	if b == nil {
		b = pubsub.NewMemoryBroker(0)
	}
	tap := newBrokerTap(b)
	hub, err := pubsub.New(append([]pubsub.Option{pubsub.WithLogger(logger), pubsub.WithBroker(tap)}, opts...)...)
	if err != nil {
		return nil, nil, err
	}
	return hub, tap, nil
}

// chatPublish lets every client publish on chat.>, up to maxChatBytes.
func chatPublish(_ context.Context, _ *rpc.Peer, m *pubsub.Message) error {
	if len(m.Data) > maxChatBytes {
		return rpc.Errorf(rpc.CodeInvalidParams, "a chat publication holds at most %d bytes of JSON, not %d", maxChatBytes, len(m.Data))
	}
	return nil
}

// clock publishes the time (RFC 3339) on the time topic every second, on
// one goroutine of its own, until Stop.
type clock struct {
	stop context.CancelFunc
	done chan struct{}
}

// publisher is what clock publishes through: a *pubsub.Hub or a
// *server.Server.
type publisher interface {
	Publish(ctx context.Context, topic string, v any) (pubsub.Position, error)
}

// startClock starts publishing the time on the time topic through p, at
// each whole second. A failed publication is logged at Warn (nil logger:
// not at all) and the clock goes on.
func startClock(p publisher, logger *slog.Logger) *clock {
	ctx, cancel := context.WithCancel(context.Background())
	c := &clock{stop: cancel, done: make(chan struct{})}
	go func() { // owned: Stop waits for it
		defer close(c.done)
		t := time.NewTimer(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				if _, err := p.Publish(ctx, timeTopic, now.Format(time.RFC3339)); err != nil && ctx.Err() == nil && logger != nil {
					logger.Warn("publishing the time failed", "err", err)
				}
				t.Reset(time.Until(now.Truncate(time.Second).Add(time.Second)))
			}
		}
	}()
	return c
}

// Stop stops the clock and waits for its goroutine. It is idempotent.
func (c *clock) Stop() {
	c.stop()
	<-c.done
}
