package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// A server with one typed method, called by a client. What the server
// shares with its connections and with clients (limits, heartbeat, codecs,
// logger) is set with the options of package rpc; what only a server has,
// with this package's.
func ExampleNew() {
	mux := handler.NewMux()
	mux.Handle("greet", handler.Func(func(ctx context.Context, name string) (string, error) {
		return "hello " + name, nil
	}))
	srv, err := server.New(mux,
		rpc.WithMaxInFlight(16),   // shared: per connection
		server.WithMaxConns(1000), // the server's own
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	ctx := context.Background()
	c, err := client.Dial(ctx, "ws://"+ln.Addr().String()+"/rpc", client.WithReconnect(false))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	var out string
	fmt.Println(c.Call(ctx, "greet", "gopher", &out), out)

	p := c.Peer()                  // the client's connection
	fmt.Println(srv.Shutdown(ctx)) // drains, then closes with 1012
	<-p.Done()
	fmt.Println(transport.CloseStatus(p.Err()))
	// Output:
	// <nil> hello gopher
	// <nil>
	// StatusServiceRestart
}

// A whoami handler: who is calling is on the request's peer, the
// connection: its principal (from WithAuth, here), subprotocol, handshake
// headers and address.
func ExampleWithAuth() {
	whoami := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		p := req.Peer()
		host, _, _ := net.SplitHostPort(p.RemoteAddr().String())
		return json.Marshal(struct {
			Principal   any    `json:"principal"`
			Subprotocol string `json:"subprotocol"`
			Agent       string `json:"agent"`
			Loopback    bool   `json:"loopback"`
		}{p.Session().Principal(), p.Subprotocol(), p.Header().Get("X-Agent"), net.ParseIP(host).IsLoopback()})
	})
	srv, err := server.New(whoami, server.WithAuth(func(r *http.Request) (any, error) {
		user, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return nil, server.ErrUnauthorized
		}
		return user, nil
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()

	ctx := context.Background()
	c, err := client.Dial(ctx, "ws://"+ln.Addr().String()+"/rpc",
		client.WithHeader(http.Header{"Authorization": {"Bearer alice"}, "X-Agent": {"example/1.0"}}))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	var who json.RawMessage
	if err := c.Call(ctx, "whoami", nil, &who); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(who))
	// Output:
	// {"principal":"alice","subprotocol":"wsrpc.v1","agent":"example/1.0","loopback":true}
}

// A handler reaches its Server from its ctx, to broadcast to every
// connection.
func ExampleFromContext() {
	mux := handler.NewMux()
	mux.Handle("announce", handler.Func(func(ctx context.Context, text string) (int, error) {
		return server.FromContext(ctx).Broadcast(ctx, "news", []string{text}, nil)
	}))
	srv, err := server.New(mux)
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()

	ctx := context.Background()
	news := make(chan string, 1)
	c, err := client.Dial(ctx, "ws://"+ln.Addr().String()+"/rpc",
		rpc.WithHandler(rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
			news <- req.Method + " " + string(req.Params)
			return nil, nil
		})))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	var n int
	fmt.Println(c.Call(ctx, "announce", "release 1.2 is out", &n), n)
	fmt.Println(<-news)
	// Output:
	// <nil> 1
	// news ["release 1.2 is out"]
}
