package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/wsrpc/wsrpc/internal/bufpool"
)

// corkConn sits under coder/websocket's buffered reader and writer. While corked it
// gathers writes (complete frames, since the library flushes once per message)
// so that the writer goroutine can send a burst of queued messages in one
// system call; uncorking writes the gathered bytes out. Uncorked, it writes
// straight through. Concurrent writes (control frames from other goroutines)
// are serialised by mu.
//
// It also remembers whether a read from the network failed: coder/websocket
// reports a connection lost between two fragments of a message as the end of
// that message (io.EOF), and this flag is how the reader tells the two apart.
//
// Reads are read-ahead while data is backed up: when a read fills the
// buffer it was given, more is probably waiting, and the next read takes up
// to readAhead bytes in one system call and hands them out from memory. The
// read-ahead buffer is pooled and given back as soon as it is drained, so an
// idle connection does not hold one.
type corkConn struct {
	net.Conn
	mu         sync.Mutex
	corked     bool
	buf        []byte
	readBroken atomic.Bool

	// The reader's own (coder/websocket reads from one goroutine).
	ahead    []byte // read ahead and not yet handed out; a slice of aheadBuf
	aheadOn  bool   // the last read filled its buffer: read ahead next time
	aheadBuf []byte
}

// readAhead is how much one read-ahead system call may take.
const readAhead = 32 << 10

func (c *corkConn) Read(p []byte) (int, error) {
	if len(c.ahead) == 0 && (!c.aheadOn || len(p) >= readAhead) {
		n, err := c.Conn.Read(p)
		if err != nil {
			c.readBroken.Store(true)
		}
		c.aheadOn = n == len(p)
		return n, err
	}
	if len(c.ahead) == 0 {
		b := bufpool.Get(readAhead)
		n, err := c.Conn.Read(b[:cap(b)])
		if n == 0 {
			bufpool.Put(b)
			if err != nil {
				c.readBroken.Store(true)
			}
			c.aheadOn = false
			return 0, err
		}
		// An error with data is reported by the next read, which finds
		// nothing read ahead and reads again.
		c.aheadOn = n == cap(b)
		c.aheadBuf, c.ahead = b, b[:n]
	}
	n := copy(p, c.ahead)
	c.ahead = c.ahead[n:]
	if len(c.ahead) == 0 {
		bufpool.Put(c.aheadBuf)
		c.aheadBuf, c.ahead = nil, nil
	}
	return n, nil
}

// maxCork bounds the bytes gathered before they are written out anyway.
const maxCork = 64 << 10

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		if len(c.buf)+len(p) <= maxCork {
			c.buf = append(c.buf, p...)
			return len(p), nil
		}
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
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

func (c *corkConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > maxCork {
		c.buf = nil
	} else {
		c.buf = c.buf[:0]
	}
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
		return &corkConn{Conn: nc}, nil
	}
	client := *hc
	client.Transport = t
	return &client, t.CloseIdleConnections
}

// corkingWriter makes the connection that coder/websocket hijacks a corkConn.
type corkingWriter struct {
	http.ResponseWriter
	cork *corkConn
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
	w.cork = &corkConn{Conn: nc}
	// net/http hands over its connection's writer with the hijack and never
	// uses it again: write through it (now into the corking conn) rather than
	// pinning it and allocating another.
	bw := brw.Writer
	if bw.Size() >= 4096 {
		bw.Reset(w.cork)
	} else {
		bw = bufio.NewWriterSize(w.cork, 4096)
	}
	return w.cork, bufio.NewReadWriter(brw.Reader, bw), nil
}
