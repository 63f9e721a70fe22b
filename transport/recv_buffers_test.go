package transport_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/transport"
)

// Sizes around the pool's classes and its 72 KiB limit, and past the
// read-ahead size.
var recvSizes = []int{0, 1, 288, 300, 4608, 4096 + 12, 100, 40 << 10, 70000, 73728, 73729, 200000, 200000, 5, 4096, 4096}

// pattern fills a message so that a byte from another message, or from an
// earlier use of the same buffer, shows.
func pattern(round, i, n int) []byte {
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(round*31 + i*7 + j)
	}
	return b
}

// burstServer sends rounds of recvSizes back to back, so that the client's
// reads find several messages waiting (the read-ahead path).
func burstServer(rounds int) func(*transport.Conn) {
	return func(c *transport.Conn) {
		for r := range rounds {
			for i, n := range recvSizes {
				if c.Send(context.Background(), transport.Message{Type: transport.Binary, Data: pattern(r, i, n)}) != nil {
					return
				}
			}
		}
		<-c.Done()
	}
}

func TestReceivedMessagesKeptStayIntact(t *testing.T) {
	const rounds = 10
	s := newServer(t, nil, burstServer(rounds))
	c := dial(t, s.wsURL(), nil)
	var kept []transport.Message
	for range rounds * len(recvSizes) {
		kept = append(kept, recv(t, c))
	}
	for k, m := range kept {
		r, i := k/len(recvSizes), k%len(recvSizes)
		n := recvSizes[i]
		if !bytes.Equal(m.Data, pattern(r, i, n)) {
			t.Fatalf("round %d message %d (%d bytes) changed after later messages arrived", r, i, n)
		}
		pooled := n > 0 && n <= 73728
		if (m.Recycle != nil) != pooled {
			t.Errorf("%d-byte message: Recycle set = %v, want %v", n, m.Recycle != nil, pooled)
		}
		if m.Data == nil {
			t.Errorf("%d-byte message: nil Data", n)
		}
		if n > 0 && float64(cap(m.Data)) > 2.25*float64(n) && cap(m.Data) > 288 {
			t.Errorf("%d-byte message pins %d bytes", n, cap(m.Data))
		}
	}
}

func TestReceivedMessagesRecycled(t *testing.T) {
	for _, tls := range []bool{false, true} {
		// Over TLS the dialing side reads ahead under the TLS layer, the
		// accepting side above it (its connection is the hijacked tls.Conn).
		name := "ws"
		if tls {
			name = "wss"
		}
		t.Run(name+"/server sends", func(t *testing.T) { testRecycled(t, tls) })
		t.Run(name+"/client sends, server echoes", func(t *testing.T) { testRecycledEcho(t, tls) })
	}
}

func testRecycledEcho(t *testing.T, tls bool) {
	const rounds = 10
	c := dialServer(t, tls, echo)
	sendAll(t, c, rounds*len(recvSizes), func(k int) []byte {
		return pattern(k/len(recvSizes), k%len(recvSizes), recvSizes[k%len(recvSizes)])
	})
	recvRounds(t, c, rounds)
}

func testRecycled(t *testing.T, tls bool) {
	const rounds = 20
	recvRounds(t, dialServer(t, tls, burstServer(rounds)), rounds)
}

// dialServer starts a server running fn, over TLS or not, and dials it.
func dialServer(t *testing.T, tls bool, fn func(*transport.Conn)) *transport.Conn {
	t.Helper()
	s := startServer(t, tls, nil, fn)
	var opts *transport.DialOptions
	if tls {
		opts = &transport.DialOptions{HTTPClient: s.Client()}
	}
	return dial(t, s.wsURL(), opts)
}

// sendAll sends message(0) to message(n-1) on c from a goroutine of its
// own, which the test's cleanup waits for.
func sendAll(t *testing.T, c *transport.Conn, n int, message func(k int) []byte) {
	sent := make(chan struct{})
	t.Cleanup(func() {
		c.CloseNow()
		<-sent
	})
	go func() { // owned: waited for at cleanup
		defer close(sent)
		for k := range n {
			if c.Send(context.Background(), transport.Message{Type: transport.Binary, Data: message(k)}) != nil {
				return
			}
		}
	}()
}

// recvRounds receives rounds of recvSizes, checks each message and
// recycles it.
func recvRounds(t *testing.T, c *transport.Conn, rounds int) {
	t.Helper()
	for k := range rounds * len(recvSizes) {
		m := recv(t, c)
		r, i := k/len(recvSizes), k%len(recvSizes)
		if !bytes.Equal(m.Data, pattern(r, i, recvSizes[i])) {
			t.Fatalf("round %d message %d (%d bytes) arrived corrupted", r, i, recvSizes[i])
		}
		if m.Recycle != nil {
			m.Recycle.Recycle(m.Data)
		}
	}
}

// A received message forwarded with Send (twice here, as a fan-out does)
// stays the receiver's: Send does not recycle it, so it can be kept.
func TestForwardedMessagesStayTheReceivers(t *testing.T) {
	const n = 200
	kept := make(chan []transport.Message, 1)
	s := newServer(t, nil, func(c *transport.Conn) {
		var ms []transport.Message
		for m := range c.Recv() {
			for range 2 {
				if c.Send(context.Background(), m) != nil {
					break
				}
			}
			if ms = append(ms, m); len(ms) == n {
				break
			}
		}
		kept <- ms
		<-c.Done()
	})
	c := dial(t, s.wsURL(), nil)
	sendAll(t, c, n, func(i int) []byte { return pattern(0, i, 100+i*37) })
	for i := range 2 * n {
		m := recv(t, c)
		if !bytes.Equal(m.Data, pattern(0, i/2, 100+(i/2)*37)) {
			t.Fatalf("echo %d corrupted", i)
		}
		if m.Recycle != nil {
			m.Recycle.Recycle(m.Data) // the client's own copies go back, and get reused
		}
	}
	var ms []transport.Message
	select {
	case ms = <-kept:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not finish")
	}
	for i, m := range ms {
		if !bytes.Equal(m.Data, pattern(0, i, 100+i*37)) {
			t.Fatalf("message %d kept by the server changed after it was forwarded", i)
		}
	}
}
