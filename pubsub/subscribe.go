package pubsub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
)

// subscribeParams are $/subscribe's params.
type subscribeParams struct {
	Topic string    `json:"topic"`
	Since *Position `json:"since"`
	Echo  bool      `json:"echo"`
}

type unsubscribeParams struct {
	Sub *uint64 `json:"sub"`
}

// subscribed returns c's subscription to pattern, or nil.
func (h *Hub) subscribed(c *conn, pattern string) *sub {
	h.mu.RLock()
	defer h.mu.RUnlock()
	e := h.entries[pattern]
	if e == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sub(e.id)
}

// brokerSubscribeTimeout bounds the broker subscription a first subscriber
// makes for every subscriber of the pattern.
const brokerSubscribeTimeout = 10 * time.Second

// join waits until e's broker subscription is made, making it when first.
// That subscription serves every subscriber of the pattern, so it does not
// end with the first one's call.
func (h *Hub) join(ctx context.Context, e *entry, first bool) error {
	if first {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), brokerSubscribeTimeout)
		e.err = h.broker.Subscribe(bctx, e.pattern)
		cancel()
		close(e.ready)
	} else {
		select {
		case <-e.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if e.err != nil {
		return brokerError("subscribing at the broker", e.err)
	}
	return nil
}

// remove ends s: it leaves its entry, and the entry's broker subscription
// ends with its last subscriber. It reports whether s was still there.
func (h *Hub) remove(s *sub) bool {
	e := s.entry
	h.mu.Lock()
	s.conn.mu.Lock()
	i := slices.Index(s.conn.subs, s)
	found := i >= 0
	if found {
		s.conn.subs = slices.Delete(s.conn.subs, i, i+1)
	}
	s.conn.mu.Unlock()
	e.mu.Lock()
	if i := slices.Index(e.subs, s); i >= 0 {
		last := len(e.subs) - 1
		e.subs[i] = e.subs[last]
		e.subs[last] = nil
		e.subs = e.subs[:last]
	}
	s.pending = nil
	empty := len(e.subs) == 0
	e.mu.Unlock()
	if empty && h.entries[e.pattern] == e {
		delete(h.entries, e.pattern)
		h.index.Remove(e.pattern, e)
	} else {
		empty = false
	}
	h.mu.Unlock()
	if empty {
		<-e.ready // its first subscriber has finished subscribing (or failing)
		if e.err == nil {
			if err := h.broker.Unsubscribe(context.Background(), e.pattern); err != nil {
				h.warn("broker unsubscribe failed", "pattern", e.pattern, "err", err)
			}
		}
	}
	return found
}

// serveSubscribe is $/subscribe.
func (h *Hub) serveSubscribe(ctx context.Context, req *rpc.Request) ([]byte, error) {
	var p subscribeParams
	if err := json.Unmarshal(req.Params, &p); err != nil {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "%s: params must be {\"topic\": string, \"since\"?: {\"offset\", \"epoch\"}, \"echo\"?: bool}: %v", MethodSubscribe, err)
	}
	if err := h.cfg.limits.topic().Pattern(p.Topic); err != nil {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "%s: %v", MethodSubscribe, err)
	}
	exact := !isPattern(p.Topic)
	if p.Since != nil && !exact {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "%s: %q is a pattern: recovery (since) needs an exact topic", MethodSubscribe, p.Topic)
	}
	peer := req.Peer()
	c := h.connOf(peer)
	if c == nil {
		return nil, rpc.NotStarted("pub/sub hub closed")
	}
	if err := h.allowSubscribe(ctx, peer, p.Topic); err != nil {
		return nil, err
	}
	var (
		s     *sub
		e     *entry
		first bool
		err   error
	)
	for try := 0; ; try++ {
		if old := h.subscribed(c, p.Topic); old != nil && !old.server {
			// Subscribing again replaces the subscription: a client that
			// lost track of one (its call was cancelled after the server
			// made it) gets a fresh one, with a fresh reply.
			h.remove(old)
		}
		s, e, first, err = h.add(c, p.Topic, p.Echo, false)
		// Another $/subscribe of the same topic on this connection may
		// have come between the removal and the add: replace that one too
		// (a few times at most; the last to arrive wins).
		if err == nil || try == 3 || !errors.Is(err, errSubscribedByClient) {
			break
		}
	}
	if dup, ok := err.(subscribedByClient); ok {
		return nil, dup.err
	}
	if err != nil {
		return nil, err
	}
	result, err := h.answer(ctx, s, e, first, p.Since)
	if err != nil {
		h.remove(s)
		return nil, err
	}
	req.OnReplied(func(sent bool) {
		if !sent { // nobody will learn the subscription id
			h.remove(s)
			return
		}
		h.goLive(s)
		if r := h.ruleCovering(p.Topic); r != nil && r.AfterSubscribe != nil {
			r.AfterSubscribe(peer, p.Topic)
		}
	})
	return result, nil
}

// answer makes the broker subscription if needed, reads the history (exact
// topics) and encodes the subscribe's result.
func (h *Hub) answer(ctx context.Context, s *sub, e *entry, first bool, since *Position) ([]byte, error) {
	if err := h.join(ctx, e, first); err != nil {
		return nil, err
	}
	buf := make([]byte, 0, 128)
	buf = append(buf, `{"sub":`...)
	buf = appendUint(buf, e.id)
	buf = append(buf, `,"topic":`...)
	buf = appendString(buf, e.pattern)
	if !e.exact {
		return append(buf, '}'), nil
	}
	size, _ := h.historyOf(e.pattern)
	if since != nil && since.Epoch == "" {
		// From the start of the current epoch: ask which it is first.
		top, err := h.broker.History(ctx, e.pattern, HistoryRequest{HistorySize: size})
		if err != nil {
			return nil, brokerError("reading the topic's position", err)
		}
		since = &Position{Offset: 0, Epoch: top.Top.Epoch}
	}
	hist, err := h.broker.History(ctx, e.pattern, HistoryRequest{Since: since, Limit: h.cfg.limits.MaxReplay, HistorySize: size})
	if err != nil {
		return nil, brokerError("reading the topic's position", err)
	}
	if hist.Live {
		// No stream: no position to give, nothing to recover.
		if since != nil {
			h.counts.recovery(false)
			buf = append(buf, `,"recovered":false,"publications":[]`...)
		}
		return append(buf, '}'), nil
	}
	e.mu.Lock()
	s.last = hist.Top
	e.mu.Unlock()
	buf = append(buf, `,"position":`...)
	buf = appendPosition(buf, hist.Top)
	if since == nil {
		return append(buf, '}'), nil
	}
	// Keep the most recent publications that fit the byte bound.
	keep, size := len(hist.Publications), 0
	head := len(appendString(nil, e.pattern)) + len(appendString(nil, hist.Top.Epoch)) + len(`{"sub":,"topic":,"offset":,"epoch":,"data":},`) + digits(e.id)
	cost := func(p *Publication) int { return head + digits(p.Offset) + len(p.Data) } // its bytes in the reply, to a few bytes
	for keep > 0 && size+cost(&hist.Publications[keep-1]) <= h.cfg.limits.MaxReplayBytes {
		keep--
		size += cost(&hist.Publications[keep])
	}
	hist.Publications = hist.Publications[keep:]
	recovered := recoveredAll(*since, hist)
	h.counts.recovery(recovered)
	buf = append(buf, `,"recovered":`...)
	if recovered {
		buf = append(buf, "true"...)
	} else {
		buf = append(buf, "false"...)
	}
	buf = append(buf, `,"publications":[`...)
	n := 0
	for i := range hist.Publications {
		pub := &hist.Publications[i]
		if n > 0 {
			buf = append(buf, ',')
		}
		if !s.echo && pub.Publisher != "" && pub.Publisher == s.conn.peer.ID() {
			buf = appendSkipped(buf, e.id, pub) // its own: the position only
		} else {
			buf = appendPublication(buf, e.id, pub)
		}
		n++
	}
	return append(buf, "]}"...), nil
}

// recoveredAll reports whether hist holds every publication after since:
// the same epoch, and the publications run from since+1 to the top without
// a hole. An empty epoch in since means the start of the current epoch.
func recoveredAll(since Position, hist History) bool {
	if since.Epoch == "" {
		since.Epoch, since.Offset = hist.Top.Epoch, 0
	}
	if since.Epoch != hist.Top.Epoch || since.Offset > hist.Top.Offset {
		return false
	}
	if since.Offset == hist.Top.Offset {
		return true
	}
	pubs := hist.Publications
	return len(pubs) > 0 && pubs[0].Offset == since.Offset+1 && pubs[len(pubs)-1].Offset == hist.Top.Offset &&
		uint64(len(pubs)) == hist.Top.Offset-since.Offset
}

// goLive sends what arrived for s while its subscribe was answered (what
// its reply did not already hold), then lets publications through.
func (h *Hub) goLive(s *sub) {
	e := s.entry
	e.mu.Lock()
	defer e.mu.Unlock()
	if !s.joining {
		return
	}
	s.joining = false
	pending := s.pending
	s.pending = nil
	for _, m := range pending {
		if m.offset > 0 && m.epoch == s.last.Epoch && m.offset <= s.last.Offset {
			continue // in the reply, or before the position it gave (live publications have none)
		}
		h.offer(s, m.msg, false)
	}
}

// serveUnsubscribe is $/unsubscribe.
func (h *Hub) serveUnsubscribe(_ context.Context, req *rpc.Request) ([]byte, error) {
	var p unsubscribeParams
	if err := json.Unmarshal(req.Params, &p); err != nil || p.Sub == nil {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "%s: params must be {\"sub\": subscription id}", MethodUnsubscribe)
	}
	c := h.connOf(req.Peer())
	if c == nil {
		return nil, rpc.NotStarted("pub/sub hub closed")
	}
	c.mu.Lock()
	s := c.sub(*p.Sub)
	c.mu.Unlock()
	if s == nil || s.server {
		return nil, rpc.Errorf(rpc.CodeInvalidParams, "%s: no subscription %d on this connection", MethodUnsubscribe, *p.Sub)
	}
	if h.remove(s) {
		if r := h.ruleCovering(s.entry.pattern); r != nil && r.AfterUnsubscribe != nil {
			req.OnReplied(func(bool) { r.AfterUnsubscribe(req.Peer(), s.entry.pattern) })
		}
	}
	return []byte("true"), nil
}

// AllowSubscribe reports whether p may subscribe to pattern (a topic or a
// pattern): nil, or the error a $/subscribe of it would be answered with (an
// invalid pattern, or the refusal of a rule's Subscribe hook). A service
// that reads topics for its callers by other means (one that streams them,
// say) asks it, so that it keeps the hub's rules.
func (h *Hub) AllowSubscribe(ctx context.Context, p *rpc.Peer, pattern string) error {
	if err := h.cfg.limits.topic().Pattern(pattern); err != nil {
		return rpc.Errorf(rpc.CodeInvalidParams, "%v", err)
	}
	return h.allowSubscribe(ctx, p, pattern)
}

// allowSubscribe asks every rule overlapping pattern.
func (h *Hub) allowSubscribe(ctx context.Context, p *rpc.Peer, pattern string) error {
	for i := range h.cfg.rules {
		r := &h.cfg.rules[i]
		if r.Subscribe == nil || !overlaps(r.pattern, pattern) {
			continue
		}
		if err := r.Subscribe(ctx, p, pattern); err != nil {
			return refusal(err, "subscribing to %q is not allowed: %v", pattern, err)
		}
	}
	return nil
}

// ruleCovering is the first rule whose pattern covers pattern, for its
// after-hooks.
func (h *Hub) ruleCovering(pattern string) *rule {
	for i := range h.cfg.rules {
		if covers(h.cfg.rules[i].pattern, pattern) {
			return &h.cfg.rules[i]
		}
	}
	return nil
}

// refusal is err as sent to the client: an *rpc.Error as it is, anything
// else as permission denied.
func refusal(err error, format string, args ...any) error {
	if e, ok := err.(*rpc.Error); ok {
		return e
	}
	return &rpc.Error{Code: rpc.CodePermissionDenied, Message: fmt.Sprintf(format, args...)}
}

func (h *Hub) warn(msg string, args ...any) {
	if h.cfg.logger != nil {
		h.cfg.logger.Warn("wsrpc: pubsub: "+msg, args...)
	}
}

// warnPeer is warn about a connection: its attributes
// ([rpc.Peer.AppendLogAttrs]) come first.
func (h *Hub) warnPeer(msg string, p *rpc.Peer, attrs ...slog.Attr) {
	if h.cfg.logger != nil {
		all := append(p.AppendLogAttrs(make([]slog.Attr, 0, 3+len(attrs))), attrs...)
		h.cfg.logger.LogAttrs(context.Background(), slog.LevelWarn, "wsrpc: pubsub: "+msg, all...)
	}
}

// brokerError is the answer to a call the broker could not serve: busy for
// a limit of the broker's (too many topics), otherwise unavailable; either
// way nothing was done, so the client may retry.
func brokerError(what string, err error) *rpc.Error {
	if errors.Is(err, ErrTooManyTopics) {
		return &rpc.Error{Code: rpc.CodeBusy, Message: what + ": " + err.Error()}
	}
	if errors.Is(err, ErrPublishUnknown) {
		return &rpc.Error{Code: rpc.CodeInternalError, Message: what + ": " + err.Error()}
	}
	return rpc.NotStarted(what + ": " + err.Error())
}

// digits is the length of n in decimal.
func digits(n uint64) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}
