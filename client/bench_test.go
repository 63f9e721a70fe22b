package client_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// BenchmarkClientCall measures Client.Call, the front door, beside
// rpc.Peer.Call on a connection to the same server in the same run, both
// codecs, 1 and 64 callers. Allocations count both ends.
func BenchmarkClientCall(b *testing.B) {
	echo := rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) { return req.Params, nil })
	for _, size := range []int{64, 4096} {
		for _, proto := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
			for _, callers := range []int{1, 64} {
				cname := "binary"
				if proto == rpc.SubprotocolJSON {
					cname = "jsonrpc"
				}
				name := fmt.Sprintf("codec=%s/callers=%d/size=%dB", cname, callers, size)
				b.Run("api=client/"+name, func(b *testing.B) {
					srv := newTestServer(b, echo)
					c, err := client.Dial(context.Background(), srv.url(), rpc.WithSubprotocols(proto))
					if err != nil {
						b.Fatal(err)
					}
					defer c.Close()
					runCalls(b, size, callers, func(ctx context.Context, params rpc.Raw, result *rpc.Raw) error {
						return c.Call(ctx, "echo", params, result)
					})
				})
				b.Run("api=peer/"+name, func(b *testing.B) {
					p := dialPeer(b, newTestServer(b, echo).url(), proto)
					runCalls(b, size, callers, func(ctx context.Context, params rpc.Raw, result *rpc.Raw) error {
						return p.Call(ctx, "echo", params, result)
					})
				})
			}
		}
	}
}

// runCalls makes b.N calls from callers goroutines and reports calls/s.
func runCalls(b *testing.B, size, callers int, call func(context.Context, rpc.Raw, *rpc.Raw) error) {
	params := rpc.Raw(`["` + strings.Repeat("x", size-4) + `"]`) // an array: JSON-RPC params must be one
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N / callers
	for i := range callers {
		n := per
		if i == 0 {
			n += b.N % callers
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var result rpc.Raw
			for range n {
				if err := call(context.Background(), params, &result); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkClientGo measures Client.Go, one call at a time, beside
// rpc.Peer.Send with a Reply channel (the Peer's asynchronous call) on a
// connection to the same server in the same run. Allocations count both
// ends; Go's include its goroutine and the copy of the result it hands over.
func BenchmarkClientGo(b *testing.B) {
	echo := rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) { return req.Params, nil })
	params := rpc.Raw(`["` + strings.Repeat("x", 60) + `"]`)
	for _, proto := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		b.Run("api=client/codec="+proto, func(b *testing.B) {
			srv := newTestServer(b, echo)
			c, err := client.Dial(context.Background(), srv.url(), rpc.WithSubprotocols(proto))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			reply := make(chan *rpc.Response, 1)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Go(ctx, "echo", params, reply); err != nil {
					b.Fatal(err)
				}
				if r := <-reply; r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		})
		b.Run("api=peer-send/codec="+proto, func(b *testing.B) {
			p := dialPeer(b, newTestServer(b, echo).url(), proto)
			reply := make(chan *rpc.Response, 1)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Send(ctx, &rpc.Request{Method: "echo", Params: params, Reply: reply}); err != nil {
					b.Fatal(err)
				}
				if r := <-reply; r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		})
	}
}

// dialPeer connects a bare rpc.Peer speaking proto to url, the reference
// the client's figures are compared with; it is closed when b ends.
func dialPeer(b *testing.B, url, proto string) *rpc.Peer {
	tc, err := transport.Dial(context.Background(), url, &transport.DialOptions{Subprotocols: []string{proto}})
	if err != nil {
		b.Fatal(err)
	}
	p, err := rpc.New(tc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}
