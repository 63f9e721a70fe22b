package transport_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/transport"
)

// TestDeliver: messages queued on Recv before Deliver come first, then the
// rest, all in order, on one goroutine; when the connection ends, Recv is
// closed empty and Err says why.
func TestDeliver(t *testing.T) {
	const before, after = 20, 200
	cc, sc := pipe.New(t, pipe.Options{})
	for i := range before {
		if err := cc.Send(ctxT(t), transport.Message{Type: transport.Text, Data: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	// Let some of them reach the server's Recv queue before Deliver.
	deadline := time.Now().Add(5 * time.Second)
	for len(sc.Recv()) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling a queue length: there is nothing to wait on
	}
	got := make(chan string, before+after)
	sc.Deliver(func(m transport.Message) { got <- string(m.Data) })
	sc.Deliver(func(transport.Message) { t.Error("second Deliver used") })
	// What was queued arrives without waiting for another message.
	for i := range before {
		select {
		case s := <-got:
			if s != strconv.Itoa(i) {
				t.Fatalf("message %d = %q, want %d", i, s, i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("queued message %d not delivered", i)
		}
	}
	for i := before; i < before+after; i++ {
		if err := cc.Send(ctxT(t), transport.Message{Type: transport.Text, Data: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	for i := before; i < before+after; i++ {
		select {
		case s := <-got:
			if s != strconv.Itoa(i) {
				t.Fatalf("message %d = %q, want %d", i, s, i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d not delivered", i)
		}
	}
	if err := cc.Close(transport.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("server end did not end")
	}
	if _, ok := <-sc.Recv(); ok {
		t.Fatal("Recv delivered a message after Deliver")
	}
	if code := transport.CloseStatus(sc.Err()); code != transport.StatusNormalClosure {
		t.Fatalf("Err = %v, want normal closure", sc.Err())
	}
}

// TestDeliverUnblocksAFullRecv: a reader blocked on a full Recv queue (no
// consumer yet) switches to the Deliver function.
func TestDeliverUnblocksAFullRecv(t *testing.T) {
	n := 3 * transport.DefaultRecvQueue
	cc, sc := pipe.New(t, pipe.Options{})
	go func() {
		for i := range n {
			if cc.Send(ctxT(t), transport.Message{Type: transport.Binary, Data: []byte{byte(i)}}) != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(sc.Recv()) < cap(sc.Recv()) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling a queue length: there is nothing to wait on
	}
	got := make(chan byte, n)
	sc.Deliver(func(m transport.Message) { got <- m.Data[0] })
	for i := range n {
		select {
		case b := <-got:
			if b != byte(i) {
				t.Fatalf("message %d = %d", i, b)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d not delivered", i)
		}
	}
}
