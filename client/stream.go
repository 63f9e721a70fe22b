package client

import (
	"context"

	"github.com/wsrpc/wsrpc/rpc"
)

// Stream calls method as a stream ([rpc.Peer.Stream]): the handler sends
// many results, which the returned stream's Recv (or All) gives in order,
// under credit-based flow control, before the call ends. Like Call, it
// waits for a connection, and opens the stream again on the next one if it
// could not be sent. Once sent, a stream is not resumed elsewhere: a lost
// connection ends it (Recv returns a CodeConnectionLost error saying it was
// cut before it ended), and the caller decides whether to call again. ctx
// bounds the whole stream (the client's call timeout does not apply); it
// takes [rpc.WithWindow] and [rpc.WithStreamMetadata].
func (c *Client) Stream(ctx context.Context, method string, params any, opts ...rpc.StreamOption) (*rpc.Stream, error) {
	a := c.newAttempts(ctx, nil)
	for {
		p, err := a.next()
		if err != nil {
			return nil, err
		}
		s, err := p.Stream(ctx, method, params, opts...)
		if again, err := a.retry(p, err); !again {
			return s, err
		}
	}
}
