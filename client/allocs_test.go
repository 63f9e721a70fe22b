package client_test

import (
	"context"
	"testing"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
)

// TestCallAllocatesAsPeer: Client.Call costs no allocation beyond the
// rpc.Peer.Call it makes, on the same connection.
func TestCallAllocatesAsPeer(t *testing.T) {
	echo := rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) { return req.Params, nil })
	srv := newTestServer(t, echo)
	c, err := client.Dial(context.Background(), srv.url())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var params any = rpc.Raw(`["x"]`)
	var out rpc.Raw
	var result any = &out
	ctx := context.Background()
	p := c.Peer()
	peer := testing.AllocsPerRun(2000, func() { p.Call(ctx, "echo", params, result) })
	front := testing.AllocsPerRun(2000, func() { c.Call(ctx, "echo", params, result) })
	if front > peer+0.5 {
		t.Errorf("Client.Call allocates %.2f objects per call (both ends), rpc.Peer.Call %.2f", front, peer)
	}
}
