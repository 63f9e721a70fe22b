package server_test

import (
	"context"
	"testing"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// TestFromContext: a handler reaches its Server from its ctx, with no
// closure bound after New, and broadcasts through it to every connection,
// on each wire (binary, JSON-RPC, JSON-RPC without a subprotocol).
func TestFromContext(t *testing.T) {
	if server.FromContext(context.Background()) != nil {
		t.Fatal("FromContext of a context without a Server is not nil")
	}
	seen := make(chan *server.Server, 1)
	mux := handler.NewMux()
	mux.Handle("announce", handler.Func(func(ctx context.Context, text string) (int, error) {
		s := server.FromContext(ctx)
		seen <- s
		return s.Broadcast(ctx, "news", []string{text}, nil)
	}))
	s, err := server.New(mux)
	if err != nil {
		t.Fatal(err)
	}
	url := start(t, s)
	got := make(chan string, 3)
	note := rpc.WithHandler(rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
		got <- req.Method + " " + string(req.Params)
		return nil, nil
	}))
	a := dial(t, url, nil, note)
	dial(t, url, &transport.DialOptions{Subprotocols: []string{rpc.SubprotocolJSON}}, note)
	dial(t, url, &transport.DialOptions{}, note) // no subprotocol: JSON-RPC
	waitFor(t, func() bool { return len(s.Conns()) == 3 }, "connections not registered")

	var n int
	if err := a.Call(ctxT(t), "announce", "hello", &n); err != nil || n != 3 {
		t.Fatalf("announce = %d, %v; want 3", n, err)
	}
	if got := <-seen; got != s {
		t.Fatalf("FromContext in a handler = %p, want the Server %p", got, s)
	}
	for range 3 {
		if m := <-got; m != `news ["hello"]` {
			t.Fatalf("a client got %q", m)
		}
	}
}
