package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// countdown is a streaming method: from n, its handler sends n, n-1, ... 1.
var countdown = rpc.NewStreamMethod[int, int]("countdown")

// A stream: the handler sends many results for one call, paced by the
// caller's credit (here at most 2 ahead of those read), and the caller
// reads them in order, typed, until the call ends.
func ExampleClient_Stream() {
	mux := handler.NewMux()
	handler.RegisterStream(mux, countdown, func(ctx context.Context, from int, send func(int) error) error {
		for i := from; i > 0; i-- {
			if err := send(i); err != nil { // blocks while the credit is used up
				return err
			}
		}
		return nil
	})
	srv, err := server.New(mux)
	if err != nil {
		fmt.Println(err)
		return
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()

	ctx := context.Background()
	c, err := client.Dial(ctx, hs.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	s, err := countdown.Stream(ctx, c, 3, rpc.WithWindow(2))
	if err != nil {
		fmt.Println(err)
		return
	}
	for n, err := range s.All() {
		if err != nil {
			fmt.Println("stream failed:", err)
			return
		}
		fmt.Println(n)
	}
	fmt.Println("liftoff")
	// Output:
	// 3
	// 2
	// 1
	// liftoff
}
