package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

// DefaultSubscriptionBuffer is how many publications a [Subscription]'s
// channel holds before delivery waits for the reader.
const DefaultSubscriptionBuffer = 256

// ErrUnsubscribed is the Err of a [Subscription] ended by Unsubscribe.
var ErrUnsubscribed = errors.New("wsrpc: unsubscribed")

// SubscribeOption configures [Client.Subscribe].
type SubscribeOption func(*subscribeOptions)

type subscribeOptions struct {
	since  *pubsub.Position
	echo   bool
	buffer int
}

// Since recovers, with the subscribe, the publications after pos (the
// position of the last one the caller has seen, kept from an earlier
// run), as far as the topic's history holds them. For exact topics only.
func Since(pos pubsub.Position) SubscribeOption {
	return func(o *subscribeOptions) { o.since = &pos }
}

// Echo delivers this client's own publications too (publisher exclusion is
// the default).
func Echo() SubscribeOption { return func(o *subscribeOptions) { o.echo = true } }

// Buffer sets how many publications the subscription's channel holds (0:
// [DefaultSubscriptionBuffer]).
func Buffer(n int) SubscribeOption { return func(o *subscribeOptions) { o.buffer = n } }

// WithOnPublication sets the func that receives the publications of
// subscriptions the client did not make: those the server makes for each
// connection (pubsub.WithConnectSubscriptions). It runs on the connection's
// reader goroutine, in order, and must not block for long. Without it such
// publications are dropped.
func WithOnPublication(fn func(pubsub.Publication)) Option {
	return clientOption(func(o *options) { o.onPublication = fn })
}

// Subscription is a subscription to a topic or pattern, made by
// [Client.Subscribe]. Its publications arrive on C in order. It survives
// reconnects: on a new connection the client subscribes again and, for an
// exact topic, recovers what it missed from the topic's history; when it
// could not recover everything (the history did not reach back, or the
// topic's stream was lost), the next publication delivered has Gap set. A
// gap in offsets seen on the live path is recovered the same way.
//
// Delivery waits while C is full (up to the channel's buffer): the
// connection reads nothing else meanwhile, and a server whose queue for
// the connection fills closes it as a slow subscriber, after which the
// client reconnects and recovers. Read C promptly, and do not wait for a
// call on the same Client from the loop that reads C while C may be full:
// the call's reply can be queued behind the publications that wait for that
// loop (hand the work to another goroutine, or size the channel with
// [Buffer]).
type Subscription struct {
	c       *Client
	pattern string
	exact   bool
	echo    bool
	ch      chan pubsub.Publication
	done    chan struct{} // closed when the subscription ends
	turn    chan struct{} // one deliverer at a time (a token, not a mutex: it is held across a send)

	mu         sync.Mutex
	peer       *rpc.Peer // the connection it is subscribed on (nil: none yet)
	id         uint64    // its subscription id there
	pos        pubsub.Position
	hasPos     bool      // pos is the last publication delivered (or the position subscribed at)
	gap        bool      // the next publication delivered had others lost before it
	recovering bool      // a resubscribe to fill a live gap is under way
	live       bool      // the server keeps no stream for the topic: no positions
	on         *rpc.Peer // the connection a subscribe was last sent on
	ended      bool
	err        error
}

// C returns the channel of publications. It is closed when the
// subscription ends (Unsubscribe, Client.Close, or a resubscribe the server
// refused); Err then says why.
func (s *Subscription) C() <-chan pubsub.Publication { return s.ch }

// Topic returns the topic or pattern subscribed to.
func (s *Subscription) Topic() string { return s.pattern }

// Position returns the position of the last publication handed to C (exact
// topics), or the topic's position when nothing has come yet. Publications
// still waiting in C's buffer count as handed over: to resume in a later run
// with [Since], keep the Position of the last publication you processed.
func (s *Subscription) Position() pubsub.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos
}

// Err returns nil while the subscription is active, then why it ended.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

type route struct {
	peer *rpc.Peer
	id   uint64
}

// Subscribe subscribes to a topic or pattern (NATS syntax: "a.b", "a.*",
// "a.>"), waiting for a connection as calls do. ctx bounds the first
// subscribe only; the subscription lasts until Unsubscribe or Close.
// Subscribing twice to the same topic on one client is an error.
func (c *Client) Subscribe(ctx context.Context, topic string, opts ...SubscribeOption) (*Subscription, error) {
	var o subscribeOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if err := pubsub.ValidPattern(topic); err != nil {
		return nil, &rpc.Error{Code: rpc.CodeInvalidParams, Message: err.Error()}
	}
	exact := !pubsub.IsPattern(topic)
	if o.since != nil && !exact {
		return nil, &rpc.Error{Code: rpc.CodeInvalidParams, Message: fmt.Sprintf("%q is a pattern: Since needs an exact topic", topic)}
	}
	if o.buffer <= 0 {
		o.buffer = DefaultSubscriptionBuffer
	}
	s := &Subscription{c: c, pattern: topic, exact: exact, echo: o.echo,
		ch: make(chan pubsub.Publication, o.buffer), done: make(chan struct{}), turn: make(chan struct{}, 1)}
	if o.since != nil {
		s.pos, s.hasPos = *o.since, true
	}
	c.subMu.Lock()
	if c.subs[topic] != nil {
		c.subMu.Unlock()
		return nil, &rpc.Error{Code: rpc.CodeInvalidParams, Message: fmt.Sprintf("already subscribed to %q", topic)}
	}
	if c.subs == nil {
		c.subs = make(map[string]*Subscription)
		c.routes = make(map[route]*Subscription)
	}
	c.subs[topic] = s
	c.subMu.Unlock()
	err := c.subscribeFirst(ctx, s)
	if err != nil {
		c.forget(s)
		return nil, err
	}
	return s, nil
}

// subscribeFirst makes the first subscribe, on the current connection or
// the next one.
func (c *Client) subscribeFirst(ctx context.Context, s *Subscription) error {
	admitted := false
	var avoid *rpc.Peer
	for {
		p, changed, err := c.admit(avoid, admitted)
		if err != nil {
			return err
		}
		if p == nil {
			admitted = true
			if err := c.await(ctx, changed); err != nil {
				return err
			}
			continue
		}
		err = s.subscribeOn(ctx, p)
		if rpc.CodeOf(err) == rpc.CodeUnavailable || rpc.CodeOf(err) == rpc.CodeConnectionLost {
			if ctx.Err() == nil && !c.isClosed() && going(p) {
				avoid, admitted = p, true // the connection is going: the next one subscribes
				continue
			}
		}
		return err
	}
}

// going reports whether p's connection is ending or its server is
// shutting down: a call refused as unavailable then goes to the next one.
func going(p *rpc.Peer) bool {
	select {
	case <-p.Conn().Done():
		return true
	case <-p.GoingAway():
		return true
	default:
		return false
	}
}

// subscribeOn sends the subscribe on p. The reply is handled on p's reader
// (onSubscribed) before anything after it, so that no publication of the
// new subscription arrives before its id is known.
func (s *Subscription) subscribeOn(ctx context.Context, p *rpc.Peer) error {
	s.mu.Lock()
	if s.on == p && !s.recovering {
		s.mu.Unlock()
		return nil // subscribed, or being subscribed, on p already (Subscribe racing a reconnect)
	}
	s.on = p
	params := struct {
		Topic string           `json:"topic"`
		Since *pubsub.Position `json:"since,omitempty"`
		Echo  bool             `json:"echo,omitempty"`
	}{Topic: s.pattern, Echo: s.echo}
	if s.exact && s.hasPos {
		pos := s.pos
		params.Since = &pos
	}
	s.mu.Unlock()
	b, err := json.Marshal(params)
	if err != nil {
		return err
	}
	var failed error
	reply := make(chan *rpc.Response, 1)
	req := &rpc.Request{Method: pubsub.MethodSubscribe, Params: b, Reply: reply,
		OnReply: func(r *rpc.Response) {
			if r.Err == nil {
				failed = s.onSubscribed(p, r.Result, params.Since != nil)
			}
		}}
	err = p.Send(ctx, req)
	if err == nil {
		r := <-reply // Send watches ctx: a Response comes
		err = r.Err
	}
	if err == nil {
		err = failed
	}
	if err != nil {
		s.mu.Lock()
		if s.on == p {
			s.on = nil // not subscribed there: a later attempt may try again
		}
		s.mu.Unlock()
	}
	return err
}

// subscribeResult is $/subscribe's result.
type subscribeResult struct {
	Sub          uint64           `json:"sub"`
	Position     *pubsub.Position `json:"position"`
	Recovered    bool             `json:"recovered"`
	Publications []publication    `json:"publications"`
}

// publication is $/publication's params.
type publication struct {
	Sub    uint64          `json:"sub"`
	Topic  string          `json:"topic"`
	Offset uint64          `json:"offset"`
	Epoch  string          `json:"epoch"`
	Data   json.RawMessage `json:"data"`
	// Skipped: the subscriber's own publication, excluded; only its
	// position comes, to keep the offsets contiguous.
	Skipped bool `json:"skipped"`
}

func (p *publication) value() pubsub.Publication {
	return pubsub.Publication{Topic: p.Topic, Offset: p.Offset, Epoch: p.Epoch, Data: rpc.Raw(p.Data)}
}

// onSubscribed runs on p's reader goroutine with the subscribe's result: it
// routes the subscription's publications on p to s and delivers the ones
// the reply recovered.
func (s *Subscription) onSubscribed(p *rpc.Peer, result []byte, recovering bool) error {
	var res subscribeResult
	if err := json.Unmarshal(result, &res); err != nil {
		return fmt.Errorf("wsrpc: subscribe: bad result: %w", err)
	}
	c := s.c
	c.subMu.Lock()
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		c.subMu.Unlock()
		// Unsubscribed while the subscribe was under way: undo it on the
		// server, which made it.
		c.wg.Go(func() { _ = p.Call(c.closing, pubsub.MethodUnsubscribe, map[string]uint64{"sub": res.Sub}, nil) })
		return nil
	}
	if s.peer != nil {
		delete(c.routes, route{s.peer, s.id})
	}
	s.peer, s.id, s.recovering = p, res.Sub, false
	c.routes[route{p, res.Sub}] = s
	if recovering && !res.Recovered {
		s.gap = true
		if len(res.Publications) > 0 { // the replay starts after a hole: it is not a live gap
			first := res.Publications[0]
			s.pos = pubsub.Position{Offset: first.Offset - 1, Epoch: first.Epoch}
		}
	}
	if res.Position != nil && s.live {
		// Live until now (another server kept no stream): what was
		// published meanwhile is lost to it.
		s.live, s.gap = false, true
	}
	if res.Position != nil && !s.hasPos {
		s.pos, s.hasPos = *res.Position, true
	}
	if s.exact && res.Position == nil {
		// A live-only topic (no stream: a NATS broker without history):
		// its publications carry no position, and nothing can be
		// recovered. No position is kept (a later resubscribe to a server
		// that does keep a stream must not ask for its whole history); a
		// resubscribe says instead that publications may have been missed.
		if s.live {
			s.gap = true
		}
		s.live, s.pos, s.hasPos = true, pubsub.Position{}, false
	}
	s.mu.Unlock()
	c.subMu.Unlock()
	if len(res.Publications) == 0 {
		s.jumpTo(res.Position)
		return nil
	}
	// The recovered publications go to C before any that follow on p: the
	// turn is taken here, on p's reader, and handed to a goroutine that
	// delivers them, so that neither the reader nor the caller of Subscribe
	// (who has not got C yet) waits for C to be read meanwhile. p's next
	// publications wait for the turn.
	if !s.take(p) {
		return nil
	}
	c.wg.Go(func() {
		defer s.give()
		for i := range res.Publications {
			s.deliverHeld(p, res.Publications[i].value(), res.Publications[i].Skipped)
		}
		s.jumpTo(res.Position)
	})
	return nil
}

// jumpTo moves the position to top when what it missed before top is lost
// (another epoch, or history that did not reach back): the next publication
// follows top.
func (s *Subscription) jumpTo(top *pubsub.Position) {
	if top == nil {
		return
	}
	s.mu.Lock()
	if s.exact && (s.pos.Epoch != top.Epoch || s.pos.Offset < top.Offset) && !s.recovering {
		s.pos, s.hasPos = *top, true
	}
	s.mu.Unlock()
}

// onPublication is the inline handler of $/publication on every
// connection: it runs on the connection's reader, in order.
func (c *Client) onPublication(req *rpc.Request) {
	var pub publication
	if err := json.Unmarshal(req.Params, &pub); err != nil {
		c.log(slog.LevelDebug, "wsrpc: bad $/publication dropped", req.Peer(), "err", err)
		return
	}
	p := req.Peer()
	c.subMu.Lock()
	s := c.routes[route{p, pub.Sub}]
	c.subMu.Unlock()
	if s == nil {
		if c.opts.onPublication != nil && !pub.Skipped {
			c.opts.onPublication(pub.value())
		}
		return
	}
	s.deliver(p, pub.value(), pub.Skipped)
}

// deliver hands pub, which arrived on p, to the reader of C, unless it is
// stale (p is no longer the subscription's connection), a duplicate, or
// after a gap (which starts a recovery).
func (s *Subscription) deliver(p *rpc.Peer, pub pubsub.Publication, skipped bool) {
	if !s.take(p) {
		return
	}
	defer s.give()
	s.deliverHeld(p, pub, skipped)
}

// take takes the delivery turn: one deliverer at a time, so that
// publications reach C in order. It reports false if the subscription or p's
// connection ended, or the client closed, first.
func (s *Subscription) take(p *rpc.Peer) bool {
	select {
	case s.turn <- struct{}{}:
		return true
	case <-s.done:
	case <-p.Conn().Done():
	case <-s.c.closing.Done():
	}
	return false
}

func (s *Subscription) give() { <-s.turn }

// deliverHeld is deliver for a caller holding the turn. It waits while C is
// full, until the subscription or p's connection ends or the client closes.
// (p.Conn().Done, not p.Done: this runs on p's reader, which p.Done waits
// for.)
func (s *Subscription) deliverHeld(p *rpc.Peer, pub pubsub.Publication, skipped bool) {
	s.mu.Lock()
	if s.ended || s.peer != p || s.recovering {
		s.mu.Unlock()
		return
	}
	if s.exact && s.hasPos && s.pos.Epoch != "" && pub.Epoch != "" { // a live publication (no epoch) has no place to check
		switch {
		case pub.Epoch == s.pos.Epoch && pub.Offset <= s.pos.Offset:
			s.mu.Unlock()
			return // already delivered
		case pub.Epoch != s.pos.Epoch && pub.Offset == 1:
			// The topic's stream started again: nothing of the new one is
			// missing, what the old one had after pos may be.
			s.gap = true
		case pub.Epoch != s.pos.Epoch:
			// A new stream, already under way: recover it from its start.
			s.pos = pubsub.Position{Offset: 0, Epoch: pub.Epoch}
			s.gap = true
			fallthrough
		case pub.Offset != s.pos.Offset+1:
			// A gap: subscribe again from the last position delivered.
			s.recovering = true
			s.mu.Unlock()
			s.c.wg.Go(func() { s.recover(p) })
			return
		}
	}
	if skipped {
		if s.exact && pub.Epoch != "" {
			s.pos, s.hasPos = pub.Position(), true
		}
		s.mu.Unlock()
		return // the subscriber's own publication: its position only
	}
	pub.Gap, s.gap = s.gap, false
	s.mu.Unlock()
	select {
	case s.ch <- pub:
		s.mu.Lock()
		if s.exact && pub.Epoch != "" { // a live publication has no position to keep
			s.pos, s.hasPos = pub.Position(), true
		}
		s.mu.Unlock()
	case <-s.done:
	case <-p.Conn().Done():
		s.mu.Lock()
		s.gap = s.gap || pub.Gap // not delivered: the flag waits for the next
		s.mu.Unlock()
	case <-s.c.closing.Done():
	}
}

// recover fills a live gap: it subscribes again on p from the last
// position delivered.
func (s *Subscription) recover(p *rpc.Peer) {
	ctx := s.c.closing
	// Subscribing again replaces the subscription on the server
	// (docs/PROTOCOL.md, section 13.3): no unsubscribe first.
	if err := s.subscribeOn(ctx, p); err != nil {
		s.mu.Lock()
		s.recovering = false
		s.mu.Unlock()
		if rpc.CodeOf(err) != rpc.CodeConnectionLost && rpc.CodeOf(err) != rpc.CodeUnavailable {
			s.end(fmt.Errorf("wsrpc: resubscribe to %q: %w", s.pattern, err))
		}
	}
}

// resubscribe subscribes every subscription again on a new connection. It
// runs on a goroutine of the client's.
func (c *Client) resubscribe(p *rpc.Peer) {
	c.subMu.Lock()
	subs := make([]*Subscription, 0, len(c.subs))
	for _, s := range c.subs {
		subs = append(subs, s)
	}
	c.subMu.Unlock()
	for _, s := range subs {
		err := s.subscribeOn(c.closing, p)
		switch code := rpc.CodeOf(err); {
		case err == nil, code == rpc.CodeConnectionLost, code == rpc.CodeUnavailable, c.isClosed():
			// done, or the next connection will try again
		default:
			s.end(fmt.Errorf("wsrpc: resubscribe to %q: %w", s.pattern, err))
		}
	}
}

// Unsubscribe ends the subscription: C is closed and Err returns
// [ErrUnsubscribed]. It tells the server if the connection is up.
func (s *Subscription) Unsubscribe(ctx context.Context) error {
	s.mu.Lock()
	p, id, ended := s.peer, s.id, s.ended
	s.mu.Unlock()
	if ended {
		return nil
	}
	s.end(ErrUnsubscribed)
	if p == nil {
		return nil
	}
	err := p.Call(ctx, pubsub.MethodUnsubscribe, map[string]uint64{"sub": id}, nil)
	if rpc.CodeOf(err) == rpc.CodeConnectionLost || rpc.CodeOf(err) == rpc.CodeUnavailable {
		return nil // the connection is gone, and the subscription with it
	}
	return err
}

// end ends the subscription with err: it stops delivery and closes C.
func (s *Subscription) end(err error) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended, s.err = true, err
	s.mu.Unlock()
	s.c.forget(s)
	close(s.done)
	s.turn <- struct{}{} // no deliverer is sending now, and none will: ended is set
	close(s.ch)
	<-s.turn
}

// forget removes s from the client's tables.
func (c *Client) forget(s *Subscription) {
	c.subMu.Lock()
	if c.subs[s.pattern] == s {
		delete(c.subs, s.pattern)
	}
	s.mu.Lock()
	if s.peer != nil {
		delete(c.routes, route{s.peer, s.id})
	}
	s.mu.Unlock()
	c.subMu.Unlock()
}

// endSubscriptions ends every subscription when the client closes.
func (c *Client) endSubscriptions(err error) {
	c.subMu.Lock()
	subs := make([]*Subscription, 0, len(c.subs))
	for _, s := range c.subs {
		subs = append(subs, s)
	}
	c.subMu.Unlock()
	for _, s := range subs {
		s.end(err)
	}
}

// Publish publishes v (encoded as JSON; an rpc.Raw or json.RawMessage is
// sent as it is, and must hold JSON) on topic, where the server allows
// clients to, and returns its position. A publication a server hook
// dropped returns the zero Position and no error.
func (c *Client) Publish(ctx context.Context, topic string, v any) (pubsub.Position, error) {
	if err := pubsub.ValidTopic(topic); err != nil {
		return pubsub.Position{}, &rpc.Error{Code: rpc.CodeInvalidParams, Message: err.Error()}
	}
	var data []byte
	switch v := v.(type) {
	case rpc.Raw:
		data = v
	case json.RawMessage:
		data = v
	default:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // the data is the caller's: sent as written
		if err := enc.Encode(v); err != nil {
			return pubsub.Position{}, fmt.Errorf("wsrpc: publish: encode: %w", err)
		}
		data = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	if !rpc.ValidJSON(data) {
		return pubsub.Position{}, &rpc.Error{Code: rpc.CodeInvalidParams, Message: "publish: data is not valid JSON"}
	}
	// Written by hand: json.Marshal would escape HTML inside the data.
	var params bytes.Buffer
	params.WriteString(`{"topic":`)
	enc := json.NewEncoder(&params)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(topic) // a string: cannot fail
	params.Truncate(params.Len() - 1)
	params.WriteString(`,"data":`)
	params.Write(data)
	params.WriteByte('}')
	var pos pubsub.Position
	err := c.Call(ctx, pubsub.MethodPublish, rpc.Raw(params.Bytes()), &pos)
	return pos, err
}
