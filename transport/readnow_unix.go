//go:build unix

package transport

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/wsrpc/wsrpc/internal/bufpool"
)

// nowReader reads what a socket already has, without waiting for more.
type nowReader struct {
	raw    syscall.RawConn
	conn   net.Conn              // for the addresses in errors
	fn     func(fd uintptr) bool // r.read, made once so that a read allocates nothing
	fnWait func(fd uintptr) bool // r.readPooled, likewise
	b      []byte
	n      int
	err    error
	size   int // of the buffer readPooled takes
}

func newNowReader(raw syscall.RawConn, conn net.Conn) *nowReader {
	r := &nowReader{raw: raw, conn: conn}
	r.fn = r.read
	r.fnWait = r.readPooled
	return r
}

// readPooled reads what the socket has into a pooled buffer taken only
// once there is something to read: on EAGAIN it gives the buffer back and
// asks the runtime to wait for the socket (return false), so a reader
// parked on an idle connection holds none.
func (r *nowReader) readPooled(fd uintptr) bool {
	b := bufpool.Get(r.size)
	b = b[:cap(b)]
	for {
		n, err := syscall.Read(int(fd), b)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN || err == syscall.EWOULDBLOCK {
			bufpool.Put(b)
			return false
		}
		r.b, r.n, r.err = b, n, err
		return true
	}
}

// readWait waits for the socket to have data, as net.Conn.Read does (the
// read deadline included), and reads what it has into a pooled buffer of
// about size bytes (at most readAhead), which it returns with the count:
// one system call for a message larger than the caller's buffer, which
// would otherwise take a read for each part of it. On io.EOF or an error
// no buffer is returned.
func (r *nowReader) readWait(size int) ([]byte, int, error) {
	r.b, r.n, r.err = nil, 0, nil
	r.size = min(size, readAhead)
	if err := r.raw.Read(r.fnWait); err != nil { // the deadline passed, or the socket is closed
		var oe *net.OpError
		if errors.As(err, &oe) {
			oe.Op = "read"
		}
		return nil, 0, err
	}
	b, n, err := r.b, r.n, r.err
	r.b = nil
	switch {
	case err != nil:
		bufpool.Put(b)
		return nil, 0, &net.OpError{Op: "read", Net: r.conn.LocalAddr().Network(), Source: r.conn.LocalAddr(),
			Addr: r.conn.RemoteAddr(), Err: os.NewSyscallError("read", err)}
	case n == 0:
		bufpool.Put(b)
		return nil, 0, io.EOF
	}
	return b, n, nil
}

func (r *nowReader) read(fd uintptr) bool {
	r.n, r.err = syscall.Read(int(fd), r.b)
	return true // one attempt: never wait for the socket to be readable
}

// readNow reads into b. It returns n > 0 for bytes read; n <= 0 with a nil
// error when nothing was waiting (or the attempt could not be made: the
// caller's waiting read then finds out why); and 0 with io.EOF or the
// socket's error, as net.Conn.Read would report it, when the stream ended or
// failed (a failure is reported once by the socket, so it must not be lost).
func (r *nowReader) readNow(b []byte) (int, error) {
	r.b, r.n, r.err = b, -1, nil
	err := r.raw.Read(r.fn)
	r.b = nil
	switch {
	case err != nil:
		return -1, nil
	case r.err == nil && r.n == 0:
		return 0, io.EOF
	case r.err == nil:
		return r.n, nil
	case errors.Is(r.err, syscall.EAGAIN), errors.Is(r.err, syscall.EWOULDBLOCK), errors.Is(r.err, syscall.EINTR):
		return -1, nil
	}
	return 0, &net.OpError{Op: "read", Net: r.conn.LocalAddr().Network(), Source: r.conn.LocalAddr(),
		Addr: r.conn.RemoteAddr(), Err: os.NewSyscallError("read", r.err)}
}

// nowWriter writes what a socket takes at once, without waiting for room.
type nowWriter struct {
	raw syscall.RawConn
	fn  func(fd uintptr) bool // w.write, made once so that a write allocates nothing
	b   []byte
	n   int
	err error
}

func newNowWriter(raw syscall.RawConn) *nowWriter {
	w := &nowWriter{raw: raw}
	w.fn = w.write
	return w
}

func (w *nowWriter) write(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), w.b)
		if err == syscall.EINTR {
			continue
		}
		w.n, w.err = max(n, 0), err
		return true // one attempt: never wait for the socket to be writable
	}
}

// writeNow writes as much of b as the socket's buffer takes now: the bytes
// written (0 when it is full), and the socket's error if it failed.
func (w *nowWriter) writeNow(b []byte) (int, error) {
	w.b, w.n, w.err = b, 0, nil
	err := w.raw.Write(w.fn)
	n, werr := w.n, w.err
	w.b = nil
	switch {
	case err != nil: // closed
		return 0, err
	case werr == nil, errors.Is(werr, syscall.EAGAIN), errors.Is(werr, syscall.EWOULDBLOCK):
		return n, nil
	}
	return n, os.NewSyscallError("write", werr)
}
