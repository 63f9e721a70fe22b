package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/wsrpc/wsrpc/internal/bufpool"
	"github.com/wsrpc/wsrpc/transport"
)

// Streams: a call whose handler sends many results before it ends
// (docs/PROTOCOL.md, section 14). The caller asks for one with
// [Peer.Stream], granting credit: how many results the handler may send
// before the caller grants more, which it does as its reader consumes them.
// The handler sends them with [Request.Stream]'s [StreamWriter.Send], which
// blocks while the credit is used up, and ends the stream by returning, with
// a final result or an error, as any call ends.

// DefaultStreamWindow is the credit a stream starts with unless
// [WithWindow] says otherwise.
const DefaultStreamWindow = 64

// MaxStreamWindow bounds a stream's window.
const MaxStreamWindow = 1 << 16

// StreamWindowBytes is what a stream's window grows to hold: the caller
// grants enough credit for about this many bytes of results in flight and
// unread, as their sizes so far say (never less than the window it was
// opened with, never more than 4096 results). Small results so flow with a
// window of thousands, large ones with a few.
//
// A reader that keeps up, and so waits for results, doubles it, up to
// [MaxStreamWindowBytes]: on a fast connection the results in flight (in
// the sockets' buffers, on their way) are then enough to keep it busy
// while more credit travels. A reader that falls behind never waits, and
// its window stays where it was.
const StreamWindowBytes = 1 << 20

// MaxStreamWindowBytes bounds what a stream's window grows to hold (see
// [StreamWindowBytes]): the most memory one stream's unread results take
// on the caller's side, beyond its initial window of large results.
const MaxStreamWindowBytes = 4 << 20

// maxAutoWindow bounds the window grown for small results.
const maxAutoWindow = 4096

// StreamOption configures [Peer.Stream].
type StreamOption func(*streamOptions)

type streamOptions struct {
	window int
	md     Metadata
}

// WithWindow sets the stream's initial window: the results the handler may
// send before the caller has read any (1 to [MaxStreamWindow]; out of range
// is clamped). As its reader consumes them, the caller grants more credit,
// keeping at least this many results in flight and unread, or more when
// they are small (see [StreamWindowBytes]).
func WithWindow(n int) StreamOption {
	return func(o *streamOptions) { o.window = min(max(n, 1), MaxStreamWindow) }
}

// WithStreamMetadata sends md with the call that opens the stream (added to
// what the context carries, see [ContextWithMetadata]).
func WithStreamMetadata(md Metadata) StreamOption {
	return func(o *streamOptions) { o.md = md }
}

// ErrStreamEnded is returned by [StreamWriter.Send] after the call ended
// (its handler returned) and by [Stream.Recv] once every result was read;
// [Stream.Recv] returns io.EOF then, which wraps it.
var ErrStreamEnded = errors.New("wsrpc: stream ended")

// Stream is the caller's side of a stream: the results, in the order the
// handler sent them, then how the call ended. One goroutine reads it.
type Stream struct {
	p      *Peer
	id     uint64
	method string
	window uint64         // the initial credit, and the least the window keeps
	reply  chan *Response // the final reply, once
	// The results received and not yet read, appended by the peer's reader;
	// at most the credit granted.
	qmu    sync.Mutex
	queue  []streamItem
	head   int
	notify chan struct{} // a result was queued (capacity 1)
	bytes  uint64        // of the results read
	// windowBytes is what the window holds (StreamWindowBytes, doubled up
	// to MaxStreamWindowBytes); waited: the reader waited for a result
	// since credit was last granted.
	windowBytes uint64
	waited      bool
	final       *Response // the final reply, once read from reply
	read        uint64    // results read
	// granted is the credit given so far and received the results that
	// arrived (by the peer's reader): more received than granted is the
	// other side breaking the protocol.
	granted, received atomic.Uint64
	cancel            context.CancelFunc
	once              sync.Once
}

// Stream calls method with params as a stream: the handler may send many
// results, which [Stream.Recv] returns in order, before the call ends. ctx
// bounds the whole call, as it bounds Call (its deadline travels); when it
// ends, the call is cancelled on the other side. A handler that sends no
// stream (one that does not know streams, or a peer that does not) simply
// answers: Recv then returns io.EOF at once and [Stream.Result] has the
// answer.
func (p *Peer) Stream(ctx context.Context, method string, params any, opts ...StreamOption) (*Stream, error) {
	o := streamOptions{window: DefaultStreamWindow}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	raw, md, err := p.prepare(ctx, params)
	if err != nil {
		return nil, err
	}
	if len(o.md) > 0 {
		md = md.Clone()
		if md == nil {
			md = Metadata{}
		}
		maps.Copy(md, o.md)
		if err := p.opts.checkMetadata(md); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Stream{p: p, method: method, window: uint64(o.window), windowBytes: StreamWindowBytes, cancel: cancel,
		reply: make(chan *Response, 1), notify: make(chan struct{}, 1)}
	s.granted.Store(uint64(o.window))
	var id uint64
	if p.out != nil {
		r := p.outgoingRequest(method, raw, md, false)
		r.opening = s
		id, err = p.runChainAsync(ctx, r, s.reply)
	} else {
		id, err = p.startStream(ctx, method, raw, md, s)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	s.id = id
	return s, nil
}

// startStream registers and sends the call that opens s, watching ctx.
func (p *Peer) startStream(ctx context.Context, method string, params []byte, md Metadata, s *Stream) (uint64, error) {
	if err := p.checkParams(params); err != nil {
		return 0, err
	}
	return p.startCall(ctx, message{kind: kindRequest, method: method, params: params, meta: md, credit: s.window}, s.reply, nil, true, nil, s)
}

// Recv returns the next result of the stream. Once every result was read
// it returns io.EOF if the call ended with a result (see [Stream.Result]),
// or the call's error: the handler's, a cancellation, a deadline, or a
// lost connection (an *Error of CodeConnectionLost: the stream was cut
// before it ended, after the results read so far).
//
// The result is the caller's to keep: a small result that arrived packed
// with others is copied out of the buffer they came in (one allocation),
// so that the buffer can be reused. [Stream.RecvValue] decodes without
// that copy: into a reused Raw (or []byte) it allocates nothing.
func (s *Stream) Recv() (Raw, error) {
	it, err := s.next()
	if err != nil {
		return nil, err
	}
	return it.own(), nil
}

// next returns the next result as it arrived (see Recv), aliasing its
// received buffer until it is released.
func (s *Stream) next() (streamItem, error) {
	for s.final == nil {
		if it, ok := s.pop(); ok {
			s.consumed(len(it.data))
			return it, nil
		}
		s.waited = true
		select {
		case <-s.notify:
		case r := <-s.reply:
			s.final = r
			s.cancel()
		}
	}
	// Ended: what arrived before the reply is still to be read (the reader
	// queued it first).
	if it, ok := s.pop(); ok {
		return it, nil
	}
	if s.final.Err != nil {
		if CodeOf(s.final.Err) == CodeConnectionLost {
			return streamItem{}, fmt.Errorf("wsrpc: stream %s: cut after %d results, before it ended: %w", s.method, s.read, s.final.Err)
		}
		return streamItem{}, s.final.Err
	}
	return streamItem{}, fmt.Errorf("%w (%w)", io.EOF, ErrStreamEnded)
}

// streamItem is a received result waiting to be read.
type streamItem struct {
	data []byte
	// buf is the received buffer data aliases, shared with the other
	// results that arrived in the same message until each was read; nil
	// when data is its own.
	buf *sharedBuf
}

// own returns the result for its reader to keep: the bytes in place when
// they are not in a shared buffer, or are most of it, or the buffer is
// small (it is then the result's: never reused); else a copy, and the
// shared buffer is released.
func (it streamItem) own() Raw {
	if it.buf == nil {
		return Raw(it.data)
	}
	if n := len(it.buf.data); n < copyItemsFrom || len(it.data)*2 >= n {
		it.buf.keep.Store(true)
		it.buf.release()
		return Raw(it.data)
	}
	data := append(make([]byte, 0, len(it.data)), it.data...)
	it.buf.release()
	return Raw(data)
}

// release is done with the result's bytes.
func (it streamItem) release() {
	if it.buf != nil {
		it.buf.release()
	}
}

// copyItemsFrom is the size of a received buffer from which a stream
// result that fills less than half of it is copied out for a reader that
// keeps it ([Stream.Recv]), rather than keeping the whole buffer alive as
// long as the result: the buffer (of a packed message of many results)
// then goes back to the transport's pool.
const copyItemsFrom = 8 << 10

// sharedBuf is a received buffer that stream results alias: it goes back
// to the transport's pool once every result was read and the message's
// dispatch is done, unless one of them kept it.
type sharedBuf struct {
	data    []byte
	recycle transport.Recycler
	refs    atomic.Int32 // the results not yet read, and the dispatch
	keep    atomic.Bool  // a reader kept the bytes (or the dispatch did): never reused
}

func (b *sharedBuf) release() {
	if b.refs.Add(-1) == 0 && !b.keep.Load() {
		b.recycle.Recycle(b.data)
	}
}

// push queues a received result (the peer's reader).
func (s *Stream) push(it streamItem) {
	s.qmu.Lock()
	s.queue = append(s.queue, it)
	s.qmu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// pop takes the oldest queued result.
func (s *Stream) pop() (streamItem, bool) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.head == len(s.queue) {
		return streamItem{}, false
	}
	it := s.queue[s.head]
	s.queue[s.head] = streamItem{}
	s.head++
	if s.head == len(s.queue) { // empty: start again at the front
		s.queue, s.head = s.queue[:0], 0
	} else if s.head > 1024 && s.head*2 > len(s.queue) {
		n := copy(s.queue, s.queue[s.head:])
		clear(s.queue[n:])
		s.queue, s.head = s.queue[:n], 0
	}
	return it, true
}

// RecvValue is Recv, decoding the result into v with the peer's codec
// straight from the buffer it arrived in (a codec's Unmarshal copies what
// it keeps), with no copy of its own: decoding into a reused [Raw] or
// []byte (a result's bytes copied into v's capacity) allocates nothing.
func (s *Stream) RecvValue(v any) error {
	it, err := s.next()
	if err != nil {
		return err
	}
	err = s.p.unmarshal(it.data, v)
	it.release()
	return err
}

// All returns the results in order; the last pair has a nil Raw and the
// error Recv ended with, unless that is io.EOF (a stream that ended with a
// result), which ends the sequence quietly. Breaking out of the loop closes
// the stream.
func (s *Stream) All() iter.Seq2[Raw, error] {
	return func(yield func(Raw, error) bool) {
		defer s.Close()
		for {
			it, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(it, err) || err != nil {
				return
			}
		}
	}
}

// Result decodes the call's final result into v (nil: discarded), once
// Recv has returned io.EOF. Before that, it returns an error.
func (s *Stream) Result(v any) error {
	if s.final == nil {
		return errors.New("wsrpc: Stream.Result before the stream ended (Recv has not returned io.EOF)")
	}
	if s.final.Err != nil {
		return s.final.Err
	}
	if v == nil {
		return nil
	}
	return s.p.unmarshal(s.final.Result, v)
}

// Close ends the stream: a call still running is cancelled on the other
// side. It is safe to call more than once, and after the stream ended.
func (s *Stream) Close() {
	s.once.Do(func() {
		if s.final == nil && s.p.abandon(s.id) {
			s.final = &Response{ID: s.id, Err: context.Canceled}
		}
		s.cancel()
	})
}

// consumed counts a result of size bytes read, and grants more credit
// once the credit still out (granted, not yet read) has fallen to half the
// window: enough to bring it back to the window, which is the initial one,
// or as many results as StreamWindowBytes holds at their average size so
// far, whichever is more (at most maxAutoWindow). The credit goes as a best
// effort: a stream whose credit could not be sent waits for the next.
func (s *Stream) consumed(size int) {
	s.read++
	s.bytes += uint64(size)
	window := s.windowOf(s.windowBytes)
	out := s.granted.Load() - s.read
	if out*2 > window {
		return
	}
	if s.waited {
		// The reader kept up: let more be in flight (StreamWindowBytes).
		s.waited = false
		s.windowBytes = min(2*s.windowBytes, MaxStreamWindowBytes)
		window = s.windowOf(s.windowBytes)
	}
	n := window - out
	// Counted as granted before it is sent: results it allows may arrive
	// before Send returns.
	s.granted.Add(n)
	data := s.p.wire.encode(message{kind: kindStreamCredit, id: wireID{n: s.id}, credit: n})
	if err := s.p.conn.Send(context.Background(), transport.Message{Type: s.p.wire.messageType(), Data: data, Recycle: bufpool.Recycler{}}); err != nil {
		bufpool.Put(data)
		s.granted.Add(-n)
	}
}

// windowOf is the window, in results, that holds about bytes of results
// at their average size so far: at least the initial window, at most
// maxAutoWindow (or the initial window, if larger).
func (s *Stream) windowOf(bytes uint64) uint64 {
	if avg := s.bytes / s.read; avg > 0 {
		return max(s.window, min(bytes/avg, maxAutoWindow))
	}
	return max(s.window, maxAutoWindow)
}

// handleStreamItem hands a received result to its stream. One beyond the
// credit granted is the other side breaking the protocol: the call fails,
// and is cancelled there.
func (p *Peer) handleStreamItem(m *message) {
	if m.id.raw != "" {
		p.unknownReplies.Add(1)
		return
	}
	p.mu.Lock()
	pc, ok := p.pending[m.id.n]
	p.mu.Unlock()
	if !ok || pc.stream == nil {
		p.unknownReplies.Add(1)
		return
	}
	st := pc.stream
	if st.received.Add(1) <= st.granted.Load() {
		st.push(p.keepItem(m.result))
		return
	}
	if p.abandon(m.id.n) {
		p.deliver(pc.reply, &Response{ID: m.id.n, Err: &Error{Code: CodeInternalError,
			Message: fmt.Sprintf("stream: the peer sent more results than the %d of credit granted", st.granted.Load())}})
	}
}

// keepItem makes a received stream result into an item that outlives
// the dispatch of its message: one that shares the message's buffer with
// the message's other results, so that the buffer is reused once all were
// read; or, when the buffer is not the transport's to reuse (or someone
// else keeps it), the bytes in place, left to the collector.
func (p *Peer) keepItem(b []byte) streamItem {
	rx := &p.rx
	if rx.kept || rx.m.Recycle == nil {
		rx.kept = true
		return streamItem{data: b}
	}
	if rx.sb == nil {
		rx.sb = &sharedBuf{data: rx.m.Data, recycle: rx.m.Recycle}
		rx.sb.refs.Store(1) // the dispatch's own, released once it is done
	}
	rx.sb.refs.Add(1)
	return streamItem{data: b, buf: rx.sb}
}

// StreamWriter is the handler's side of a stream: what [Request.Stream]
// returns when the caller asked for one.
type StreamWriter struct {
	req  *Request
	mu   sync.Mutex
	left uint64        // credit not yet used
	wake chan struct{} // closed and replaced when credit arrives
	sent uint64
	done bool // the handler returned: no more sends
}

// streamRoundTrip is roundTrip for a call that opens a stream: it sends the
// request, registering the caller's side so that results reach it, and
// waits until the call ends, so that the outgoing middleware around it
// sees the whole stream (its duration and how it ended). The results do not
// pass through the chain; the final reply the chain returns is the one the
// stream's reader gets.
func (p *Peer) streamRoundTrip(ctx context.Context, req *Request) ([]byte, error) {
	s := req.opening
	end := make(chan *Response, 1)
	id, err := p.startCall(ctx, message{kind: kindRequest, method: req.Method, params: req.Params, meta: req.Metadata, credit: s.window}, end, nil, true, req.OnReply, s)
	req.reached(id, err)
	if err != nil {
		return nil, err
	}
	select {
	case r := <-end:
		return r.Result, r.Err
	case <-ctx.Done():
		// Closed by its reader (which abandons the call first), or ctx
		// ended: a reply that won the race is still the outcome.
		p.abandon(id)
		select {
		case r := <-end:
			return r.Result, r.Err
		default:
			return nil, ctx.Err()
		}
	}
}

// OpensStream reports whether the call asks for a stream: for an incoming
// call, that its caller asked for one ([Request.Stream] is not nil); for an
// outgoing call seen by middleware, that it was made by [Peer.Stream]. The
// results of a stream do not pass through middleware: it sees the call
// that opens the stream, and its end (the final result or the error).
func (r *Request) OpensStream() bool { return r.stream != nil || r.opening != nil }

// Stream returns the request's stream writer, or nil when the caller did
// not ask for a stream (a plain call, a notification, a caller that does not
// know streams): the handler then answers with one result, as always.
func (r *Request) Stream() *StreamWriter { return r.stream }

// Send sends v (encoded with the peer's codec; a Raw is sent as it is) as
// the stream's next result. It blocks while the caller's credit is used
// up, until the caller grants more or ctx ends (the call's context ends
// when the caller cancels, its deadline passes, or the connection closes).
// It must not be called after the handler returned.
func (w *StreamWriter) Send(ctx context.Context, v any) error {
	p := w.req.peer
	var raw []byte
	switch v := v.(type) {
	case Raw:
		raw = v
	default:
		b, err := p.marshal(v)
		if err != nil {
			return err
		}
		raw = b
	}
	if r, e := p.wire.result(raw); e != nil {
		return e
	} else {
		raw = r
	}
	for {
		w.mu.Lock()
		if w.done {
			w.mu.Unlock()
			return ErrStreamEnded
		}
		if w.left > 0 {
			w.left--
			w.sent++
			w.mu.Unlock()
			break
		}
		wake := w.wake
		w.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Packable: results queued together go out as one WebSocket message (a
	// packed message, a JSON-RPC batch), as publications do.
	// The result's envelope around the result, copied by the transport
	// straight into the packed message (the batch) being gathered.
	var err error
	if _, bin := p.wire.(binaryWire); bin && w.req.wid.raw == "" {
		var hb [2 + binary.MaxVarintLen64]byte
		head := binary.AppendUvarint(append(hb[:0], byte(kindStreamItem), 0), w.req.wid.n)
		err = p.conn.SendPacked(ctx, transport.Binary, binaryPacker{}, head, raw, nil)
	} else if _, js := p.wire.(jsonWire); js && w.req.wid.raw == "" {
		var hb [len(jsonItemHead) + 20 + len(jsonItemMember)]byte
		head := append(strconv.AppendUint(append(hb[:0], jsonItemHead...), w.req.wid.n, 10), jsonItemMember...)
		if raw == nil {
			raw = jsonNull
		}
		err = p.conn.SendPacked(ctx, transport.Text, jsonPacker{}, head, raw, jsonItemTail)
	} else {
		data := p.wire.encode(message{kind: kindStreamItem, id: w.req.wid, result: raw})
		err = p.conn.Send(ctx, transport.Message{Type: p.wire.messageType(), Data: data, Recycle: bufpool.Recycler{}, Pack: p.wire.packer()})
		if err != nil {
			bufpool.Put(data)
		}
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &Error{Code: CodeUnavailable, Message: "connection closed; the result was not sent: " + err.Error()}
}

// Sent returns how many results were sent.
func (w *StreamWriter) Sent() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sent
}

// grant adds credit the caller sent, capped so that it cannot overflow.
func (w *StreamWriter) grant(n uint64) {
	w.mu.Lock()
	w.left = min(w.left+min(n, MaxStreamWindow), 1<<32)
	close(w.wake)
	w.wake = make(chan struct{})
	w.mu.Unlock()
}

// end marks the handler returned.
func (w *StreamWriter) end() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

func newStreamWriter(req *Request, credit uint64) *StreamWriter {
	return &StreamWriter{req: req, left: min(credit, MaxStreamWindow), wake: make(chan struct{})}
}

// handleCredit adds credit to the stream of an incoming call.
func (p *Peer) handleCredit(m *message) {
	p.inMu.Lock()
	c, ok := p.incoming[m.id]
	p.inMu.Unlock()
	if ok && c.req.stream != nil {
		c.req.stream.grant(m.credit)
	}
}
