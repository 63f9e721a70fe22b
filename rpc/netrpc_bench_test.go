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
	addr, stop := startNetRPC(b)
	defer stop()
	c, err := rpc.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	payload := make([]byte, size)
	b.SetBytes(int64(size))
	echobench.RunCalls(b, callers, func() func() error {
		var out []byte
		return func() error { return c.Call("EchoService.Echo", payload, &out) }
	})
}

// startNetRPC serves EchoService over TCP on loopback; stop closes the
// listener and waits for the connections to be served to the end (their
// clients must be closed first).
func startNetRPC(b *testing.B) (addr string, stop func()) {
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
	return ln.Addr().String(), func() {
		ln.Close()
		wg.Wait()
	}
}
