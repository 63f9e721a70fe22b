package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wsrpc/wsrpc/internal/bufpool"
	"github.com/wsrpc/wsrpc/transport"
)

// Send sends req. With a Reply channel it is a call: Send assigns req.ID,
// records the call as pending and returns once the request is queued; the
// one *Response for it arrives on Reply, in whatever order replies come back.
// If ctx ends first, the call is abandoned: a cancel message tells the other
// side to stop the handler, and Reply receives a Response whose Err is ctx's
// error. With a nil Reply it is a notification: no reply is expected.
//
// ctx's deadline, if any, travels with the request: the handler's context on
// the other side carries it.
//
// An error from Send means the request was not sent: [CodeUnavailable] when
// the connection is closed or the other side is shutting down (safe to retry
// elsewhere), or the ctx error. When Send returns nil for a call, exactly one
// Response arrives on Reply.
func (p *Peer) Send(ctx context.Context, req *Request) error {
	if err := p.checkParams(req.Params); err != nil {
		return err
	}
	if req.Reply == nil {
		return p.notify(ctx, req.Method, req.Params)
	}
	if cap(req.Reply) == 0 {
		return errors.New("wsrpc: Request.Reply must be a buffered channel")
	}
	id, err := p.start(ctx, req.Method, req.Params, req.Reply, nil, true)
	req.ID = id
	return err
}

// Call calls method with params and decodes the result into result (which
// may be nil to discard it). params and result are encoded with the peer's
// [Codec]; a [Raw] params is sent as it is, and a *[Raw] result receives a
// copy of the bytes undecoded, in the Raw's own backing array when it has
// room. Call blocks until the reply arrives or ctx ends; in the
// latter case it returns ctx's error at once and tells the other side to
// cancel. (One exception: a request being written when ctx ends finishes its
// write first; that only takes long when the other side has stopped reading,
// and the transport's write timeout bounds it.) The error is an *[Error] (test it with errors.Is or [CodeOf]) or a
// context error.
func (p *Peer) Call(ctx context.Context, method string, params, result any) error {
	raw, err := p.marshal(params)
	if err != nil {
		return err
	}
	s := slotPool.Get().(*callSlot)
	id, err := p.start(ctx, method, raw, s.ch, s, false)
	if err != nil {
		s.resp = Response{}
		slotPool.Put(s)
		return err
	}
	select {
	case r := <-s.ch:
		res, rerr, buf, recycle := r.Result, r.Err, r.buf, r.recycle
		*r = Response{}
		slotPool.Put(s)
		if rerr != nil {
			if ctx.Err() != nil {
				return ctx.Err() // the caller gave up as the reply came: report its own reason
			}
			return rerr
		}
		err := p.unmarshal(res, result)
		if recycle != nil {
			recycle.Recycle(buf) // decoded (or copied into a Raw): the bytes are no longer needed
		}
		return err
	case <-ctx.Done():
		if p.abandon(id) {
			slotPool.Put(s) // no reply can arrive any more
		}
		return ctx.Err()
	}
}

// callSlot is where the reply to a blocking Call lands: its channel and the
// Response sent on it, recycled together so that a call allocates neither.
// A slot goes back to the pool only when no deliverer can still use it.
type callSlot struct {
	ch   chan *Response
	resp Response
}

var slotPool = sync.Pool{New: func() any { return &callSlot{ch: make(chan *Response, 1)} }}

// response returns the Response to fill for a reply to pc.
func (pc pendingCall) response() *Response {
	if pc.slot != nil {
		return &pc.slot.resp
	}
	return new(Response)
}

// Notify sends a notification: a call with no reply.
func (p *Peer) Notify(ctx context.Context, method string, params any) error {
	raw, err := p.marshal(params)
	if err != nil {
		return err
	}
	return p.notify(ctx, method, raw)
}

func (p *Peer) notify(ctx context.Context, method string, params []byte) error {
	p.mu.Lock()
	refused := p.refusalLocked()
	p.mu.Unlock()
	if refused != nil {
		return refused
	}
	m := message{kind: kindNotification, method: method, params: params}
	return p.sendCtx(ctx, &m)
}

// refusalLocked says why no new call may start, or nil.
func (p *Peer) refusalLocked() error {
	switch {
	case p.connEnded:
		return &Error{Code: CodeUnavailable, Message: "connection closed; the request was not sent"}
	case p.remoteDrain:
		return &Error{Code: CodeUnavailable, Message: "peer is shutting down; the request was not sent"}
	}
	return nil
}

// start registers and sends a call. With watch, ctx is watched so that an
// asynchronous call is abandoned when ctx ends.
func (p *Peer) start(ctx context.Context, method string, params []byte, reply chan *Response, slot *callSlot, watch bool) (uint64, error) {
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return 0, context.DeadlineExceeded
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	id := p.nextID.Add(1)
	p.mu.Lock()
	if err := p.refusalLocked(); err != nil {
		p.mu.Unlock()
		return 0, err
	}
	p.pending[id] = pendingCall{reply: reply, slot: slot}
	p.mu.Unlock()

	m := message{kind: kindRequest, id: wireID{n: id}, method: method, params: params, timeout: timeout}
	if err := p.sendCtx(ctx, &m); err != nil {
		if _, still := p.takePending(id); !still {
			// The connection ended while sending, and ended() has taken the
			// call from the table: exactly one Response is on its way to
			// reply. A blocking Call takes it so its slot can be reused; an
			// asynchronous Send lets it report the failure.
			if slot != nil {
				<-reply
				return 0, err
			}
			return id, nil
		}
		return 0, err
	}
	if watch && ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() {
			if p.abandon(id) {
				p.deliver(reply, &Response{ID: id, Err: ctx.Err()})
			}
		})
		p.mu.Lock()
		if pc, ok := p.pending[id]; ok {
			pc.stop = stop
			p.pending[id] = pc
		} else {
			stop() // already answered
		}
		p.mu.Unlock()
	}
	return id, nil
}

// sendCtx sends m, translating a closed connection into CodeUnavailable.
func (p *Peer) sendCtx(ctx context.Context, m *message) error {
	data := p.wire.encode(m)
	err := p.conn.Send(ctx, transport.Message{Type: p.wire.msgType, Data: data, Recycle: bufpool.Recycler{}})
	if err == nil {
		return nil
	}
	bufpool.Put(data)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &Error{Code: CodeUnavailable, Message: "connection closed; the request was not sent: " + err.Error()}
}

// takePending removes the pending call id and returns it; ok is false when
// it was no longer pending (answered, abandoned, or failed by ended). Whoever
// takes a call is the one who delivers its Response.
func (p *Peer) takePending(id uint64) (pc pendingCall, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc, ok = p.pending[id]
	if ok {
		delete(p.pending, id)
		p.signalOutIdleLocked()
	}
	return pc, ok
}

// abandon removes a pending call whose caller gave up and tells the other
// side to cancel it. It reports whether the call was still pending (so no
// reply will be delivered for it).
func (p *Peer) abandon(id uint64) bool {
	pc, ok := p.takePending(id)
	if !ok {
		return false
	}
	if pc.stop != nil {
		pc.stop()
	}
	// Best effort, and never blocking: the caller is giving up and must
	// return at once, even when the other side has stopped reading.
	data := p.wire.encode(&message{kind: kindCancel, id: wireID{n: id}})
	if !p.conn.TrySend(transport.Message{Type: p.wire.msgType, Data: data, Recycle: bufpool.Recycler{}}) {
		bufpool.Put(data)
	}
	return true
}

// handleBadReply fails the pending call a malformed reply was meant for (if
// its id names one); replies are never answered.
func (p *Peer) handleBadReply(m *message) {
	if m.id.raw == "" {
		if pc, ok := p.takePending(m.id.n); ok {
			if pc.stop != nil {
				pc.stop()
			}
			r := pc.response()
			r.ID = m.id.n
			r.Err = &Error{Code: CodeInternalError, Message: "invalid reply from peer: " + m.err.Message}
			p.deliver(pc.reply, r)
			return
		}
	}
	p.unknownReplies.Add(1)
}

// handleReply delivers a reply to its pending call.
func (p *Peer) handleReply(m *message) {
	if m.id.raw != "" {
		p.unknownReplies.Add(1)
		return
	}
	pc, ok := p.takePending(m.id.n)
	if !ok {
		p.unknownReplies.Add(1)
		return
	}
	if pc.stop != nil {
		pc.stop()
	}
	r := pc.response()
	r.ID = m.id.n
	switch {
	case m.kind == kindError:
		r.Err = m.err
		if m.err.Data != nil {
			p.rx.kept = true
		}
	case pc.slot != nil:
		// A blocking Call decodes the result and then recycles the buffer.
		r.Result = m.result
		r.buf, r.recycle = p.rx.donate()
	default:
		r.Result = m.result
		p.rx.kept = true
	}
	p.deliver(pc.reply, r)
}

func (p *Peer) marshal(v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case Raw:
		if err := p.checkParams(v); err != nil {
			return nil, err
		}
		return v, nil
	}
	b, err := p.codec.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("wsrpc: encode params: %w", err)
	}
	return b, nil
}

// checkParams makes sure raw params can go on a JSON-RPC connection, where
// they must be a JSON array or object.
func (p *Peer) checkParams(b []byte) error {
	if !p.wire.json || b == nil {
		return nil
	}
	if !jsonValid(b) {
		return &Error{Code: CodeInvalidParams, Message: "params are not valid JSON"}
	}
	if first := firstNonSpace(b); first == '[' || first == '{' {
		return nil
	}
	return &Error{Code: CodeInvalidParams, Message: "JSON-RPC params must be an array or an object"}
}

func (p *Peer) unmarshal(data []byte, v any) error {
	switch v := v.(type) {
	case nil:
		return nil
	case *Raw:
		if data == nil {
			*v = nil
		} else {
			*v = append((*v)[:0], data...)
		}
		return nil
	}
	if len(data) == 0 {
		return nil
	}
	if err := p.codec.Unmarshal(data, v); err != nil {
		return fmt.Errorf("wsrpc: decode result: %w", err)
	}
	return nil
}

func firstNonSpace(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return c
		}
	}
	return 0
}
