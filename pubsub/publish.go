package pubsub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsrpc/wsrpc/internal/topic"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

type publishParams struct {
	Topic string          `json:"topic"`
	Data  json.RawMessage `json:"data"`
}

// Publish publishes v on topic (a concrete topic, no wildcards) to every
// subscriber on every node, and returns its position. v is encoded as JSON;
// an rpc.Raw (or json.RawMessage) must hold JSON and is sent as it is.
// Publish waits for the broker to take the publication, never for a
// subscriber. It is how Go code publishes: no Rule's Publish func runs.
func (h *Hub) Publish(ctx context.Context, t string, v any) (Position, error) {
	if err := h.cfg.limits.topic().Topic(t); err != nil {
		return Position{}, fmt.Errorf("wsrpc: pubsub: publish: %w", err)
	}
	var data []byte
	switch v := v.(type) {
	case rpc.Raw:
		data = bytes.Clone(v)
	case json.RawMessage:
		data = bytes.Clone(v)
	default:
		b, err := json.Marshal(v) // valid JSON by construction (encoding/json checks a Marshaler's)
		if err != nil {
			return Position{}, fmt.Errorf("wsrpc: pubsub: publish: encode: %w", err)
		}
		data = b
	}
	if !rpc.ValidJSON(data) { // for a Raw; fast enough to keep for the rest
		return Position{}, errors.New("wsrpc: pubsub: publish: data is not valid JSON")
	}
	if len(data) > h.cfg.limits.MaxPublicationSize {
		return Position{}, fmt.Errorf("wsrpc: pubsub: publish: %d bytes of data exceed the limit of %d", len(data), h.cfg.limits.MaxPublicationSize)
	}
	return h.publish(ctx, t, data, "")
}

func (h *Hub) publish(ctx context.Context, t string, data []byte, publisher string) (Position, error) {
	h.mu.RLock()
	closed := h.closed
	h.mu.RUnlock()
	if closed {
		return Position{}, ErrBrokerClosed
	}
	opts := PublishOptions{Publisher: publisher}
	opts.HistorySize, opts.HistoryTTL = h.historyOf(t)
	start := time.Now()
	pos, err := h.broker.Publish(ctx, t, data, opts)
	h.counts.publish.Observe(time.Since(start))
	if err != nil {
		return Position{}, err
	}
	h.published.Add(1)
	return pos, nil
}

// historyOf is the history the rules give topic t: that of the first rule
// with history whose pattern matches it.
func (h *Hub) historyOf(t string) (int, time.Duration) {
	for i := range h.cfg.rules {
		r := &h.cfg.rules[i]
		if r.HistorySize > 0 && topic.Match(r.pattern, t) {
			return r.HistorySize, r.HistoryTTL
		}
	}
	return 0, 0
}

// servePublish is $/publish: a client's publication, if a rule allows it.
func (h *Hub) servePublish(ctx context.Context, req *rpc.Request) ([]byte, error) {
	var p publishParams
	if err := json.Unmarshal(req.Params, &p); err != nil {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "%s: params must be {\"topic\": string, \"data\": JSON}: %v", MethodPublish, err)
	}
	if err := h.cfg.limits.topic().Topic(p.Topic); err != nil {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "%s: %v", MethodPublish, err)
	}
	if len(p.Data) == 0 {
		p.Data = json.RawMessage("null")
	}
	if !rpc.ValidJSON(p.Data) { // encoding/json lets invalid UTF-8 through
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "%s: data is not valid JSON in UTF-8", MethodPublish)
	}
	if len(p.Data) > h.cfg.limits.MaxPublicationSize {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "%s: %d bytes of data exceed the limit of %d", MethodPublish, len(p.Data), h.cfg.limits.MaxPublicationSize)
	}
	var r *rule
	for i := range h.cfg.rules {
		if topic.Match(h.cfg.rules[i].pattern, p.Topic) {
			r = &h.cfg.rules[i]
			break
		}
	}
	if r == nil || r.Publish == nil {
		return nil, rpc.Errorf(rpc.CodePermissionDenied, "%s: clients may not publish on %q", MethodPublish, p.Topic)
	}
	peer := req.Peer()
	m := &Message{Topic: p.Topic, Data: rpc.Raw(p.Data)}
	if err := r.Publish(ctx, peer, m); err != nil {
		if errors.Is(err, ErrDrop) {
			h.dropped.Add(1)
			return []byte(`{"dropped":true}`), nil
		}
		return nil, refusal(err, "%s: publishing on %q is not allowed: %v", MethodPublish, p.Topic, err)
	}
	if m.Topic != p.Topic || !rpc.ValidJSON(m.Data) || len(m.Data) > h.cfg.limits.MaxPublicationSize {
		return nil, rpc.Errorf(rpc.CodeInternalError, "%s: the publish hook changed the topic or left invalid or oversized data", MethodPublish)
	}
	pos, err := h.publish(ctx, p.Topic, m.Data, peer.ID())
	if err != nil {
		return nil, brokerError("publish", err)
	}
	if r.AfterPublish != nil {
		r.AfterPublish(peer, p.Topic, pos)
	}
	return appendPosition(make([]byte, 0, 48), pos), nil
}

// Middleware returns the middleware that serves the reserved pub/sub
// methods on an attached connection and passes every other call to the
// handler it wraps. The reserved methods sent as notifications (no reply
// wanted) are ignored, and so is a $/publication a client sends; one sent
// as a request is answered with CodeInvalidRequest.
func (h *Hub) Middleware() rpc.Middleware {
	return func(next rpc.Handler) rpc.Handler {
		return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			var serve func(context.Context, *rpc.Request) ([]byte, error)
			switch req.Method {
			case MethodSubscribe:
				serve = h.serveSubscribe
			case MethodUnsubscribe:
				serve = h.serveUnsubscribe
			case MethodPublish:
				serve = h.servePublish
			case MethodPublication:
				if req.IsNotification() {
					return nil, nil
				}
				return nil, rpc.Errorf(rpc.CodeInvalidRequest, "%s is sent by servers only", MethodPublication)
			default:
				return next.ServeRPC(ctx, req)
			}
			if req.IsNotification() {
				return nil, nil // no reply wanted: nothing could tell the client its subscription id
			}
			return serve(ctx, req)
		})
	}
}

// deliver is the broker's hand-over: fan pub out to every entry matching
// its topic.
func (h *Hub) deliver(pub Publication) {
	h.mu.RLock()
	h.index.Match(pub.Topic, func(e *entry) { h.fanout(e, &pub) })
	h.mu.RUnlock()
}

var paramsPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// fanout queues pub on every connection subscribed to e, encoded once per
// wire codec.
func (h *Hub) fanout(e *entry, pub *Publication) {
	bp := paramsPool.Get().(*[]byte)
	params := appendPublication((*bp)[:0], e.id, pub)
	defer func() { *bp = params[:0]; paramsPool.Put(bp) }()
	var encs [2]struct {
		peer *rpc.Peer
		msg  *rpc.Encoded
	}
	encFor := func(p *rpc.Peer) *rpc.Encoded {
		for i := range encs {
			if encs[i].peer == nil {
				m, err := p.EncodeNotification(MethodPublication, params)
				if err != nil {
					return nil
				}
				encs[i].peer, encs[i].msg = p, m
				return m
			}
			if encs[i].peer.SameWire(p) {
				return encs[i].msg
			}
		}
		m, _ := p.EncodeNotification(MethodPublication, params)
		return m
	}
	n := 0
	e.mu.Lock()
	// On a topic published to slowly (this publication and the one before
	// each came after a quiet spell) with many subscribers, each
	// subscriber's connection is written at once, where the socket takes
	// it without waiting, rather than woken to write (rpc.Peer.OfferNow):
	// a delivery then costs a system call and no goroutine hand-off, and
	// the last subscriber has it sooner. A topic published to back to back goes through the queues
	// instead, where the publications that pile up are packed together;
	// one pause in such a stream (a publisher waiting for its subscribers)
	// is not enough to leave it, since writing each delivery alone would
	// cost it its packing just as publications pile up again.
	now := e.writeAtOnce(sinceStart()) && len(e.subs) >= writeAtOnceSubs
	if now {
		atOnceFanouts.Add(1)
	}
	for _, s := range e.subs {
		msg := (*rpc.Encoded)(nil)
		if !s.echo && pub.Publisher != "" && pub.Publisher == s.conn.peer.ID() {
			// Publisher exclusion. On an exact topic the publisher still
			// gets the position, without the data, so that its offsets stay
			// contiguous and it does not take its own publication for a gap.
			if !e.exact {
				continue
			}
			msg = h.skipped(s.conn.peer, e.id, pub)
		} else {
			msg = encFor(s.conn.peer)
		}
		if msg == nil {
			continue
		}
		if s.joining {
			if len(s.pending) >= h.cfg.limits.MaxJoinBuffer {
				h.closeSlow(s.conn)
				continue
			}
			s.pending = append(s.pending, held{offset: pub.Offset, epoch: pub.Epoch, msg: msg})
			continue
		}
		if h.offer(s, msg, now) {
			n++
		}
	}
	e.quietSince = sinceStart()
	e.mu.Unlock()
	h.delivered.Add(uint64(n))
}

// writeAtOnce reports whether a fan-out starting at t (sinceStart) writes
// at once (see fanout): it came after a quiet spell, and so did the one
// before. The caller holds e.mu and sets e.quietSince when it is done.
func (e *entry) writeAtOnce(t time.Duration) bool {
	quiet := t-e.quietSince > quietGap
	now := quiet && e.quiet
	e.quiet = quiet
	return now
}

// atOnceFanouts counts the fan-outs written at once, for tests.
var atOnceFanouts atomic.Int64

// writeAtOnceSubs is the fewest subscribers a fan-out writes at once to.
// Queued, each delivery wakes its connection's writer goroutine; up to
// about a scheduler's local run queue of them (256 a P) those run in
// parallel on every core while the publisher goes on, which measured
// faster than writing them all on the publisher's goroutine (100
// subscribers written at once: p99 0.79-1.64x centrifuge's, against
// 0.65-1.21x queued); beyond, the wake-ups
// spill to the global queue and cost more than the writes themselves
// (1,000 subscribers: p50 about 0.7x, p99 0.6-0.9x centrifuge's, against
// parity queued). docs/BENCHMARKS.md has the runs.
const writeAtOnceSubs = 256

// quietGap is how long a topic's pattern must have had no publication for
// the next one to be written at once (see fanout).
const quietGap = 2 * time.Millisecond

// start is when the package was loaded, for sinceStart.
var start = time.Now()

// sinceStart is the monotonic time since start.
func sinceStart() time.Duration { return time.Since(start) }

// offer queues msg on s's connection (or writes it at once, with now),
// counting a slow subscriber it closes.
func (h *Hub) offer(s *sub, msg *rpc.Encoded, now bool) bool {
	p := s.conn.peer
	var err error
	if now {
		err = p.OfferNow(msg, h.cfg.limits.MaxQueuedPublicationBytes, CloseSlowSubscriber, slowReason)
	} else {
		err = p.Offer(msg, h.cfg.limits.MaxQueuedPublicationBytes, CloseSlowSubscriber, slowReason)
	}
	if err != nil {
		if errors.Is(err, transport.ErrSlowReader) && s.conn.slow.CompareAndSwap(false, true) {
			h.slowClosed.Add(1)
			h.warnPeer("slow subscriber closed", p, slog.Int64("queued", p.Conn().QueuedBytes()))
		} else {
			h.lost.Add(1)
		}
		return false
	}
	return true
}

// closeSlow closes a connection whose subscriber cannot keep up while its
// subscribe is answered.
func (h *Hub) closeSlow(c *conn) {
	if c.slow.CompareAndSwap(false, true) {
		h.slowClosed.Add(1)
		h.warnPeer("slow subscriber closed while joining", c.peer)
		c.peer.Conn().CloseSlow(CloseSlowSubscriber, slowReason)
	}
}

// skipped encodes the position-only $/publication that stands, for its
// own publisher, for an excluded publication on an exact topic. It is made
// for the one connection it goes to.
func (h *Hub) skipped(p *rpc.Peer, sub uint64, pub *Publication) *rpc.Encoded {
	m, err := p.EncodeNotification(MethodPublication, appendSkipped(make([]byte, 0, 96), sub, pub))
	if err != nil {
		return nil
	}
	return m
}

// appendSkipped appends the params of a position-only publication.
func appendSkipped(b []byte, sub uint64, pub *Publication) []byte {
	return append(appendHead(b, sub, pub), `,"skipped":true}`...)
}

// appendPublication appends pub as $/publication's params.
func appendPublication(b []byte, sub uint64, pub *Publication) []byte {
	b = append(appendHead(b, sub, pub), `,"data":`...)
	b = append(b, pub.Data...)
	return append(b, '}')
}

// appendHead appends the members every $/publication has: the
// subscription, the topic and the position.
func appendHead(b []byte, sub uint64, pub *Publication) []byte {
	b = append(b, `{"sub":`...)
	b = appendUint(b, sub)
	b = append(b, `,"topic":`...)
	b = appendString(b, pub.Topic)
	b = append(b, `,"offset":`...)
	b = appendUint(b, pub.Offset)
	b = append(b, `,"epoch":`...)
	return appendString(b, pub.Epoch)
}

func appendPosition(b []byte, p Position) []byte {
	b = append(b, `{"offset":`...)
	b = appendUint(b, p.Offset)
	b = append(b, `,"epoch":`...)
	b = appendString(b, p.Epoch)
	return append(b, '}')
}

func appendUint(b []byte, n uint64) []byte { return strconv.AppendUint(b, n, 10) }

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func isPattern(s string) bool         { return topic.IsPattern(s) }
func covers(outer, inner string) bool { return topic.Covers(outer, inner) }
