package transport_test

import (
	"testing"

	"github.com/wsrpc/wsrpc/internal/echobench"
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
