package rpc_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/rpc"
)

// BenchmarkStream measures one stream's results through Peer.Stream and
// StreamWriter.Send over loopback, per result.
//
//	go test -run - -bench Stream -benchmem ./rpc
func BenchmarkStream(b *testing.B) {
	for _, size := range []int{64, 4096} {
		for _, cd := range codecs[:2] {
			b.Run(cd.name+"/"+strconv.Itoa(size), func(b *testing.B) {
				payload := make([]byte, size)
				for i := range payload {
					payload[i] = 'x'
				}
				item := rpc.Raw(append(append([]byte{'"'}, payload[2:]...), '"'))
				h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
					var n int
					for n = 0; n < b.N; n++ {
						if err := req.Stream().Send(ctx, item); err != nil {
							return nil, err
						}
					}
					return nil, nil
				})
				cc, sc := pipe.New(b, pipe.Options{Subprotocol: cd.subprotocol})
				srv, err := rpc.New(sc, rpc.WithHandler(h))
				if err != nil {
					b.Fatal(err)
				}
				c, err := rpc.New(cc)
				if err != nil {
					b.Fatal(err)
				}
				defer func() {
					c.Close()
					srv.Close()
				}()
				b.ReportAllocs()
				b.SetBytes(int64(size))
				b.ResetTimer()
				s, err := c.Stream(context.Background(), "s", nil)
				if err != nil {
					b.Fatal(err)
				}
				for range b.N {
					if _, err := s.Recv(); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := s.Recv(); err == nil {
					b.Fatal("more results than sent")
				}
			})
		}
	}
}
