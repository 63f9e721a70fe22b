package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsrpc/wsrpc/internal/topic"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// The reserved methods of the pub/sub protocol (docs/PROTOCOL.md, section 13).
const (
	MethodSubscribe   = "$/subscribe"   // client → server call
	MethodUnsubscribe = "$/unsubscribe" // client → server call
	MethodPublish     = "$/publish"     // client → server call, where a rule allows it
	MethodPublication = "$/publication" // server → client notification
)

// CloseSlowSubscriber is the close code of a connection whose subscriber
// fell behind: its queued publications would have passed
// Limits.MaxQueuedPublicationBytes. It asks the client to reconnect and recover.
const CloseSlowSubscriber transport.StatusCode = 4008

const slowReason = "slow subscriber: reconnect and recover"

// Hub is the pub/sub hub of one process: the topics, the connections
// subscribed to them, and the [Broker] that carries publications between
// processes and keeps history. A server mounts it on every connection
// (server.WithHub): the Hub serves the reserved methods ([MethodSubscribe],
// [MethodUnsubscribe], [MethodPublish]) through [Hub.Middleware] and learns
// of connections through [Hub.Attach] and [Hub.Detach].
//
// Publishing never waits on a subscriber. A publication is encoded once per
// subscription pattern and wire codec, and that one buffer is queued on
// every connection subscribed; a connection whose queue would pass
// Limits.MaxQueuedPublicationBytes is closed with [CloseSlowSubscriber].
//
// A Hub owns no goroutine of its own; it works on the goroutines of its
// callers (publishers, handlers) and of its broker. Every method is safe for
// concurrent use.
type Hub struct {
	cfg    config
	broker Broker

	mu      sync.RWMutex // guards what follows; taken before any entry's mu
	entries map[string]*entry
	index   topic.Index[*entry]
	conns   map[*rpc.Peer]*conn
	nextID  uint64
	closed  bool

	published, delivered, slowClosed, dropped, lost atomic.Uint64
	counts                                          hubCounts // stats.go
}

// entry is one distinct pattern (or topic) subscribed on this node, shared
// by every connection subscribed to it: its id is the subscription id they
// all receive, so one encoding of a publication serves them all.
type entry struct {
	id      uint64
	pattern string
	exact   bool
	ready   chan struct{} // closed once the broker subscription is made
	err     error         // why it failed; set before ready closes

	mu   sync.Mutex // guards subs and each sub's delivery state
	subs []*sub
	// quietSince is when the last fan-out ended (sinceStart), and quiet
	// whether a quiet spell came before it; under mu: see fanout.
	quietSince time.Duration
	quiet      bool
}

// conn is one attached connection.
type conn struct {
	peer     *rpc.Peer
	mu       sync.Mutex
	subs     []*sub      // a few: a slice costs less than a map on every idle connection
	gone     bool        // detached: no new subscription
	slow     atomic.Bool // closed as a slow subscriber (counted once)
	attached atomic.Bool // Attach has run for it
}

// sub returns c's subscription with id, or nil; c.mu is held.
func (c *conn) sub(id uint64) *sub {
	for _, s := range c.subs {
		if s.entry.id == id {
			return s
		}
	}
	return nil
}

// sub is one connection's subscription to one entry.
type sub struct {
	conn   *conn
	entry  *entry
	echo   bool // receives its own connection's publications
	server bool // made by WithConnectSubscriptions

	// Guarded by entry.mu.
	joining bool     // its subscribe's reply is not out yet: hold publications
	pending []held   // what arrived meanwhile
	last    Position // the position its reply reached: what pending skips
}

type held struct {
	offset uint64
	epoch  string
	msg    *rpc.Encoded
}

// New returns a Hub. Invalid rules or limits are errors.
func New(opts ...Option) (*Hub, error) {
	var cfg config
	var errs []error
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			errs = append(errs, fmt.Errorf("wsrpc: pubsub: %w", err))
		}
	}
	cfg.limits.fill()
	tl := cfg.limits.topic()
	for _, r := range cfg.rules {
		if err := tl.Pattern(r.pattern); err != nil {
			errs = append(errs, fmt.Errorf("wsrpc: pubsub: WithRule: %w", err))
		}
		if r.HistorySize < 0 || r.HistoryTTL < 0 {
			errs = append(errs, fmt.Errorf("wsrpc: pubsub: WithRule %q: negative history", r.pattern))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.broker == nil {
		cfg.broker = NewMemoryBroker(0)
	}
	h := &Hub{cfg: cfg, broker: cfg.broker, entries: make(map[string]*entry), conns: make(map[*rpc.Peer]*conn)}
	if err := h.broker.Open(h.deliver); err != nil {
		return nil, fmt.Errorf("wsrpc: pubsub: open broker: %w", err)
	}
	return h, nil
}

// Close closes the broker. Later publications and subscriptions fail;
// connections stay attached until detached.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	return h.broker.Close()
}

// Stats are a Hub's counters since it was made.
type Stats struct {
	Connections   int    // attached now
	Subscriptions int    // subscriptions now, over every connection
	Topics        int    // distinct topics and patterns subscribed now
	Published     uint64 // publications made through this Hub
	Delivered     uint64 // publications queued on a connection
	SlowClosed    uint64 // connections closed with CloseSlowSubscriber
	Dropped       uint64 // client publications a Rule's Publish func dropped
	Lost          uint64 // deliveries not queued because the connection was closing
	// Recovered counts the subscriptions that asked to recover (since a
	// position) and got every publication they had missed;
	// RecoveryIncomplete those that could not (history too short, another
	// epoch, a topic without history): their clients were told
	// "recovered": false.
	Recovered          uint64
	RecoveryIncomplete uint64
	// BrokerPublish is the time each publication took through the broker
	// (Broker.Publish: for NATS with JetStream, the round trip to the
	// server and its acknowledgement), failed ones included.
	BrokerPublish Durations
	// BrokerEvents are the broker's own counts, when it keeps any (see
	// [EventCounter]); nil otherwise.
	BrokerEvents map[string]uint64
}

// Stats returns the Hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.RLock()
	st := Stats{Connections: len(h.conns), Topics: len(h.entries)}
	for _, e := range h.entries {
		e.mu.Lock()
		st.Subscriptions += len(e.subs)
		e.mu.Unlock()
	}
	h.mu.RUnlock()
	st.Published = h.published.Load()
	st.Delivered = h.delivered.Load()
	st.SlowClosed = h.slowClosed.Load()
	st.Dropped = h.dropped.Load()
	st.Lost = h.lost.Load()
	h.counts.fill(&st)
	st.BrokerEvents = h.brokerEvents()
	return st
}

// Attach makes p's connection one the Hub serves, and makes the
// subscriptions of [WithConnectSubscriptions]. A server calls it for each
// connection as it is registered (a call that comes first attaches the
// connection by itself), and [Hub.Detach] once it has ended: a connection
// that is never detached stays in the Hub.
func (h *Hub) Attach(p *rpc.Peer) {
	c := h.connOf(p)
	if c == nil || !c.attached.CompareAndSwap(false, true) {
		return
	}
	if h.cfg.onConnect == nil {
		return
	}
	for _, pattern := range h.cfg.onConnect(p) {
		if err := h.cfg.limits.topic().Pattern(pattern); err != nil {
			h.warnPeer("connect subscription refused", p, slog.Any("err", err))
			continue
		}
		s, e, first, err := h.add(c, pattern, false, true)
		if err == nil {
			err = h.join(context.Background(), e, first)
		}
		if err != nil {
			if s != nil {
				h.remove(s)
			}
			h.warnPeer("connect subscription failed", p, slog.String("pattern", pattern), slog.Any("err", err))
		}
	}
}

// Detach ends every subscription of p's connection, once it has ended
// (after its handlers have returned).
func (h *Hub) Detach(p *rpc.Peer) {
	h.mu.Lock()
	c := h.conns[p]
	delete(h.conns, p)
	h.mu.Unlock()
	if c == nil {
		return
	}
	c.mu.Lock()
	c.gone = true
	subs := append([]*sub(nil), c.subs...)
	c.mu.Unlock()
	for _, s := range subs {
		if h.remove(s) && !s.server {
			if r := h.ruleCovering(s.entry.pattern); r != nil && r.AfterUnsubscribe != nil {
				r.AfterUnsubscribe(p, s.entry.pattern)
			}
		}
	}
}

// connOf returns p's connection, attaching it if it is not yet; nil once
// the Hub is closed.
func (h *Hub) connOf(p *rpc.Peer) *conn {
	h.mu.RLock()
	c := h.conns[p]
	h.mu.RUnlock()
	if c != nil {
		return c
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	if c = h.conns[p]; c == nil {
		c = &conn{peer: p}
		h.conns[p] = c
	}
	return c
}

// errSubscribedByClient marks add's refusal of a pattern the connection
// already subscribed to by a $/subscribe of its own (which a new one
// replaces), as against one the server subscribed it to.
var errSubscribedByClient = errors.New("subscribed by the client")

// subscribedByClient is the *rpc.Error of that refusal, marked.
type subscribedByClient struct{ err *rpc.Error }

func (e subscribedByClient) Error() string        { return e.err.Error() }
func (e subscribedByClient) Is(target error) bool { return target == errSubscribedByClient }
func (e subscribedByClient) Unwrap() error        { return e.err }

// add subscribes c to pattern: it finds or makes the pattern's entry and
// adds a subscription to it, joining (holding publications) unless live.
// The first subscription of an entry (first) must make the broker
// subscription: see join.
func (h *Hub) add(c *conn, pattern string, echo, server bool) (s *sub, e *entry, first bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, false, rpc.NotStarted("pub/sub hub closed")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return nil, nil, false, rpc.NotStarted("connection closing")
	}
	e = h.entries[pattern]
	if e != nil {
		if old := c.sub(e.id); old != nil {
			err := &rpc.Error{Code: rpc.CodeInvalidParams,
				Message: fmt.Sprintf("already subscribed to %q (subscription %d)", pattern, e.id)}
			if !old.server {
				return nil, nil, false, subscribedByClient{err}
			}
			return nil, nil, false, err
		}
	}
	if len(c.subs) >= h.cfg.limits.MaxSubscriptions {
		return nil, nil, false, &rpc.Error{Code: rpc.CodeBusy,
			Message: fmt.Sprintf("too many subscriptions on this connection (limit %d)", h.cfg.limits.MaxSubscriptions)}
	}
	if e == nil {
		h.nextID++
		e = &entry{id: h.nextID, pattern: pattern, exact: !topic.IsPattern(pattern), ready: make(chan struct{})}
		h.entries[pattern] = e
		h.index.Add(pattern, e)
		first = true
	}
	s = &sub{conn: c, entry: e, echo: echo, server: server, joining: !server}
	e.mu.Lock()
	e.subs = append(e.subs, s)
	e.mu.Unlock()
	c.subs = append(c.subs, s)
	return s, e, first, nil
}
