//go:build unix

package transport

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// nowReader reads what a socket already has, without waiting for more.
type nowReader struct {
	raw  syscall.RawConn
	conn net.Conn              // for the addresses in errors
	fn   func(fd uintptr) bool // r.read, made once so that a read allocates nothing
	b    []byte
	n    int
	err  error
}

func newNowReader(raw syscall.RawConn, conn net.Conn) *nowReader {
	r := &nowReader{raw: raw, conn: conn}
	r.fn = r.read
	return r
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
