package transport

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// loopbackPair returns the two ends of a WebSocket connection over
// loopback, closed at the end of the test.
func loopbackPair(t *testing.T) (client, server *Conn) {
	t.Helper()
	url, accepted := acceptingServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		client.CloseNow()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() {
		client.CloseNow()
		server.CloseNow()
	})
	return client, server
}

// acceptingServer serves one WebSocket URL whose handler accepts with
// opts and hands each Conn over (a nil after a failed accept); it stops
// with the test.
func acceptingServer(t *testing.T, opts *AcceptOptions) (url string, accepted <-chan *Conn) {
	t.Helper()
	ch := make(chan *Conn, 1)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}))
	t.Cleanup(s.Close)
	return "ws" + strings.TrimPrefix(s.URL, "http"), ch
}

// After a burst of writes, a connection keeps no write buffer.
func TestIdleConnectionHoldsNoWriteBuffer(t *testing.T) {
	client, server := loopbackPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := make([]byte, 2000)
	const n = 200
	for range n {
		if err := client.Send(ctx, Message{Type: Binary, Data: msg}); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		select {
		case <-server.Recv():
		case <-ctx.Done():
			t.Fatal("timed out")
		}
	}
	for _, c := range []*Conn{client, server} {
		if c.cork == nil {
			t.Fatal("loopback connections should be corked")
		}
		c.cork.mu.Lock()
		held := cap(c.cork.buf)
		c.cork.mu.Unlock()
		if held != 0 {
			t.Errorf("an idle connection holds a %d-byte write buffer", held)
		}
	}
}

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
