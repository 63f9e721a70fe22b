package transport_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/transport"
)

// sendNumbered sends n text messages "0", "1", ... once the client says go,
// in bursts of burst messages, each after the client's next message.
func sendNumbered(n, burst int) func(*transport.Conn) {
	return func(c *transport.Conn) {
		for i := range n {
			if i%burst == 0 {
				if _, ok := <-c.Recv(); !ok {
					return
				}
			}
			if c.Send(context.Background(), transport.Message{Type: transport.Text, Data: []byte(strconv.Itoa(i))}) != nil {
				return
			}
		}
		<-c.Done()
	}
}

// TestReceiverKeepsOrder: messages go to the receiver or, when it declines
// one, to Recv; a message never reaches the receiver while one put in Recv
// is not yet handled, so whoever handles them sees them in the order they
// came, even with a slow consumer on Recv; once all are handled, the
// receiver takes them again.
func TestReceiverKeepsOrder(t *testing.T) {
	const n, burst = 600, 10
	s := newServer(t, nil, sendNumbered(n, burst))
	c := dial(t, s.wsURL(), nil)
	var mu sync.Mutex
	var got []int
	var inline, declined int
	record := func(m transport.Message) int {
		v, err := strconv.Atoi(string(m.Data))
		if err != nil {
			t.Errorf("message %q", m.Data)
		}
		mu.Lock()
		got = append(got, v)
		mu.Unlock()
		return v
	}
	next := func(v int) {
		if v%burst == burst-1 && v < n-1 { // the burst is handled: ask for the next
			c.TrySend(transport.Message{Type: transport.Text, Data: []byte("next")})
		}
	}
	c.SetReceiver(func(m transport.Message, more bool) bool {
		if string(m.Data) != "" && m.Data[len(m.Data)-1] == '3' { // every tenth goes to Recv
			declined++
			return false
		}
		inline++
		next(record(m))
		return true
	})
	done := make(chan struct{})
	go func() { // owned: waited for below
		defer close(done)
		for m := range c.Recv() {
			time.Sleep(time.Millisecond) // slow: later messages must wait for it
			v := record(m)
			c.Handled()
			next(v)
			mu.Lock()
			full := len(got) == n
			mu.Unlock()
			if full {
				return
			}
		}
	}()
	if err := c.Send(ctxT(t), transport.Message{Type: transport.Text, Data: []byte("go")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		l := len(got)
		mu.Unlock()
		if l == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d of %d messages", l, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, v := range got {
		if v != i {
			t.Fatalf("message %d is %d: out of order (%v...)", i, v, got[max(0, i-3):min(len(got), i+3)])
		}
	}
	// In each burst the receiver takes 0-2, declines 3, and the rest waits
	// behind it in Recv.
	if declined != n/burst || inline < 3*n/burst {
		t.Fatalf("receiver took %d, declined %d", inline, declined)
	}
	c.CloseNow()
	<-done
}

// TestReceiverWithoutHandledUsesRecv: once a message went to Recv and was
// not reported handled, everything after it goes to Recv too.
func TestReceiverWithoutHandledUsesRecv(t *testing.T) {
	s := newServer(t, nil, sendNumbered(5, 5))
	c := dial(t, s.wsURL(), nil)
	calls := make(chan string, 5)
	c.SetReceiver(func(m transport.Message, _ bool) bool {
		calls <- string(m.Data)
		return false
	})
	c.Send(ctxT(t), transport.Message{Type: transport.Text, Data: []byte("go")})
	for i := range 5 {
		if m := recv(t, c); string(m.Data) != strconv.Itoa(i) {
			t.Fatalf("message %d: %q", i, m.Data)
		}
	}
	if len(calls) != 1 || <-calls != "0" {
		t.Fatalf("the receiver was offered %d messages; want only the first", len(calls)+1)
	}
}

// TestHeartbeatSparesPeerBehindSlowReceiver: while the receiver runs,
// nothing reads pongs; that is not a dead peer.
func TestHeartbeatSparesPeerBehindSlowReceiver(t *testing.T) {
	s := newServer(t, nil, sendNumbered(2, 2))
	c := dial(t, s.wsURL(), &transport.DialOptions{ConnOptions: transport.ConnOptions{
		HeartbeatInterval: 20 * time.Millisecond, PongTimeout: 50 * time.Millisecond}})
	took := make(chan string, 2)
	c.SetReceiver(func(m transport.Message, _ bool) bool {
		if string(m.Data) == "0" {
			time.Sleep(400 * time.Millisecond) // several heartbeats
		}
		took <- string(m.Data)
		return true
	})
	c.Send(ctxT(t), transport.Message{Type: transport.Text, Data: []byte("go")})
	for _, want := range []string{"0", "1"} {
		select {
		case got := <-took:
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-c.Done():
			t.Fatalf("connection ended while the receiver was slow: %v", c.Err())
		case <-time.After(10 * time.Second):
			t.Fatal("timed out")
		}
	}
	if c.State() != transport.StateOpen {
		t.Fatalf("state %v", c.State())
	}
}
