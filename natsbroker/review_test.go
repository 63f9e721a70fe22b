package natsbroker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wsrpc/wsrpc/internal/natstest"
	"github.com/wsrpc/wsrpc/natsbroker"
	"github.com/wsrpc/wsrpc/pubsub"
)

// Subscribing to an exact topic while a publication of it is on its way
// to a pattern subscription of the same process does not drop it.
func TestSubscribeWhilePatternDelivers(t *testing.T) {
	srv := natstest.Start(t, true)
	a := newNode(t, srv.URL, natsbroker.Options{})
	b := newNode(t, srv.URL, natsbroker.Options{})
	a.subscribe("chat.>")
	for i := range 20 {
		topic := fmt.Sprintf("chat.r%d", i)
		b.publish(topic, "1", 10)
		a.subscribe(topic) // races the delivery of offset 1
		if p := a.next(); p.Topic != topic || p.Offset != 1 {
			t.Fatalf("round %d: delivered %s %d", i, p.Topic, p.Offset)
		}
	}
	a.quiet(200 * time.Millisecond)
}

// Unsubscribing one of two overlapping subscriptions while publications
// flow delivers each once, and a live topic's copies are dropped too.
func TestOverlapUnsubscribeAndLiveCopies(t *testing.T) {
	srv := natstest.Start(t, true)
	a := newNode(t, srv.URL, natsbroker.Options{})
	b := newNode(t, srv.URL, natsbroker.Options{})
	a.subscribe("chat.>")
	a.subscribe("chat.room1")
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(5 * time.Millisecond)
		_ = a.b.Unsubscribe(context.Background(), "chat.room1")
	}()
	for i := 1; i <= 200; i++ {
		b.publish("chat.room1", "1", 10)
	}
	<-done
	for want := uint64(1); want <= 200; want++ {
		if p := a.next(); p.Offset != want {
			t.Fatalf("delivered offset %d, want %d", p.Offset, want)
		}
	}
	a.quiet(200 * time.Millisecond)
	a.subscribe("live.>")
	a.subscribe("live.x")
	b.publish("live.x", `"once"`, 0) // no history: live only
	if p := a.next(); string(p.Data) != `"once"` || p.Offset != 0 {
		t.Fatalf("live: %+v", p)
	}
	a.quiet(200 * time.Millisecond)
}

// A stream deleted while the processes run is made again: publishing goes
// on, in a new epoch, from offset 1.
func TestStreamDeletedWhileRunning(t *testing.T) {
	srv := natstest.Start(t, true)
	a := newNode(t, srv.URL, natsbroker.Options{Stream: "GONE", Prefix: "gone"})
	first := a.publish("news", "1", 10)
	a.publish("news", "2", 10)
	_, js := rawNATS(t, srv.URL)
	if err := js.DeleteStream(ctxT(t), "GONE"); err != nil {
		t.Fatal(err)
	}
	again := a.publish("news", "3", 10)
	if again.Offset != 1 || again.Epoch == first.Epoch || again.Epoch == "" {
		t.Fatalf("after the stream was deleted: %+v (before %+v)", again, first)
	}
	h, err := a.b.History(ctxT(t), "news", pubsub.HistoryRequest{HistorySize: 10})
	if err != nil || h.Top != again {
		t.Fatalf("history: %+v, %v", h, err)
	}
}

// A history read whose newest publications have expired returns at once.
func TestHistoryAllExpired(t *testing.T) {
	srv := natstest.Start(t, true)
	a := newNode(t, srv.URL, natsbroker.Options{Timeout: 30 * time.Second})
	var first pubsub.Position
	for i := range 20 {
		pos, err := a.b.Publish(ctxT(t), "ttl", []byte("1"), pubsub.PublishOptions{HistorySize: 100, HistoryTTL: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = pos
		}
	}
	time.Sleep(100 * time.Millisecond)
	for _, since := range []uint64{0, 15} { // read by a consumer, and hop by hop
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second) // far below the Timeout
		h, err := a.b.History(ctx, "ttl", pubsub.HistoryRequest{Since: &pubsub.Position{Offset: since, Epoch: first.Epoch}, Limit: 100, HistorySize: 100})
		cancel()
		if err != nil || len(h.Publications) != 0 || h.Top.Offset != 20 {
			t.Fatalf("since %d: %d publications, top %+v, %v", since, len(h.Publications), h.Top, err)
		}
	}
}

// History reads leave no consumer behind.
func TestHistoryLeavesNoConsumers(t *testing.T) {
	srv := natstest.Start(t, true)
	a := newNode(t, srv.URL, natsbroker.Options{Stream: "CONS", Prefix: "cons"})
	var top pubsub.Position
	for i := 1; i <= 100; i++ {
		top = a.publish("news", fmt.Sprint(i), 100)
	}
	for range 30 {
		h, err := a.b.History(ctxT(t), "news", pubsub.HistoryRequest{Since: &pubsub.Position{Offset: 10, Epoch: top.Epoch}, Limit: 1000, HistorySize: 100})
		if err != nil || len(h.Publications) != 90 || h.Publications[0].Offset != 11 {
			t.Fatalf("history: %d publications, %v", len(h.Publications), err)
		}
	}
	_, js := rawNATS(t, srv.URL)
	if n := streamState(t, js, "CONS").Consumers; n != 0 {
		t.Fatalf("%d consumers left on the stream", n)
	}
}

// A message on the fan-out subjects that claims a position but was not
// republished by the stream is not delivered; a plain one is, as live.
func TestForeignMessages(t *testing.T) {
	srv := natstest.Start(t, true)
	a := newNode(t, srv.URL, natsbroker.Options{})
	a.subscribe("news")
	nc, _ := rawNATS(t, srv.URL)
	forged := &nats.Msg{Subject: "wsrpc.p.news", Data: []byte(`"forged"`), Header: nats.Header{"Wsrpc-Offset": {"7"}, "Wsrpc-Epoch": {"e"}}}
	if err := nc.PublishMsg(forged); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("wsrpc.p.news", []byte(`"plain"`)); err != nil {
		t.Fatal(err)
	}
	if p := a.next(); string(p.Data) != `"plain"` || p.Offset != 0 {
		t.Fatalf("delivered %+v", p)
	}
	a.quiet(200 * time.Millisecond)
}

// A publication larger than NATS takes fails at once, as not published.
func TestPublishTooLarge(t *testing.T) {
	srv := natstest.Start(t, true)
	a := newNode(t, srv.URL, natsbroker.Options{})
	big := make([]byte, 2<<20)
	for i := range big {
		big[i] = '1'
	}
	for _, history := range []int{0, 10} {
		_, err := a.b.Publish(ctxT(t), "big", big, pubsub.PublishOptions{HistorySize: history})
		if err == nil || errors.Is(err, pubsub.ErrPublishUnknown) {
			t.Fatalf("history %d: %v", history, err)
		}
	}
}
