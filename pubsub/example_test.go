package pubsub_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// A hub mounted on a server, a client subscribed to a pattern, and Go code
// publishing; then a client that comes back later recovers what it missed
// from the topic's history.
func Example() {
	hub, _ := pubsub.New(pubsub.WithRule("news.>", pubsub.Rule{HistorySize: 100}))
	defer hub.Close()
	srv, _ := server.New(rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) { return nil, nil }),
		server.WithHub(hub))
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	ctx := context.Background()

	c, _ := client.Dial(ctx, url)
	defer c.Close()
	sub, _ := c.Subscribe(ctx, "news.*")
	hub.Publish(ctx, "news.eu", "hello")
	hub.Publish(ctx, "news.us", "world")
	for range 2 {
		p := <-sub.C()
		fmt.Println(p.Topic, p.Offset, string(p.Data))
	}

	// Later: another client recovers news.eu from before it subscribed.
	hub.Publish(ctx, "news.eu", "again")
	late, _ := client.Dial(ctx, url)
	defer late.Close()
	rec, _ := late.Subscribe(ctx, "news.eu", client.Since(pubsub.Position{Offset: 0})) // the whole current epoch
	for range 2 {
		p := <-rec.C()
		fmt.Println(p.Topic, p.Offset, string(p.Data), p.Gap)
	}
	// Output:
	// news.eu 1 "hello"
	// news.us 1 "world"
	// news.eu 1 "hello" false
	// news.eu 2 "again" false
}
