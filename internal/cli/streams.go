package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

// The demo streaming services: countdown and tail (docs/PROTOCOL.md,
// section 14). Both send their results with the stream's credit, so a
// caller that reads slowly holds them back, and end when the caller
// cancels, the connection closes, or the server shuts down.

// Bounds of countdown, so that a typo cannot pin a handler for days.
const (
	maxCountdown         = 10_000
	maxCountdownInterval = 10 * time.Second
	defaultCountdownMS   = 1000
)

// tailBuffer is how many publications a tail holds for its caller while the
// stream's credit is used up; beyond, it drops them and says how many.
const tailBuffer = 64

// errServerStopping is the cause of a stream's context when the server
// shuts down.
var errServerStopping = errors.New("server shutting down")

// streaming is what the demo streaming services share: the tap through
// which tail reads the hub's publications (nil: the server has no pub/sub),
// and the signal that ends every stream when the server shuts down, so that
// a tail, which never ends by itself, does not hold the drain up. A nil
// *streaming serves countdown only, ended by its caller alone.
type streaming struct {
	tap  *brokerTap
	hub  *pubsub.Hub // whose subscribe rules tail keeps
	done context.Context
	stop context.CancelFunc
}

func newStreaming(hub *pubsub.Hub, tap *brokerTap) *streaming {
	ctx, cancel := context.WithCancel(context.Background())
	return &streaming{tap: tap, hub: hub, done: ctx, stop: cancel}
}

// Stop ends every stream running and those started later, with an error
// saying the server is shutting down. serve calls it before its graceful
// shutdown. It is idempotent.
func (s *streaming) Stop() {
	if s != nil {
		s.stop()
	}
}

// bind returns ctx, also ended by Stop (with errServerStopping as its cause).
// The returned func releases it.
func (s *streaming) bind(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	if s == nil {
		return ctx, func() { cancel(nil) }
	}
	unhook := context.AfterFunc(s.done, func() { cancel(errServerStopping) })
	return ctx, func() { unhook(); cancel(nil) }
}

// ended rewords err, which ended a stream handler bound to ctx: an end
// caused by Stop says so, as a refusal to go on (CodeUnavailable, which the
// runtime sends as CodeInternalError once results went out: the call had
// started).
func ended(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), errServerStopping) {
		return rpc.NotStarted("stream ended: " + errServerStopping.Error())
	}
	return err
}

type countdownParams struct {
	From       int    `json:"from"`
	IntervalMS *int64 `json:"interval_ms"`
}

// countdown streams from, from-1, ..., 1, one every interval_ms (default
// 1000), and ends with "liftoff" one interval after the last. A plain call
// (no stream) waits the countdown out and gets "liftoff" alone.
func (s *streaming) countdown(ctx context.Context, p countdownParams) (string, error) {
	ms := int64(defaultCountdownMS)
	if p.IntervalMS != nil {
		ms = *p.IntervalMS
	}
	interval := time.Duration(ms) * time.Millisecond
	if p.From < 0 || p.From > maxCountdown {
		return "", rpc.Errorf(rpc.CodeInvalidParams, "from must be between 0 and %d", maxCountdown)
	}
	if ms < 0 || interval > maxCountdownInterval {
		return "", rpc.Errorf(rpc.CodeInvalidParams, "interval_ms must be between 0 and %d", maxCountdownInterval.Milliseconds())
	}
	ctx, release := s.bind(ctx)
	defer release()
	var w *rpc.StreamWriter
	if req := rpc.RequestFromContext(ctx); req != nil {
		w = req.Stream()
	}
	t := time.NewTimer(interval)
	t.Stop()
	defer t.Stop()
	for n := p.From; n > 0; n-- {
		if w != nil {
			if err := w.Send(ctx, n); err != nil {
				return "", ended(ctx, err)
			}
		}
		t.Reset(interval)
		select {
		case <-t.C:
		case <-ctx.Done():
			return "", ended(ctx, ctx.Err())
		}
	}
	return "liftoff", nil
}

type tailParams struct {
	Topic string `json:"topic"`
	Max   int    `json:"max"`
}

// tailItem is one result of tail: a publication as `wsrpc subscribe
// --format json` prints it, with how many were dropped just before it.
type tailItem struct {
	Topic   string          `json:"topic"`
	Offset  uint64          `json:"offset,omitempty"`
	Epoch   string          `json:"epoch,omitempty"`
	Data    json.RawMessage `json:"data"`
	Dropped uint64          `json:"dropped,omitempty"`
}

// tail streams the publications on params.topic (a topic or a pattern) as
// they come, until the caller cancels or, with max, max of them. It reads
// them at the hub's broker, through the tap: it holds tailBuffer of them
// while the caller's credit is used up and drops the rest, counting them in
// "dropped" of the next one it keeps. A plain call must give max: it gets
// them all in one array.
func (s *streaming) tail(ctx context.Context, p tailParams, send func(tailItem) error) error {
	if s == nil || s.tap == nil {
		return rpc.NotStarted("tail: this server has no pub/sub hub")
	}
	if err := pubsub.ValidPattern(p.Topic); err != nil {
		return rpc.Errorf(rpc.CodeInvalidParams, `want {"topic": T, "max"?: N}: %v`, err)
	}
	// The hub's rules hold: tail shows what the caller could subscribe to.
	if s.hub != nil {
		if err := s.hub.AllowSubscribe(ctx, peerOf(ctx), p.Topic); err != nil {
			return err
		}
	}
	if p.Max < 0 {
		return rpc.NewError(rpc.CodeInvalidParams, "max must not be negative")
	}
	if req := rpc.RequestFromContext(ctx); p.Max == 0 && (req == nil || req.Stream() == nil) {
		return rpc.NewError(rpc.CodeInvalidParams, "tail runs until cancelled: call it as a stream (wsrpc call --stream), or give max")
	}
	ctx, release := s.bind(ctx)
	defer release()
	tl, err := s.tap.open(ctx, p.Topic)
	if err != nil {
		return err
	}
	defer s.tap.close(tl)
	for n := 0; p.Max == 0 || n < p.Max; n++ {
		select {
		case it := <-tl.items:
			if err := send(it); err != nil {
				return ended(ctx, err)
			}
		case <-ctx.Done():
			return ended(ctx, ctx.Err())
		}
	}
	return nil
}

// brokerTap is the pub/sub broker of the server's hub, passed through, with
// a tap: it also hands the publications the broker delivers to the tails
// open on it. The Hub has no Go API to subscribe with (its subscribers are
// connections), so tail reads at the broker, as the Hub does: it
// subscribes the node to the pattern there (the broker counts Subscribes
// per pattern, so the Hub's own are unaffected) and filters what the
// broker delivers. tail asks the Hub's rules first (Hub.AllowSubscribe).
type brokerTap struct {
	pubsub.Broker

	mu    sync.RWMutex
	tails map[*tailSub]struct{}
}

// tailSub is one tail's subscription on the tap.
type tailSub struct {
	pattern string
	items   chan tailItem // at most tailBuffer
	dropped atomic.Uint64 // not yet reported
}

func newBrokerTap(b pubsub.Broker) *brokerTap {
	return &brokerTap{Broker: b, tails: make(map[*tailSub]struct{})}
}

// Open implements pubsub.Broker: the Hub's deliver, then the tap's.
func (b *brokerTap) Open(deliver func(pubsub.Publication)) error {
	return b.Broker.Open(func(pub pubsub.Publication) {
		deliver(pub)
		b.deliver(pub)
	})
}

// deliver queues pub on every tail it matches, without waiting: a tail
// whose buffer is full loses it, and reports the loss with the next one.
func (b *brokerTap) deliver(pub pubsub.Publication) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for t := range b.tails {
		if !pubsub.Match(t.pattern, pub.Topic) {
			continue
		}
		it := tailItem{Topic: pub.Topic, Offset: pub.Offset, Epoch: pub.Epoch,
			Data: json.RawMessage(bytes.Clone(pub.Data)), Dropped: t.dropped.Swap(0)}
		select {
		case t.items <- it:
		default:
			t.dropped.Add(it.Dropped + 1)
		}
	}
}

// open subscribes a new tail to pattern.
func (b *brokerTap) open(ctx context.Context, pattern string) (*tailSub, error) {
	if err := b.Subscribe(ctx, pattern); err != nil {
		return nil, rpc.NotStarted("tail: subscribing at the broker: " + err.Error())
	}
	t := &tailSub{pattern: pattern, items: make(chan tailItem, tailBuffer)}
	b.mu.Lock()
	b.tails[t] = struct{}{}
	b.mu.Unlock()
	return t, nil
}

// close ends t's subscription.
func (b *brokerTap) close(t *tailSub) {
	b.mu.Lock()
	delete(b.tails, t)
	b.mu.Unlock()
	_ = b.Unsubscribe(context.Background(), t.pattern)
}

// peerOf is the peer of the call ctx belongs to, or nil.
func peerOf(ctx context.Context) *rpc.Peer {
	if req := rpc.RequestFromContext(ctx); req != nil {
		return req.Peer()
	}
	return nil
}
