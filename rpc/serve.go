package rpc

import (
	"bytes"
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/wsrpc/wsrpc/internal/logtext"
	"github.com/wsrpc/wsrpc/transport"
)

// inCall is one incoming call being handled.
type inCall struct {
	req      Request
	ctx      callCtx
	batch    *batchReply
	canceled bool // the caller sent a cancel: its reply is not wanted (guarded by inMu)
	cost     int  // what it counts against the backlog's bytes while it waits

	// The received message Params aliases, recycled once the reply is out;
	// nil when the bytes are left to the collector.
	buf     []byte
	recycle transport.Recycler
}

// dispatch handles one decoded message on the reader goroutine. b is the
// batch it came in, or nil.
func (p *Peer) dispatch(m *message, b *batchReply) {
	switch m.kind {
	case kindRequest, kindNotification:
		p.handleCall(m, b)
	case kindResult, kindError:
		p.handleReply(m)
	case kindStreamItem:
		p.handleStreamItem(m)
	case kindStreamCredit:
		p.handleCredit(m)
	case kindCancel:
		p.inMu.Lock()
		c, ok := p.incoming[m.id]
		if ok {
			c.canceled = true
		}
		p.inMu.Unlock()
		if ok {
			c.ctx.cancel(context.Canceled)
		}
	case kindShutdown:
		p.mu.Lock()
		if !p.remoteDrain {
			p.remoteDrain = true
			p.refusing.Store(true)
			p.retryAfter = m.retryAfter
			close(p.goingAway)
		}
		p.mu.Unlock()
	case kindIgnored:
		// A kind from the range a receiver ignores (docs/PROTOCOL.md,
		// extensions): a later revision's hint this runtime does not know.
	case kindInvalid:
		if m.response {
			p.handleBadReply(m)
			return
		}
		if m.unanswerable {
			p.droppedNotifications.Add(1)
			p.warn("wsrpc: invalid notification dropped", "err", logtext.Clip(m.err.Message))
			return
		}
		p.reply(b, &message{kind: kindError, id: m.id, err: m.err})
	}
}

// backlogCost is what a waiting call counts against the backlog's byte
// bound: the bytes it holds on to. A call alone in its message holds the
// whole received buffer (its params alias it); a call from a batch waits
// with a copy of its params (see handleCall), so that it does not hold the
// batch's buffer. Either holds its metadata, decoded into strings.
func (p *Peer) backlogCost(m *message) int {
	n := len(m.id.raw) + 64
	for k, v := range m.meta { // decoded into strings of their own
		n += len(k) + len(v) + 16
	}
	if p.rx.shared {
		return n + len(m.method) + len(m.params)
	}
	return n + len(p.rx.m.Data)
}

// handleCall admits an incoming call and starts its handler, or puts it in
// the backlog when MaxInFlight calls are being handled, or refuses it at once
// when the backlog is full too.
func (p *Peer) handleCall(m *message, b *batchReply) {
	isReq := m.kind == kindRequest
	if !isReq && p.opts.inline != nil {
		if fn := p.opts.inline[m.method]; fn != nil {
			p.serveInline(fn, m)
			return
		}
	}
	p.inMu.Lock()
	var refuse *Error
	wait := false
	switch {
	case p.draining:
		refuse = &Error{Code: CodeUnavailable, Message: "shutting down; the request was not started"}
	case isReq && p.incoming[m.id] != nil:
		refuse = &Error{Code: CodeInvalidRequest, Message: "duplicate request id: a request with this id is still in flight"}
	case p.inFlight < p.opts.maxInFlight:
	case len(p.backlog) < p.opts.backlog && p.backlogSize+p.backlogCost(m) <= p.opts.backlogSize:
		wait = true
	default:
		refuse = &Error{Code: CodeBusy, Message: fmt.Sprintf("too many calls in flight (limit %d, and %d waiting); the request was not started", p.opts.maxInFlight, len(p.backlog))}
	}
	if refuse != nil {
		p.inMu.Unlock()
		if isReq {
			p.reply(b, &message{kind: kindError, id: m.id, err: refuse})
		} else {
			p.droppedNotifications.Add(1)
		}
		return
	}
	c := &inCall{batch: b}
	c.req = Request{Method: m.method, Params: m.params, Metadata: m.meta, peer: p, wid: m.id, notification: !isReq}
	if isReq && m.credit > 0 {
		c.req.stream = newStreamWriter(&c.req, m.credit)
	}
	if wait && p.rx.shared && m.params != nil {
		c.req.Params = bytes.Clone(m.params)
	} else if m.params != nil {
		if p.opts.ownedParams {
			p.rx.kept = true
		} else {
			c.buf, c.recycle = p.rx.donate()
		}
	}
	c.ctx.parent = p.baseCtx
	c.ctx.req = &c.req
	c.ctx.start(m.timeout)
	p.active[c] = struct{}{}
	if isReq {
		p.incoming[m.id] = c
		if b != nil {
			b.expect()
		}
	}
	if wait {
		c.cost = p.backlogCost(m)
		p.backlog = append(p.backlog, c)
		p.backlogSize += c.cost
	} else {
		p.inFlight++
		p.handlers.Add(1)
	}
	p.inMu.Unlock()
	if p.baseCtx.Err() != nil {
		c.ctx.cancel(context.Canceled) // admitted as the base context ended
	}
	if wait {
		return // a handler that returns starts it (see serve)
	}
	select {
	case p.work <- c:
	default:
		p.workers.Add(1)
		go p.worker(c)
	}
}

// serveInline runs a [WithInline] func for a notification, on the reader
// goroutine; a panic in it is recovered and logged like a handler's.
func (p *Peer) serveInline(fn func(*Request), m *message) {
	req := Request{Method: m.method, Params: m.params, Metadata: m.meta, peer: p, notification: true}
	if p.opts.ownedParams && m.params != nil {
		p.rx.kept = true // Params stays valid, as WithOwnedParams promises
	}
	defer func() {
		if v := recover(); v != nil {
			if ok, suppressed := p.panics.Allow(time.Now()); ok && p.logger != nil {
				p.logger.Error("wsrpc: inline notification func panicked", p.logArgs([]any{"method", logtext.Clip(m.method), "panic", panicText(v),
					"stack", string(debug.Stack()), "suppressed", suppressed})...)
			}
		}
	}()
	fn(&req)
}

// dropBacklog takes every call waiting in the backlog out: they will never
// start. With reply (a drain deadline, the connection still up) each request
// is answered with unavailable, which says it was not started; without (the
// connection is gone) nothing is sent.
func (p *Peer) dropBacklog(reply bool) {
	p.inMu.Lock()
	calls := p.backlog
	p.backlog, p.backlogSize = nil, 0
	canceled := make([]bool, len(calls))
	for i, c := range calls {
		delete(p.active, c)
		if !c.req.notification {
			delete(p.incoming, c.req.wid)
		}
		canceled[i] = c.canceled
	}
	p.inMu.Unlock()
	for i, c := range calls {
		c.ctx.cancel(context.Canceled)
		if c.recycle != nil {
			c.recycle.Recycle(c.buf)
		}
		switch {
		case c.req.notification:
		case reply && !canceled[i]:
			p.replyLater(c.batch, &message{kind: kindError, id: c.req.wid,
				err: &Error{Code: CodeUnavailable, Message: "shutting down; the request was not started"}})
		default:
			c.batch.skip()
		}
	}
}

// workerIdle is how long a handler goroutine waits for another call before
// it exits. (A variable for tests; each peer copies it when it is made.)
var workerIdle = time.Second

// worker serves c, then the calls handed to it while it waits idle, and
// exits when it has had none for workerIdle (see below) or once the
// connection has ended.
// Reusing goroutines saves starting one per call and, above all, growing its
// stack again each time: a handler that encodes a reply needs more than a
// new goroutine's stack.
//
// The idle timer is not reset for every call (a timer operation each, on a
// busy connection): it keeps running, and when it fires the worker exits
// only if it served nothing since it last fired: an idle worker goes after
// between workerIdle and twice that.
func (p *Peer) worker(c *inCall) {
	defer p.workers.Done()
	idle := time.NewTimer(p.workerIdle)
	defer idle.Stop()
	served := false // since the timer was last reset
	for {
		for c != nil {
			c = p.serve(c) // then the oldest call of the backlog, if serve started one
			served = true
		}
		select {
		case c = <-p.work:
		case <-idle.C:
			if !served {
				return
			}
			served = false
			idle.Reset(p.workerIdle)
		case <-p.loopDone:
			return
		}
	}
}

// serve handles c and sends its reply. When it frees a handler's place
// while calls wait in the backlog, it admits the oldest and returns it, for
// the calling worker to serve next.
func (p *Peer) serve(c *inCall) (next *inCall) {
	defer p.handlers.Done()
	if c.recycle != nil {
		// Last, once the reply (which may alias Params) has been encoded.
		defer c.recycle.Recycle(c.buf)
	}
	// A request whose connection is already closing is not started: its
	// reply could not be sent (a peer closed for not reading would otherwise
	// have every call it queued still computed and encoded). A notification
	// still runs: its sender may well close right after sending it.
	skip := !c.req.notification && p.conn.State() != transport.StateOpen
	if c.cost > 0 && !skip { // it waited in the backlog: was it cancelled meanwhile?
		p.inMu.Lock()
		skip = c.canceled
		p.inMu.Unlock()
	}
	var result []byte
	var err error
	if !skip {
		result, err = p.callHandler(c)
	}
	if c.req.stream != nil {
		c.req.stream.end()
	}
	c.ctx.cancel(context.Canceled)
	p.inMu.Lock()
	if !c.req.notification {
		delete(p.incoming, c.req.wid) // the id may be reused once the reply is out
	}
	delete(p.active, c)
	canceled := c.canceled
	p.inMu.Unlock()
	sent := false // the reply went out (for OnReplied)
	hook := c.req.onReplied
	if hook != nil {
		if c.batch == nil || c.req.notification {
			defer func() { hook(sent) }() // runs last, once the reply below is queued
		}
		// In a batch, replyCall or skipCall hands it to the batch with the
		// reply (or its absence), in one step: it runs once the whole
		// batch's reply is out, whoever sends it.
	}
	// The call counts as in flight until its reply is queued, so that a drain
	// that sees nothing in flight knows every reply is ahead of the close.
	defer func() {
		p.inMu.Lock()
		p.inFlight--
		if len(p.backlog) > 0 && p.inFlight < p.opts.maxInFlight {
			next = p.backlog[0]
			p.backlog[0] = nil
			p.backlog = p.backlog[1:]
			if len(p.backlog) == 0 {
				p.backlog = nil // let the array go
			}
			p.backlogSize -= next.cost
			p.inFlight++
			p.handlers.Add(1)
		}
		p.signalInIdleLocked()
		p.inMu.Unlock()
	}()
	switch {
	case c.req.notification:
		return
	case canceled || skip:
		c.batch.skipCall(c) // the caller gave up and dropped its pending entry
		return
	case err != nil:
		e := handlerError(err)
		if e.Code == CodeUnavailable && c.req.stream != nil && c.req.stream.Sent() > 0 {
			// Results went out: the call was started, whatever the handler
			// says; the caller must not retry it as unstarted.
			e = &Error{Code: CodeInternalError, Message: e.Message, Data: e.Data}
		}
		sent = p.replyCall(c, &message{kind: kindError, id: c.req.wid, err: p.wire.errorData(e)})
	default:
		result, bad := p.wire.result(result)
		if bad != nil {
			sent = p.replyCall(c, &message{kind: kindError, id: c.req.wid, err: bad})
			return
		}
		sent = p.replyCall(c, &message{kind: kindResult, id: c.req.wid, result: result})
	}
	return
}

// handlerError is the error sent for a handler's error. The codes that
// promise the request was never started (unavailable) or that belong to the
// caller's side (connection lost) are the runtime's to give: a handler passing
// one on from a call it made itself may have done work, so it is sent as an
// internal error and the caller never retries it as unstarted. A refusal made
// with [NotStarted] keeps its code.
func handlerError(err error) *Error {
	e := toError(err)
	if e.Code == CodeConnectionLost || e.Code == CodeUnavailable && !e.notStarted {
		return &Error{Code: CodeInternalError, Message: e.Message, Data: e.Data}
	}
	return e
}

// callHandler runs the handler, turning a panic into an internal error.
func (p *Peer) callHandler(c *inCall) (result []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			if ok, suppressed := p.panics.Allow(time.Now()); ok && p.logger != nil {
				p.logger.Error("wsrpc: handler panicked", p.logArgs([]any{"method", logtext.Clip(c.req.Method), "panic", panicText(v),
					"stack", string(debug.Stack()), "suppressed", suppressed})...)
			}
			result, err = nil, &Error{Code: CodeInternalError, Message: "internal error: handler panicked"}
		}
	}()
	return p.opts.handler.ServeRPC(&c.ctx, &c.req)
}

// reply sends a reply decided while dispatching (a refusal, an invalid
// request), or adds it to its batch.
func (p *Peer) reply(b *batchReply, m *message) {
	if b != nil {
		b.add(m, nil)
		return
	}
	p.send(m)
}

// replyLater sends a handler's reply, or adds it to its batch as one of the
// replies the batch expects.
// It reports whether the reply was sent; one added to a batch counts as
// sent, and its batch's OnReplied funcs learn whether the batch was.
func (p *Peer) replyLater(b *batchReply, m *message) bool {
	if b != nil {
		b.add(m, nil)
		b.done()
		return true
	}
	return p.send(m)
}

// replyCall is replyLater for a handler's call: in a batch, its OnReplied
// func (if any) goes in with the reply, in the same step, so that it runs
// after the batch's reply is sent, whoever sends it.
func (p *Peer) replyCall(c *inCall, m *message) bool {
	if c.batch != nil {
		c.batch.add(m, c.req.onReplied)
		c.batch.done()
		return true
	}
	return p.send(m)
}

// batchReply gathers the replies to one batch (JSON-RPC's) and sends them
// as one message once every request in it has been answered. A batch of
// notifications only gets no reply at all, as JSON-RPC says.
type batchReply struct {
	p         *Peer
	mu        sync.Mutex
	remaining int // replies still expected, plus one until dispatching ends
	buf       []byte
	hooks     []batchHook // Request.OnReplied funcs, run once the batch's reply is out
}

type batchHook struct {
	f    func(sent bool)
	sent bool // its own reply is in the batch
}

func newBatchReply(p *Peer) *batchReply {
	return &batchReply{p: p, remaining: 1}
}

// add appends one reply to the array, with the OnReplied func of its call
// (nil: none).
func (b *batchReply) add(m *message, hook func(bool)) {
	b.mu.Lock()
	b.buf = b.p.wire.appendToBatch(b.buf, *m)
	if hook != nil {
		b.hooks = append(b.hooks, batchHook{hook, true})
	}
	b.mu.Unlock()
}

// skipCall records that c's expected reply will not come; its OnReplied
// func, if any, learns it once the batch is done.
func (b *batchReply) skipCall(c *inCall) {
	if b == nil {
		return
	}
	if f := c.req.onReplied; f != nil {
		b.mu.Lock()
		b.hooks = append(b.hooks, batchHook{f, false})
		b.mu.Unlock()
	}
	b.done()
}

// expect records that one more reply will come (a request was admitted).
func (b *batchReply) expect() {
	b.mu.Lock()
	b.remaining++
	b.mu.Unlock()
}

// skip records that an expected reply will not come.
func (b *batchReply) skip() {
	if b != nil {
		b.done()
	}
}

// dispatched marks the end of dispatching: from now on the last reply sends.
func (b *batchReply) dispatched() {
	if b != nil {
		b.done()
	}
}

func (b *batchReply) done() {
	b.mu.Lock()
	b.remaining--
	last := b.remaining == 0
	buf := b.buf
	var hooks []batchHook
	if last {
		hooks, b.hooks = b.hooks, nil
	}
	b.mu.Unlock()
	sent := false
	if last && len(buf) > 0 {
		sent = b.p.sendRaw(b.p.wire.closeBatch(buf))
	}
	for _, h := range hooks {
		h.f(h.sent && sent)
	}
}
