package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsrpc/wsrpc/internal/bufpool"
	"github.com/wsrpc/wsrpc/internal/logtext"
	"github.com/wsrpc/wsrpc/transport"
)

// Peer is one end of an RPC connection, the same type on both sides: it
// sends calls and notifications to the other side and serves the calls the
// other side makes with its [Handler]. See the package documentation for the
// goroutines it owns.
type Peer struct {
	conn   *transport.Conn
	wire   wireCodec
	codec  Codec
	opts   *Config
	logger *slog.Logger
	limits decodeLimits
	out    Handler // the outgoing chain (WithOutgoingMiddleware); nil without one

	// Identity (identity.go).
	id          string
	remoteAddr  net.Addr
	session     Session
	connectedAt time.Time

	// Outgoing calls: pending replies by id.
	nextID      atomic.Uint64
	mu          sync.Mutex
	pending     map[uint64]pendingCall
	connEnded   bool // no new outgoing calls: the connection is gone
	remoteDrain bool // the other side sent a shutdown notice
	// refusing is set (under mu) once connEnded or remoteDrain is: a
	// fan-out's Offer checks it without taking mu.
	refusing     atomic.Bool
	goingAway    chan struct{} // closed on the shutdown notice
	retryAfter   time.Duration
	outIdle      chan struct{} // closed when draining and no outgoing call is pending
	outIdleArmed bool

	// Goroutines running an asynchronous Send through the outgoing chain.
	sends sync.WaitGroup

	// Incoming calls.
	inMu        sync.Mutex
	incoming    map[wireID]*inCall   // requests in flight, by wire id
	active      map[*inCall]struct{} // every call being handled, notifications included
	inFlight    int                  // requests and notifications being handled
	backlog     []*inCall            // admitted beyond maxInFlight, waiting for a handler, oldest first
	backlogSize int                  // their bytes, as WithBacklog counts them
	draining    bool                 // refuse new incoming calls
	inIdle      chan struct{}        // closed when draining and nothing is in flight
	inIdleArmed bool
	handlers    sync.WaitGroup // one per call being handled
	work        chan *inCall   // to an idle worker; see handleCall
	workerIdle  time.Duration
	loopIdle    time.Duration  // see loop
	workers     sync.WaitGroup // the worker goroutines
	baseCtx     context.Context
	cancelBase  context.CancelCauseFunc
	// stopBaseWatch stops (or waits for) the watcher of the context given
	// to WithBaseContext; nil when that context cannot end.
	stopBaseWatch func()

	// The reader's state (see receive); only the reader uses it.
	rx        rxMessage
	msgs      []message
	in        interner
	broken    bool         // a protocol violation was seen: close, read no more
	violation closeRequest // what to close with

	loopDone chan struct{}
	closing  sync.Once
	endErr   error // why the connection ended; set before loopDone closes

	warnings logtext.Limiter // see AllowWarning
	panics   logtext.Limiter // handler panics: limited apart, so warnings cannot hide them

	unknownReplies       atomic.Uint64
	droppedNotifications atomic.Uint64
	droppedReplies       atomic.Uint64

	// replyHooks: a call with an OnReply func was made on this peer, so
	// that receiveNow looks for replies that would run one.
	replyHooks atomic.Bool
}

type pendingCall struct {
	reply chan *Response
	slot  *callSlot       // set for a blocking Call: the Response to fill
	stop  func() bool     // stops the ctx watcher of an asynchronous call
	hook  func(*Response) // Request.OnReply
	// stream is the caller's side of a stream the call opened: results
	// arriving before the reply go to it.
	stream *Stream
}

// New starts a peer on conn, choosing the wire codec from the negotiated
// subprotocol ([SubprotocolBinary], [SubprotocolJSON] or none for JSON). The
// peer owns conn from now on: close the peer, not the conn. Invalid options
// are an error, and so are those only client.Dial and server.New take.
func New(conn *transport.Conn, opts ...Option) (*Peer, error) {
	c := &Config{}
	if err := c.apply(opts, scopePeer, "rpc.New"); err != nil {
		return nil, err
	}
	return newPeer(conn, c)
}

func newPeer(conn *transport.Conn, o *Config) (*Peer, error) {
	w, err := wireFor(conn.Subprotocol())
	if err != nil {
		return nil, err
	}
	if o.backlog < 0 {
		o.backlog = 0
	}
	if o.codec == nil || w.jsonValues() {
		o.codec = JSON
	}
	if o.handler == nil {
		o.handler = HandlerFunc(func(_ context.Context, req *Request) ([]byte, error) {
			return nil, Errorf(CodeMethodNotFound, "method %q not found", req.Method)
		})
	}
	base := o.baseCtx
	if base == nil {
		base = context.Background()
	}
	p := &Peer{
		conn:        conn,
		wire:        w,
		codec:       o.codec,
		opts:        o,
		logger:      o.logger,
		limits:      decodeLimits{maxBatch: o.maxBatch, meta: metaLimits{entries: o.maxMeta, bytes: o.maxMetaBytes}},
		id:          newConnID(),
		remoteAddr:  o.remoteAddr,
		connectedAt: time.Now(),
		pending:     make(map[uint64]pendingCall),
		goingAway:   make(chan struct{}),
		incoming:    make(map[wireID]*inCall),
		active:      make(map[*inCall]struct{}),
		work:        make(chan *inCall),
		workerIdle:  workerIdle,
		loopIdle:    loopIdle,
		loopDone:    make(chan struct{}),
	}
	if p.remoteAddr == nil {
		p.remoteAddr = conn.RemoteAddr()
	}
	p.session.SetPrincipal(o.principal)
	if len(o.outgoing) > 0 {
		p.out = chain(o.outgoing, HandlerFunc(p.roundTrip))
	}
	p.baseCtx, p.cancelBase = context.WithCancelCause(base)
	if base.Done() != nil {
		watched := make(chan struct{})
		stop := context.AfterFunc(base, func() {
			defer close(watched)
			p.stopHandlers(context.Cause(base))
		})
		p.stopBaseWatch = func() {
			if !stop() {
				<-watched // it ran or is running: wait for it
			}
		}
	}
	p.conn.SetReceiver(p.receiveNow)
	go p.loop()
	return p, nil
}

// Conn returns the underlying connection, for its transport-level state
// (State, LocalAddr, QueuedBytes, Ping). The connection's identity (ID,
// RemoteAddr, Header, Subprotocol, Session) is on the Peer. Do not Send on
// it or close it directly.
func (p *Peer) Conn() *transport.Conn { return p.conn }

// Codec returns the value codec in use on this connection.
func (p *Peer) Codec() Codec { return p.codec }

// Done is closed when the connection has ended and the peer has failed every
// pending call.
func (p *Peer) Done() <-chan struct{} { return p.loopDone }

// Err returns nil while the connection is up, and then why it ended.
func (p *Peer) Err() error {
	select {
	case <-p.loopDone:
		return p.endErr
	default:
		return nil
	}
}

// GoingAway is closed when the other side announces that it is shutting
// down. Calls made after that fail at once with [CodeUnavailable] (they were
// not sent) so they can be retried elsewhere; calls in flight still complete.
func (p *Peer) GoingAway() <-chan struct{} { return p.goingAway }

// RetryAfter returns the reconnect delay the other side suggested in its
// shutdown notice (0 if none).
func (p *Peer) RetryAfter() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.retryAfter
}

// AllowWarning reports whether a warning or error record about this
// connection (a failed call, a protocol problem) may be logged now: each
// connection gets a burst of 10 and then one a second, so that a peer that
// sends bad input as fast as it can does not flood the logs. suppressed is
// the number of records refused since the last one allowed, for that record
// to mention. The peer's own records go through it, and so do those of
// handler.Logging.
func (p *Peer) AllowWarning() (ok bool, suppressed int) { return p.warnings.Allow(time.Now()) }

// warn logs a warning about this connection, within AllowWarning's limit;
// strings from the peer in args must have been clipped.
func (p *Peer) warn(msg string, args ...any) {
	if p.logger == nil {
		return
	}
	ok, suppressed := p.AllowWarning()
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	p.logger.Warn(msg, p.logArgs(args)...)
}

// Stats are counters of what the peer dropped.
type Stats struct {
	UnknownReplies       uint64 // replies whose id matched no pending call (late replies included)
	DroppedNotifications uint64 // incoming notifications dropped: MaxInFlight reached, or draining
	DroppedReplies       uint64 // replies dropped because their Reply channel was full
	PendingCalls         int    // outgoing calls waiting for a reply
	InFlight             int    // incoming calls being handled or waiting in the backlog
	Backlog              int    // incoming calls waiting in the backlog for a handler
}

// Stats returns the peer's counters.
func (p *Peer) Stats() Stats {
	p.mu.Lock()
	pending := len(p.pending)
	p.mu.Unlock()
	p.inMu.Lock()
	inFlight, backlog := p.inFlight+len(p.backlog), len(p.backlog)
	p.inMu.Unlock()
	return Stats{
		UnknownReplies:       p.unknownReplies.Load(),
		DroppedNotifications: p.droppedNotifications.Load(),
		DroppedReplies:       p.droppedReplies.Load(),
		PendingCalls:         pending,
		InFlight:             inFlight,
		Backlog:              backlog,
	}
}

// Close closes the connection with 1000 (normal closure) and waits until the
// peer's reader has stopped: pending calls have failed with
// [CodeConnectionLost] and the handlers still running have had their
// contexts cancelled. It does not wait for those handlers, so that a handler
// may close its own connection; [Peer.Wait] does. Close is idempotent.
func (p *Peer) Close() error { return p.CloseWith(transport.StatusNormalClosure, "") }

// CloseWith is Close with a chosen close code and reason.
func (p *Peer) CloseWith(code transport.StatusCode, reason string) error {
	var err error
	p.closing.Do(func() { err = p.conn.Close(code, reason) })
	<-p.loopDone
	return err
}

// CloseNow drops the connection without a closing handshake, cancels every
// handler and waits for the reader, like Close.
func (p *Peer) CloseNow() error {
	p.conn.CloseNow() // first, so that cancelled handlers' replies go nowhere
	p.stopHandlers(errConnClosed)
	<-p.loopDone
	return nil
}

// Wait waits until the connection has ended and every handler has returned.
// Whoever owns the peer calls it after closing (never from a handler of this
// peer, which would wait for itself).
func (p *Peer) Wait() {
	<-p.loopDone
	p.handlers.Wait()
	p.workers.Wait()
	p.sends.Wait()
}

var errConnClosed = errors.New("wsrpc: connection closed")

// stopHandlers cancels the base context and the context of every call being
// handled: the connection ended, a drain deadline passed, CloseNow was
// called, or the context given to WithBaseContext ended.
func (p *Peer) stopHandlers(cause error) {
	p.cancelBase(cause)
	p.inMu.Lock()
	calls := make([]*inCall, 0, len(p.active))
	for c := range p.active {
		calls = append(calls, c)
	}
	p.inMu.Unlock()
	for _, c := range calls {
		c.ctx.cancel(context.Canceled)
	}
}

// receive decodes one message and dispatches it, on the peer's reader
// goroutine (loop), so the reader state (rx, msgs, in) needs no lock.
func (p *Peer) receive(m transport.Message) {
	if p.broken {
		if m.Recycle != nil {
			m.Recycle.Recycle(m.Data)
		}
		return // the protocol was broken: the connection is being closed
	}
	if m.Type != p.wire.messageType() {
		p.protocolError(transport.StatusUnsupportedData, fmt.Sprintf("%s message on a %s connection", typeName(m.Type), p.wire.name()))
		return
	}
	msgs, batch, err := p.decode(m)
	if err != nil {
		if m.Recycle != nil {
			m.Recycle.Recycle(m.Data)
		}
		if e, ok := err.(*Error); ok {
			p.send(&message{kind: kindError, id: nullID, err: e})
			return
		}
		p.protocolError(transport.StatusProtocolError, err.Error())
		return
	}
	p.dispatchAll(m, msgs, batch)
}

// decode decodes m into the reader's scratch array.
func (p *Peer) decode(m transport.Message) ([]message, bool, error) {
	msgs, batch, err := p.wire.decode(m.Data, p.msgs[:0], &p.in, p.limits)
	if cap(msgs) <= 2*transport.MaxPack {
		p.msgs = msgs // kept for the next message
	} else {
		p.msgs = nil // a large batch's array is not kept for the connection's life
	}
	return msgs, batch, err
}

// dispatchAll dispatches the messages decoded from m, in order.
func (p *Peer) dispatchAll(m transport.Message, msgs []message, batch bool) {
	var b *batchReply
	if batch {
		b = newBatchReply(p)
	}
	p.rx = rxMessage{m: m, shared: batch}
	for i := range msgs {
		p.dispatch(&msgs[i], b)
	}
	b.dispatched()
	clear(msgs) // drop references to this message's bytes
	p.rx.release()
}

// loop is the peer's reader: it decodes every message and dispatches it,
// and closes the connection when the other side breaks the protocol. (The
// reader is a goroutine of its own rather than the transport's: while it
// dispatches, the transport reads the next message, which a busy
// connection's calls need. A message that comes alone is dispatched on the
// transport's reader instead: see receiveNow.)
//
// The reader lets its goroutine go after loopIdle without a message, and
// the transport starts another with the next one (transport.Conn.NotifyRecv),
// so an idle connection keeps only the transport's reader.
func (p *Peer) loop() {
	recv := p.conn.Recv()
	// The idle timer is not reset for every message (a timer operation
	// each, on a busy connection): once armed it keeps running, and when it
	// fires the reader goes only if no message came since it last fired, so
	// an idle reader goes after between loopIdle and twice that.
	var idle *time.Timer
	defer func() {
		if idle != nil {
			idle.Stop()
		}
	}()
	got := false // a message, since the timer last fired
	for {
		var m transport.Message
		var ok bool
		select {
		case m, ok = <-recv:
		default: // about to wait
			if idle == nil {
				idle = time.NewTimer(p.loopIdle)
				got = false
			}
			select {
			case m, ok = <-recv:
			case <-idle.C:
				if got {
					got = false
					idle.Reset(p.loopIdle)
					continue
				}
				if p.conn.NotifyRecv(p.restartLoop) {
					return // the next message starts a reader again
				}
				idle.Reset(p.loopIdle)
				continue
			}
		}
		if !ok {
			break
		}
		got = true
		p.receive(m)
		p.conn.Handled()
		if p.broken {
			p.closing.Do(func() { p.conn.Close(p.violation.code, p.violation.reason) })
			break
		}
	}
	p.ended()
}

// receiveNow is the transport's receiver (transport.Conn.SetReceiver): it
// dispatches m on the transport's reader goroutine when nothing waits for
// the peer's own reader, which saves a hand-off between goroutines for
// every message on a connection with one call at a time. When more has
// come already, m goes to the peer's reader instead, so that the transport
// reads the next message while this one is dispatched.
//
// Only what dispatches without waiting is taken: calls and notifications
// (handed to workers), replies, stream results and credit, cancels. A
// message that does not decode, or that holds a notification served by a
// WithInline func or a reply to a call with an OnReply func (either may
// wait, on the connection's end among other things, and so must not hold
// up its reader), goes to the peer's reader, which decodes it again.
func (p *Peer) receiveNow(m transport.Message, more bool) bool {
	if more || p.broken || m.Type != p.wire.messageType() {
		return false
	}
	msgs, batch, err := p.decode(m)
	if err != nil {
		clear(msgs)
		return false
	}
	if p.opts.inline != nil {
		for i := range msgs {
			if msgs[i].kind == kindNotification && p.opts.inline[msgs[i].method] != nil {
				clear(msgs)
				return false
			}
		}
	}
	if p.replyHooks.Load() && p.runsReplyHook(msgs) {
		clear(msgs)
		return false
	}
	// Dispatching breaks no protocol (only a message that does not decode
	// does, and the peer's reader has those), so the connection never has
	// to be closed from here, where Close would wait for this goroutine.
	p.dispatchAll(m, msgs, batch)
	return true
}

// runsReplyHook reports whether msgs hold a reply to a pending call with
// an OnReply func: like a WithInline func, it may wait (a client's
// subscribe reply waits for its subscription's delivery turn, or for the
// connection's end), so it runs on the peer's own reader.
func (p *Peer) runsReplyHook(msgs []message) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range msgs {
		if m := &msgs[i]; (m.kind == kindResult || m.kind == kindError) && m.id.raw == "" && p.pending[m.id.n].hook != nil {
			return true
		}
	}
	return false
}

// restartLoop starts the reader again; the transport calls it (on its own
// reader) when a message comes for a peer whose reader has gone idle.
func (p *Peer) restartLoop() { go p.loop() }

// loopIdle is how long the peer's reader waits for a message before it
// lets its goroutine go. (A variable for tests; each peer copies it.)
var loopIdle = time.Second

// closeRequest is a close code and reason.
type closeRequest struct {
	code   transport.StatusCode
	reason string
}

// rxMessage is a received message being dispatched, and whether its buffer
// can go back to the transport's pool once dispatching is done: it cannot
// when something it was decoded into outlives the dispatch (a handler's
// params, a result or error data on its way to a caller).
type rxMessage struct {
	m      transport.Message
	shared bool // a batch: several decoded messages alias the buffer
	kept   bool // someone holds on to the bytes; leave them to the collector
	// sb, once a stream result was kept in the buffer, counts those that
	// still hold it (keepItem): the buffer then goes back when the last is read.
	sb *sharedBuf
}

// donate hands the buffer to the one reader that will recycle it (a
// blocking Call once it has decoded the result, a handler once it has
// returned). r is nil when that is not possible (the buffer is not pooled,
// or other messages share it); the bytes are then left to the collector.
func (rx *rxMessage) donate() (buf []byte, r transport.Recycler) {
	defer func() { rx.kept = true }()
	if rx.kept || rx.shared || rx.sb != nil || rx.m.Recycle == nil {
		return nil, nil
	}
	return rx.m.Data, rx.m.Recycle
}

// release recycles the buffer unless it was kept or donated.
func (rx *rxMessage) release() {
	switch {
	case rx.sb != nil:
		if rx.kept {
			rx.sb.keep.Store(true)
		}
		rx.sb.release()
	case !rx.kept && rx.m.Recycle != nil:
		rx.m.Recycle.Recycle(rx.m.Data)
	}
	*rx = rxMessage{}
}

func typeName(t transport.MessageType) string {
	if t == transport.Text {
		return "text"
	}
	return "binary"
}

// protocolError has the reader close the connection because the other side
// broke the protocol.
func (p *Peer) protocolError(code transport.StatusCode, reason string) {
	p.warn("wsrpc: protocol error; closing", "code", int(code), "reason", logtext.Clip(reason))
	if !p.broken {
		p.broken = true
		p.violation = closeRequest{code, reason}
	}
}

// ended runs once the connection is gone: fail pending calls, cancel handlers.
func (p *Peer) ended() {
	<-p.conn.Done()
	err := p.conn.Err()
	if err == nil {
		err = errConnClosed
	}
	p.endErr = err
	p.inMu.Lock()
	p.draining = true
	p.inMu.Unlock()
	p.dropBacklog(false) // first, so that no handler that returns starts one
	p.stopHandlers(fmt.Errorf("%w: %w", errConnClosed, err))
	if p.stopBaseWatch != nil {
		p.stopBaseWatch()
	}
	p.mu.Lock()
	p.connEnded = true
	p.refusing.Store(true)
	pending := p.pending
	p.pending = make(map[uint64]pendingCall)
	p.signalOutIdleLocked()
	p.mu.Unlock()
	// The transport's own goroutines (its writer, a bounded close) are
	// done before the peer says it has ended.
	p.conn.CloseNow()
	lost := &Error{Code: CodeConnectionLost,
		Message: "connection closed after the request was sent; outcome unknown: " + err.Error()}
	if p.remoteDrainedAndClosed(err) {
		// The other side announced its shutdown, answered every request it
		// started, and closed gracefully: what is still pending was never
		// started (docs/PROTOCOL.md, shutdown).
		lost = &Error{Code: CodeUnavailable,
			Message: "the peer shut down without starting the request: " + err.Error()}
	}
	for id, pc := range pending {
		if pc.stop != nil {
			pc.stop()
		}
		r := pc.response()
		r.ID = id
		r.Err = lost
		p.deliver(pc.reply, r)
	}
	close(p.loopDone)
	if p.opts.onClose != nil {
		p.opts.onClose(err)
	}
}

// remoteDrainedAndClosed reports whether the connection ended the graceful
// way: a shutdown notice from the other side, then its close frame with 1012
// (service restart) or 1001 (going away).
func (p *Peer) remoteDrainedAndClosed(err error) bool {
	var ce *transport.CloseError
	if !errors.As(err, &ce) || !ce.Remote {
		return false
	}
	if ce.Code != transport.StatusServiceRestart && ce.Code != transport.StatusGoingAway {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.remoteDrain
}

// send encodes and sends one reply (or an error the dispatcher decided),
// reporting whether it was queued. Replies are pushed: a peer that asks for
// them and does not read them has its connection closed once the send
// queue's byte bound is reached (see transport.Conn.Push), so a handler
// never holds its reply waiting for a slow reader.
func (p *Peer) send(m *message) bool {
	data := p.wire.encode(*m)
	err := p.conn.Push(context.Background(), transport.Message{Type: p.wire.messageType(), Data: data, Recycle: bufpool.Recycler{}})
	if err != nil {
		bufpool.Put(data)
	}
	return err == nil
}

// sendRaw sends an already encoded reply (a batch's), as send does.
func (p *Peer) sendRaw(data []byte) bool {
	return p.conn.Push(context.Background(), transport.Message{Type: p.wire.messageType(), Data: data}) == nil
}

// deliver puts r on reply without ever blocking.
func (p *Peer) deliver(reply chan *Response, r *Response) {
	select {
	case reply <- r:
	default:
		p.droppedReplies.Add(1)
		p.warn("wsrpc: reply dropped: Reply channel full", "id", r.ID)
	}
}
