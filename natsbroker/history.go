package natsbroker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wsrpc/wsrpc/pubsub"
)

// maxHops is how many messages a history read fetches one by one,
// following each message's link to the one before it; further back, it
// seeks the first message it needs and reads on with a consumer.
const maxHops = 16

// stored is a message of the stream, decoded: one or more publications of
// a topic, with consecutive offsets.
type stored struct {
	seq     uint64
	prev    uint64 // the sequence of the topic's message before it (0: none)
	first   uint64 // the offset of its first publication
	offset  uint64 // the offset of its last
	epoch   string
	history int
	ttl     time.Duration
	time    time.Time
	pubs    []pubsub.Publication
}

func decodeStored(topic string, seq uint64, at time.Time, h nats.Header, data []byte) (*stored, error) {
	if f := h.Get(hdrFormat); f != "" {
		// A later, incompatible format: not to be misread (offsets would
		// be given twice in a deployment of mixed versions).
		return nil, fmt.Errorf("wsrpc: natsbroker: message %d of %q has format %q, which this version does not read", seq, topic, f)
	}
	first, err := strconv.ParseUint(h.Get(hdrOffset), 10, 64)
	if err != nil || first == 0 {
		return nil, fmt.Errorf("wsrpc: natsbroker: message %d of %q has no valid %s header (not written by this broker?)", seq, topic, hdrOffset)
	}
	m := &stored{seq: seq, first: first, offset: first, epoch: h.Get(hdrEpoch), time: at}
	m.prev, _ = strconv.ParseUint(h.Get(hdrExpectSeq), 10, 64)
	m.history, _ = strconv.Atoi(h.Get(hdrHistory))
	m.history = max(m.history, 0)
	if ms, err := strconv.ParseInt(h.Get(hdrTTL), 10, 64); err == nil && ms > 0 {
		m.ttl = time.Duration(min(ms, int64(1<<63-1)/int64(time.Millisecond))) * time.Millisecond
	}
	count := h.Get(hdrCount)
	if count == "" {
		m.pubs = []pubsub.Publication{{Topic: topic, Offset: first, Epoch: m.epoch, Data: data, Publisher: h.Get(hdrPublisher)}}
		return m, nil
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 2 || n > maxBatch || first > math.MaxUint64-uint64(n) {
		return nil, fmt.Errorf("wsrpc: natsbroker: message %d of %q: bad %s %q", seq, topic, hdrCount, count)
	}
	m.pubs = make([]pubsub.Publication, 0, n)
	for i := range n {
		pub, rest, ok := cutField(data)
		if ok {
			var d []byte
			d, rest, ok = cutField(rest)
			data = rest
			if ok {
				m.pubs = append(m.pubs, pubsub.Publication{Topic: topic, Offset: first + uint64(i), Epoch: m.epoch, Data: d, Publisher: string(pub)})
				continue
			}
		}
		return nil, fmt.Errorf("wsrpc: natsbroker: message %d of %q: publication %d of %d is cut short", seq, topic, i+1, n)
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("wsrpc: natsbroker: message %d of %q: %d bytes after its %d publications", seq, topic, len(data), n)
	}
	m.offset = first + uint64(n) - 1
	return m, nil
}

// cutField splits a uvarint-length-prefixed field off b.
func cutField(b []byte) (field, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

// last returns topic's last stored message, nil when it has none.
func (b *Broker) last(ctx context.Context, topic string) (*stored, error) {
	if b.stream == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	raw, err := b.stream.GetLastMsgForSubject(ctx, b.sPrefix+topic)
	if streamLost(err) && b.nc.IsConnected() {
		if err = b.remakeStream(ctx); err == nil {
			raw, err = b.stream.GetLastMsgForSubject(ctx, b.sPrefix+topic)
		}
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		if !b.nc.IsConnected() {
			return nil, fmt.Errorf("%w: reading %q: %v", ErrUnavailable, topic, err)
		}
		return nil, fmt.Errorf("wsrpc: natsbroker: reading %q: %w", topic, err)
	}
	return decodeStored(topic, raw.Sequence, raw.Time, raw.Header, raw.Data)
}

// History implements [pubsub.Broker]. A topic without history (or every
// topic without JetStream) answers Live. Otherwise the top is the topic's
// last stored message, and the publications after req.Since are read from
// the stream, at most req.Limit and what the topic's history keeps
// (HistorySize, HistoryTTL of its publications).
func (b *Broker) History(ctx context.Context, topic string, req pubsub.HistoryRequest) (pubsub.History, error) {
	if b.closed.Load() {
		return pubsub.History{}, pubsub.ErrBrokerClosed
	}
	if b.stream == nil || req.HistorySize <= 0 {
		return pubsub.History{Live: true}, nil
	}
	if err := b.usable(); err != nil {
		return pubsub.History{}, err
	}
	top, err := b.last(ctx, topic)
	if err != nil {
		return pubsub.History{}, err
	}
	if top == nil {
		return pubsub.History{}, nil // no publication yet (offset 0, epoch to come)
	}
	h := pubsub.History{Top: pubsub.Position{Offset: top.offset, Epoch: top.epoch}}
	since := req.Since
	if since == nil || since.Epoch != top.epoch || since.Offset >= top.offset {
		return h, nil
	}
	limit := req.Limit
	if limit <= 0 {
		limit = b.opts.MaxHistory
	}
	keep := uint64(min(limit, top.history, b.opts.MaxHistory))
	if keep == 0 {
		return h, nil
	}
	want := min(top.offset-since.Offset, keep)
	pubs, err := b.read(ctx, topic, top.offset-want+1, top)
	if err != nil {
		return pubsub.History{}, err
	}
	h.Publications = pubs
	return h, nil
}

// read returns topic's stored publications from offset from up to top (the
// topic's last message, already read), oldest first, leaving out those
// older than their HistoryTTL and those the stream no longer holds.
func (b *Broker) read(ctx context.Context, topic string, from uint64, top *stored) ([]pubsub.Publication, error) {
	if from > top.offset {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	got, err := b.hop(ctx, topic, from, top)
	if err == nil && got[0].first > from && got[0].prev > 0 && len(got) > maxHops {
		// Further back than the hops go: read the rest with a consumer
		// from the first message that holds from.
		var older []*stored
		if older, err = b.consume(ctx, topic, from, got[0]); err == nil {
			if n := len(older); n > 0 && older[n-1].seq == got[0].seq {
				older = older[:n-1] // consume read up to got[0] itself
			}
			got = append(older, got...)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("wsrpc: natsbroker: reading the history of %q: %w", topic, err)
	}
	now := time.Now()
	var pubs []pubsub.Publication
	for _, m := range got {
		if m.ttl > 0 && now.Sub(m.time) > m.ttl {
			continue
		}
		for _, p := range m.pubs {
			if p.Offset >= from && p.Offset <= top.offset {
				pubs = append(pubs, p)
			}
		}
	}
	return pubs, nil
}

// hop reads back from top to offset from, one message (of one or more
// publications) at a time, each naming the sequence of the one before it,
// at most maxHops messages back. It stops early where the stream no longer
// holds one. The result is oldest first: its first message is where it
// stopped.
func (b *Broker) hop(ctx context.Context, topic string, from uint64, top *stored) ([]*stored, error) {
	got := []*stored{top}
	for cur := top; cur.first > from && cur.prev > 0 && len(got) <= maxHops; {
		raw, err := b.stream.GetMsg(ctx, cur.prev)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break // pushed out of the history
		}
		if err != nil {
			return nil, err
		}
		m, err := decodeStored(topic, raw.Sequence, raw.Time, raw.Header, raw.Data)
		if err != nil || raw.Subject != b.sPrefix+topic || m.epoch != top.epoch || m.offset != cur.first-1 {
			break // not the topic's message before: stop at what is certain
		}
		got = append(got, m)
		cur = m
	}
	// Oldest first.
	for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
		got[i], got[j] = got[j], got[i]
	}
	return got, nil
}

// consume reads the topic's stored messages from the first that holds
// offset from up to top, oldest first, with a consumer of its own (deleted
// after), starting where seek finds that message.
func (b *Broker) consume(ctx context.Context, topic string, from uint64, top *stored) ([]*stored, error) {
	start, err := b.seek(ctx, topic, from, top)
	if err != nil || start == 0 {
		return nil, err
	}
	cons, err := b.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject:     b.sPrefix + topic,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 2 * b.opts.Timeout, // removed by NATS if the delete below fails
		MemoryStorage:     true,
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), b.opts.Timeout)
		defer cancel()
		_ = b.stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	var got []*stored
	for budget := b.opts.MaxHistory; budget > 0; {
		batch, err := cons.Fetch(min(budget, 64), jetstream.FetchContext(ctx))
		if err != nil {
			return nil, err
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				continue
			}
			m, err := decodeStored(topic, md.Sequence.Stream, md.Timestamp, msg.Headers(), msg.Data())
			if err == nil && m.epoch == top.epoch && m.offset >= from && m.first <= top.offset {
				got = append(got, m)
			}
			if md.Sequence.Stream >= top.seq {
				return got, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		if n == 0 {
			break // top is gone meanwhile
		}
		budget -= n
	}
	return got, nil
}

// seek returns the sequence of the topic's first stored message whose last
// offset is from or more (0: none before top), by a binary search over the
// stream's sequences, each probe a direct get of the topic's next message
// at or after a sequence.
func (b *Broker) seek(ctx context.Context, topic string, from uint64, top *stored) (uint64, error) {
	lo, hi := uint64(1), top.seq // the answer is in [lo, hi]
	found := uint64(0)
	for lo <= hi {
		mid := lo + (hi-lo)/2
		raw, err := b.stream.GetMsg(ctx, mid, jetstream.WithGetMsgSubject(b.sPrefix+topic))
		if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, err
		}
		var m *stored
		if err == nil {
			m, _ = decodeStored(topic, raw.Sequence, raw.Time, raw.Header, raw.Data)
		}
		switch {
		case m == nil || raw.Sequence > top.seq:
			hi = mid - 1 // nothing of the topic from mid to top: look before
		case m.epoch != top.epoch || m.offset < from:
			lo = raw.Sequence + 1
		default:
			found = raw.Sequence
			if raw.Sequence == 0 {
				return found, nil
			}
			hi = min(mid, raw.Sequence) - 1
		}
	}
	return found, nil
}
