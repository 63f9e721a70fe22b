package server_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

func TestBroadcastToThousandConnections(t *testing.T) {
	const n = 1000
	s := newServer(t)
	url := start(t, s)
	var got sync.WaitGroup
	got.Add(n)
	note := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		if req.Method == "tick" && string(req.Params) == `{"seq":1}` {
			got.Done()
		}
		return nil, nil
	})
	for range n {
		dial(t, url, nil, rpc.WithHandler(note))
	}
	waitFor(t, func() bool { return len(s.Conns()) >= n }, "not every connection was registered")
	sent, err := s.Broadcast(ctxT(t), "tick", map[string]int{"seq": 1}, nil)
	if err != nil || sent != n {
		t.Fatalf("Broadcast = %d, %v; want %d", sent, err, n)
	}
	done := make(chan struct{})
	go func() { got.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("not every connection received the broadcast")
	}
}

// TestBusyRejectedQuickly: with the backlog off, a call beyond MaxInFlight
// is refused at once.
func TestBusyRejectedQuickly(t *testing.T) {
	release := make(chan struct{})
	mux := handler.NewMux()
	mux.Handle("hold", handler.NoParams(func(ctx context.Context) (bool, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return true, nil
	}))
	s, err := server.New(mux, rpc.WithMaxInFlight(3), rpc.WithBacklog(-1, 0))
	if err != nil {
		t.Fatal(err)
	}
	url := start(t, s)
	defer close(release)
	p := dial(t, url, nil)
	reply := make(chan *rpc.Response, 3)
	for range 3 {
		if err := p.Send(ctxT(t), &rpc.Request{Method: "hold", Reply: reply}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return len(s.Conns()) > 0 && s.Conns()[0].Stats().InFlight >= 3 }, "calls never started")
	// The fourth is refused at once rather than queued behind the others:
	// it returns while they are still held.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Call(ctx, "hold", nil, nil); rpc.CodeOf(err) != rpc.CodeBusy {
		t.Fatalf("fourth call = %v, want busy", err)
	}
}

func TestBroadcastParams(t *testing.T) {
	s := newServer(t)
	url := start(t, s)
	got := make(chan string, 4)
	note := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		got <- string(req.Params)
		return nil, nil
	})
	dial(t, url, nil, rpc.WithHandler(note))
	dial(t, url, &transport.DialOptions{Subprotocols: []string{rpc.SubprotocolJSON}}, rpc.WithHandler(note))
	waitFor(t, func() bool { return len(s.Conns()) >= 2 }, "connections not registered")
	n, err := s.Broadcast(ctxT(t), "raw", rpc.Raw(`{"already":"encoded"}`), nil)
	if err != nil || n != 2 {
		t.Fatalf("Broadcast(Raw) = %d, %v", n, err)
	}
	for range 2 {
		if p := <-got; p != `{"already":"encoded"}` {
			t.Fatalf("Raw params arrived as %s", p)
		}
	}
	if n, err := s.Broadcast(ctxT(t), "scalar", "just a string", nil); err == nil || n != 0 {
		t.Fatalf("Broadcast of a scalar to a JSON-RPC connection = %d, %v; want an error before sending", n, err)
	}
}

// TestBroadcastNotHeldUpByAStalledClient: one client that never reads does
// not keep the notification from the others.
func TestBroadcastNotHeldUpByAStalledClient(t *testing.T) {
	s := newServer(t, rpc.WithTransport(transport.ConnOptions{SendQueue: -1, WriteTimeout: 300 * time.Millisecond}))
	url := start(t, s)
	ctx := ctxT(t)
	// The stalled client: a raw connection whose Recv nobody drains.
	stalled, err := transport.Dial(ctx, url, &transport.DialOptions{Subprotocols: rpc.Subprotocols(),
		ConnOptions: transport.ConnOptions{RecvQueue: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.CloseNow()
	got := make(chan struct{}, 64)
	healthy := dial(t, url, nil, rpc.WithHandler(rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) {
		got <- struct{}{}
		return nil, nil
	})))
	_ = healthy
	waitFor(t, func() bool { return len(s.Conns()) >= 2 }, "connections not registered")
	big := rpc.Raw(`["` + strings.Repeat("x", 512<<10) + `"]`)
	for i := range 24 { // enough to fill the stalled client's socket buffers
		bctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		s.Broadcast(bctx, "big", big, nil)
		cancel()
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("broadcast %d never reached the healthy client", i)
		}
	}
}
