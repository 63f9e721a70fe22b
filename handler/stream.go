package handler

import (
	"context"

	"github.com/wsrpc/wsrpc/rpc"
)

// MaxPlainStreamResults bounds the results a [Stream] handler gathers for a
// caller that did not ask for a stream.
const MaxPlainStreamResults = 10_000

// Stream adapts a typed function that sends many results to [Handler]. f
// calls send for each result, in order; send blocks while the caller's
// credit is used up (see [rpc.StreamWriter.Send]) and returns an error when
// the call ends (cancelled, deadline, connection closed), which f should
// return. The call ends with null when f returns nil, or with f's error.
// Params decode as in [Func].
//
// A caller that did not ask for a stream (a plain call, or a client that
// does not know streams) gets every result in one JSON array instead, at
// most [MaxPlainStreamResults] of them: beyond, the call fails with
// [rpc.CodeInvalidRequest], telling it to call as a stream.
func Stream[In, Item any](f func(ctx context.Context, in In, send func(Item) error) error) Handler {
	return typedHandler[In, Item](kindStream, func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		c := codecFor(req)
		var in In
		if err := decodeParams(c, req.Params, &in); err != nil {
			return nil, err
		}
		if w := req.Stream(); w != nil {
			return nil, f(ctx, in, func(it Item) error { return w.Send(ctx, it) })
		}
		var all []Item
		err := f(ctx, in, func(it Item) error {
			if len(all) == MaxPlainStreamResults {
				return rpc.Errorf(rpc.CodeInvalidRequest, "%s sends more than %d results: call it as a stream", req.Method, MaxPlainStreamResults)
			}
			all = append(all, it)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if all == nil {
			all = []Item{}
		}
		return encodeResult(c, all)
	})
}
