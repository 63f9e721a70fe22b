package natsbroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/wsrpc/wsrpc/pubsub"
)

// maxCatchUp bounds the messages one pattern's catch-up reads.
const maxCatchUp = 10_000

// loop hands what NATS delivers to the Hub, one publication at a time, in
// the order the process receives them, and catches up after a lost
// connection.
func (b *Broker) loop() {
	for {
		select {
		case m := <-b.msgs:
			b.handle(m)
		case <-b.kick:
			b.catchUp()
		case <-b.stop:
			return
		}
	}
}

// handle delivers one message from NATS. A copy of a message handled
// shortly before (the process has overlapping subscriptions: chat.> and
// chat.room1) is dropped. A publication with a position is dropped if it
// was delivered already, and a gap before it (the connection was lost, or
// NATS dropped messages for a slow process) is filled from JetStream first.
func (b *Broker) handle(m *nats.Msg) {
	topic, ok := strings.CutPrefix(m.Subject, b.pPrefix)
	if !ok {
		return
	}
	if m.Header.Get(hdrOffset) == "" { // live only
		id := m.Header.Get(hdrID)
		if id != "" && b.seenRecently(recentKey{subject: m.Subject, id: id}) {
			b.stats.dups.Add(1)
			return
		}
		b.deliver(pubsub.Publication{Topic: topic, Data: m.Data, Publisher: m.Header.Get(hdrPublisher)})
		return
	}
	seq, err := strconv.ParseUint(m.Header.Get(hdrSequence), 10, 64)
	if err != nil || seq == 0 {
		return // a position without a stream sequence: not republished by the stream
	}
	if b.seenRecently(recentKey{subject: m.Subject, seq: seq}) {
		b.stats.dups.Add(1)
		return
	}
	s, err := decodeStored(topic, seq, time.Time{}, m.Header, m.Data)
	if err != nil {
		return
	}
	if seq > b.lastSeq.Load() {
		b.lastSeq.Store(seq) // only the loop stores
	}
	b.deliverStored(s)
}

// seenRecently reports whether k is among the last recentLen messages the
// loop handled, and records it.
func (b *Broker) seenRecently(k recentKey) bool {
	if _, ok := b.recent[k]; ok {
		return true
	}
	old := b.recentIdx[b.recentPos]
	if old != (recentKey{}) {
		delete(b.recent, old)
	}
	b.recentIdx[b.recentPos] = k
	b.recentPos = (b.recentPos + 1) % len(b.recentIdx)
	b.recent[k] = struct{}{}
	return false
}

// deliverStored delivers s's publications in order: after what is missing
// before them, and not twice. It returns how many of s's it delivered (0:
// all were delivered already).
func (b *Broker) deliverStored(s *stored) int {
	topic := s.pubs[0].Topic
	b.seenMu.Lock()
	st := b.seen[topic]
	var have seenState
	if st != nil {
		have = *st
	}
	b.seenMu.Unlock()
	after := uint64(0) // deliver the publications after this offset
	if st != nil && have.epoch == s.epoch {
		if s.offset <= have.offset {
			return 0
		}
		if s.first > have.offset+1 {
			b.fill(topic, have.offset+1, s)
		}
		after = have.offset
	}
	b.seenMu.Lock()
	if st = b.seen[topic]; st == nil {
		st = &seenState{}
		b.track(topic, st)
	}
	st.offset, st.epoch = s.offset, s.epoch
	b.seenMu.Unlock()
	n := 0
	for _, p := range s.pubs {
		if p.Offset > after {
			b.deliver(p)
			n++
		}
	}
	return n
}

// fill delivers topic's publications from offset from up to (not
// including) next, read from JetStream. What it cannot read the clients
// recover themselves (they see the gap in offsets).
func (b *Broker) fill(topic string, from uint64, next *stored) {
	pubs, err := b.read(b.ctx, topic, from, next)
	if err != nil {
		b.stats.fillFailed.Add(1)
		b.opts.Logger.Warn("wsrpc: natsbroker: filling a gap failed; subscribers will recover it", "topic", topic, "from", from, "to", next.first-1, "err", err)
		return
	}
	for _, p := range pubs {
		if p.Offset >= next.first {
			break
		}
		b.stats.filled.Add(1)
		b.deliver(p)
	}
}

// catchUp runs after the connection to NATS came back: every exact topic
// the process is subscribed to is compared with the stream's top, and
// every pattern's messages since the connection was lost are read from the
// stream; what was published meanwhile is delivered, in order, once. A
// catch-up that fails is tried again a second later.
func (b *Broker) catchUp() {
	if b.stream == nil {
		return
	}
	from := b.outageSeq.Swap(0)
	b.mu.Lock()
	var topics, patterns []string
	for p := range b.subs {
		if pubsub.IsPattern(p) {
			patterns = append(patterns, p)
		} else {
			topics = append(topics, p)
		}
	}
	b.mu.Unlock()
	var failures []error
	if from > 0 {
		for _, p := range patterns {
			if err := b.scan(p, from); err != nil {
				failures = append(failures, fmt.Errorf("pattern %q: %w", p, err))
			}
		}
	}
	// The tops of the exact topics, read 16 at a time.
	tops := make([]*stored, len(topics))
	var g errgroup.Group
	g.SetLimit(16)
	for i, t := range topics {
		g.Go(func() error {
			m, err := b.last(b.ctx, t)
			tops[i] = m
			return err
		})
	}
	if err := g.Wait(); err != nil {
		failures = append(failures, err)
	}
	for i, t := range topics {
		top := tops[i]
		if top == nil {
			continue
		}
		b.seenMu.Lock()
		st := b.seen[t]
		if st == nil && b.floor[t] != nil {
			// Nothing delivered since the process subscribed: catch up from
			// the top it had then.
			st = &seenState{offset: b.floor[t].offset, epoch: b.floor[t].epoch}
			b.track(t, st)
		}
		var have seenState
		if st != nil {
			have = *st
		}
		b.seenMu.Unlock()
		if st == nil || top.epoch != have.epoch || top.offset <= have.offset {
			continue
		}
		b.stats.filled.Add(uint64(b.deliverStored(top))) // fills from have.offset+1 first
	}
	if len(failures) > 0 && b.ctx.Err() == nil {
		b.stats.fillFailed.Add(1)
		b.opts.Logger.Warn("wsrpc: natsbroker: catching up after a lost connection failed; trying again in a second", "err", errors.Join(failures...))
		if from > 0 {
			b.outageSeq.CompareAndSwap(0, from)
		}
		b.mu.Lock()
		if !b.closed.Load() {
			if b.retry == nil {
				b.retry = time.AfterFunc(time.Second, b.kickLoop)
			} else {
				b.retry.Reset(time.Second)
			}
		}
		b.mu.Unlock()
	}
}

// kickLoop asks the loop to catch up.
func (b *Broker) kickLoop() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// scan delivers the stream's messages matching pattern from sequence from
// on (at most maxCatchUp), through deliverStored, which drops what was
// delivered already.
func (b *Broker) scan(pattern string, from uint64) error {
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.Timeout)
	defer cancel()
	cons, err := b.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     b.sPrefix + pattern,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       from,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 2 * b.opts.Timeout,
		MemoryStorage:     true,
	})
	if err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), b.opts.Timeout)
		defer cancel()
		_ = b.stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	pending := int(min(cons.CachedInfo().NumPending, maxCatchUp))
	for pending > 0 {
		batch, err := cons.Fetch(min(pending, 1000), jetstream.FetchContext(ctx))
		if err != nil {
			return err
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				continue
			}
			topic := strings.TrimPrefix(msg.Subject(), b.sPrefix)
			s, err := decodeStored(topic, md.Sequence.Stream, md.Timestamp, msg.Headers(), msg.Data())
			if err != nil {
				continue
			}
			b.stats.filled.Add(uint64(b.deliverStored(s)))
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		if n == 0 {
			break
		}
		pending -= n
	}
	if cons.CachedInfo().NumPending > maxCatchUp {
		return fmt.Errorf("more than %d messages to catch up on", maxCatchUp)
	}
	return nil
}
