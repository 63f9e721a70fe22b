package wstest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// HTTPConn is a raw TCP connection to an HTTP server, for tests that speak
// HTTP/1.1 by hand: what the server answers before (or instead of) an
// upgrade, and whether it then closes the connection.
type HTTPConn struct {
	t       testing.TB
	Conn    net.Conn
	Reader  *bufio.Reader // reads from Conn; holds what was read past an answer
	timeout time.Duration
}

// DialHTTP connects to addr (host:port); the connection is closed at the
// test's cleanup. Every RoundTrip is bounded by timeout.
func DialHTTP(t testing.TB, addr string, timeout time.Duration) *HTTPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &HTTPConn{t: t, Conn: c, Reader: bufio.NewReader(c), timeout: timeout}
}

// RoundTrip writes req (a whole HTTP/1.1 request) and reads the answer; the
// body of an answer other than 101 is read and closed.
func (c *HTTPConn) RoundTrip(req string) *http.Response {
	c.t.Helper()
	c.Conn.SetDeadline(time.Now().Add(c.timeout))
	defer c.Conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(c.Conn, req); err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.Reader, nil)
	if err != nil {
		c.t.Fatalf("reading the answer: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp
}

// ClosedWithin checks that the server closes the connection (the next read
// sees EOF) within d, the client sending nothing more.
func (c *HTTPConn) ClosedWithin(d time.Duration) {
	c.t.Helper()
	c.Conn.SetReadDeadline(time.Now().Add(d))
	n, err := c.Reader.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
	case errors.As(err, &ne) && ne.Timeout():
		c.t.Fatalf("the server kept the connection open for %s", d)
	default:
		c.t.Fatalf("read after the answer: %d bytes, %v; want EOF", n, err)
	}
}
