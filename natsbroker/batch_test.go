package natsbroker_test

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/natstest"
	"github.com/wsrpc/wsrpc/natsbroker"
	"github.com/wsrpc/wsrpc/pubsub"
)

// Concurrent publications on one topic from one process are stored a batch
// to a JetStream message: each still gets its own offset, in the order
// stored, with its own data and publisher, live and in history.
func TestBatchedPublishes(t *testing.T) {
	srv := natstest.Start(t, true)
	a := newNode(t, srv.URL, natsbroker.Options{Stream: "BATCH", Prefix: "batch"})
	b := newNode(t, srv.URL, natsbroker.Options{Stream: "BATCH", Prefix: "batch"})
	a.subscribe("orders")
	const writers, each = 64, 50
	type pub struct{ data, publisher string }
	var mu sync.Mutex
	at := map[uint64]pub{}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				p := pub{data: fmt.Sprintf(`"%d.%d"`, w, i), publisher: "peer-" + strconv.Itoa(w)}
				pos, err := b.b.Publish(ctxT(t), "orders", []byte(p.data), pubsub.PublishOptions{HistorySize: 5000, Publisher: p.publisher})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if _, dup := at[pos.Offset]; dup {
					errs <- fmt.Errorf("offset %d given twice", pos.Offset)
				}
				at[pos.Offset] = p
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	const total = writers * each
	var epoch string
	for off := uint64(1); off <= total; off++ {
		p := a.next()
		if p.Offset != off || string(p.Data) != at[off].data || p.Publisher != at[off].publisher {
			t.Fatalf("delivery %d: %+v, published %+v there", off, p, at[off])
		}
		epoch = p.Epoch
	}
	a.quiet(100 * time.Millisecond)

	_, js := rawNATS(t, srv.URL)
	state := streamState(t, js, "BATCH")
	if state.Msgs >= total {
		t.Fatalf("%d messages stored for %d publications: nothing was batched", state.Msgs, total)
	}
	t.Logf("%d publications stored in %d messages", total, state.Msgs)

	// History from inside batches, by hops and by a consumer.
	for _, tc := range []struct {
		since uint64
		limit int
	}{{total - 3, 100}, {total - 20, 100}, {1000, 500}, {0, 1000}, {2500, 1000}} {
		h, err := a.b.History(ctxT(t), "orders", pubsub.HistoryRequest{Since: &pubsub.Position{Offset: tc.since, Epoch: epoch}, Limit: tc.limit, HistorySize: 5000})
		if err != nil {
			t.Fatal(err)
		}
		first := max(tc.since+1, total-uint64(tc.limit)+1) // the limit is at most total here
		if uint64(len(h.Publications)) != total-first+1 {
			t.Fatalf("since %d limit %d: %d publications, want %d", tc.since, tc.limit, len(h.Publications), total-first+1)
		}
		for i, p := range h.Publications {
			if p.Offset != first+uint64(i) || string(p.Data) != at[p.Offset].data || p.Publisher != at[p.Offset].publisher {
				t.Fatalf("since %d: publication %d is %+v", tc.since, i, p)
			}
		}
	}
}
