package rpc_test

import (
	"net"
	"net/rpc"
	"sync"
	"testing"

	"github.com/wsrpc/wsrpc/internal/echobench"
)

// EchoService is the net/rpc reference: the same echo over raw TCP with gob.
type EchoService struct{}

func (EchoService) Echo(in []byte, out *[]byte) error { *out = in; return nil }

// benchNetRPC is the net/rpc figure BenchmarkCall compares against.
func benchNetRPC(b *testing.B, size, callers int) {
	srv := rpc.NewServer()
	if err := srv.Register(EchoService{}); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { srv.ServeConn(c) })
		}
	})
	c, err := rpc.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		c.Close()
		ln.Close()
		wg.Wait()
	}()
	payload := make([]byte, size)
	b.SetBytes(int64(size))
	echobench.RunCalls(b, callers, func() func() error {
		var out []byte
		return func() error { return c.Call("EchoService.Echo", payload, &out) }
	})
}
