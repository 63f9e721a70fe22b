package client_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/openrpc"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// In a package the server and its clients both import:
type (
	HelloParams struct {
		Name string `json:"name"`
	}
	HelloResult struct {
		Greeting string `json:"greeting"`
	}
)

var Hello = rpc.NewMethod[HelloParams, HelloResult]("hello")

// helloServer serves Hello, with discovery on. (A real server comes from
// the server package: server.New(mux).)
func helloServer() *httptest.Server {
	mux := handler.NewMux()
	handler.Register(mux, Hello, func(_ context.Context, p HelloParams) (HelloResult, error) {
		return HelloResult{Greeting: "hello, " + p.Name}, nil
	})
	mux.EnableDiscovery(openrpc.Info{Title: "hello", Version: "1.0.0"})
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := transport.Accept(w, r, &transport.AcceptOptions{Subprotocols: rpc.Subprotocols()})
		if err != nil {
			return
		}
		_, _ = rpc.New(conn, rpc.WithHandler(mux))
	}))
}

// CallMethod takes only the declared params and returns the declared
// result.
func ExampleCallMethod() {
	srv := helloServer()
	defer srv.Close()
	ctx := context.Background()
	c, err := client.Dial(ctx, srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	res, err := client.CallMethod(ctx, c, Hello, HelloParams{Name: "gopher"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Greeting)
	// Output: hello, gopher
}

// Discover lists the server's methods, with the schemas of typed ones.
func ExampleDiscover() {
	srv := helloServer()
	defer srv.Close()
	ctx := context.Background()
	c, err := client.Dial(ctx, srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	doc, err := client.Discover(ctx, c)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range doc.Methods {
		params := doc.Resolve(m.Params[0].Schema)
		fmt.Println(doc.Info.Title, m.Name, params.Required, doc.Resolve(m.Result.Schema).Required)
	}
	// Output: hello hello [name] [greeting]
}
