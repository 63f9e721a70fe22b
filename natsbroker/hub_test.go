package natsbroker_test

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/internal/natstest"
	"github.com/wsrpc/wsrpc/natsbroker"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// process is a wsrpc server with a hub on a NATS broker of its own, as one
// process of a deployment has.
type process struct {
	hub *pubsub.Hub
	url string
}

func newProcess(t *testing.T, natsURL string, opts natsbroker.Options) *process {
	t.Helper()
	b, err := natsbroker.Connect(natsURL, opts)
	if err != nil {
		t.Fatal(err)
	}
	hub, err := pubsub.New(pubsub.WithBroker(b), pubsub.WithRule("news.>", pubsub.Rule{HistorySize: 100}))
	if err != nil {
		_ = b.Close()
		t.Fatal(err)
	}
	srv, err := server.New(rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) { return nil, nil }), server.WithHub(hub))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
		_ = hub.Close() // closes the broker
	})
	return &process{hub: hub, url: "ws" + strings.TrimPrefix(hs.URL, "http")}
}

func nextPub(t *testing.T, s *client.Subscription) pubsub.Publication {
	t.Helper()
	select {
	case p := <-s.C():
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no publication in 10s")
	}
	return pubsub.Publication{}
}

// Go code publishes on each of three processes; a subscriber on one gets
// all in offset order; after leaving, it recovers what it missed from
// another process.
func TestHubsRecoverOnAnotherProcess(t *testing.T) {
	nats := natstest.Start(t, true)
	procs := []*process{newProcess(t, nats.URL, natsbroker.Options{}), newProcess(t, nats.URL, natsbroker.Options{}), newProcess(t, nats.URL, natsbroker.Options{})}
	ctx := ctxT(t)
	c := dialClient(t, procs[0].url)
	s, err := c.Subscribe(ctx, "news.eu")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 9; i++ {
		if _, err := procs[i%3].hub.Publish(ctx, "news.eu", i); err != nil {
			t.Fatal(err)
		}
	}
	var last pubsub.Position
	for i := 1; i <= 9; i++ {
		p := nextPub(t, s)
		if p.Offset != uint64(i) || string(p.Data) != strconv.Itoa(i) || p.Gap {
			t.Fatalf("delivery %d: %+v", i, p)
		}
		last = p.Position()
	}
	_ = c.Close()
	for i := 10; i <= 14; i++ {
		if _, err := procs[i%3].hub.Publish(ctx, "news.eu", i); err != nil {
			t.Fatal(err)
		}
	}
	c2 := dialClient(t, procs[2].url)
	s2, err := c2.Subscribe(ctx, "news.eu", client.Since(last))
	if err != nil {
		t.Fatal(err)
	}
	for i := 10; i <= 14; i++ {
		p := nextPub(t, s2)
		if p.Offset != uint64(i) || string(p.Data) != strconv.Itoa(i) || p.Gap {
			t.Fatalf("recovered %d: %+v", i, p)
		}
	}
	if _, err := procs[1].hub.Publish(ctx, "news.eu", 15); err != nil {
		t.Fatal(err)
	}
	if p := nextPub(t, s2); p.Offset != 15 || p.Gap {
		t.Fatalf("live after the recovery: %+v", p)
	}
}

// A topic without history on NATS is live only: a subscriber asking to
// recover is told it could not (the next publication is flagged Gap).
func TestHubLiveTopicSaysNoRecovery(t *testing.T) {
	nats := natstest.Start(t, false)
	a, b := newProcess(t, nats.URL, natsbroker.Options{}), newProcess(t, nats.URL, natsbroker.Options{})
	ctx := ctxT(t)
	c := dialClient(t, a.url)
	s, err := c.Subscribe(ctx, "news.eu", client.Since(pubsub.Position{Offset: 3, Epoch: "e"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.hub.Publish(ctx, "news.eu", "x"); err != nil {
		t.Fatal(err)
	}
	if p := nextPub(t, s); string(p.Data) != `"x"` || p.Offset != 0 || !p.Gap {
		t.Fatalf("%+v: want a live publication flagged as after a gap", p)
	}
}
