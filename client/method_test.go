package client_test

import (
	"context"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/openrpc"
	"github.com/wsrpc/wsrpc/rpc"
)

// A declared API, as the package shared by a server and its clients holds
// it.
type (
	greetParams struct {
		Name string `json:"name"`
	}
	greetResult struct {
		Greeting string `json:"greeting"`
	}
)

var (
	typedGreet  = rpc.NewMethod[greetParams, greetResult]("greet")
	typedNote   = rpc.NewNotification[[]string]("note")
	typedCount  = rpc.NewStreamMethod[struct{ N int }, int]("count")
	clientAgent = rpc.NewMethod[struct{}, string]("client.agent")
)

func typedServer(notes chan<- string) *handler.Mux {
	mux := handler.NewMux()
	handler.Register(mux, typedGreet, func(_ context.Context, p greetParams) (greetResult, error) {
		return greetResult{Greeting: "hello, " + p.Name}, nil
	})
	handler.RegisterNotification(mux, typedNote, func(_ context.Context, words []string) error {
		notes <- strings.Join(words, " ")
		return nil
	})
	handler.RegisterStream(mux, typedCount, func(_ context.Context, in struct{ N int }, send func(int) error) error {
		for i := 1; i <= in.N; i++ {
			if err := send(i); err != nil {
				return err
			}
		}
		return nil
	})
	return mux
}

// The declared methods through a Client, over both codecs: calls,
// notifications, streams, a call from the server to the client, bad params,
// and discovery.
func TestTypedClient(t *testing.T) {
	for _, proto := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		t.Run(proto, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			notes := make(chan string, 1)
			mux := typedServer(notes)
			mux.EnableDiscovery(openrpc.Info{Title: "typed", Version: "1.0.0"})
			srv := newTestServer(t, mux)
			clientMux := handler.NewMux()
			handler.Register(clientMux, clientAgent, func(context.Context, struct{}) (string, error) { return "tester/1", nil })
			c, err := client.Dial(ctx, srv.url(), rpc.WithSubprotocols(proto), rpc.WithHandler(clientMux))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			got, err := client.CallMethod(ctx, c, typedGreet, greetParams{Name: "ann"}, client.Idempotent())
			if err != nil || got.Greeting != "hello, ann" {
				t.Errorf("CallMethod: %+v, %v", got, err)
			}
			if got, err := typedGreet.Call(ctx, c.Peer(), greetParams{Name: "bo"}); err != nil || got.Greeting != "hello, bo" {
				t.Errorf("Method.Call on the client's peer: %+v, %v", got, err)
			}
			if err := client.NotifyMethod(ctx, c, typedNote, []string{"a", "b"}); err != nil {
				t.Fatal(err)
			}
			if n := <-notes; n != "a b" {
				t.Errorf("note %q", n)
			}
			st, err := typedCount.Stream(ctx, c, struct{ N int }{3})
			if err != nil {
				t.Fatal(err)
			}
			var sum int
			for it, err := range st.All() {
				if err != nil {
					t.Fatal(err)
				}
				sum += it
			}
			if sum != 6 {
				t.Errorf("stream sum %d", sum)
			}
			agent, err := clientAgent.Call(ctx, srv.nextConn(t), struct{}{})
			if err != nil || agent != "tester/1" {
				t.Errorf("server to client: %q, %v", agent, err)
			}
			// What the compiler would refuse, sent by hand: -32602.
			if err := c.Call(ctx, typedGreet.Name(), []int{1}, nil); rpc.CodeOf(err) != rpc.CodeInvalidParams {
				t.Errorf("bad params: %v", err)
			}

			doc, err := client.Discover(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			if doc.Info.Title != "typed" || len(doc.Methods) != 3 {
				t.Fatalf("document %+v", doc)
			}
			m, ok := doc.Lookup("greet")
			if !ok || !m.Typed() || m.Result == nil {
				t.Fatalf("greet: %+v", m)
			}
			if p := doc.Resolve(m.Params[0].Schema); p.Properties["name"] == nil || p.Required[0] != "name" {
				t.Errorf("greet params %+v", p)
			}
			if m, _ := doc.Lookup("count"); !m.Stream {
				t.Errorf("count is not marked a stream: %+v", m)
			}
			if m, _ := doc.Lookup("note"); m.Result != nil {
				t.Errorf("note has a result: %+v", m)
			}
		})
	}
}

// A server that did not enable discovery answers rpc.discover with method
// not found.
func TestDiscoverOff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	srv := newTestServer(t, typedServer(nil))
	c, err := client.Dial(ctx, srv.url())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := client.Discover(ctx, c); rpc.CodeOf(err) != rpc.CodeMethodNotFound {
		t.Errorf("Discover: %v", err)
	}
}
