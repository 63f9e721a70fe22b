package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"unicode/utf8"

	"github.com/wsrpc/wsrpc/internal/bufpool"
)

// SendReader sends one message of type typ whose bytes are read from r, up
// to its end, however long it is: SendReader holds one frame of it in
// memory at a time (MaxFrameSize bytes, from [ConnOptions]). It returns once
// it has read r to its end, or failed; r is not used after it returns.
//
// A message that fits in one frame is sent as [Conn.Send] sends it (and
// SendReader returns once it is accepted). A longer one goes out in frames
// of MaxFrameSize bytes, in turn with the connection's other messages: it
// waits behind those queued before it (and for room in the queue, as Send
// does), honouring ctx, and then holds the write side until its last frame
// has been written, since the frames of two WebSocket messages cannot
// interleave. Meanwhile the other sends queue behind it, bounded as usual:
// Send waits for room until its ctx ends, TrySend fails, and Push and Offer
// end the connection if the queue overflows its bound. Control frames
// (pings, pongs, a close frame) still go out between its frames.
// WriteTimeout bounds each frame; the time spent reading r does not count.
// The message ends with an empty final frame (coder/websocket's message
// writer marks the end of a message so); with compression on, the
// compressor decides the size of the frames. Frames go through
// coder/websocket's write buffer (4 KiB on a dialed connection, 512 bytes
// on an accepted one), which is flushed by the next frame, a control frame
// or the end of the message: while SendReader waits for r, up to that much
// of what it has written may wait with it.
//
// Until the first frame has gone out, a ctx that ends or a failing r makes
// SendReader return the error and the connection is not affected. Once it
// has, a message cannot be taken back: the connection is closed with 1011
// (Err wraps [ErrMessageAbandoned] and the cause), messages queued behind
// it are dropped, and SendReader returns an error wrapping [ErrClosed],
// ErrMessageAbandoned and the cause (the ctx's error, or r's). A connection
// that starts closing for another reason ([Conn.Close], say) while the
// message is being written cuts it short: the close frame comes in the
// middle of it, which RFC 6455 allows, what is queued behind it is dropped,
// and SendReader returns an error wrapping ErrClosed.
//
// SendReader is safe to call from any goroutine; concurrent calls send
// their messages one after the other.
func (c *Conn) SendReader(ctx context.Context, typ MessageType, r io.Reader) error {
	if typ != Text && typ != Binary {
		return fmt.Errorf("wsrpc: send: invalid message type %d", int(typ))
	}
	select {
	case <-c.stop:
		return c.closedErr()
	default:
	}
	size := c.opts.MaxFrameSize
	// One byte more than a frame: whether the message goes on.
	buf := bufpool.Get(size + 1)[:size+1]
	n, err := fill(r, buf)
	if err != nil {
		bufpool.Put(buf)
		return fmt.Errorf("wsrpc: send: reading the message: %w", err)
	}
	if n <= size {
		if err := c.Send(ctx, Message{Type: typ, Data: buf[:n], Recycle: bufpool.Recycler{}}); err != nil {
			bufpool.Put(buf)
			return err
		}
		return nil
	}
	defer bufpool.Put(buf)
	t := &turn{start: make(chan struct{}), done: make(chan struct{})}
	if err := c.reserve(ctx, msgOverhead); err != nil {
		return err
	}
	if !c.append(Message{Type: turnType, Recycle: t}) {
		c.unreserve(msgOverhead)
		return c.closedErr()
	}
	if err := c.awaitTurn(ctx, t); err != nil {
		return err
	}
	defer close(t.done)
	return c.stream(ctx, typ, r, buf, t)
}

// turnType marks a place in the send queue held by a message that
// SendReader writes itself: when the writer reaches it, it gives the
// sender its turn and waits for the message to be written.
const turnType MessageType = 0

// A turn is a place in the send queue, for SendReader. Its state goes from
// turnWaiting to turnGiven (the writer has given the turn) or turnGone (the
// sender stopped waiting first); from turnGiven to turnWriting (the first
// frame is being written) or turnGone (the ctx ended first); from
// turnWriting to turnFinished (the final frame is being written) or
// turnAbandoned (the ctx ended, or the reader failed, mid-message).
type turn struct {
	state atomic.Int32
	start chan struct{} // closed by the writer when the turn is given
	done  chan struct{} // closed by the sender when it is over
	// clean: nothing was left half-written, so writing may go on (the
	// message went out whole, or not at all). Set before done is closed.
	clean bool
}

const (
	turnWaiting = iota
	turnGiven
	turnGone
	turnWriting
	turnFinished
	turnAbandoned
)

// Recycle lets a turn sit in the queue as a Message: a turn that is dropped
// unwritten needs nothing back (its sender sees the connection stop).
func (*turn) Recycle([]byte) {}

// awaitTurn waits for the writer to give t its turn.
func (c *Conn) awaitTurn(ctx context.Context, t *turn) error {
	var err error
	select {
	case <-t.start:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-c.stop:
		err = c.closedErr()
	}
	if t.state.CompareAndSwap(turnWaiting, turnGone) {
		return err // the writer will pass over t
	}
	<-t.start // given meanwhile
	return nil
}

// giveTurn gives the turn to the sender waiting on t, letting go of the
// write side (wmu, the cork) while its message is written, and reports
// whether writing may go on after it. The caller (the writer) holds wmu,
// with the cork corked if there is one, and holds them again on return.
func (c *Conn) giveTurn(t *turn) bool {
	select {
	case <-c.stop:
		return true // closing: a message not begun is not begun now; its sender sees the stop
	default:
	}
	if !t.state.CompareAndSwap(turnWaiting, turnGiven) {
		return true // its sender has stopped waiting
	}
	c.disarmWatchdog()
	if c.cork != nil {
		if err := c.cork.uncork(); err != nil { // what was gathered goes before the message
			c.writeFailed(err)
		}
	}
	c.wmu.Unlock()
	close(t.start)
	ok := false
	select {
	case <-t.done:
		ok = t.clean
	case <-c.stop:
		select {
		case <-t.done:
			ok = t.clean
		default:
			// The message is cut short: its sender sees the stop at its
			// next frame and writes no more. Nothing may follow it.
		}
	}
	c.wmu.Lock()
	if !ok {
		return false
	}
	c.armWatchdog()
	if c.cork != nil {
		c.cork.cork()
	}
	return true
}

// stream writes the message whose first frame, and the byte after it, are
// in buf, and the rest of which comes from r, in frames of len(buf)-1
// bytes. The caller has its turn (t).
func (c *Conn) stream(ctx context.Context, typ MessageType, r io.Reader, buf []byte, t *turn) error {
	if ctx.Done() != nil {
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(fired)
			if !t.state.CompareAndSwap(turnGiven, turnGone) && t.state.CompareAndSwap(turnWriting, turnAbandoned) {
				c.abandon(ctx.Err())
			}
		})
		defer func() {
			if !stop() {
				<-fired
			}
		}()
	}
	if err := ctx.Err(); err != nil || !t.state.CompareAndSwap(turnGiven, turnWriting) {
		t.clean = true // ctx ended before anything was written
		return ctx.Err()
	}
	size := len(buf) - 1
	w, err := c.ws.Writer(context.Background(), typ)
	if err != nil {
		c.writeFailed(err)
		return c.closedErr()
	}
	frame := buf[:size]
	if err := c.writeFrame(w, frame, false); err != nil {
		// Stopped before the first frame: nothing is half-written.
		t.clean = err == errStopped && t.state.Load() == turnWriting
		return c.streamErr(ctx, t, nil)
	}
	for {
		buf[0] = buf[size] // the byte after a frame begins the next
		n, err := fill(r, buf[1:])
		if err != nil {
			if t.state.CompareAndSwap(turnWriting, turnAbandoned) {
				c.abandon(err)
			}
			return c.streamErr(ctx, t, fmt.Errorf("reading the message: %w", err))
		}
		if frame = buf[:n+1]; len(frame) <= size {
			break // the rest of the message
		}
		frame = frame[:size]
		if err := c.writeFrame(w, frame, false); err != nil {
			return c.streamErr(ctx, t, nil)
		}
	}
	if err := c.writeFrame(w, frame, false); err != nil {
		return c.streamErr(ctx, t, nil)
	}
	if !t.state.CompareAndSwap(turnWriting, turnFinished) {
		return c.streamErr(ctx, t, nil) // abandoned just now: the message stays unfinished
	}
	if err := c.writeFrame(w, nil, true); err != nil {
		return c.streamErr(ctx, t, nil)
	}
	t.clean = true
	return nil
}

// errStopped: the connection began to end between two frames.
var errStopped = errors.New("wsrpc: connection stopping")

// streamErr is what SendReader returns for a message cut short; readErr is
// the reader's error, if that is what cut it.
func (c *Conn) streamErr(ctx context.Context, t *turn, readErr error) error {
	if t.state.Load() != turnAbandoned {
		return c.closedErr()
	}
	cause := readErr
	if cause == nil {
		cause = ctx.Err()
	}
	if cause == nil {
		return fmt.Errorf("%w: %w", ErrClosed, ErrMessageAbandoned)
	}
	return fmt.Errorf("%w: %w: %w", ErrClosed, ErrMessageAbandoned, cause)
}

// writeFrame writes p as a frame of the message w writes, or ends the
// message (fin). Each frame is written under wmu, and none once the
// connection has begun to end (from then on, whoever holds wmu knows that
// no frame of the message will follow); it is bounded by the write timeout,
// and corked where that saves system calls (see corkFrames). A failed write
// ends the connection.
func (c *Conn) writeFrame(w io.WriteCloser, p []byte, fin bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.stop:
		return errStopped
	default:
	}
	c.armWatchdog()
	if c.corkFrames {
		c.cork.cork()
	}
	var err error
	if fin {
		err = w.Close()
	} else {
		_, err = w.Write(p)
	}
	if c.corkFrames {
		if err == nil {
			err = c.cork.uncork()
		} else {
			c.cork.drop()
		}
	}
	c.disarmWatchdog()
	c.lastWrite.Store(clock())
	if err != nil {
		c.writeFailed(err)
		return err
	}
	c.counts.sent(len(p), fin)
	return nil
}

// abandon ends the connection because a message sent by SendReader could
// not be finished (cause says why): the peer gets close 1011, and what is
// queued is dropped, since nothing may follow a half-sent message.
func (c *Conn) abandon(cause error) {
	select {
	case <-c.stop:
		return // already ending: that end decides
	default:
	}
	const reason = "message abandoned part-way"
	c.setErr(&CloseError{Code: StatusInternalError, Reason: reason,
		Err: fmt.Errorf("%w: %w", ErrMessageAbandoned, cause)})
	c.discard.Store(true)
	c.beginStop()
	if !c.admit() {
		return
	}
	go func() { // counted in wg: Close and CloseNow wait for it
		defer c.wg.Done()
		c.closeBounded(StatusInternalError, reason)
	}()
}

// fill reads from r into b until b is full or r ends, and returns how many
// bytes it read. The end of r is not an error.
func fill(r io.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		n += k
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// partState is what the reader keeps between the parts of a message
// received in parts (PartsAbove).
type partState struct {
	r     io.Reader // the message being read; nil between messages
	typ   MessageType
	carry [utf8.UTFMax]byte // bytes read that begin the next part
	n     int               // how many
}

// readPart reads the next message, or the next part of one, when
// PartsAbove is set: a message of up to PartsAbove bytes whole, as
// readMessage does, and a longer one in parts of PartsAbove bytes (a few
// less for text, whose parts end on a rune boundary). A part is delivered
// once the byte after it has been read: the last part is never empty.
func (c *Conn) readPart() (Message, error) {
	p := &c.part
	limit := c.opts.PartsAbove
	var buf []byte
	if p.r == nil {
		typ, r, err := c.ws.Reader(context.Background())
		if err != nil {
			return Message{}, err
		}
		p.r, p.typ = r, typ
		buf = bufpool.Get(min(c.lastSize, limit))
	} else {
		buf = append(bufpool.Get(limit), p.carry[:p.n]...)
		p.n = 0
	}
	c.startMessage()
	defer c.endMessage()
	more := false
	for !more {
		var n int
		var err error
		if len(buf) < cap(buf) && len(buf) < limit {
			n, err = p.r.Read(buf[len(buf):min(cap(buf), limit)])
			buf = buf[:len(buf)+n]
		} else {
			// Full (the part, or the buffer): ask for one byte before
			// ending the part or growing the buffer.
			n, err = p.r.Read(c.probe[:])
			if n > 0 {
				if len(buf) == limit {
					p.carry[0], p.n = c.probe[0], 1
					more = true
				} else {
					buf = append(growTo(buf, limit), c.probe[0])
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			bufpool.Put(buf)
			p.r = nil
			return Message{}, err
		}
	}
	if !more {
		p.r = nil
		c.lastSize = len(buf)
		if c.broken != nil && c.broken.Load() {
			bufpool.Put(buf)
			return Message{}, fmt.Errorf("connection lost in the middle of a message: %w", io.ErrUnexpectedEOF)
		}
	}
	if p.typ == Text {
		keep := len(buf)
		if more {
			// A rune cut by the end of the part goes on to the next one.
			tail := incompleteTail(buf)
			keep -= tail
			copy(p.carry[tail:], p.carry[:p.n])
			copy(p.carry[:tail], buf[keep:])
			p.n += tail
		}
		if !utf8.Valid(buf[:keep]) {
			bufpool.Put(buf)
			p.r = nil
			c.setErr(&CloseError{Code: StatusInvalidPayload, Reason: "invalid UTF-8 in text message", Err: ErrInvalidUTF8})
			c.beginStop()
			_ = c.ws.Close(StatusInvalidPayload, "invalid UTF-8 in text message")
			return Message{}, ErrInvalidUTF8
		}
		buf = buf[:keep]
	}
	if len(buf) == 0 {
		bufpool.Put(buf)
		return Message{Type: p.typ, Data: []byte{}}, nil
	}
	m := Message{Type: p.typ, Data: bufpool.Fit(buf), Partial: more}
	if bufpool.Pooled(m.Data) {
		m.Recycle = receivedBuffer{}
	}
	return m, nil
}

// growTo returns a buffer holding b's bytes with room for more, twice b's
// capacity but no more than limit (which is more than len(b)), and puts b
// back.
func growTo(b []byte, limit int) []byte {
	nb := append(bufpool.Get(min(2*cap(b), limit)), b...)
	bufpool.Put(b)
	return nb
}

// incompleteTail returns how many bytes at the end of b begin a multi-byte
// UTF-8 sequence that b does not finish (0 to 3). Whether they can begin a
// valid one is left to the check of the part they go on to.
func incompleteTail(b []byte) int {
	for j := 1; j <= min(utf8.UTFMax-1, len(b)); j++ {
		var need int // the length of the sequence c begins
		switch c := b[len(b)-j]; {
		case c < 0x80:
			return 0 // ASCII ends a rune
		case c < 0xC0:
			continue // a continuation byte: look further back
		case c < 0xE0:
			need = 2
		case c < 0xF0:
			need = 3
		default:
			need = 4
		}
		if j < need {
			return j
		}
		return 0 // complete, or invalid: the check will tell
	}
	return 0
}
