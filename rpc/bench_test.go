package rpc_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/internal/echobench"
	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// BenchmarkCall measures calls on one connection beside the raw echo of the
// same payload, directly on coder/websocket and over the transport package,
// so one run gives the ratios:
//
//	go test -run '^$' -bench Call -benchtime 2s ./rpc
//
// "callers=64" runs 64 goroutines calling at once; the raw echo's matching
// figure is "pipelined" (every message in flight). net/rpc over plain TCP is
// the reference a Go user would otherwise reach for.
func BenchmarkCall(b *testing.B) {
	for _, size := range []int{64, 4096} {
		sz := fmt.Sprintf("size=%dB", size)
		b.Run("impl=coder-echo/callers=1/"+sz, func(b *testing.B) { echobench.Coder(b, size, false) })
		b.Run("impl=transport-echo/callers=1/"+sz, func(b *testing.B) { echobench.Transport(b, size, false) })
		b.Run("impl=binary/callers=1/"+sz, func(b *testing.B) { benchCall(b, rpc.SubprotocolBinary, size, 1) })
		b.Run("impl=jsonrpc/callers=1/"+sz, func(b *testing.B) { benchCall(b, rpc.SubprotocolJSON, size, 1) })
		b.Run("impl=client-binary/callers=1/"+sz, func(b *testing.B) { benchClientCall(b, rpc.SubprotocolBinary, size, 1) })
		b.Run("impl=client-jsonrpc/callers=1/"+sz, func(b *testing.B) { benchClientCall(b, rpc.SubprotocolJSON, size, 1) })
		b.Run("impl=netrpc-tcp/callers=1/"+sz, func(b *testing.B) { benchNetRPC(b, size, 1) })
		b.Run("impl=coder-echo/callers=pipelined/"+sz, func(b *testing.B) { echobench.Coder(b, size, true) })
		b.Run("impl=transport-echo/callers=pipelined/"+sz, func(b *testing.B) { echobench.Transport(b, size, true) })
		b.Run("impl=binary/callers=64/"+sz, func(b *testing.B) { benchCall(b, rpc.SubprotocolBinary, size, 64) })
		b.Run("impl=jsonrpc/callers=64/"+sz, func(b *testing.B) { benchCall(b, rpc.SubprotocolJSON, size, 64) })
		b.Run("impl=client-binary/callers=64/"+sz, func(b *testing.B) { benchClientCall(b, rpc.SubprotocolBinary, size, 64) })
		b.Run("impl=client-jsonrpc/callers=64/"+sz, func(b *testing.B) { benchClientCall(b, rpc.SubprotocolJSON, size, 64) })
		b.Run("impl=netrpc-tcp/callers=64/"+sz, func(b *testing.B) { benchNetRPC(b, size, 64) })
	}
}

// benchClientCall is benchCall through the front door: client.Dial and
// Client.Call, against the same echo peer.
func benchClientCall(b *testing.B, subprotocol string, size, callers int) {
	echo := rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) { return req.Params, nil })
	var served sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := transport.Accept(w, r, &transport.AcceptOptions{Subprotocols: []string{subprotocol}})
		if err != nil {
			return
		}
		p, err := rpc.New(conn, rpc.WithHandler(echo), rpc.WithMaxInFlight(1000))
		if err != nil {
			conn.CloseNow()
			return
		}
		served.Go(func() {
			<-p.Done()
			p.Wait()
		})
	}))
	defer func() {
		srv.Close()
		served.Wait()
	}()
	c, err := client.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), rpc.WithSubprotocols(subprotocol))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var params any = payload(subprotocol, size)
	ctx := context.Background()
	b.SetBytes(int64(size))
	echobench.RunCalls(b, callers, func() func() error {
		var out rpc.Raw
		return func() error { return c.Call(ctx, "echo", params, &out) }
	})
}

// payload returns params of exactly size bytes: opaque bytes for the binary
// codec, a JSON array holding one string for JSON-RPC.
func payload(subprotocol string, size int) rpc.Raw {
	if subprotocol == rpc.SubprotocolBinary {
		return make(rpc.Raw, size)
	}
	return rpc.Raw(`["` + strings.Repeat("x", size-4) + `"]`)
}

func benchCall(b *testing.B, subprotocol string, size, callers int) {
	cc, sc := pipe.New(b, pipe.Options{Subprotocol: subprotocol})
	echo := rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) { return req.Params, nil })
	s, err := rpc.New(sc, rpc.WithHandler(echo), rpc.WithMaxInFlight(1000))
	if err != nil {
		b.Fatal(err)
	}
	c, err := rpc.New(cc)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		c.Close()
		s.Close()
	}()
	var params any = payload(subprotocol, size) // boxed once, as a caller reusing its params would
	ctx := context.Background()
	b.SetBytes(int64(size))
	echobench.RunCalls(b, callers, func() func() error {
		var out rpc.Raw
		return func() error { return c.Call(ctx, "echo", params, &out) }
	})
}
