package pubsub_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

// A topic with many subscribers, published to slowly, has its deliveries
// written at once on the publisher's goroutine; then a burst goes through
// the queues. Every subscriber, on either codec, gets every publication
// whole and in order.
func TestManySubscribersSlowThenBurst(t *testing.T) {
	const subs, slow, burst = 300, 5, 200
	e := newEnv(t)
	ctx := ctxT(t)
	var all []*client.Subscription
	for i := range subs {
		codec := codecs[i%len(codecs)]
		s, err := e.dial(codec).Subscribe(ctx, "many")
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, s)
	}
	before := pubsub.AtOnceFanouts()
	for i := 1; i <= slow; i++ {
		time.Sleep(5 * time.Millisecond) // quiet spells
		if _, err := e.hub.Publish(ctx, "many", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := pubsub.AtOnceFanouts() - before; got < slow-1 {
		t.Fatalf("%d of %d slow publications written at once, want at least %d", got, slow, slow-1)
	}
	mid := pubsub.AtOnceFanouts()
	for i := slow + 1; i <= slow+burst; i++ {
		if _, err := e.hub.Publish(ctx, "many", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := pubsub.AtOnceFanouts() - mid; got > 1 {
		t.Errorf("%d publications of a burst written at once, want at most the first", got)
	}
	for n, s := range all {
		for i := 1; i <= slow+burst; i++ {
			p := next(t, s)
			var v string
			if err := rpc.JSON.Unmarshal(p.Data, &v); err != nil || v != fmt.Sprint(i) || p.Offset != uint64(i) {
				t.Fatalf("subscriber %d: publication %d is %s at offset %d (%v)", n, i, p.Data, p.Offset, err)
			}
		}
	}
}
