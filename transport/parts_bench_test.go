package transport_test

import (
	"context"
	"testing"

	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/transport"
)

// BenchmarkSendReader sends 64 MiB messages from a reader (SendReader, in
// frames of DefaultMaxFrameSize) to a receiver that takes them in 64 KiB
// parts and recycles each, both ways round: a client's frames are masked, a
// server's are not.
//
//	go test -run '^$' -bench SendReader -benchtime 20x ./transport
func BenchmarkSendReader(b *testing.B) {
	const size = 64 << 20
	for _, dir := range []string{"client-to-server", "server-to-client"} {
		b.Run("dir="+dir, func(b *testing.B) {
			o := transport.ConnOptions{PartsAbove: 64 << 10, HeartbeatInterval: -1}
			from, to := pipe.New(b, pipe.Options{Client: o, Server: o})
			if dir == "server-to-client" {
				from, to = to, from
			}
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				done := make(chan int64, 1)
				go func() {
					var n int64
					for m := range to.Recv() {
						n += int64(len(m.Data))
						if m.Recycle != nil {
							m.Recycle.Recycle(m.Data)
						}
						if !m.Partial {
							break
						}
					}
					done <- n
				}()
				if err := from.SendReader(context.Background(), transport.Binary, &zeros{n: size}); err != nil {
					b.Fatal(err)
				}
				if n := <-done; n != size {
					b.Fatalf("received %d bytes, want %d", n, size)
				}
			}
		})
	}
}
