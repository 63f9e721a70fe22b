package rpc_test

import (
	"context"
	"fmt"
	"net/rpc"
	"testing"

	"github.com/wsrpc/wsrpc/internal/echobench"
	"github.com/wsrpc/wsrpc/internal/pipe"
	wsrpc "github.com/wsrpc/wsrpc/rpc"
)

// BenchmarkConns is the bench program's "64 conns" cell inside the tests:
// 64 connections with one caller each, wsrpc beside net/rpc, so that the
// per-call path of many quiet connections can be profiled with
// -cpuprofile.
func BenchmarkConns(b *testing.B) {
	for _, size := range []int{64, 4096} {
		sz := fmt.Sprintf("size=%dB", size)
		b.Run("impl=binary/conns=64/"+sz, func(b *testing.B) { benchConns(b, wsrpc.SubprotocolBinary, size, 64) })
		b.Run("impl=jsonrpc/conns=64/"+sz, func(b *testing.B) { benchConns(b, wsrpc.SubprotocolJSON, size, 64) })
		b.Run("impl=netrpc-tcp/conns=64/"+sz, func(b *testing.B) { benchNetRPCConns(b, size, 64) })
	}
}

func benchConns(b *testing.B, subprotocol string, size, conns int) {
	echo := wsrpc.HandlerFunc(func(_ context.Context, req *wsrpc.Request) ([]byte, error) { return req.Params, nil })
	peers := make([]*wsrpc.Peer, 0, 2*conns)
	callers := make([]*wsrpc.Peer, 0, conns)
	for range conns {
		cc, sc := pipe.New(b, pipe.Options{Subprotocol: subprotocol})
		s, err := wsrpc.New(sc, wsrpc.WithHandler(echo))
		if err != nil {
			b.Fatal(err)
		}
		c, err := wsrpc.New(cc)
		if err != nil {
			b.Fatal(err)
		}
		peers = append(peers, c, s)
		callers = append(callers, c)
	}
	defer func() {
		for _, p := range peers {
			p.Close()
		}
	}()
	var params any = payload(subprotocol, size)
	ctx := context.Background()
	b.SetBytes(int64(size))
	next := 0
	echobench.RunCalls(b, conns, func() func() error {
		c := callers[next]
		next++
		var out wsrpc.Raw
		return func() error { return c.Call(ctx, "echo", params, &out) }
	})
}

func benchNetRPCConns(b *testing.B, size, conns int) {
	addr, stop := startNetRPC(b)
	defer stop()
	clients := make([]*rpc.Client, 0, conns)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range conns {
		c, err := rpc.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
	}
	payload := make([]byte, size)
	b.SetBytes(int64(size))
	next := 0
	echobench.RunCalls(b, conns, func() func() error {
		c := clients[next]
		next++
		var out []byte
		return func() error { return c.Call("EchoService.Echo", payload, &out) }
	})
}
