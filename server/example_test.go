package server_test

import (
	"context"
	"fmt"
	"net"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// A server with one typed method, called by a plain rpc peer (the client
// package adds reconnects and retries on top of this).
func ExampleNew() {
	mux := handler.NewMux()
	mux.Handle("greet", handler.Func(func(ctx context.Context, name string) (string, error) {
		return "hello " + name, nil
	}))
	srv, err := server.New(mux)
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)

	ctx := context.Background()
	conn, err := transport.Dial(ctx, "ws://"+ln.Addr().String()+"/rpc",
		&transport.DialOptions{Subprotocols: rpc.Subprotocols()})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := rpc.New(conn)
	var out string
	fmt.Println(p.Call(ctx, "greet", "gopher", &out), out)

	fmt.Println(srv.Shutdown(ctx)) // drains, then closes with 1012
	<-p.Done()
	fmt.Println(transport.CloseStatus(p.Err()))
	// Output:
	// <nil> hello gopher
	// <nil>
	// StatusServiceRestart
}
