package transport

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// After any message, a connection waiting for the next one holds no
// read-ahead buffer, whatever the size of the message before.
func TestIdleConnectionHoldsNoReadAhead(t *testing.T) {
	accepted := make(chan *Conn, 1)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		accepted <- c
	}))
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, err := Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	server := <-accepted
	defer server.CloseNow()

	for _, n := range []int{1, 1000, 4096, 4096 + 12, 9000, 20000, 32768, 36000, 36864, 40000, 60000, 70000, 100000, 300000, 1<<20 - 100} {
		for _, burst := range []int{1, 3} {
			msg := bytes.Repeat([]byte{byte(n)}, n)
			for range burst {
				if err := client.Send(ctx, Message{Type: Binary, Data: msg}); err != nil {
					t.Fatal(err)
				}
			}
			for range burst {
				select {
				case m := <-server.Recv():
					if !bytes.Equal(m.Data, msg) {
						t.Fatalf("%d bytes: message corrupted", n)
					}
				case <-ctx.Done():
					t.Fatal("timed out")
				}
			}
			// The reader has gone back to waiting: give it a moment to
			// start its next read, then count.
			deadline := time.Now().Add(2 * time.Second)
			for readAheadHeld.Load() != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("after %d × %d bytes, %d read-ahead buffers still held by an idle connection", burst, n, readAheadHeld.Load())
				}
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
			if h := readAheadHeld.Load(); h != 0 {
				t.Fatalf("after %d × %d bytes, an idle connection holds %d read-ahead buffers", burst, n, h)
			}
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
	if n != 7 || err != nil || c.readBroken.Load() {
		t.Fatalf("first read: %d bytes, %v, broken %v; want the data, no error, not broken", n, err, c.readBroken.Load())
	}
	n, err = c.Read(p)
	if n != 0 || err != io.EOF || !c.readBroken.Load() {
		t.Fatalf("second read: %d bytes, %v, broken %v; want io.EOF and broken", n, err, c.readBroken.Load())
	}
}
