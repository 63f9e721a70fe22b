package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/wsrpc/wsrpc/internal/bufpool"
)

// Conn is a WebSocket connection seen as a pair of channels. It is made by
// [Dial] or [Accept]. See the package documentation for the goroutines it owns.
type Conn struct {
	// What Offer touches for every delivery of a fan-out, on the
	// publisher's goroutine, together at the start: a publication to many
	// connections finds each one's lines cold, and these fit in two of
	// them instead of six (the fields are described below, where they
	// belong).
	stop    chan struct{} // closed once the connection starts ending, for any reason
	queued  atomic.Int64
	pending atomic.Int64
	qmu     sync.Mutex
	queue   []Message
	open    *openPack     // the queue's last entry, while SendPacked may add to it
	wake    chan struct{} // capacity 1
	closed  bool
	writing bool // a writer goroutine is running
	stopped bool
	// woken: a wake token was sent since the writer last took the queue,
	// so the next message need not send another (the channel's lines are
	// one more cache miss per delivery of a fan-out).
	woken bool
	// ending mirrors stop being closed, for a check on this cache line.
	ending atomic.Bool
	// offerNow: OfferNow may write a message on the caller's goroutine
	// when the socket takes it at once: an accepted connection on plain
	// TCP or a Unix socket, without compression.
	offerNow bool
	// maxQueued is opts.MaxQueuedBytes.
	maxQueued int64

	ws   *websocket.Conn
	cork *corkConn // nil when the connection cannot be corked
	// corkFrames: SendReader corks each frame it writes. Only a client's
	// frames gain from it: coder/websocket masks them through its 4 KiB
	// buffer, a system call each, while it writes a server's unmasked
	// payload straight through.
	corkFrames bool
	// ownFrames: data messages of one frame are written by the corkConn
	// (writeMessage) rather than by coder/websocket; see frames.go. mask
	// makes a client's masking keys for them.
	ownFrames bool
	mask      *masker
	// ownReads: messages of one frame that arrive whole are read by the
	// corkConn (nextMessage) rather than by coder/websocket; see frames.go.
	ownReads bool
	server   bool
	// sock is what coder/websocket reads and writes beneath it (the socket,
	// or a dialed 101 response's body), for cutting a closing handshake
	// short; nil when unknown.
	sock io.Closer
	// broken is set when a read beneath coder/websocket failed (see
	// readWatch); nil when there is no such watch.
	broken      *atomic.Bool
	ownRead     atomic.Int64 // messages read by nextMessage (frames.go), for tests; the reader's
	lastSize    int          // of the last message read; the reader's own
	probe       [1]byte      // the reader's own; see readMessage
	part        partState    // the reader's own; see readPart
	opts        ConnOptions
	subprotocol string
	localAddr   net.Addr
	remoteAddr  net.Addr
	header      http.Header

	recv chan Message // closed by the reader when it exits

	// receiver, when set, takes messages on the reader goroutine while
	// unhandled (messages put in recv and not yet Handled) is 0; see
	// SetReceiver. The reader alone reads unhandled's value.
	receiver  atomic.Pointer[func(Message, bool) bool]
	unhandled atomic.Int64

	notifyMu sync.Mutex
	notify   func() // see NotifyRecv

	// The send queue: messages accepted by Send, Push, PushQueued and
	// TrySend and not yet written, oldest first. The writer takes the whole
	// queue at once (swapping in spare, the array of its previous batch) and
	// is told of new messages through wake. closed is set once writing has
	// ended for good: nothing more is accepted.
	//
	// The writer goroutine runs only while there is writing to do: the
	// first message queued starts it (writing), and it exits after
	// writerIdle without one, so an idle connection has no writer. stopped
	// is set (with the stop channel) when the connection starts ending;
	// then the running writer, or, with none, beginStop, ends writing.
	// (qmu, queue, closed, writing, stopped, wake and stop are at the top.)
	spare      []Message
	writerIdle time.Duration // the package's, copied when the connection is made
	stopOnce   sync.Once
	done       chan struct{} // closed by the reader once the connection has ended
	writerDone chan struct{} // closed once writing has ended for good (see endWrites)
	writerOnce sync.Once

	errOnce sync.Once
	err     error // set once, before done is closed

	closeOnce sync.Once
	closeErr  error
	// closeCalled is set when Close begins its handshake: from then on Close
	// owns closing the socket. Otherwise the reader closes it when reading
	// ends, however that happened (see readLoop).
	closeCalled atomic.Bool

	// Timers (heartbeat, write watchdog) start short-lived goroutines; they are
	// admitted only while timersOn and counted in wg with the reader and writer.
	timerMu   sync.Mutex
	timersOn  bool
	heartbeat *time.Timer
	watchdog  *time.Timer
	wg        sync.WaitGroup

	// Writing. wmu is held for every data write, by the writer goroutine or
	// by Send writing directly; pending counts messages queued but not yet
	// written, so a direct write never overtakes a queued message.
	wmu        sync.Mutex
	ownWritten atomic.Int64 // frames written by writeMessage (frames.go), for tests; under wmu
	lastWrite  atomic.Int64 // clock() when the last write ended
	writeStart atomic.Int64 // clock()+1 when the current write began, 0 when idle
	wdArmed    atomic.Bool  // the write watchdog's timer is running (see checkWrite)
	delivering atomic.Bool  // the reader is blocked handing a message to Recv
	stalls     atomic.Int64 // times the reader has had to wait for the consumer

	// The bounds of the send queue: queued counts the bytes (plus
	// msgOverhead each) of the messages in it, and pending (at the top) the
	// messages. A Send waiting for room registers in roomWaiters and is
	// woken through room.
	roomWaiters atomic.Int32
	room        chan struct{} // capacity 1
	discard     atomic.Bool   // ending for a slow reader: drop the queue, do not flush it

	// The incoming message's deadline (MessageTimeout): msgStart is the
	// clock() when its first frame arrived, plus one (0 between messages).
	// The timer is armed by the first message after it last went off, and
	// re-armed by checkMessage while messages keep coming, so a message
	// costs one clock read, not a timer operation.
	msgStart atomic.Int64
	msgArmed atomic.Bool
	msgTimer *time.Timer

	counts counts // see Stats

	offerCuts atomic.Int64 // frames tryOfferNow wrote in part, for tests
}

func newConn(ws *websocket.Conn, client bool, opts ConnOptions, cork *corkConn, sock io.Closer, broken *atomic.Bool, header http.Header, local, remote net.Addr) *Conn {
	opts = opts.withDefaults()
	ws.SetReadLimit(opts.readLimit())
	c := &Conn{
		ws:          ws,
		cork:        cork,
		corkFrames:  client && cork != nil,
		offerNow:    !client && cork.canTryWrite() && opts.Compression == websocket.CompressionDisabled,
		maxQueued:   opts.MaxQueuedBytes,
		ownFrames:   cork.followed() && opts.Compression == websocket.CompressionDisabled,
		sock:        sock,
		broken:      broken,
		opts:        opts,
		subprotocol: ws.Subprotocol(),
		localAddr:   local,
		remoteAddr:  remote,
		header:      header,
		recv:        make(chan Message, opts.RecvQueue),
		wake:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		writerDone:  make(chan struct{}),
		room:        make(chan struct{}, 1),
		timersOn:    true,
		writerIdle:  writerIdle,
	}
	if c.ownFrames && client {
		c.mask = newMasker()
	}
	if c.ownFrames && cork.now != nil && cork.fromStart && opts.PartsAbove <= 0 {
		c.ownReads, c.server = true, !client
		cork.ownReads = true // before anything reads
	}
	c.timerMu.Lock()
	if opts.HeartbeatInterval > 0 {
		c.heartbeat = time.AfterFunc(opts.HeartbeatInterval, c.ping)
	}
	if opts.WriteTimeout > 0 {
		c.watchdog = time.AfterFunc(time.Hour, c.checkWrite)
		c.watchdog.Stop()
	}
	if opts.MessageTimeout > 0 {
		c.msgTimer = time.AfterFunc(time.Hour, c.checkMessage)
		c.msgTimer.Stop()
	}
	c.timerMu.Unlock()
	c.wg.Add(1)
	go c.readLoop()
	return c
}

// Recv returns the channel on which incoming messages arrive, in order. It is
// closed when the connection has ended; [Conn.Err] then says why.
func (c *Conn) Recv() <-chan Message { return c.recv }

// Done returns a channel that is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns nil while the connection is open, and once it has ended a
// *[CloseError] saying why.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// State reports where the connection is in its life cycle.
func (c *Conn) State() State {
	select {
	case <-c.done:
		return StateClosed
	default:
	}
	select {
	case <-c.stop:
		return StateClosing
	default:
		return StateOpen
	}
}

// Subprotocol returns the negotiated subprotocol, "" if none.
func (c *Conn) Subprotocol() string { return c.subprotocol }

// RemoteAddr returns the socket's remote address, or nil if it is
// unknown: behind a reverse proxy, the proxy's. The client's own address,
// as trusted proxies forward it, is rpc.Peer.RemoteAddr.
func (c *Conn) RemoteAddr() net.Addr { return c.remoteAddr }

// HandshakeHeader returns the other side's handshake headers: the request
// headers on a Conn from [Accept], the response headers on a Conn from [Dial].
// The caller must not modify them.
func (c *Conn) HandshakeHeader() http.Header { return c.header }

// LocalAddr returns this side's network address, or nil if it is unknown.
func (c *Conn) LocalAddr() net.Addr { return c.localAddr }

// Send queues m for writing. It blocks while the send queue is full, until ctx
// ends (returning ctx's error) or the connection starts closing (returning an
// error wrapping [ErrClosed]). A nil error means the message was accepted:
// messages from one goroutine are written in the order sent, and those
// accepted before [Conn.Close] is called are written before the close frame.
// A write that fails later ends the connection, and Err says why.
//
// When nothing is queued, no write is under way and the connection has not
// written anything for a few microseconds, Send writes m itself instead of
// handing it to the writer goroutine: an occasional message (a request in a
// sequence of calls) saves a goroutine switch, while a burst goes through the
// queue, where the writer gathers many messages into one system call. A direct
// write is bounded by the write timeout, not by ctx.
//
// Send waits for room (honouring ctx) while the queue holds SendQueue
// messages or half of MaxQueuedBytes, so that a caller producing faster
// than the peer reads is held back instead of growing the queue; the other
// half is left to Push, so that the replies of a peer that reads are never
// taken for a slow reader's.
func (c *Conn) Send(ctx context.Context, m Message) error { return c.enqueue(ctx, m, false, true) }

// Push is Send for a message that must not wait for the peer to read it: a
// reply, or a message fanned out to many connections, whose producer must
// not be held by one slow consumer. Push never waits for room: if queueing m
// would take the queue past MaxQueuedBytes, the peer is not keeping up, and
// Push ends the connection with 1008 (the queue is dropped, and Err wraps
// [ErrSlowReader]) and returns an error wrapping [ErrClosed]. Like Send, it
// writes an occasional message itself (see above), bounded by the write
// timeout; ctx is not used otherwise.
func (c *Conn) Push(ctx context.Context, m Message) error { return c.enqueue(ctx, m, true, true) }

// PushQueued is Push that never writes on the caller's goroutine: the
// message always goes through the queue, so a caller fanning one message
// out to many connections is never held by one peer's full socket.
func (c *Conn) PushQueued(ctx context.Context, m Message) error {
	return c.enqueue(ctx, m, true, false)
}

// Offer is PushQueued for a message fanned out to many connections (a
// publication) under a bound of its own: if queueing m would take the bytes
// queued on the connection past limit (0, or more than MaxQueuedBytes, means
// MaxQueuedBytes), the connection is ended with code and reason instead, as
// Push ends it with 1008, so that a subscriber that does not keep up is told
// in its own terms (reconnect, catch up) and never holds up the producer.
// The error then wraps [ErrClosed] and [ErrSlowReader], and so does Err. Offer
// never waits and never writes on the caller's goroutine.
func (c *Conn) Offer(m Message, limit int64, code StatusCode, reason string) error {
	return c.offer(m, limit, code, reason, false)
}

// OfferNow is Offer for a message the caller may write itself: when
// nothing is queued, on an accepted connection over plain TCP (or a Unix
// socket) without compression, a message of up to 16 KiB is written at
// once on the caller's goroutine, as one frame, if the socket's buffer
// takes it without waiting (a non-blocking write; a frame it takes only in
// part is finished by the writer goroutine before anything else).
// Otherwise it is queued as by Offer. It never waits either.
//
// A publication to many idle connections then costs each one a system
// call and no goroutine to wake, most of a delivery's cost at low rates;
// but it is written alone, where Offer's writer packs messages that queue
// up together. So it suits a producer that has been idle (the first
// publication after a quiet spell), not one that offers back to back.
func (c *Conn) OfferNow(m Message, limit int64, code StatusCode, reason string) error {
	return c.offer(m, limit, code, reason, true)
}

func (c *Conn) offer(m Message, limit int64, code StatusCode, reason string, now bool) error {
	if m.Type != Text && m.Type != Binary {
		return fmt.Errorf("wsrpc: send: invalid message type %d", int(m.Type))
	}
	if c.ending.Load() { // c.stop is closed (set just before it, under qmu)
		return c.closedErr()
	}
	if now && c.offerNow && len(m.Data) <= maxOfferNow && c.pending.Load() == 0 && c.wmu.TryLock() {
		written, ok := c.tryOfferNow(m)
		c.wmu.Unlock()
		if !ok {
			return c.closedErr()
		}
		if written {
			return nil
		}
	}
	if bound := c.maxQueued; limit <= 0 || bound >= 0 && limit > bound {
		limit = bound
	}
	n := cost(m)
	if !c.reserveNow(n, limit) {
		c.slowReaderWith(n, limit, code, reason)
		return fmt.Errorf("%w: %w", ErrClosed, ErrSlowReader)
	}
	if !c.append(m) {
		c.unreserve(n)
		return c.closedErr()
	}
	return nil
}

// msgOverhead is what a queued message counts against MaxQueuedBytes
// beyond its bytes, so that the bound also bounds the number of messages.
const msgOverhead = 64

// maxOfferNow bounds the messages OfferNow may write on the caller's
// goroutine: a frame is copied whole to be written in one system call.
const maxOfferNow = 16 << 10

// tryOfferNow writes m as one frame on the caller's goroutine if nothing
// is queued and the socket takes it without waiting (see OfferNow). It
// reports whether m was written, and false for ok once the connection is
// ending. A frame the socket takes only in part is finished by the writer
// goroutine before anything else. The caller holds wmu.
//
// coder/websocket answers a peer's close frame from its reader before the
// reader tells this Conn; the corkConn sees that close frame go out and
// writes nothing after it, as coder/websocket refuses to.
func (c *Conn) tryOfferNow(m Message) (written, ok bool) {
	select {
	case <-c.stop:
		return false, false
	default:
	}
	if c.pending.Load() != 0 { // queued meanwhile, and not yet written: it goes first
		return false, true
	}
	frame := appendFrameHeader(bufpool.Get(len(m.Data) + 10)[:0], m.Type, len(m.Data))
	frame = append(frame, m.Data...)
	res, err := c.cork.tryWrite(frame)
	bufpool.Put(frame)
	if err != nil {
		c.writeFailed(err)
		return false, false
	}
	if res == wroteNone {
		return false, true
	}
	if res == wrotePart {
		c.offerCuts.Add(1)
		// The writer finishes the frame; until then nothing else goes out.
		c.reserveNow(msgOverhead, -1)
		if !c.append(Message{Type: restType}) {
			c.unreserve(msgOverhead)
			// Ending: the frame stays cut, as any write cut by a close.
		}
	}
	c.counts.sent(len(m.Data), true)
	c.lastWrite.Store(clock())
	if m.Recycle != nil {
		if _, rx := m.Recycle.(receivedBuffer); !rx {
			m.Recycle.Recycle(m.Data)
		}
	}
	return true, true
}

// restType marks, in the send queue, the rest of a frame that Offer
// wrote in part (tryOfferNow): the writer writes it out.
const restType MessageType = -1

// appendFrameHeader appends the header of a final, unmasked frame (a
// server's) of a message of type typ and n bytes (RFC 6455, section 5.2).
func appendFrameHeader(b []byte, typ MessageType, n int) []byte {
	b = append(b, 0x80|byte(typ)) // FIN, and the opcode: 1 text, 2 binary
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return append(b, 126, byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
}

func cost(m Message) int64 { return int64(len(m.Data)) + msgOverhead }

func (c *Conn) enqueue(ctx context.Context, m Message, push, direct bool) error {
	if m.Type != Text && m.Type != Binary {
		return fmt.Errorf("wsrpc: send: invalid message type %d", int(m.Type))
	}
	select {
	case <-c.stop:
		return c.closedErr()
	default:
	}
	if direct && c.pending.Load() == 0 {
		if now := clock(); now-c.lastWrite.Load() > burstGap && c.wmu.TryLock() {
			return c.sendDirect(m, now)
		}
	}
	n := cost(m)
	if push {
		if !c.reserveNow(n, c.opts.MaxQueuedBytes) {
			c.slowReader(n)
			return c.closedErr()
		}
	} else if err := c.reserve(ctx, n); err != nil {
		return err
	}
	if !c.append(m) {
		c.unreserve(n)
		return c.closedErr()
	}
	return nil
}

// append puts m at the end of the queue, whose room the caller has
// reserved, and tells the writer.
func (c *Conn) append(m Message) bool {
	c.qmu.Lock()
	if c.closed {
		c.qmu.Unlock()
		return false
	}
	c.open = nil // what SendPacked sends next goes after m
	c.appendLocked(m)
	return true
}

// appendLocked is append once the caller holds qmu, and the queue is open;
// it releases qmu.
func (c *Conn) appendLocked(m Message) {
	c.queue = append(c.queue, m)
	c.pending.Add(1)
	start := !c.writing
	if start {
		c.writing = true
		c.wg.Add(1) // the connection has not stopped: wg has not been waited to zero
	}
	wake := !start && !c.woken
	c.woken = c.woken || wake
	c.qmu.Unlock()
	if start {
		go c.writeLoop()
		return
	}
	if wake {
		select {
		case c.wake <- struct{}{}:
		default: // the writer has been told already
		}
	}
}

// fits reports whether n more bytes may join q already queued under limit.
func fits(q, n, limit int64) bool { return limit < 0 || q == 0 || q+n <= limit }

// reserveNow counts n bytes into the queue if they fit under limit.
func (c *Conn) reserveNow(n, limit int64) bool {
	for {
		q := c.queued.Load()
		if !fits(q, n, limit) {
			return false
		}
		if c.queued.CompareAndSwap(q, q+n) {
			return true
		}
	}
}

// sendRoom is the room Send may take: the count bound, and half the byte
// bound (the other half is kept for Push).
func (c *Conn) sendRoom(n int64) bool {
	return c.pending.Load() < int64(max(c.opts.SendQueue, 1)) && fits(c.queued.Load(), n, c.sendLimit())
}

func (c *Conn) sendLimit() int64 {
	if c.opts.MaxQueuedBytes < 0 {
		return -1
	}
	return c.opts.MaxQueuedBytes / 2
}

// reserve counts n bytes into the queue for Send, waiting for room.
func (c *Conn) reserve(ctx context.Context, n int64) error {
	for !(c.pending.Load() < int64(max(c.opts.SendQueue, 1)) && c.reserveNow(n, c.sendLimit())) {
		c.roomWaiters.Add(1)
		if c.sendRoom(n) { // room was made before we registered
			c.roomWaiters.Add(-1)
			continue
		}
		select {
		case <-c.room:
		case <-c.stop:
			c.roomWaiters.Add(-1)
			return c.closedErr()
		case <-ctx.Done():
			c.roomWaiters.Add(-1)
			return ctx.Err()
		}
		c.roomWaiters.Add(-1)
	}
	if c.roomWaiters.Load() > 0 && c.sendRoom(msgOverhead) {
		c.wakeWaiter() // room is left: pass it on
	}
	return nil
}

// unreserve takes n written (or abandoned) bytes out of the queue.
func (c *Conn) unreserve(n int64) {
	c.queued.Add(-n)
	if c.roomWaiters.Load() > 0 {
		c.wakeWaiter()
	}
}

func (c *Conn) wakeWaiter() {
	select {
	case c.room <- struct{}{}:
	default:
	}
}

// QueuedBytes returns the bytes accepted for writing and not yet written.
func (c *Conn) QueuedBytes() int64 { return c.queued.Load() }

// slowReader ends the connection because a Push of n bytes found the queue
// full: the peer is not reading. The queue is dropped, not flushed; the
// close frame goes out if the socket takes it within coder/websocket's 5 s,
// otherwise the connection is dropped.
func (c *Conn) slowReader(n int64) {
	c.slowReaderWith(n, c.opts.MaxQueuedBytes, StatusPolicyViolation, "slow reader: outgoing queue full")
}

// CloseSlow ends the connection of a peer that does not keep up, without
// waiting: what is queued is dropped, the close frame with code and reason
// goes out if the socket takes it within a second (otherwise the socket is
// closed), and Err wraps [ErrSlowReader]. It is what Offer does past its
// bound, for a caller that decides by a bound of its own.
func (c *Conn) CloseSlow(code StatusCode, reason string) {
	c.slowReaderWith(0, -1, code, reason)
}

// slowReaderWith is slowReader with the bound that was passed and the close
// code and reason to send.
func (c *Conn) slowReaderWith(n, limit int64, code StatusCode, reason string) {
	select {
	case <-c.stop:
		return // already ending (a graceful Close flushing, say): that close decides
	default:
	}
	c.setErr(&CloseError{Code: code, Reason: reason,
		Err: fmt.Errorf("%w (%d bytes queued, %d more offered, limit %d)", ErrSlowReader, c.queued.Load(), n, limit)})
	c.discard.Store(true)
	c.beginStop()
	if !c.admit() {
		return // the connection has already ended
	}
	go func() { // counted in wg: Close and CloseNow wait for it
		defer c.wg.Done()
		c.closeBounded(code, reason)
	}()
}

// closeGrace is how long a peer being closed for misbehaving gets to take
// the close frame and answer it before its socket is closed.
const closeGrace = time.Second

// closeBounded closes the connection with code and reason for a peer that
// misbehaves (does not read, or does not finish a message): the close frame
// is sent if the socket takes it, but the handshake may last only
// closeGrace. It runs on an admitted timer or closing goroutine.
func (c *Conn) closeBounded(code StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.closeCalled.Store(true)
		if !c.admit() {
			// The reader has ended; it may have seen closeCalled and left
			// the socket to us.
			_ = c.ws.CloseNow()
			return
		}
		done := make(chan struct{})
		go func() { // counted in wg
			defer c.wg.Done()
			defer close(done)
			_ = c.ws.Close(code, reason)
		}()
		t := time.NewTimer(closeGrace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			if c.sock != nil {
				_ = c.sock.Close() // cuts coder/websocket's 5 s waits short
			}
		}
	})
}

// TrySend queues m if the send queue has room, without blocking and without
// writing on the caller's goroutine. It reports whether m was queued. It is
// for messages that are worth sending only if it costs nothing to wait for,
// such as a cancellation.
func (c *Conn) TrySend(m Message) bool {
	if m.Type != Text && m.Type != Binary {
		return false
	}
	select {
	case <-c.stop:
		return false
	default:
	}
	n := cost(m)
	if c.pending.Load() >= int64(max(c.opts.SendQueue, 1)) || !c.reserveNow(n, c.opts.MaxQueuedBytes) {
		return false
	}
	if !c.append(m) {
		c.unreserve(n)
		return false
	}
	return true
}

func (c *Conn) closedErr() error {
	select {
	case <-c.done:
		return fmt.Errorf("%w: %w", ErrClosed, c.err)
	default:
		return ErrClosed
	}
}

// Ping sends a ping and waits for the pong, returning the round-trip time.
func (c *Conn) Ping(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	if err := c.ws.Ping(ctx); err != nil {
		return 0, fmt.Errorf("wsrpc: ping: %w", err)
	}
	return time.Since(start), nil
}

// Close performs the closing handshake with code and reason: it stops
// accepting new messages, writes those already queued, sends the close frame,
// waits (up to about 10 s) for the peer's, and then waits for every goroutine
// of the Conn to exit. A reason longer than 123 bytes is truncated. Close is
// idempotent and safe to call after the connection has ended.
func (c *Conn) Close(code StatusCode, reason string) error {
	c.closeOnce.Do(func() {
		c.closeCalled.Store(true)
		reason = truncateReason(reason)
		c.setErr(&CloseError{Code: code, Reason: reason})
		c.beginStop()
		<-c.writerDone
		c.wmu.Lock() // a direct write under way goes out before the close frame
		c.wmu.Unlock()
		if err := c.ws.Close(code, reason); err != nil && !errors.Is(err, net.ErrClosed) && !c.ended() {
			c.closeErr = fmt.Errorf("wsrpc: close: %w", err)
		}
	})
	c.wait()
	return c.closeErr
}

// CloseNow drops the connection without a closing handshake (the peer sees
// 1006) and waits for every goroutine of the Conn to exit. Queued messages are
// discarded. It also cuts short a [Conn.Close] running on another goroutine
// (which can otherwise wait up to 10 s for a silent peer). It is idempotent.
func (c *Conn) CloseNow() error {
	c.setErr(&CloseError{Code: StatusAbnormal, Reason: "closed without handshake"})
	c.beginStop()
	if c.sock != nil {
		_ = c.sock.Close() // unblocks a closing handshake in progress
	}
	_ = c.ws.CloseNow()
	c.wait()
	return nil
}

func (c *Conn) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// setErr records why the connection ended; the first reason wins.
func (c *Conn) setErr(err error) { c.errOnce.Do(func() { c.err = err }) }

func (c *Conn) beginStop() {
	c.stopOnce.Do(func() {
		c.qmu.Lock()
		c.stopped = true
		c.ending.Store(true)
		idle := !c.writing
		if idle {
			c.closed = true // nothing is queued: a writer would be running
		}
		c.qmu.Unlock()
		close(c.stop)
		if idle {
			c.endWrites()
		}
	})
}

// endWrites records that writing has ended for good.
func (c *Conn) endWrites() { c.writerOnce.Do(func() { close(c.writerDone) }) }

// stopTimers disarms the timers; after it returns no timer goroutine starts.
func (c *Conn) stopTimers() {
	c.timerMu.Lock()
	c.timersOn = false
	if c.heartbeat != nil {
		c.heartbeat.Stop()
	}
	if c.watchdog != nil {
		c.watchdog.Stop()
	}
	if c.msgTimer != nil {
		c.msgTimer.Stop()
	}
	c.timerMu.Unlock()
}

func (c *Conn) wait() {
	c.stopTimers()
	c.wg.Wait()
}

// admit registers a timer goroutine; it reports false once timers are off.
func (c *Conn) admit() bool {
	c.timerMu.Lock()
	defer c.timerMu.Unlock()
	if !c.timersOn {
		return false
	}
	c.wg.Add(1)
	return true
}

func (c *Conn) readLoop() {
	defer c.wg.Done()
	parts := c.opts.PartsAbove > 0
	cut := false // a part was dropped while closing: drop the rest of its message
	for {
		var m Message
		var err error
		if parts {
			m, err = c.readPart()
		} else {
			m, err = c.readMessage()
		}
		if err != nil {
			c.setErr(c.readError(err))
			break
		}
		c.counts.received(len(m.Data), !m.Partial)
		if cut {
			cut = m.Partial // until its last part
			continue
		}
		if fn := c.receiver.Load(); fn != nil && c.unhandled.Load() == 0 && c.receive(*fn, m) {
			continue
		}
		select {
		case c.recv <- m:
			c.unhandled.Add(1)
			c.notifyRecv()
			continue
		default:
		}
		// The consumer is behind: while we wait for it, nothing reads the
		// network, so pongs are not seen; the heartbeat must not take that
		// for a dead peer.
		c.delivering.Store(true)
		c.stalls.Add(1)
		// A consumer that let its goroutine go (NotifyRecv) must be started
		// now: on an unbuffered Recv nothing was delivered above.
		c.notifyRecv()
		select {
		case c.recv <- m:
			c.unhandled.Add(1)
		case <-c.stop:
			// Closing: the peer may still send until its close frame arrives
			// (RFC 6455 7.1.1). Deliver what fits in the queue, drop the rest,
			// and keep reading so the closing handshake can complete.
			select {
			case c.recv <- m:
				c.unhandled.Add(1)
			default:
				// A part dropped: deliver none of the rest of its message,
				// so that the parts delivered never have a hole.
				cut = m.Partial
			}
		}
		c.delivering.Store(false)
		c.notifyRecv()
	}
	c.beginStop()
	c.stopTimers()
	if c.ownReads {
		c.cork.release()
	}
	if !c.closeCalled.Load() {
		// Reading ended without our closing handshake: the peer's close frame
		// (coder/websocket has answered it), a network error, EOF, a protocol
		// error (answered with a close frame), a timeout. coder/websocket
		// closes the socket itself only on some of those paths, and a
		// hijacked connection is closed by nobody else, so close it here:
		// every ended connection releases its file descriptor. When Close is
		// running it closes the socket once its handshake is done.
		_ = c.ws.CloseNow()
	}
	close(c.done) // before recv: once Recv is closed, Err already says why
	close(c.recv)
	c.notifyRecv()
}

// SetReceiver gives the connection a consumer that handles messages on
// the reader goroutine itself, which saves handing each one to another
// goroutine through Recv. Once set, each message that arrives while every
// message put in Recv so far has been handled (see [Conn.Handled]) is
// passed to fn instead, with more reporting whether bytes of a following
// message have already been read (a busy connection, where handing this
// one to another goroutine lets reading go on meanwhile). fn returns
// false to have the message put in Recv after all, as without a receiver;
// once it did, fn is next called only when those messages are handled.
//
// fn must be quick and must not block: while it runs nothing is read (it
// counts as the consumer being behind, so the heartbeat does not take the
// silence for a dead peer). A consumer that sets a receiver must call
// Handled for every message it takes from Recv once it has dealt with it,
// so that messages are always handled in the order they came. Set it
// before messages matter: those that came before are in Recv.
func (c *Conn) SetReceiver(fn func(m Message, more bool) bool) { c.receiver.Store(&fn) }

// Handled records that a message taken from Recv has been dealt with; see
// [Conn.SetReceiver]. It matters only with a receiver set.
func (c *Conn) Handled() { c.unhandled.Add(-1) }

// receive passes m to the receiver fn, counting as the consumer being
// behind while it runs.
func (c *Conn) receive(fn func(Message, bool) bool, m Message) bool {
	c.delivering.Store(true)
	ok := fn(m, c.cork != nil && c.cork.buffered())
	c.delivering.Store(false)
	return ok
}

// NotifyRecv arranges for fn to be called, once, on the reader goroutine,
// as soon as Recv has a message or is closed, so that a consumer with
// nothing to do can let its goroutine go instead of blocking on Recv. It
// reports false, and arranges nothing, if a message is already waiting or
// Recv is closed: receive it instead. fn must not block: start a goroutine.
// A later NotifyRecv replaces an earlier fn that has not run.
func (c *Conn) NotifyRecv(fn func()) bool {
	c.notifyMu.Lock()
	c.notify = fn
	c.notifyMu.Unlock()
	if len(c.recv) == 0 && !c.ended() {
		return true // the reader will call fn with the next message
	}
	// A message (or the end) came meanwhile: take fn back, unless the
	// reader has taken it already and will call it.
	c.notifyMu.Lock()
	defer c.notifyMu.Unlock()
	if c.notify == nil {
		return true
	}
	c.notify = nil
	return false
}

// notifyRecv calls the NotifyRecv func, if any, once a message has been
// put in Recv or Recv closed.
func (c *Conn) notifyRecv() {
	c.notifyMu.Lock()
	fn := c.notify
	c.notify = nil
	c.notifyMu.Unlock()
	if fn != nil {
		fn()
	}
}

// readMessage reads one message into a pooled buffer that fits it (or, past
// the largest pool class, a buffer of its own). The read starts in a buffer
// the size of the previous message, so a stream of similar messages is read
// in place, without a copy.
func (c *Conn) readMessage() (Message, error) {
	// Once Close has begun its handshake, coder/websocket reads (waiting
	// for the peer's close frame, dropping what comes before it) and this
	// reader must not take frames between the ones it drops: what was
	// delivered stays a prefix of what the peer sent.
	if c.ownReads && !c.closeCalled.Load() {
		m, ok, err := c.cork.nextMessage(c.server, c.opts.readLimit(), c.lastSize, c.startMessage)
		c.endMessage()
		if err != nil {
			return Message{}, err
		}
		if ok {
			c.ownRead.Add(1)
			c.lastSize = len(m.Data)
			if m.Type == Text && !utf8.Valid(m.Data) {
				bufpool.Put(m.Data)
				return Message{}, c.invalidUTF8()
			}
			return m, nil
		}
	}
	typ, r, err := c.ws.Reader(context.Background())
	if err != nil {
		return Message{}, err
	}
	c.startMessage()
	defer c.endMessage()
	buf := bufpool.Get(c.lastSize)
	for {
		var n int
		var rerr error
		if len(buf) < cap(buf) {
			n, rerr = r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
		} else {
			// Full. The end of a message is seen by a read that returns
			// nothing: ask for one byte before growing the buffer, so a
			// message that fits exactly is not copied.
			n, rerr = r.Read(c.probe[:])
			if n > 0 {
				buf = append(bufpool.Grow(buf, 1), c.probe[0])
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			bufpool.Put(buf)
			return Message{}, rerr
		}
	}
	c.lastSize = len(buf)
	if c.broken != nil && c.broken.Load() {
		bufpool.Put(buf)
		return Message{}, fmt.Errorf("connection lost in the middle of a message: %w", io.ErrUnexpectedEOF)
	}
	if typ == Text && !utf8.Valid(buf) {
		bufpool.Put(buf)
		return Message{}, c.invalidUTF8()
	}
	if len(buf) == 0 {
		bufpool.Put(buf)
		return Message{Type: typ, Data: []byte{}}, nil
	}
	m := Message{Type: typ, Data: bufpool.Fit(buf)}
	if bufpool.Pooled(m.Data) {
		m.Recycle = receivedBuffer{}
	}
	return m, nil
}

// invalidUTF8 ends the connection for a text message that is not UTF-8
// (1007) and returns the error that ends reading.
func (c *Conn) invalidUTF8() error {
	c.setErr(&CloseError{Code: StatusInvalidPayload, Reason: "invalid UTF-8 in text message", Err: ErrInvalidUTF8})
	c.beginStop()
	_ = c.ws.Close(StatusInvalidPayload, "invalid UTF-8 in text message")
	return ErrInvalidUTF8
}

// readError turns an error from the reader into the reason the connection ended.
func (c *Conn) readError(err error) error {
	var ce websocket.CloseError
	switch {
	case errors.Is(err, websocket.ErrMessageTooBig):
		return &CloseError{Code: StatusMessageTooBig, Reason: "message too big",
			Err: fmt.Errorf("%w (limit %d bytes)", ErrMessageTooBig, c.opts.readLimit())}
	case errors.As(err, &ce):
		return &CloseError{Code: ce.Code, Reason: ce.Reason, Remote: true}
	case isNetworkError(err):
		return &CloseError{Code: StatusAbnormal, Remote: true, Err: err}
	default:
		// coder/websocket found the peer breaking the protocol and has sent
		// it close 1002.
		return &CloseError{Code: StatusProtocolError, Reason: "protocol error", Err: err}
	}
}

// isNetworkError reports whether err came from the network rather than from
// the WebSocket protocol layer.
func isNetworkError(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

// writerIdle is how long the writer goroutine waits for a message before it
// exits; the next message queued starts another.
// (A variable for tests; each connection copies it.)
var writerIdle = time.Second

// writeLoop is the writer goroutine, started by the first message queued
// when none is running. It writes what is queued, waits up to writerIdle
// for more, and exits; or, once the connection is stopping, flushes (or,
// for a slow reader, drops) the queue and ends writing for good.
func (c *Conn) writeLoop() {
	defer c.wg.Done()
	idle := time.NewTimer(c.writerIdle)
	defer idle.Stop()
	if !c.writeQueued(false) {
		c.endWriter()
		return
	}
	for {
		idle.Reset(c.writerIdle)
		select {
		case <-c.wake:
			if !c.writeQueued(false) {
				c.endWriter()
				return
			}
		case <-c.stop:
			if !c.discard.Load() {
				// Flush what was queued before the close began, then stop.
				c.writeQueued(true)
			}
			c.endWriter()
			return
		case <-idle.C:
			c.qmu.Lock()
			if len(c.queue) == 0 && !c.stopped {
				c.writing = false // the next message queued starts a writer
				c.woken = false
				c.qmu.Unlock()
				return
			}
			c.qmu.Unlock()
			if !c.writeQueued(false) {
				c.endWriter()
				return
			}
		}
	}
}

// endWriter ends writing for good, as the writer exits: what a failed write
// left queued will never be written.
func (c *Conn) endWriter() {
	c.dropQueue()
	c.qmu.Lock()
	c.writing = false
	c.qmu.Unlock()
	c.endWrites()
}

// maxBatch bounds how many queued messages go out in one corked burst.
const maxBatch = 64

// writeQueued writes what is queued until the queue is empty.
func (c *Conn) writeQueued(last bool) bool {
	for {
		if c.discard.Load() {
			return false // a slow reader: what is queued is dropped, not written
		}
		c.qmu.Lock()
		batch := c.queue
		c.queue, c.spare, c.open = c.spare, nil, nil
		c.woken = false // what comes after this takes wakes it again
		if last && len(batch) == 0 {
			c.closed = true // nothing is accepted that this flush has not seen
		}
		c.qmu.Unlock()
		if len(batch) == 0 {
			c.giveBack(batch)
			return true
		}
		ok := c.writeBatch(batch)
		c.giveBack(batch)
		if !ok {
			return false
		}
	}
}

// maxSpare is the largest batch array kept for the next batch: room for a
// queue of DefaultSendQueue messages as append grows it (to 1137 for
// 72-byte Messages), and no more.
const maxSpare = DefaultSendQueue + DefaultSendQueue/4

// giveBack keeps the array of a written batch for the next one, unless it
// has grown large.
func (c *Conn) giveBack(batch []Message) {
	if cap(batch) > maxSpare {
		return
	}
	clear(batch)
	c.qmu.Lock()
	if c.spare == nil {
		c.spare = batch[:0]
	}
	c.qmu.Unlock()
}

// writeBatch writes the messages of batch, corked into as few system calls
// as possible: maxBatch messages a burst, with one pause before the end of
// the last for senders that are about to queue to share its system call.
func (c *Conn) writeBatch(batch []Message) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	defer c.disarmWatchdog()
	if c.discard.Load() {
		// A message sent by SendReader was cut short, or the peer is a
		// slow reader: nothing more may be written.
		c.discardMessages(batch)
		return false
	}
	corked := c.cork != nil
	burst := maxBatch
	if fannedOut(batch) {
		// Packed, maxBatch messages make one frame: let a burst carry
		// several (the cork still writes out every maxCork bytes).
		burst = maxBatch * MaxPack
	}
	for i := 0; i < len(batch); i += burst {
		end := min(i+burst, len(batch))
		c.armWatchdog()
		if corked {
			c.cork.cork()
		}
		if !c.writeAll(batch[i:end]) {
			c.discardMessages(batch[end:])
			c.cork.drop()
			return false
		}
		if corked && end == len(batch) && len(batch) < maxBatch && c.pending.Load() == 0 && !fannedOut(batch) {
			// Let senders that are ready to run queue their messages; the
			// writer's next round takes them while this burst is still
			// corked only if they come now, so yield once.
			runtime.Gosched()
			if c.pending.Load() > 0 {
				c.qmu.Lock()
				more := c.queue
				c.queue, c.open = nil, nil
				c.woken = false
				c.qmu.Unlock()
				c.armWatchdog()
				if !c.writeAll(more) {
					c.cork.drop()
					return false
				}
			}
		}
		if corked {
			if err := c.cork.uncork(); err != nil {
				c.writeFailed(err)
				c.discardMessages(batch[end:])
				return false
			}
		}
	}
	c.lastWrite.Store(clock())
	return true
}

// fannedOut reports whether batch holds only messages that may be packed:
// messages fanned out to many connections (publications), whose producer
// queues one on each connection and is not about to queue another here.
// Yielding for more senders would only put this writer behind the many
// others that the same publication woke, and delay every delivery.
func fannedOut(batch []Message) bool {
	for _, m := range batch {
		if m.Pack == nil {
			return false
		}
	}
	return true
}

// writeAll writes ms, packing the runs of messages that may be packed,
// and takes them out of the queue's counts; after a failed write it
// discards the rest. The caller holds wmu.
func (c *Conn) writeAll(ms []Message) bool {
	for len(ms) > 0 {
		// The queue's own entries (the rest of a frame, a turn, an open
		// pack) are one message each, of their own cost.
		if t := ms[0].Type; t == restType || t == turnType || t == openPackType {
			var ok bool
			cost := int64(msgOverhead)
			switch t {
			case restType:
				err := c.cork.flushRest()
				if ok = err == nil; !ok {
					c.writeFailed(err)
				}
			case turnType:
				ok = c.giveTurn(ms[0].Recycle.(*turn))
			default:
				p := ms[0].Recycle.(*openPack)
				cost = p.reserved
				ok = c.writeOpenPack(p)
				p.Recycle(nil)
			}
			c.pending.Add(-1)
			c.unreserve(cost)
			ms = ms[1:]
			if !ok {
				c.discardMessages(ms)
				return false
			}
			continue
		}
		n := packRun(ms)
		var ok bool
		if n == 1 {
			ok = c.write(ms[0])
		} else {
			ok = c.writePacked(ms[:n])
		}
		for _, m := range ms[:n] {
			c.pending.Add(-1)
			c.unreserve(cost(m))
		}
		ms = ms[n:]
		if !ok {
			c.discardMessages(ms)
			return false
		}
	}
	return true
}

// packRun is how many messages from the start of ms go out as one: those
// that share the first one's Packer and type, within the pack bounds.
func packRun(ms []Message) int {
	p := ms[0].Pack
	if p == nil || len(ms) == 1 {
		return 1
	}
	n, size := 1, len(ms[0].Data)+8
	for n < len(ms) && n < MaxPack && ms[n].Pack == p && ms[n].Type == ms[0].Type && size+len(ms[n].Data)+4 <= MaxPackBytes {
		size += len(ms[n].Data) + 4 // with the packer's framing
		n++
	}
	return n
}

// writePacked writes ms as one message made by their Packer, in a pooled
// buffer; the caller holds wmu.
func (c *Conn) writePacked(ms []Message) bool {
	size := 16
	for _, m := range ms {
		size += len(m.Data) + 4
	}
	n, done, err := 0, false, error(nil)
	if c.ownFrames {
		// Packed straight into the frame's buffer.
		if n, done, err = c.cork.writePackedMessage(ms[0].Type, size, ms[0].Pack, ms, c.mask); done {
			c.ownWritten.Add(1)
		}
	}
	if !done {
		buf := ms[0].Pack.Pack(bufpool.Get(size)[:0], ms)
		err = c.writeData(ms[0].Type, buf)
		n = len(buf)
		bufpool.Put(buf)
	}
	if err != nil {
		c.writeFailed(err)
		return false
	}
	c.counts.sent(n, true)
	for _, m := range ms {
		if m.Recycle != nil {
			if _, rx := m.Recycle.(receivedBuffer); !rx {
				m.Recycle.Recycle(m.Data)
			}
		}
	}
	return true
}

// directCorkMin is the size from which a message written directly is
// corked: coder/websocket's write buffer holds hijackBufSize bytes on an
// accepted connection (4096 on a dialed one), so a frame larger than that
// (header included) would otherwise leave in two system calls, the
// buffer's worth and then the rest.
const directCorkMin = hijackBufSize - 14

// writeDirect writes one message on the sender's goroutine, in one system
// call when it fits the cork; the caller holds wmu.
func (c *Conn) writeDirect(m Message) bool {
	if c.cork == nil || c.ownFrames || len(m.Data) < directCorkMin || len(m.Data) > maxCork-14 {
		return c.write(m)
	}
	c.cork.cork()
	if !c.write(m) {
		c.cork.drop()
		return false
	}
	if err := c.cork.uncork(); err != nil {
		c.writeFailed(err)
		return false
	}
	return true
}

// write writes one message; the caller holds wmu.
func (c *Conn) write(m Message) bool {
	if err := c.writeData(m.Type, m.Data); err != nil {
		c.writeFailed(err)
		return false
	}
	c.counts.sent(len(m.Data), true)
	if m.Recycle != nil {
		if _, rx := m.Recycle.(receivedBuffer); !rx {
			m.Recycle.Recycle(m.Data)
		}
	}
	return true
}

// writeData writes a data message, as one frame of the corkConn's when it
// can (see frames.go), else through coder/websocket; the caller holds wmu.
func (c *Conn) writeData(typ MessageType, p []byte) error {
	if c.ownFrames {
		if done, err := c.cork.writeMessage(typ, p, c.mask); done {
			c.ownWritten.Add(1)
			return err
		}
	}
	return c.ws.Write(context.Background(), typ, p)
}

// dropQueue runs as the writer exits: it refuses every later message and
// discards what is queued (a failed write, or a slow reader whose queue is
// not flushed), giving back the buffers that are the queue's to recycle.
func (c *Conn) dropQueue() {
	c.qmu.Lock()
	c.closed = true
	left := c.queue
	c.queue, c.spare, c.open = nil, nil, nil
	c.qmu.Unlock()
	c.discardMessages(left)
}

// discardMessages takes messages that will not be written out of the queue's
// counts, and recycles the buffers that are the queue's to recycle.
func (c *Conn) discardMessages(ms []Message) {
	for _, m := range ms {
		c.pending.Add(-1)
		if m.Type == openPackType {
			c.unreserve(m.Recycle.(*openPack).reserved)
		} else {
			c.unreserve(cost(m))
		}
		if m.Recycle != nil {
			if _, rx := m.Recycle.(receivedBuffer); !rx {
				m.Recycle.Recycle(m.Data)
			}
		}
	}
}

// receivedBuffer is the Recycle of a received message. Send leaves it alone,
// so that a received message can be forwarded, to several connections even,
// and still be read afterwards; only the receiver recycles it.
type receivedBuffer struct{}

func (receivedBuffer) Recycle(b []byte) { bufpool.Put(b) }

func (c *Conn) writeFailed(err error) {
	// A write that fails because the connection was already closed (the
	// peer's close frame arrived and was answered, say) is not the reason it
	// ended: whoever closed it records that, and the reader always does.
	if !errors.Is(err, net.ErrClosed) {
		c.setErr(&CloseError{Code: StatusAbnormal, Err: fmt.Errorf("wsrpc: write: %w", err)})
	}
	c.beginStop()
	_ = c.ws.CloseNow()
}

// sendDirect writes m on the sender's goroutine (see enqueue); now is
// the clock() of the decision, which starts the write's watchdog. The
// caller holds wmu, which it releases.
func (c *Conn) sendDirect(m Message, now int64) error {
	select {
	case <-c.stop:
		c.wmu.Unlock()
		return c.closedErr()
	default:
	}
	c.armWatchdogAt(now)
	ok := c.writeDirect(m)
	c.disarmWatchdog()
	c.lastWrite.Store(clock())
	c.wmu.Unlock()
	if !ok {
		return c.closedErr()
	}
	return nil
}

func (c *Conn) armWatchdog() {
	if c.watchdog != nil {
		c.armWatchdogAt(clock())
	}
}

// armWatchdogAt marks a write begun at now (a clock() just read).
func (c *Conn) armWatchdogAt(now int64) {
	if c.watchdog != nil {
		c.writeStart.Store(now + 1)
		if !c.wdArmed.Load() {
			c.armWriteTimer(c.opts.WriteTimeout)
		}
	}
}

// disarmWatchdog marks the write done. The timer is left to run: when it
// fires between writes it is not re-armed, so a busy connection costs one
// timer operation per WriteTimeout, not one per write.
func (c *Conn) disarmWatchdog() {
	if c.watchdog != nil {
		c.writeStart.Store(0)
	}
}

func (c *Conn) armWriteTimer(d time.Duration) {
	c.timerMu.Lock()
	if c.timersOn {
		c.wdArmed.Store(true)
		c.watchdog.Reset(d)
	}
	c.timerMu.Unlock()
}

// checkWrite runs when the write watchdog fires: a write still in progress
// WriteTimeout after it began drops the connection; one that began later
// re-arms the timer for what it has left.
func (c *Conn) checkWrite() {
	if !c.admit() {
		return
	}
	defer c.wg.Done()
	c.wdArmed.Store(false) // before the load: a write starting now arms it again
	start := c.writeStart.Load()
	if start == 0 {
		return // between writes: the next one arms the timer
	}
	if left := c.opts.WriteTimeout - time.Duration(clock()+1-start); left > 0 {
		c.armWriteTimer(left)
		return
	}
	c.setErr(&CloseError{Code: StatusAbnormal,
		Err: fmt.Errorf("%w after %s", ErrWriteTimeout, c.opts.WriteTimeout)})
	c.beginStop()
	_ = c.ws.CloseNow()
}

// startMessage starts the clock of MessageTimeout for the message whose
// first frame has arrived.
func (c *Conn) startMessage() {
	if c.msgTimer == nil {
		return
	}
	c.msgStart.Store(clock() + 1)
	if !c.msgArmed.Load() {
		c.armMessageTimer(c.opts.MessageTimeout)
	}
}

// endMessage stops it once the message has been read (or reading failed).
func (c *Conn) endMessage() {
	if c.msgTimer != nil {
		c.msgStart.Store(0)
	}
}

func (c *Conn) armMessageTimer(d time.Duration) {
	c.timerMu.Lock()
	if c.timersOn {
		c.msgArmed.Store(true)
		c.msgTimer.Reset(d)
	}
	c.timerMu.Unlock()
}

// checkMessage runs when the message timer fires: a message still being
// read MessageTimeout after its first frame closes the connection with
// 1008; one that started later re-arms the timer for what it has left.
func (c *Conn) checkMessage() {
	if !c.admit() {
		return
	}
	defer c.wg.Done()
	c.msgArmed.Store(false)
	start := c.msgStart.Load()
	if start == 0 {
		return // between messages: the next one arms the timer again
	}
	left := c.opts.MessageTimeout - time.Duration(clock()+1-start)
	if left > 0 {
		c.armMessageTimer(left)
		return
	}
	const reason = "message not finished in time"
	c.setErr(&CloseError{Code: StatusPolicyViolation, Reason: reason,
		Err: fmt.Errorf("%w: started %s ago", ErrMessageTimeout, c.opts.MessageTimeout)})
	c.beginStop()
	c.closeBounded(StatusPolicyViolation, reason)
}

// ping runs on the heartbeat timer: one ping, and the peer is declared dead if
// its pong does not come back within PongTimeout.
func (c *Conn) ping() {
	if !c.admit() {
		return
	}
	defer c.wg.Done()
	stalls := c.stalls.Load()
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.PongTimeout)
	err := c.ws.Ping(ctx)
	cancel()
	if err != nil && ctx.Err() != nil && (c.delivering.Load() || c.stalls.Load() != stalls) {
		err = nil // the pong may be waiting unread behind a slow consumer: try again later
	}
	if err != nil {
		select {
		case <-c.stop:
			return // already ending; the failed ping is a consequence
		default:
		}
		c.setErr(&CloseError{Code: StatusAbnormal,
			Err: fmt.Errorf("%w within %s", ErrPeerUnresponsive, c.opts.PongTimeout)})
		c.beginStop()
		_ = c.ws.CloseNow()
		return
	}
	c.timerMu.Lock()
	if c.timersOn {
		c.heartbeat.Reset(c.opts.HeartbeatInterval)
	}
	c.timerMu.Unlock()
}

// burstGap: a Send that comes sooner than this after the previous write is
// part of a burst and is queued for a batched write rather than written
// directly.
const burstGap = int64(5 * time.Microsecond)

var epoch = time.Now()

// clock is a monotonic time in nanoseconds.
func clock() int64 { return int64(time.Since(epoch)) }
