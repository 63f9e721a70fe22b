package natsbroker

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/wsrpc/wsrpc/pubsub"
)

// Batching of one topic's publications from one process.
const (
	maxBatch       = 512       // publications in one JetStream message
	maxBatchBytes  = 512 << 10 // of data in one JetStream message
	maxQueuedTopic = 8192      // publications waiting on one topic; beyond, Publish refuses
	headroom       = 4096      // bytes of a NATS message left for its headers
)

// pendingPub is a publication waiting for its topic's sender.
type pendingPub struct {
	data      []byte
	publisher string
	history   int
	ttl       time.Duration
	deadline  time.Time      // its caller's, or the Timeout from when it was queued
	done      chan pubResult // receives once
	taken     bool           // in a batch being sent (under the pubState's mu)
}

type pubResult struct {
	pos pubsub.Position
	err error
}

// Publish implements [pubsub.Broker]. A topic with history goes through
// JetStream: a publication alone is one publish and its acknowledgement;
// those that queue on the topic while one is in flight go together in the
// next message (up to 512 publications, 512 KiB and NATS's max_payload).
// More requests are made only when another process published on the topic
// first. One without history, or every topic without JetStream, is
// published on core NATS, live only, and gets the zero Position.
func (b *Broker) Publish(ctx context.Context, topic string, data []byte, opts pubsub.PublishOptions) (pubsub.Position, error) {
	if err := b.usable(); err != nil {
		return pubsub.Position{}, err
	}
	if max := b.nc.MaxPayload(); int64(len(data))+headroom > max {
		return pubsub.Position{}, fmt.Errorf("wsrpc: natsbroker: %d bytes of data do not fit a NATS message (max_payload %d, with the headers)", len(data), max)
	}
	if b.stream == nil || opts.HistorySize <= 0 {
		return b.publishLive(topic, data, opts.Publisher)
	}
	if len(data) > maxBatchBytes {
		return pubsub.Position{}, fmt.Errorf("wsrpc: natsbroker: %d bytes of data exceed the %d a publication with history may have", len(data), maxBatchBytes)
	}
	deadline := time.Now().Add(b.opts.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	p := &pendingPub{data: data, publisher: opts.Publisher, history: opts.HistorySize, ttl: opts.HistoryTTL, deadline: deadline, done: make(chan pubResult, 1)}
	ps := b.pubState(topic)
	ps.mu.Lock()
	if len(ps.queue) >= maxQueuedTopic {
		ps.mu.Unlock()
		return pubsub.Position{}, fmt.Errorf("%w: %d publications of %q already wait for JetStream", ErrUnavailable, len(ps.queue), topic)
	}
	ps.queue = append(ps.queue, p)
	if !ps.running {
		// Nothing in flight: this caller sends its publication itself (the
		// queue holds only it), and hands what queued behind it meanwhile
		// to a flusher.
		ps.running = true
		batch := b.takeBatch(ps)
		ps.mu.Unlock()
		if len(batch) > 0 { // none if its deadline had passed already
			b.sendBatch(ctx, topic, ps, batch)
		}
		ps.mu.Lock()
		if len(ps.queue) == 0 {
			ps.running = false
		} else if !b.startFlusher(topic, ps) {
			ps.running = false
			for _, q := range ps.queue {
				q.done <- pubResult{err: pubsub.ErrBrokerClosed}
			}
			clear(ps.queue)
			ps.queue = ps.queue[:0]
		}
	}
	ps.mu.Unlock()
	select {
	case r := <-p.done:
		return r.pos, r.err
	case <-ctx.Done():
	}
	ps.mu.Lock()
	taken := p.taken
	if !taken {
		if i := slices.Index(ps.queue, p); i >= 0 {
			ps.queue = slices.Delete(ps.queue, i, i+1)
		}
	}
	ps.mu.Unlock()
	if !taken {
		return pubsub.Position{}, fmt.Errorf("%w: publish: %v", ErrUnavailable, ctx.Err())
	}
	select {
	case r := <-p.done: // it was sent meanwhile
		return r.pos, r.err
	default:
		return pubsub.Position{}, fmt.Errorf("%w: natsbroker: %w", pubsub.ErrPublishUnknown, ctx.Err())
	}
}

// startFlusher starts a goroutine sending ps's queue; ps.mu is held. It
// reports false if the broker is closed.
func (b *Broker) startFlusher(topic string, ps *pubState) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return false
	}
	b.wg.Go(func() { b.flush(topic, ps) })
	return true
}

// flush sends topic's queued publications, a batch at a time, until none
// wait. One sender runs per topic at a time (ps.running); only it reads
// and writes ps's position.
func (b *Broker) flush(topic string, ps *pubState) {
	for {
		ps.mu.Lock()
		batch := b.takeBatch(ps)
		if len(batch) == 0 {
			ps.running = false
			ps.mu.Unlock()
			return
		}
		ps.mu.Unlock()
		b.sendBatch(b.ctx, topic, ps, batch)
	}
}

// takeBatch takes the next batch off ps's queue (ps.mu is held): the
// publications that fit one message, with the same history rule. Those
// whose deadline passed while they waited fail, unsent.
func (b *Broker) takeBatch(ps *pubState) []*pendingPub {
	limit := min(maxBatchBytes, int(b.nc.MaxPayload())-headroom)
	now := time.Now()
	var batch []*pendingPub
	size, rest := 0, ps.queue[:0]
	for i, p := range ps.queue {
		cost := len(p.data) + len(p.publisher) + 2*binary.MaxVarintLen32
		switch {
		case !now.Before(p.deadline):
			p.done <- pubResult{err: fmt.Errorf("%w: it waited for JetStream past its deadline", ErrUnavailable)}
		case len(batch) == 0 || len(batch) < maxBatch && size+cost <= limit && p.history == batch[0].history && p.ttl == batch[0].ttl:
			p.taken = true
			batch = append(batch, p)
			size += cost
		default:
			rest = append(rest, ps.queue[i:]...)
			clear(ps.queue[len(rest):])
			ps.queue = rest
			return batch
		}
	}
	clear(ps.queue)
	ps.queue = ps.queue[:0]
	return batch
}

// sendBatch sends batch and gives each publication its result. ctx is the
// sending caller's (or the broker's, for a flusher); the batch's earliest
// deadline bounds it.
func (b *Broker) sendBatch(ctx context.Context, topic string, ps *pubState, batch []*pendingPub) {
	deadline := batch[0].deadline
	for _, p := range batch[1:] {
		if p.deadline.Before(deadline) {
			deadline = p.deadline
		}
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	first, epoch, err := b.send(ctx, topic, ps, batch)
	cancel()
	for i, p := range batch {
		if err != nil {
			p.done <- pubResult{err: err}
		} else {
			p.done <- pubResult{pos: pubsub.Position{Offset: first + uint64(i), Epoch: epoch}}
		}
	}
}

// send stores batch as one message of the stream, after the topic's last
// one, and returns the offset of its first publication and the epoch.
func (b *Broker) send(ctx context.Context, topic string, ps *pubState, batch []*pendingPub) (uint64, string, error) {
	body, pubHdr := encodeBatch(batch)
	// One message id for every attempt: JetStream drops a resend of a
	// message it already stored (within its duplicate window), so a
	// publish whose acknowledgement was lost is resent without being
	// stored twice.
	id := nuid.Next()
	maybe := false // an attempt may have been stored (its outcome is unknown)
	for attempt := 0; ; attempt++ {
		if !ps.known {
			if err := b.load(ctx, topic, ps); err != nil {
				return 0, "", b.failed(err, maybe)
			}
		}
		h := nats.Header{
			hdrMsgID:     {id},
			hdrExpectSeq: {strconv.FormatUint(ps.seq, 10)},
			hdrOffset:    {strconv.FormatUint(ps.offset+1, 10)},
			hdrEpoch:     {ps.epoch},
			hdrHistory:   {strconv.Itoa(batch[0].history)},
		}
		if len(batch) > 1 {
			h[hdrCount] = []string{strconv.Itoa(len(batch))}
		} else if pubHdr != "" {
			h[hdrPublisher] = []string{pubHdr}
		}
		if batch[0].ttl > 0 {
			h[hdrTTL] = []string{strconv.FormatInt(batch[0].ttl.Milliseconds(), 10)}
		}
		// An attempt waits for its acknowledgement a fifth of the Timeout
		// at most: one lost with the connection is not waited for long
		// before the resend.
		actx, acancel := context.WithTimeout(ctx, b.opts.Timeout/5)
		ack, err := b.js.PublishMsg(actx, &nats.Msg{Subject: b.sPrefix + topic, Data: body, Header: h})
		acancel()
		if err == nil {
			if ack.Duplicate {
				// An earlier attempt was stored, at the sequence the
				// acknowledgement gives: the positions are in its headers.
				ps.known = false
				return b.storedAt(ctx, topic, ack.Sequence)
			}
			first := ps.offset + 1
			ps.seq, ps.offset = ack.Sequence, ps.offset+uint64(len(batch))
			return first, ps.epoch, nil
		}
		ps.known = false
		maybe = maybe || !notStored(err)
		if attempt+1 >= maxAttempts || ctx.Err() != nil || errors.Is(err, nats.ErrMaxPayload) {
			return 0, "", b.failed(err, maybe)
		}
		if !maybe && !b.nc.IsConnected() {
			// Nothing of it can have been stored and NATS is down: fail
			// now (the caller may publish again) rather than wait.
			return 0, "", b.failed(err, false)
		}
		switch {
		case wrongLast(err):
			// Another process published on the topic first. Back off a
			// random while, growing, so that contenders spread out.
			d := time.Duration(rand.Int64N(int64(min(attempt+1, 50)) * int64(100*time.Microsecond)))
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return 0, "", b.failed(ctx.Err(), maybe)
			}
		case streamLost(err) && b.nc.IsConnected():
			if err := b.remakeStream(ctx); err != nil {
				return 0, "", b.failed(err, maybe)
			}
		default:
			// Lost on the way (the connection dropped, or the
			// acknowledgement is late): resend once the connection is up,
			// under the same id.
			if err := b.awaitConnected(ctx); err != nil {
				return 0, "", b.failed(err, maybe)
			}
		}
	}
}

// encodeBatch is a message's data: one publication's data as it is (its
// publisher then goes in a header, returned), or for several, each as
// uvarint(len(publisher)) publisher uvarint(len(data)) data.
func encodeBatch(batch []*pendingPub) (body []byte, publisher string) {
	if len(batch) == 1 {
		return batch[0].data, batch[0].publisher
	}
	n := 0
	for _, p := range batch {
		n += len(p.publisher) + len(p.data) + 2*binary.MaxVarintLen32
	}
	body = make([]byte, 0, n)
	for _, p := range batch {
		body = binary.AppendUvarint(body, uint64(len(p.publisher)))
		body = append(body, p.publisher...)
		body = binary.AppendUvarint(body, uint64(len(p.data)))
		body = append(body, p.data...)
	}
	return body, ""
}

// publishLive publishes on the fan-out subject directly: at most once, no
// position.
func (b *Broker) publishLive(topic string, data []byte, publisher string) (pubsub.Position, error) {
	m := &nats.Msg{Subject: b.pPrefix + topic, Data: data, Header: nats.Header{hdrID: {nuid.Next()}}}
	if publisher != "" {
		m.Header[hdrPublisher] = []string{publisher}
	}
	if err := b.nc.PublishMsg(m); err != nil {
		return pubsub.Position{}, fmt.Errorf("%w: publish: %v", ErrUnavailable, err)
	}
	return pubsub.Position{}, nil
}

// storedAt returns the position of the first publication of the message
// stored at seq (a batch an earlier attempt stored), and its epoch.
func (b *Broker) storedAt(ctx context.Context, topic string, seq uint64) (uint64, string, error) {
	raw, err := b.stream.GetMsg(ctx, seq)
	if err == nil {
		var m *stored
		if m, err = decodeStored(topic, raw.Sequence, raw.Time, raw.Header, raw.Data); err == nil {
			return m.first, m.epoch, nil
		}
	}
	// Published for sure, but its position is not known: not to be made
	// again.
	return 0, "", fmt.Errorf("%w: natsbroker: stored at sequence %d, but reading its position failed: %w", pubsub.ErrPublishUnknown, seq, err)
}

// notStored reports whether a failed attempt was certainly not stored:
// JetStream refused it, or it was never sent.
func notStored(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) || streamLost(err) ||
		errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrInvalidConnection)
}

// failed is Publish's error: ErrUnavailable (or ErrBrokerClosed) when no
// attempt may have been stored, which a client may make again; one
// wrapping pubsub.ErrPublishUnknown when one may have been.
func (b *Broker) failed(err error, maybe bool) error {
	switch {
	case maybe:
		return fmt.Errorf("%w: natsbroker: %w", pubsub.ErrPublishUnknown, err)
	case errors.Is(err, pubsub.ErrBrokerClosed), errors.Is(err, ErrUnavailable):
		return err
	default:
		return fmt.Errorf("%w: publish: %v", ErrUnavailable, err)
	}
}

// awaitConnected waits until the connection to NATS is up again.
func (b *Broker) awaitConnected(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !b.nc.IsConnected() {
		if b.closed.Load() || b.nc.IsClosed() {
			return pubsub.ErrBrokerClosed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

func wrongLast(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// pubState returns topic's publishing state, making it if needed.
func (b *Broker) pubState(topic string) *pubState {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	ps := b.pubs[topic]
	if ps == nil {
		if len(b.pubs) >= maxPubCache {
			for t := range b.pubs {
				delete(b.pubs, t) // a holder keeps its pointer; the next one loads again
				break
			}
		}
		ps = &pubState{}
		b.pubs[topic] = ps
	}
	return ps
}

// load reads topic's last stored message into ps. A topic with none starts
// a new run of offsets, with an epoch of its own.
func (b *Broker) load(ctx context.Context, topic string, ps *pubState) error {
	m, err := b.last(ctx, topic)
	if err != nil {
		return err
	}
	if m != nil {
		ps.seq, ps.offset, ps.epoch = m.seq, m.offset, m.epoch
		ps.known = true
		return nil
	}
	// The epoch of a run is the stream's identity (its creation time) and
	// where the stream was when the run started: a recreated stream, or a
	// topic that starts again after all its messages were dropped, gets a
	// new one. Two processes that start the same run race on the expected
	// sequence 0; the loser loads the winner's epoch.
	info, err := b.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("wsrpc: natsbroker: stream info: %w", err)
	}
	ps.seq, ps.offset, ps.epoch = 0, 0, runEpoch(info.Created, info.State.LastSeq)
	ps.known = true
	return nil
}

func runEpoch(created time.Time, lastSeq uint64) string {
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(created.UnixNano()))
	binary.BigEndian.PutUint64(buf[8:], lastSeq)
	sum := sha256.Sum256(buf[:])
	return hex.EncodeToString(sum[:4])
}
