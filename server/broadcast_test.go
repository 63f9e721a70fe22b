package server_test

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/wstest"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
	"github.com/wsrpc/wsrpc/transport"
)

// TestBroadcastEncodesOnce: a broadcast to many connections allocates its
// message once per wire codec, not once per connection. The connections
// negotiate binary, JSON-RPC, or no subprotocol (JSON-RPC too: the same
// wire). The clients are raw peers that read nothing, so that the process's
// allocations are the server's.
func TestBroadcastEncodesOnce(t *testing.T) {
	s := newServer(t)
	url := start(t, s)
	const conns = 42
	for i := range conns {
		h := http.Header{}
		switch i % 3 {
		case 1:
			h.Set("Sec-WebSocket-Protocol", rpc.SubprotocolBinary)
		case 2:
			h.Set("Sec-WebSocket-Protocol", rpc.SubprotocolJSON)
		}
		p, _, err := wstest.DialPeer(ctxT(t), url, h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
	}
	waitFor(t, func() bool { return len(s.Conns()) == conns }, "connections not registered")
	const size = 256 << 10
	params := rpc.Raw(`["` + strings.Repeat("x", size) + `"]`)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n, err := s.Broadcast(ctxT(t), "big", params, nil)
	runtime.ReadMemStats(&after)
	if err != nil || n != conns {
		t.Fatalf("Broadcast = %d, %v; want %d", n, err, conns)
	}
	// Two encodings (binary and JSON, each in a pooled buffer of the next
	// size class), and each writer's small pooled batching buffer; a copy
	// per connection would be 42 × 256 KiB and more. A quarter of that is
	// the bound.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > conns*size/4 {
		t.Errorf("Broadcast to %d connections allocated %d KiB, want about 2 × %d KiB (one encoding per codec)", conns, alloc>>10, size>>10)
	}
}

// TestBroadcastClosesSlowReader: a client that never reads is closed with
// 1008 once its send queue passes the byte bound, and broadcasts keep
// reaching the others.
func TestBroadcastClosesSlowReader(t *testing.T) {
	ended := make(chan error, 4)
	s := newServer(t,
		rpc.WithTransport(transport.ConnOptions{MaxQueuedBytes: 1 << 20, WriteTimeout: -1, HeartbeatInterval: -1}),
		server.WithOnDisconnect(func(_ *rpc.Peer, err error) { ended <- err }))
	url := start(t, s)
	ctx := ctxT(t)
	stalled, err := transport.Dial(ctx, url, &transport.DialOptions{Subprotocols: rpc.Subprotocols(),
		ConnOptions: transport.ConnOptions{RecvQueue: -1, ReadLimit: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.CloseNow()
	got := make(chan struct{}, 1024)
	dial(t, url, nil, rpc.WithHandler(rpc.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) {
		got <- struct{}{}
		return nil, nil
	})))
	waitFor(t, func() bool { return len(s.Conns()) == 2 }, "connections not registered")
	big := rpc.Raw(`["` + strings.Repeat("x", 256<<10) + `"]`)
	deadline := time.Now().Add(15 * time.Second)
	for len(s.Conns()) == 2 {
		if time.Now().After(deadline) {
			t.Fatal("the client that never reads was never closed")
		}
		if _, err := s.Broadcast(ctx, "big", big, nil); err != nil {
			t.Fatal(err)
		}
		<-got // the healthy client keeps receiving
	}
	err = <-ended
	var ce *transport.CloseError
	if !errors.As(err, &ce) || ce.Code != transport.StatusPolicyViolation || !errors.Is(err, transport.ErrSlowReader) {
		t.Fatalf("slow client ended with %v, want 1008 wrapping ErrSlowReader", err)
	}
}
