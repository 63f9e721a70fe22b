package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/openrpc"
	"github.com/wsrpc/wsrpc/rpc"
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

// dialHello starts a server of Hello, with discovery on, and dials it. (A
// real server comes from the server package: server.New(mux).)
func dialHello(ctx context.Context) (c *client.Client, stop func(), err error) {
	mux := handler.NewMux()
	handler.Register(mux, Hello, func(_ context.Context, p HelloParams) (HelloResult, error) {
		return HelloResult{Greeting: "hello, " + p.Name}, nil
	})
	mux.EnableDiscovery(openrpc.Info{Title: "hello", Version: "1.0.0"})
	srv := httptest.NewServer(rpcOverHTTP(mux))
	c, err = client.Dial(ctx, srv.URL)
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return c, func() { c.Close(); srv.Close() }, nil
}

// CallMethod takes only the declared params and returns the declared
// result.
func ExampleCallMethod() {
	ctx := context.Background()
	c, stop, err := dialHello(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

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
	ctx := context.Background()
	c, stop, err := dialHello(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

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
