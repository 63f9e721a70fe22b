package transport

import (
	"io"
	"net"
	"testing"
)

// lastWords is a connection whose one read returns its data together with
// io.EOF, as tls.Conn does when a close_notify follows the data.
type lastWords struct {
	net.Conn
	data []byte
}

func (l *lastWords) Read(p []byte) (int, error) {
	n := copy(p, l.data)
	l.data = l.data[n:]
	return n, io.EOF
}

func TestDataWithAnErrorIsNotABrokenRead(t *testing.T) {
	c := newCorkConn(&lastWords{data: []byte("the end")})
	p := make([]byte, 64)
	n, err := c.Read(p)
	if n != 7 || err != nil || c.watch.broken.Load() {
		t.Fatalf("first read: %d bytes, %v, broken %v; want the data, no error, not broken", n, err, c.watch.broken.Load())
	}
	n, err = c.Read(p)
	if n != 0 || err != io.EOF || !c.watch.broken.Load() {
		t.Fatalf("second read: %d bytes, %v, broken %v; want io.EOF and broken", n, err, c.watch.broken.Load())
	}
}
