//go:build unix

package transport

import "syscall"

// nowReader reads what a socket already has, without waiting for more.
type nowReader struct {
	raw syscall.RawConn
	fn  func(fd uintptr) bool // r.read, made once so that a read allocates nothing
	b   []byte
	n   int
}

func newNowReader(raw syscall.RawConn) *nowReader {
	r := &nowReader{raw: raw}
	r.fn = r.read
	return r
}

func (r *nowReader) read(fd uintptr) bool {
	n, err := syscall.Read(int(fd), r.b)
	if err != nil {
		n = -1
	}
	r.n = n
	return true // one attempt: never wait for the socket to be readable
}

// readNow reads into b and returns the byte count, or 0 or less when there
// was nothing to read (or the read failed: the caller's next, waiting read
// sees the error or the end of the stream again).
func (r *nowReader) readNow(b []byte) int {
	r.b, r.n = b, -1
	err := r.raw.Read(r.fn)
	r.b = nil
	if err != nil {
		return -1
	}
	return r.n
}
