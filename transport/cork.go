package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/wsrpc/wsrpc/internal/bufpool"
)

// corkConn sits under coder/websocket's buffered reader and writer. While corked it
// gathers writes (complete frames, since the library flushes once per message)
// so that the writer goroutine can send a burst of queued messages in one
// system call; uncorking writes the gathered bytes out. Uncorked, it writes
// straight through. Concurrent writes (control frames from other goroutines)
// are serialised by mu.
//
// It also watches its reads (see readWatch); that watch is the one that
// counts on the accepting side, where the corkConn is above TLS.
//
// Reads take what the network already has: while data is flowing, a read
// for less than readAhead bytes first asks the socket, without waiting, for
// up to a pooled buffer's worth, and hands those bytes out from memory over
// the next reads (one system call for a burst of messages instead of one or
// two each). Only when nothing is waiting does it wait, in the caller's own
// buffer, so an idle connection holds no pooled buffer. The pooled buffer
// goes back as soon as it is drained. Only plain TCP and Unix sockets read
// ahead: a connection of another type (TLS above the socket, or a wrapper
// that buffers or transforms what it reads) reads as it is.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte // gathered while corked; pooled, nil when not corked
	watch  readWatch

	// Used by Read only. coder/websocket serialises its reads (the reader
	// goroutine, or Close waiting for the close frame), never concurrent.
	now      *nowReader // nil: no reading ahead
	ahead    []byte     // read ahead and not yet handed out; a slice of aheadBuf
	aheadBuf []byte
	// tryAhead: the last read filled its buffer, so more is probably
	// waiting and the next read tries to read ahead. Otherwise it waits the
	// usual way at once, and an idle or lightly used connection does not pay
	// for a read that finds nothing.
	tryAhead bool
	// waitAhead: the last wait for data was followed by more than the
	// caller's buffer held, so the next one reads into a pooled buffer (see
	// nowReader.readWait); small messages keep reading in place.
	waitAhead bool
	held      atomic.Int32 // read-ahead buffers held (0 or 1), for tests
	// aheadN is len(ahead), for buffered: Close may read (waiting for the
	// close frame) on another goroutine than the reader.
	aheadN atomic.Int32

	// Writing without waiting (tryWrite): nowW is nil when the socket
	// does not allow it. rest is the end of a frame that tryWrite could
	// write only in part: it goes out before anything else, under mu.
	nowW *nowWriter
	rest []byte
	// closeSent: a close frame was written (by coder/websocket, which
	// answers the peer's from its reader): tryWrite writes nothing after it.
	closeSent bool
	// The frames coder/websocket writes through Write are followed (on an
	// accepted connection, from the handshake on: follow), so that a close
	// frame is told wherever it begins in a write (one write may end a
	// frame and begin the next, and a frame's tail, written apart, may look
	// like a close frame), and so that tryWrite writes only between two
	// frames.
	follow bool
	wf     frameFollower

	// Reading frames here (ownReads, see frames.go): rf follows what Read
	// hands coder/websocket, which never gets bytes past the end of the
	// frame it reads, so that between two of its messages nothing is left
	// in its buffer and nextMessage may read the next frame itself. rmu
	// serialises the two, as coder/websocket's Close reads (waiting for
	// the close frame) on a goroutine of its own.
	rf  frameFollower
	rmu sync.Mutex
	// fillSize is the buffer fill reads into next: twice what the last
	// fill read, from minFill, or readAhead after one that filled its
	// buffer (more was waiting), so that a connection with small messages
	// (an idle one answering pings) takes small pooled buffers.
	fillSize int32
	ownReads bool
	// fromStart: every byte after the handshake comes through Read, none
	// was buffered above this corkConn meanwhile (so that rf can follow the
	// frames from the first); set by the handshake.
	fromStart bool
	emptyRead bool // an empty read was seen, for watchedBody.drained
	// (The fields are ordered to pack: an idle connection's corkConn stays
	// in the 256-byte size class.)
}

// followFrames follows p, written through Write, frame by frame; the
// caller holds mu.
func (c *corkConn) followFrames(p []byte) {
	if c.wf.follow(p) {
		c.closeSent = true
	}
}

// betweenFrames reports whether what was written through Write ends at
// the end of a frame; the caller holds mu.
func (c *corkConn) betweenFrames() bool { return c.wf.between() }

// buffered reports whether bytes read ahead wait to be handed out.
func (c *corkConn) buffered() bool { return c.aheadN.Load() > 0 }

// newCorkConn wraps nc.
func newCorkConn(nc net.Conn) *corkConn {
	c := &corkConn{Conn: nc}
	var raw syscall.RawConn
	var err error
	switch sc := nc.(type) { // exactly these: a wrapper may embed one and read differently
	case *net.TCPConn:
		raw, err = sc.SyscallConn()
	case *net.UnixConn:
		raw, err = sc.SyscallConn()
	}
	if raw != nil && err == nil {
		c.now = newNowReader(raw, nc)
		c.nowW = newNowWriter(raw)
	}
	return c
}

// readAhead is the size of a read-ahead buffer (its pool class may be a
// little larger).
const readAhead = 32 << 10

func (c *corkConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		c.emptyRead = true
		return 0, nil
	}
	if c.ownReads {
		return c.readFramed(p)
	}
	if len(c.ahead) == 0 {
		if err := c.watch.pending(); err != nil {
			return 0, err
		}
		if c.now != nil && c.tryAhead && len(p) < readAhead {
			if err := c.readAhead(); err != nil {
				return c.watch.took(0, err)
			}
		}
		if len(c.ahead) == 0 && c.waitAhead && len(p) < readAhead {
			// Nothing was waiting, and what comes has lately been more
			// than p holds: wait, then take all that came at once in one
			// system call (instead of one for p's worth and one for the
			// rest of the message).
			b, n, err := c.now.readWait(readAhead)
			if err != nil {
				return c.watch.took(0, err)
			}
			c.tryAhead = n == len(b)
			c.waitAhead = n > len(p)
			c.held.Add(1)
			c.aheadBuf, c.ahead = b, b[:n]
		}
		if len(c.ahead) == 0 { // not reading ahead: not a socket of ours, or a large read
			n, err := c.Conn.Read(p)
			c.tryAhead = n == len(p)
			c.waitAhead = c.now != nil && n == len(p) && len(p) < readAhead
			return c.watch.took(n, err)
		}
	}
	n := copy(p, c.ahead)
	c.consume(n)
	return n, nil
}

// readAhead reads what the socket has into a pooled buffer, without
// waiting, and leaves it in ahead. It returns the end of the stream or a
// failure; when nothing was waiting, ahead stays empty and the caller reads
// the usual way, which waits.
func (c *corkConn) readAhead() error {
	b := bufpool.Get(readAhead)
	b = b[:cap(b)]
	n, err := c.now.readNow(b)
	c.tryAhead = n == len(b)
	if n <= 0 {
		bufpool.Put(b)
		return err
	}
	c.held.Add(1)
	c.aheadBuf, c.ahead = b, b[:n]
	return nil
}

// maxCork bounds the bytes gathered before they are written out anyway.
const maxCork = 64 << 10

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.flushRestLocked(); err != nil {
		return 0, err
	}
	if c.follow {
		c.followFrames(p)
	}
	// A close frame is never gathered: coder/websocket writes its answer
	// to the peer's from its reader, and the reader, ending, closes the
	// socket, possibly before the writer uncorks; the answer must be out.
	if c.corked && !c.closeSent {
		if len(c.buf)+len(p) <= maxCork {
			if c.buf == nil {
				c.buf = bufpool.Get(maxCork)
			}
			c.buf = append(c.buf, p...)
			return len(p), nil
		}
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	} else if c.corked {
		if err := c.flushLocked(); err != nil { // what came before the close frame
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

// followFromNow starts following the frames written through c: from now
// on, everything written is frames (a dialed connection, once its
// handshake is done).
func (c *corkConn) followFromNow() {
	c.mu.Lock()
	c.follow = true
	c.mu.Unlock()
}

// followed reports whether the frames written through c are followed.
func (c *corkConn) followed() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.follow
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes out what was gathered and returns to writing straight through.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

// drop ends corking without writing what was gathered: a write has failed
// and the connection is ending.
func (c *corkConn) drop() {
	if c == nil {
		return // the connection is not corked
	}
	c.mu.Lock()
	c.corked = false
	if c.buf != nil {
		bufpool.Put(c.buf)
		c.buf = nil
	}
	if c.rest != nil {
		bufpool.Put(c.rest)
		c.rest = nil
	}
	c.mu.Unlock()
}

// canTryWrite reports whether tryWrite can write on this connection.
func (c *corkConn) canTryWrite() bool { return c != nil && c.nowW != nil }

// How tryWrite went.
const (
	wroteNone = iota // the socket had no room: nothing was written
	wroteAll
	wrotePart // the rest waits in c.rest for the next write, or flushRest
)

// tryWrite writes b, a whole frame, if the socket takes it at once, without
// waiting for room. When it takes only part, the rest is kept (copied) and
// goes out first with the next write; the caller must see to one
// (flushRest). Nothing is written while corked, while a rest waits, in
// the middle of a frame written through Write, or once a close frame went
// out; nor on a connection whose frames are not followed.
func (c *corkConn) tryWrite(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked || len(c.rest) > 0 || c.closeSent || !c.follow || !c.betweenFrames() {
		return wroteNone, nil
	}
	n, err := c.nowW.writeNow(b)
	switch {
	case err != nil:
		return wroteNone, err
	case n == 0:
		return wroteNone, nil
	case n < len(b):
		c.rest = append(bufpool.Get(len(b) - n)[:0], b[n:]...)
		return wrotePart, nil
	}
	return wroteAll, nil
}

// flushRest writes out the rest of a frame tryWrite left, waiting for room.
func (c *corkConn) flushRest() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushRestLocked()
}

func (c *corkConn) flushRestLocked() error {
	if len(c.rest) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.rest)
	bufpool.Put(c.rest)
	c.rest = nil
	return err
}

func (c *corkConn) flushLocked() error {
	if err := c.flushRestLocked(); err != nil {
		return err
	}
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	// Held only while corked: an idle connection keeps no write buffer.
	bufpool.Put(c.buf)
	c.buf = nil
	return err
}

// corkOf finds the corkConn under a connection handed out by an http.Transport
// whose dialer wraps connections (see corkingClient).
func corkOf(nc net.Conn) *corkConn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	cc, _ := nc.(*corkConn)
	return cc
}

// corkingClient returns an HTTP client for one handshake whose connections are
// wrapped in corkConn, and a func that releases it. A client whose Transport is
// not an *http.Transport is used as it is (no write batching).
func corkingClient(hc *http.Client) (*http.Client, func()) {
	if hc == nil {
		hc = http.DefaultClient
	}
	base, ok := hc.Transport.(*http.Transport)
	if hc.Transport == nil {
		base, ok = http.DefaultTransport.(*http.Transport)
	}
	if !ok {
		return hc, func() {}
	}
	t := base.Clone()
	dial := t.DialContext
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newCorkConn(nc), nil
	}
	client := *hc
	client.Transport = t
	return &client, t.CloseIdleConnections
}

// corkingWriter makes the connection that coder/websocket hijacks a corkConn.
type corkingWriter struct {
	http.ResponseWriter
	cork   *corkConn
	status int // the status coder/websocket answered with
}

func (w *corkingWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *corkingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		nc.Close()
		return nil, nil, err
	}
	w.cork = newCorkConn(nc)
	w.cork.follow = true // what goes through it from now on is frames
	// net/http hands over its connection's 4 KiB reader and writer with the
	// hijack. Every connection would hold both for its whole life, idle or
	// not: they are most of an idle connection's memory. The corking
	// connection below does the buffering that matters (reading ahead into
	// pooled buffers while data flows, gathering corked writes into a
	// pooled buffer), so coder/websocket gets small ones: a frame header
	// and a small message fit, larger payloads go through in place.
	var br *bufio.Reader
	w.cork.fromStart = brw.Reader.Buffered() == 0
	if n := brw.Reader.Buffered(); n <= hijackBufSize {
		b, _ := brw.Reader.Peek(n) // bytes sent after the handshake request: keep them first
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(b)), w.cork), hijackBufSize)
		if n > 0 {
			if _, err := br.Peek(n); err != nil { // into br's own buffer, where coder/websocket looks
				nc.Close()
				return nil, nil, err
			}
		}
	} else {
		br = brw.Reader // it holds more than a small buffer would; coder/websocket re-reads it
	}
	return w.cork, bufio.NewReadWriter(br, bufio.NewWriterSize(w.cork, hijackBufSize)), nil
}

// hijackBufSize is the size of the buffered reader and writer that
// coder/websocket gets on an accepted connection. Writes of a message whose
// frame does not fit are corked (see writeDirect), so that it still leaves
// in one system call. Since the transport frames small messages itself
// (frames.go), coder/websocket's buffers mostly carry control frames and
// the headers of what it reads, and are held by every idle connection:
// 256 bytes each, down from 512.
const hijackBufSize = 256
