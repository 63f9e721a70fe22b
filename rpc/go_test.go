package rpc_test

import (
	"context"
	"errors"
	"testing"

	"github.com/wsrpc/wsrpc/rpc"
)

// TestGo: Peer.Go encodes with the value codec, sends before it returns (so
// calls go out in order), and its one Response carries the id it returned
// and a result that belongs to the receiver.
func TestGo(t *testing.T) {
	for _, proto := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		t.Run(proto, func(t *testing.T) {
			var order []int
			h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				var in []int
				if err := rpc.JSON.Unmarshal(req.Params, &in); err != nil {
					return nil, err
				}
				order = append(order, in[0]) // one at a time: MaxInFlight 1
				return req.Params, nil
			})
			c, _ := peers(t, proto, []rpc.Option{rpc.WithHandler(h), rpc.WithMaxInFlight(1)}, nil)
			const n = 50
			reply := make(chan *rpc.Response, n)
			ids := map[uint64]int{}
			for i := range n {
				id, err := c.Go(ctxT(t), "echo", []int{i}, reply)
				if err != nil {
					t.Fatal(err)
				}
				ids[id] = i
			}
			for range n {
				r := recvResponse(t, reply)
				i, ok := ids[r.ID]
				if !ok || r.Err != nil {
					t.Fatalf("Response %+v: unknown id or error", r)
				}
				var out []int
				if err := rpc.JSON.Unmarshal(r.Result, &out); err != nil || out[0] != i {
					t.Fatalf("result %s for call %d", r.Result, i)
				}
			}
			for i, got := range order {
				if got != i {
					t.Fatalf("calls ran in order %v, want the order Go was called", order)
				}
			}
			if _, err := c.Go(ctxT(t), "echo", func() {}, reply); err == nil {
				t.Error("Go with params that cannot be encoded: no error")
			}
			if _, err := c.Go(ctxT(t), "echo", nil, nil); err == nil {
				t.Error("Go without a reply channel: no error")
			}
			if _, err := c.Go(ctxT(t), "echo", nil, make(chan *rpc.Response)); err == nil {
				t.Error("Go with an unbuffered reply channel: no error")
			}
			c.Close()
			if _, err := c.Go(ctxT(t), "echo", nil, reply); !errors.Is(err, rpc.ErrUnavailable) {
				t.Errorf("Go on a closed peer = %v, want unavailable", err)
			}
		})
	}
}
