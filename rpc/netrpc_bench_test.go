package rpc_test

import (
	"net"
	"net/rpc"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	b.ReportAllocs()
	b.ResetTimer()
	if callers == 1 {
		var lat echobench.Latencies
		var out []byte
		for range b.N {
			start := time.Now()
			if err := c.Call("EchoService.Echo", payload, &out); err != nil {
				b.Fatal(err)
			}
			lat.Add(time.Since(start))
		}
		b.StopTimer()
		lat.Report(b)
	} else {
		var next atomic.Int64
		var cw sync.WaitGroup
		errs := make(chan error, callers)
		for range callers {
			cw.Go(func() {
				var out []byte
				for next.Add(1) <= int64(b.N) {
					if err := c.Call("EchoService.Echo", payload, &out); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		cw.Wait()
		b.StopTimer()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
