package client

import (
	"context"

	"github.com/wsrpc/wsrpc/openrpc"
	"github.com/wsrpc/wsrpc/rpc"
)

// CallMethod calls the declared method m with params in and returns its
// result, through [Client.Call] (the same waiting, retries and options): the
// compiler checks in and the result against m's declaration. On an
// *[rpc.Peer], m.Call(ctx, peer, in) does the same.
func CallMethod[In, Out any](ctx context.Context, c *Client, m rpc.Method[In, Out], in In, opts ...CallOption) (Out, error) {
	var out Out
	err := c.Call(ctx, m.Name(), in, &out, opts...)
	return out, err
}

// NotifyMethod sends the declared notification n with params in, through
// [Client.Notify]. On an *[rpc.Peer], n.Notify(ctx, peer, in) does the same.
func NotifyMethod[In any](ctx context.Context, c *Client, n rpc.Notification[In], in In, opts ...CallOption) error {
	return c.Notify(ctx, n.Name(), in, opts...)
}

// Discover calls the server's discovery method, rpc.discover, and returns
// its OpenRPC document: the server's methods, with the JSON Schema of the
// params and result of each typed one. A server that did not enable
// discovery (handler.Mux.EnableDiscovery) answers with an error of
// [rpc.CodeMethodNotFound]. The call is [Idempotent]: it changes nothing on
// the server.
func Discover(ctx context.Context, c *Client, opts ...CallOption) (*openrpc.Document, error) {
	var doc openrpc.Document
	if err := c.Call(ctx, openrpc.MethodDiscover, nil, &doc, append([]CallOption{Idempotent()}, opts...)...); err != nil {
		return nil, err
	}
	return &doc, nil
}
