package integration

import (
	"context"
	"net"
	"testing"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/server"
)

// TestREADMEExample is the README's server-and-client example, on a free
// port instead of 8080, so that the example is known to compile and work.
func TestREADMEExample(t *testing.T) {
	ctx := context.Background()

	mux := handler.NewMux()
	mux.Handle("add", handler.Func(func(ctx context.Context, xs []float64) (float64, error) {
		sum := 0.0
		for _, x := range xs {
			sum += x
		}
		return sum, nil
	}))
	srv, _ := server.New(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0") // README: 127.0.0.1:8080
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown(ctx) // drains every call in flight

	c, err := client.Dial(ctx, "ws://"+ln.Addr().String()+"/rpc")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var sum float64
	err = c.Call(ctx, "add", []float64{1, 2, 3.5}, &sum) // sum == 6.5
	if err != nil || sum != 6.5 {
		t.Fatalf("add = %v, %v", sum, err)
	}
}
