package natsbroker_test

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wsrpc/wsrpc/internal/natstest"
	"github.com/wsrpc/wsrpc/natsbroker"
	"github.com/wsrpc/wsrpc/pubsub"
)

// checkRun checks that n delivers topic's publications first..last in
// offset order, each once, all of epoch, with data "<offset>" unless data
// says otherwise.
func checkRun(t *testing.T, n *node, topic string, first, last uint64, epoch string) {
	t.Helper()
	for want := first; want <= last; want++ {
		p := n.next()
		if p.Topic != topic || p.Offset != want || p.Epoch != epoch {
			t.Fatalf("delivered %s offset %d epoch %q, want %s offset %d epoch %q", p.Topic, p.Offset, p.Epoch, topic, want, epoch)
		}
	}
}

func TestFanoutAcrossProcesses(t *testing.T) {
	srv := natstest.Start(t, true)
	a := newNode(t, srv.URL, natsbroker.Options{})
	b := newNode(t, srv.URL, natsbroker.Options{})
	if a.b.LiveOnly() {
		t.Fatal("a broker on a JetStream server is live only")
	}
	a.subscribe("news.eu")
	var epoch string
	for i := 1; i <= 100; i++ {
		pos := b.publish("news.eu", strconv.Itoa(i), 10)
		if pos.Offset != uint64(i) || pos.Epoch == "" || epoch != "" && pos.Epoch != epoch {
			t.Fatalf("publication %d got position %+v (epoch so far %q)", i, pos, epoch)
		}
		epoch = pos.Epoch
	}
	for i := uint64(1); i <= 100; i++ {
		p := a.next()
		if p.Offset != i || p.Epoch != epoch || string(p.Data) != strconv.FormatUint(i, 10) {
			t.Fatalf("delivery %d: %+v", i, p)
		}
	}
	b.quiet(100 * time.Millisecond) // b did not subscribe
}

// Three processes publish on one topic at once: offsets stay unique and
// contiguous, and a fourth receives every publication once, in order.
func TestConcurrentPublishersShareOffsets(t *testing.T) {
	srv := natstest.Start(t, true)
	sub := newNode(t, srv.URL, natsbroker.Options{})
	sub.subscribe("orders")
	const each = 150
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[uint64]string{}
	errs := make(chan error, 3)
	for p := range 3 {
		pub := newNode(t, srv.URL, natsbroker.Options{})
		wg.Go(func() {
			for i := range each {
				data := fmt.Sprintf(`"%d-%d"`, p, i)
				pos, err := pub.b.Publish(ctxT(t), "orders", []byte(data), pubsub.PublishOptions{HistorySize: 100})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if prev, dup := got[pos.Offset]; dup {
					errs <- fmt.Errorf("offset %d given to %s and %s", pos.Offset, prev, data)
				}
				got[pos.Offset] = data
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for off := uint64(1); off <= 3*each; off++ {
		p := sub.next()
		if p.Offset != off || string(p.Data) != got[off] {
			t.Fatalf("delivery %d: offset %d data %s, publisher was told %s", off, p.Offset, p.Data, got[off])
		}
	}
	sub.quiet(100 * time.Millisecond)
}

func TestHistoryAcrossProcesses(t *testing.T) {
	srv := natstest.Start(t, true)
	a := newNode(t, srv.URL, natsbroker.Options{})
	b := newNode(t, srv.URL, natsbroker.Options{})
	ctx := ctxT(t)
	var top pubsub.Position
	for i := 1; i <= 20; i++ {
		top = b.publish("news.eu", strconv.Itoa(i), 5)
	}
	h, err := a.b.History(ctx, "news.eu", pubsub.HistoryRequest{HistorySize: 5})
	if err != nil || h.Top != top || len(h.Publications) != 0 || h.Live {
		t.Fatalf("top only: %+v, %v; want top %+v", h, err, top)
	}
	for _, tc := range []struct {
		since      uint64
		limit      int
		first, end uint64
	}{
		{since: 10, limit: 100, first: 16, end: 20}, // the history keeps 5
		{since: 17, limit: 100, first: 18, end: 20},
		{since: 10, limit: 2, first: 19, end: 20}, // the most recent
		{since: 20, limit: 100, first: 0, end: 0},
	} {
		h, err := a.b.History(ctx, "news.eu", pubsub.HistoryRequest{Since: &pubsub.Position{Offset: tc.since, Epoch: top.Epoch}, Limit: tc.limit, HistorySize: 5})
		if err != nil {
			t.Fatal(err)
		}
		var offs []uint64
		for _, p := range h.Publications {
			offs = append(offs, p.Offset)
			if string(p.Data) != strconv.FormatUint(p.Offset, 10) || p.Epoch != top.Epoch || p.Topic != "news.eu" {
				t.Fatalf("since %d: publication %+v", tc.since, p)
			}
		}
		var want []uint64
		for o := tc.first; tc.first > 0 && o <= tc.end; o++ {
			want = append(want, o)
		}
		if fmt.Sprint(offs) != fmt.Sprint(want) || h.Top != top {
			t.Fatalf("since %d limit %d: offsets %v top %+v, want %v top %+v", tc.since, tc.limit, offs, h.Top, want, top)
		}
	}
	// Another epoch recovers nothing.
	h, err = a.b.History(ctx, "news.eu", pubsub.HistoryRequest{Since: &pubsub.Position{Offset: 3, Epoch: "0ld3p0ch"}, Limit: 100, HistorySize: 5})
	if err != nil || len(h.Publications) != 0 || h.Top != top {
		t.Fatalf("other epoch: %+v, %v", h, err)
	}
	// A topic with no publication yet: offset 0, its epoch to come.
	h, err = a.b.History(ctx, "news.none", pubsub.HistoryRequest{HistorySize: 5})
	if err != nil || h.Top != (pubsub.Position{}) || h.Live {
		t.Fatalf("empty topic: %+v, %v", h, err)
	}
}

func TestHistoryTTL(t *testing.T) {
	srv := natstest.Start(t, true)
	a := newNode(t, srv.URL, natsbroker.Options{})
	ctx := ctxT(t)
	first, err := a.b.Publish(ctx, "ttl", []byte("1"), pubsub.PublishOptions{HistorySize: 10, HistoryTTL: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	top, err := a.b.Publish(ctx, "ttl", []byte("2"), pubsub.PublishOptions{HistorySize: 10, HistoryTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	since := pubsub.Position{Epoch: first.Epoch}
	h, err := a.b.History(ctx, "ttl", pubsub.HistoryRequest{Since: &since, Limit: 10, HistorySize: 10})
	if err != nil || len(h.Publications) != 1 || h.Publications[0].Offset != 2 || h.Top != top {
		t.Fatalf("history %+v, %v: want only offset 2 (offset 1 expired)", h, err)
	}
}

// Overlapping subscriptions of one process receive a publication once.
func TestOverlappingPatternsDeliverOnce(t *testing.T) {
	srv := natstest.Start(t, true)
	a := newNode(t, srv.URL, natsbroker.Options{})
	b := newNode(t, srv.URL, natsbroker.Options{})
	a.subscribe("chat.>")
	a.subscribe("chat.room1")
	a.subscribe("chat.*")
	b.publish("chat.room1", `"x"`, 10)
	b.publish("chat.room2", `"y"`, 10)
	b.publish("chat.a.b", `"z"`, 10)
	seen := map[string]int{}
	for range 3 {
		p := a.next()
		seen[p.Topic]++
	}
	a.quiet(200 * time.Millisecond)
	if seen["chat.room1"] != 1 || seen["chat.room2"] != 1 || seen["chat.a.b"] != 1 {
		t.Fatalf("deliveries per topic %v", seen)
	}
	if a.b.Stats().Duplicates < 3 {
		t.Fatalf("stats %+v: the duplicates NATS delivered were not counted", a.b.Stats())
	}
	if ev := a.b.BrokerEvents(); ev["duplicates"] < 3 || len(ev) != 3 {
		t.Fatalf("BrokerEvents %v", ev)
	}
	// Unsubscribing is counted: one Unsubscribe of two Subscribes keeps it.
	a.subscribe("chat.room1")
	if err := a.b.Unsubscribe(ctxT(t), "chat.room1"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"chat.>", "chat.*"} {
		if err := a.b.Unsubscribe(ctxT(t), p); err != nil {
			t.Fatal(err)
		}
	}
	b.publish("chat.room1", `"w"`, 10)
	if p := a.next(); p.Topic != "chat.room1" || p.Offset != 2 {
		t.Fatalf("after unsubscribing the patterns: %+v", p)
	}
	if err := a.b.Unsubscribe(ctxT(t), "chat.room1"); err != nil {
		t.Fatal(err)
	}
	b.publish("chat.room1", `"v"`, 10)
	a.quiet(200 * time.Millisecond)
}

func TestPrefixesKeepApplicationsApart(t *testing.T) {
	srv := natstest.Start(t, true)
	a1 := newNode(t, srv.URL, natsbroker.Options{Prefix: "app1"})
	a2 := newNode(t, srv.URL, natsbroker.Options{Prefix: "app2"})
	a1.subscribe("news")
	a2.subscribe("news")
	p1 := a1.publish("news", "1", 10)
	a2.publish("news", "2", 10)
	a2.publish("news", "3", 10)
	if p := a1.next(); string(p.Data) != "1" || p.Offset != 1 || p.Epoch != p1.Epoch {
		t.Fatalf("app1 got %+v", p)
	}
	a1.quiet(200 * time.Millisecond)
	if p := a2.next(); string(p.Data) != "2" || p.Offset != 1 {
		t.Fatalf("app2 got %+v", p)
	}
	if _, err := natsbroker.Connect(srv.URL, natsbroker.Options{Prefix: "bad prefix"}); err == nil {
		t.Fatal("a prefix with a space was accepted")
	}
}

// Without JetStream, or for a topic without history, publications are
// live only: delivered, with no position, and History says so.
func TestLiveOnly(t *testing.T) {
	for _, js := range []bool{false, true} {
		t.Run(fmt.Sprintf("jetstream=%v", js), func(t *testing.T) {
			srv := natstest.Start(t, js)
			a := newNode(t, srv.URL, natsbroker.Options{})
			b := newNode(t, srv.URL, natsbroker.Options{})
			if a.b.LiveOnly() == js {
				t.Fatalf("LiveOnly() = %v on a server with JetStream %v", a.b.LiveOnly(), js)
			}
			a.subscribe("live")
			history := 10
			if js {
				history = 0 // a topic without history
			}
			pos, err := b.b.Publish(ctxT(t), "live", []byte("1"), pubsub.PublishOptions{HistorySize: history, Publisher: "peer-1"})
			if err != nil || pos != (pubsub.Position{}) {
				t.Fatalf("publish: %+v, %v", pos, err)
			}
			if p := a.next(); string(p.Data) != "1" || p.Offset != 0 || p.Epoch != "" || p.Publisher != "peer-1" {
				t.Fatalf("delivered %+v", p)
			}
			h, err := a.b.History(ctxT(t), "live", pubsub.HistoryRequest{Since: &pubsub.Position{Offset: 1, Epoch: "e"}, Limit: 10, HistorySize: history})
			if err != nil || !h.Live || len(h.Publications) != 0 {
				t.Fatalf("history: %+v, %v", h, err)
			}
		})
	}
}

// While NATS is down, a publish fails at once with ErrUnavailable.
func TestUnavailableFailsFast(t *testing.T) {
	srv := natstest.Start(t, true)
	a := newNode(t, srv.URL, natsbroker.Options{Timeout: 30 * time.Second})
	a.publish("t", "1", 10)
	srv.Stop()
	eventually(t, "the broker to see NATS gone", func() bool {
		_, err := a.b.Publish(ctxT(t), "t", []byte("2"), pubsub.PublishOptions{HistorySize: 10})
		return errors.Is(err, natsbroker.ErrUnavailable)
	})
	for _, history := range []int{0, 10} {
		start := time.Now()
		_, err := a.b.Publish(ctxT(t), "t", []byte("3"), pubsub.PublishOptions{HistorySize: history})
		if !errors.Is(err, natsbroker.ErrUnavailable) {
			t.Fatalf("history %d: %v, want ErrUnavailable", history, err)
		}
		if d := time.Since(start); d > 10*time.Second { // far below the 30 s Timeout
			t.Fatalf("history %d: failing took %v", history, d)
		}
	}
	if err := a.b.Subscribe(ctxT(t), "x"); !errors.Is(err, natsbroker.ErrUnavailable) {
		t.Fatalf("subscribe: %v", err)
	}
	if _, err := a.b.History(ctxT(t), "t", pubsub.HistoryRequest{HistorySize: 10}); !errors.Is(err, natsbroker.ErrUnavailable) {
		t.Fatalf("history: %v", err)
	}
}

// nats-server restarts (same store): subscriptions come back, offsets and
// the epoch continue, nothing published is lost.
func TestNATSRestart(t *testing.T) {
	srv := natstest.Start(t, true)
	a := newNode(t, srv.URL, natsbroker.Options{})
	b := newNode(t, srv.URL, natsbroker.Options{})
	a.subscribe("news")
	a.subscribe("feed.>")
	first := b.publish("news", "1", 100)
	b.publish("feed.x", "1", 100)
	srv.Restart(t)
	// b may publish before a is back: a catches up on both.
	eventually(t, "b to reconnect", func() bool {
		_, err := b.b.Publish(ctxT(t), "news", []byte("2"), pubsub.PublishOptions{HistorySize: 100})
		return err == nil
	})
	pos := b.publish("feed.x", "2", 100)
	if pos.Offset != 2 {
		t.Fatalf("feed.x after the restart: %+v", pos)
	}
	got := map[string][]uint64{}
	for range 4 {
		p := a.next()
		if p.Topic == "news" && p.Epoch != first.Epoch {
			t.Fatalf("epoch changed across the restart: %q then %q", first.Epoch, p.Epoch)
		}
		got[p.Topic] = append(got[p.Topic], p.Offset)
	}
	if fmt.Sprint(got["news"]) != "[1 2]" || fmt.Sprint(got["feed.x"]) != "[1 2]" {
		t.Fatalf("delivered %v", got)
	}
}

// One process loses its connection to NATS while another publishes: when
// it is back, it delivers what it missed from JetStream, without waiting
// for a new publication (exact topics), or before the next one (patterns).
func TestCatchUpAfterLostConnection(t *testing.T) {
	srv := natstest.Start(t, true)
	px := newProxy(t, "127.0.0.1:"+strconv.Itoa(srv.Port))
	a := newNode(t, px.url(), natsbroker.Options{}, nats.ReconnectWait(50*time.Millisecond))
	b := newNode(t, srv.URL, natsbroker.Options{})
	a.subscribe("news")
	a.subscribe("chat.>")
	top := b.publish("news", "1", 100)
	b.publish("chat.x", "1", 100)
	checkRun(t, a, "news", 1, 1, top.Epoch)
	if p := a.next(); p.Topic != "chat.x" || p.Offset != 1 {
		t.Fatalf("%+v", p)
	}
	px.cut()
	eventually(t, "a to see the connection lost", func() bool { return !a.b.Connected() })
	for i := 2; i <= 6; i++ {
		b.publish("news", strconv.Itoa(i), 100)
		b.publish("chat.x", strconv.Itoa(i), 100)
	}
	px.heal()
	// Caught up with nothing new published, in order per topic.
	got := map[string][]uint64{}
	for range 10 {
		p := a.next()
		got[p.Topic] = append(got[p.Topic], p.Offset)
	}
	if fmt.Sprint(got["news"]) != "[2 3 4 5 6]" || fmt.Sprint(got["chat.x"]) != "[2 3 4 5 6]" {
		t.Fatalf("caught up %v", got)
	}
	b.publish("chat.x", "7", 100)
	if p := a.next(); p.Topic != "chat.x" || p.Offset != 7 {
		t.Fatalf("after catching up: %+v", p)
	}
	a.quiet(200 * time.Millisecond)
	if s := a.b.Stats(); s.Filled != 10 {
		t.Fatalf("stats %+v: want 10 publications filled from JetStream", s)
	}
}

// A recreated stream is a new epoch.
func TestRecreatedStreamIsNewEpoch(t *testing.T) {
	srv := natstest.Start(t, true)
	a := newNode(t, srv.URL, natsbroker.Options{Stream: "EPOCHS"})
	first := a.publish("news", "1", 10)
	_, js := rawNATS(t, srv.URL)
	if err := js.DeleteStream(ctxT(t), "EPOCHS"); err != nil {
		t.Fatal(err)
	}
	_ = a.b.Close()
	b := newNode(t, srv.URL, natsbroker.Options{Stream: "EPOCHS"})
	again := b.publish("news", "1", 10)
	if again.Offset != 1 || again.Epoch == first.Epoch || again.Epoch == "" {
		t.Fatalf("after recreating the stream: %+v, before %+v", again, first)
	}
}
