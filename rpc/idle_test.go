package rpc_test

import (
	"context"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// A peer whose reader has let its goroutine go (idle) serves the next call,
// whatever the receive queue: buffered (the default) or unbuffered, where
// the transport's reader must start the peer's reader before it can hand
// the message over.
func TestIdleReaderComesBack(t *testing.T) {
	defer rpc.SetLoopIdle(10 * time.Millisecond)()
	for _, tt := range []struct {
		name string
		recv int
	}{{"buffered", 0}, {"unbuffered", -1}} {
		t.Run(tt.name, func(t *testing.T) {
			cc, sc := pipe.New(t, pipe.Options{Subprotocol: rpc.SubprotocolBinary,
				Server: transport.ConnOptions{RecvQueue: tt.recv}, Client: transport.ConnOptions{RecvQueue: tt.recv}})
			s, err := rpc.New(sc, rpc.WithHandler(services(t)))
			if err != nil {
				t.Fatal(err)
			}
			c, err := rpc.New(cc)
			if err != nil {
				t.Fatal(err)
			}
			defer s.CloseNow()
			defer c.CloseNow()
			for i := range 5 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				var n float64
				err := c.Call(ctx, "add", []int{i, 1}, &n)
				cancel()
				if err != nil || n != float64(i+1) {
					t.Fatalf("call %d after idling: %v, %v", i, n, err)
				}
				time.Sleep(30 * time.Millisecond) // longer than the idle bound: both readers let go
			}
		})
	}
}
