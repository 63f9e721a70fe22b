package transport_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/wsrpc/wsrpc/internal/echobench"
	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/transport"
)

// The echo benchmarks run this package's channel transport and the same echo
// written directly on coder/websocket side by side, so one run gives the ratio:
//
//	go test -run '^$' -bench Echo -benchtime 2s ./transport

var echoSizes = []struct {
	name string
	n    int
}{{"64B", 64}, {"4KiB", 4096}}

func BenchmarkEcho(b *testing.B) {
	for _, sz := range echoSizes {
		b.Run("mode=pingpong/impl=transport/size="+sz.name, func(b *testing.B) { echobench.Transport(b, sz.n, false) })
		b.Run("mode=pingpong/impl=coder/size="+sz.name, func(b *testing.B) { echobench.Coder(b, sz.n, false) })
		b.Run("mode=pipelined/impl=transport/size="+sz.name, func(b *testing.B) { echobench.Transport(b, sz.n, true) })
		b.Run("mode=pipelined/impl=coder/size="+sz.name, func(b *testing.B) { echobench.Coder(b, sz.n, true) })
	}
}

// BenchmarkReceive sends one message at a time and receives it, recycling
// each received buffer: bytes allocated per message show whether messages of
// a given size are read in place (sizes of exactly a pool class, and sizes
// past the largest class, are the edge cases).
//
//	go test -run '^$' -bench Receive -benchtime 300x ./transport
func BenchmarkReceive(b *testing.B) {
	for _, n := range []int{4096, 4608, 73728, 100000, 1<<20 - 64} {
		b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
			c, s := pipe.New(b, pipe.Options{})
			msg := make([]byte, n)
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				if err := c.Send(ctx, transport.Message{Type: transport.Binary, Data: msg}); err != nil {
					b.Fatal(err)
				}
				m, ok := <-s.Recv()
				if !ok || len(m.Data) != n {
					b.Fatalf("received %d bytes (open %v), want %d", len(m.Data), ok, n)
				}
				if m.Recycle != nil {
					m.Recycle.Recycle(m.Data)
				}
			}
		})
	}
}
