package rpc

import (
	"context"
	"errors"
	"fmt"
	"maps"
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
// the other side carries it. So does its metadata ([ContextWithMetadata]),
// with req.Metadata's entries over it.
//
// With [WithOutgoingMiddleware], the call runs through the middleware on a
// goroutine the peer owns ([Peer.Wait] waits for it); Send still returns
// once the request is queued, or with the error of a middleware that
// refused it.
//
// An error from Send means the request was not sent: [CodeUnavailable] when
// the connection is closed or the other side is shutting down (safe to retry
// elsewhere), or the ctx error. When Send returns nil for a call, exactly one
// Response arrives on Reply.
func (p *Peer) Send(ctx context.Context, req *Request) error {
	if err := p.wire.checkParams(req.Params); err != nil {
		return err
	}
	if req.Reply != nil && cap(req.Reply) == 0 {
		return errors.New("wsrpc: Request.Reply must be a buffered channel")
	}
	md := mergeMetadata(OutgoingMetadata(ctx), req.Metadata)
	if p.out != nil {
		return p.sendThroughChain(ctx, req, md)
	}
	if err := p.opts.checkMetadata(md); err != nil {
		return err
	}
	if req.Reply == nil {
		return p.notify(ctx, req.Method, req.Params, md)
	}
	id, err := p.start(ctx, req.Method, req.Params, md, req.Reply, nil, true, req.OnReply)
	req.ID = id
	return err
}

// Go is the asynchronous form of [Peer.Call]: it encodes params with the
// peer's [Codec] (a [Raw] as it is) and sends the request as [Peer.Send]
// does, then returns; the one *[Response] for the call arrives on reply
// (buffered), its Result the encoded result, which belongs to the receiver.
// It returns the request id. An error means nothing was sent and no
// Response will come.
func (p *Peer) Go(ctx context.Context, method string, params any, reply chan *Response) (uint64, error) {
	if reply == nil {
		return 0, errors.New("wsrpc: Go needs a reply channel")
	}
	raw, err := p.marshal(params)
	if err != nil {
		return 0, err
	}
	req := Request{Method: method, Params: raw, Reply: reply}
	err = p.Send(ctx, &req)
	return req.ID, err
}

// mergeMetadata is b over a, without copying when one is empty.
func mergeMetadata(a, b Metadata) Metadata {
	switch {
	case len(b) == 0:
		return a
	case len(a) == 0:
		return b
	}
	m := a.Clone()
	maps.Copy(m, b)
	return m
}

// Call calls method with params and decodes the result into result (which
// may be nil to discard it). params and result are encoded with the peer's
// [Codec]; a [Raw] params is sent as it is, and a *[Raw] result receives a
// copy of the bytes undecoded, in the Raw's own backing array when it has
// room. On a JSON-RPC connection, params that encode as null (a nil slice,
// map or pointer) are sent as no params: JSON-RPC has no null params. The
// request carries ctx's deadline and metadata
// ([ContextWithMetadata]), and goes through the outgoing middleware
// ([WithOutgoingMiddleware]). Call blocks until the reply arrives or ctx
// ends; in the latter case it returns ctx's error at once and tells the
// other side to cancel. (One exception: a request being written when ctx
// ends finishes its write first; that only takes long when the other side
// has stopped reading, and the transport's write timeout bounds it.) The
// error is an *[Error] (test it with errors.Is or [CodeOf]) or a context
// error.
func (p *Peer) Call(ctx context.Context, method string, params, result any) error {
	raw, md, err := p.prepare(ctx, params)
	if err != nil {
		return err
	}
	if p.out != nil {
		return p.callThroughChain(ctx, method, raw, md, result, false)
	}
	r, err := p.callRaw(ctx, method, raw, md, nil)
	if err != nil {
		return err
	}
	return p.decodeResult(r, result)
}

// decodeResult decodes a call's result into result and recycles the
// received message it aliases.
func (p *Peer) decodeResult(r callResult, result any) error {
	err := p.unmarshal(r.res, result)
	if r.recycle != nil {
		r.recycle.Recycle(r.buf) // decoded (or copied into a Raw): the bytes are no longer needed
	}
	return err
}

// callResult is the outcome of one call on the wire: its result, the
// received message the result aliases and how to recycle it (nil: leave it
// to the collector), and the request id.
type callResult struct {
	res     []byte
	buf     []byte
	recycle transport.Recycler
	id      uint64
}

// callRaw sends a call and waits for its reply. out, when not nil, is the
// Request of the outgoing chain: it gets the id, and its sent channel (if
// any) is told whether the request was queued, before the wait.
func (p *Peer) callRaw(ctx context.Context, method string, params []byte, md Metadata, out *Request) (callResult, error) {
	s := slotPool.Get().(*callSlot)
	var hook func(*Response)
	if out != nil {
		hook = out.OnReply
	}
	id, err := p.start(ctx, method, params, md, s.ch, s, false, hook)
	if out != nil {
		out.reached(id, err)
	}
	if err != nil {
		s.resp = Response{}
		slotPool.Put(s)
		return callResult{}, err
	}
	var r *Response
	if done := ctx.Done(); done == nil {
		r = <-s.ch // a context that never ends: a plain receive, cheaper than a select
	} else {
		select {
		case r = <-s.ch:
		case <-done:
			if p.abandon(id) {
				slotPool.Put(s) // no reply can arrive any more
			}
			return callResult{id: id}, ctx.Err()
		}
	}
	res := callResult{res: r.Result, buf: r.buf, recycle: r.recycle, id: id}
	rerr := r.Err
	*r = Response{}
	slotPool.Put(s)
	if rerr != nil {
		if ctx.Err() != nil {
			return res, ctx.Err() // the caller gave up as the reply came: report its own reason
		}
		return res, rerr
	}
	return res, nil
}

// reached records, on an outgoing chain's Request, that the innermost
// handler tried to send it, with which id and what outcome. The first
// attempt that is queued is the one Send reports (an asynchronous Send
// waiting on sent learns it at once) and the one its Response carries; a
// failed attempt reports nothing, since a middleware may try again.
func (r *Request) reached(id uint64, err error) {
	r.ID = id
	if err != nil || r.sentOK {
		return
	}
	r.sentOK, r.sentID = true, id
	if r.sent != nil {
		r.sent <- id // capacity 1, and sent only once
	}
}

// outgoingRequest is the Request outgoing middleware sees. Metadata is a
// copy, so that a middleware may add to it.
func (p *Peer) outgoingRequest(method string, params []byte, md Metadata, notify bool) *Request {
	return &Request{Method: method, Params: params, Metadata: md.Clone(), peer: p, outgoing: true, notification: notify}
}

// callThroughChain makes a call or notification through the outgoing
// middleware, and decodes the result.
func (p *Peer) callThroughChain(ctx context.Context, method string, params []byte, md Metadata, result any, notify bool) error {
	req := p.outgoingRequest(method, params, md, notify)
	res, err := p.out.ServeRPC(ctx, req)
	if err == nil && !notify {
		err = p.unmarshal(res, result)
	}
	if req.recycle != nil {
		req.recycle.Recycle(req.buf)
	}
	return err
}

// errNotSentByMiddleware is Send's error when the outgoing chain returned
// without error and without sending the request.
var errNotSentByMiddleware = errors.New("wsrpc: an outgoing middleware returned without sending the request")

// sendThroughChain is Send with outgoing middleware: the chain runs on a
// goroutine of the peer's, and Send waits until the request is queued, or
// the chain has returned without sending it.
func (p *Peer) sendThroughChain(ctx context.Context, req *Request, md Metadata) error {
	r := p.outgoingRequest(req.Method, req.Params, md, req.Reply == nil)
	id, err := p.runChainAsync(ctx, r, req.Reply) // the caller may reuse req once Send has returned
	if err == nil {
		req.ID = id
	}
	return err
}

// runChainAsync runs the outgoing chain for r on a goroutine of the
// peer's and waits until the innermost handler has queued the request
// (returning its id), or the chain has returned without queueing it. The
// chain's outcome is then delivered on reply (unless r is a
// notification).
func (p *Peer) runChainAsync(ctx context.Context, r *Request, reply chan *Response) (uint64, error) {
	r.sent = make(chan uint64, 1)
	done := make(chan error, 1)
	p.mu.Lock()
	if err := p.refusalLocked(); err != nil {
		p.mu.Unlock()
		return 0, err
	}
	p.sends.Add(1) // under mu, before the connection's end: Wait comes after it
	p.mu.Unlock()
	go func() {
		defer p.sends.Done()
		res, err := p.out.ServeRPC(ctx, r)
		done <- err
		if r.notification || !r.sentOK {
			return
		}
		// The result belongs to the receiver of the Response: it is not
		// recycled.
		p.deliver(reply, &Response{ID: r.sentID, Result: res, Err: err})
	}()
	select {
	case id := <-r.sent:
		return id, nil
	case err := <-done:
		select {
		case id := <-r.sent: // sent, and answered before Send looked
			return id, nil
		default:
		}
		if err == nil {
			err = errNotSentByMiddleware
		}
		return 0, err // no attempt was queued: nothing was sent
	}
}

// roundTrip is the innermost handler of the outgoing chain: it sends the
// request (a middleware may have changed its params and metadata, so they
// are checked again) and waits for its reply.
func (p *Peer) roundTrip(ctx context.Context, req *Request) ([]byte, error) {
	err := p.wire.checkParams(req.Params)
	if err == nil {
		err = p.opts.checkMetadata(req.Metadata)
	}
	if err != nil {
		req.reached(0, err)
		return nil, err
	}
	if req.notification {
		err := p.notify(ctx, req.Method, req.Params, req.Metadata)
		req.reached(0, err)
		return nil, err
	}
	if req.opening != nil {
		return p.streamRoundTrip(ctx, req)
	}
	r, err := p.callRaw(ctx, req.Method, req.Params, req.Metadata, req)
	// A middleware that calls next again may still hold the first result:
	// its buffer is left to the collector, and only the last is recycled.
	req.buf, req.recycle = r.buf, r.recycle
	if req.sent != nil {
		req.recycle = nil // an asynchronous Send hands the result over
	}
	return r.res, err
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
// Like a call, it carries ctx's metadata and goes through the outgoing
// middleware. On a JSON-RPC connection, params that do not encode as an
// array or an object are refused with [CodeInvalidParams] (the receiver
// could only drop them: a notification gets no error reply).
func (p *Peer) Notify(ctx context.Context, method string, params any) error {
	raw, md, err := p.prepare(ctx, params)
	if err != nil {
		return err
	}
	if p.out != nil {
		return p.callThroughChain(ctx, method, raw, md, nil, true)
	}
	return p.notify(ctx, method, raw, md)
}

// prepare encodes an outgoing call's params and takes its metadata from
// ctx, held to the metadata bound here unless the outgoing chain's
// innermost handler will check it (a middleware may add to it).
func (p *Peer) prepare(ctx context.Context, params any) ([]byte, Metadata, error) {
	raw, err := p.marshal(params)
	if err != nil {
		return nil, nil, err
	}
	md := OutgoingMetadata(ctx)
	if p.out == nil && md != nil {
		if err := p.opts.checkMetadata(md); err != nil {
			return nil, nil, err
		}
	}
	return raw, md, nil
}

func (p *Peer) notify(ctx context.Context, method string, params []byte, md Metadata) error {
	if err := p.checkParams(params); err != nil {
		return err // as a call's: a JSON-RPC receiver would drop it unanswered
	}
	p.mu.Lock()
	refused := p.refusalLocked()
	p.mu.Unlock()
	if refused != nil {
		return refused
	}
	m := message{kind: kindNotification, method: method, params: params, meta: md}
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
func (p *Peer) start(ctx context.Context, method string, params []byte, md Metadata, reply chan *Response, slot *callSlot, watch bool, hook func(*Response)) (uint64, error) {
	return p.startCall(ctx, message{kind: kindRequest, method: method, params: params, meta: md}, reply, slot, watch, hook, nil)
}

// startCall is start for the request m (its kind, method, params, metadata
// and stream credit set), with stream the caller's side of a stream it
// opens, or nil.
func (p *Peer) startCall(ctx context.Context, m message, reply chan *Response, slot *callSlot, watch bool, hook func(*Response), stream *Stream) (uint64, error) {
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
	p.pending[id] = pendingCall{reply: reply, slot: slot, hook: hook, stream: stream}
	if hook != nil && !p.replyHooks.Load() {
		p.replyHooks.Store(true) // see receiveNow
	}
	p.mu.Unlock()

	m.id, m.timeout = wireID{n: id}, timeout
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
	data := p.wire.encode(*m)
	err := p.conn.Send(ctx, transport.Message{Type: p.wire.messageType(), Data: data, Recycle: bufpool.Recycler{}})
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
	data := p.wire.encode(message{kind: kindCancel, id: wireID{n: id}})
	if !p.conn.TrySend(transport.Message{Type: p.wire.messageType(), Data: data, Recycle: bufpool.Recycler{}}) {
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
	if pc.hook != nil {
		pc.hook(r)
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
	if _, ok := p.wire.(jsonWire); ok && string(b) == "null" {
		// A nil slice, map or pointer: JSON-RPC has no null params, and
		// omitted params mean the same to a Go handler (the zero value).
		return nil, nil
	}
	return b, nil
}

// checkParams says whether raw params can go on this connection (on
// JSON-RPC they must be a JSON array or object).
func (p *Peer) checkParams(b []byte) error { return p.wire.checkParams(b) }

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
