package handler

import (
	"context"

	"github.com/wsrpc/wsrpc/rpc"
)

// Func adapts a typed function to [Handler]. The params are decoded into an
// In with the connection's value codec ([rpc.Peer.Codec]; [rpc.JSON] for a
// request built without a peer), and f's result is encoded with the same
// codec. Absent params give the zero In.
//
// Params that do not decode are answered with an *[rpc.Error] with
// [rpc.CodeInvalidParams] whose message says what is wrong, and f is not
// called. An error from f is returned unchanged, so the code of an
// *[rpc.Error] reaches the caller. A result that does not encode is an
// [rpc.CodeInternalError].
func Func[In, Out any](f func(ctx context.Context, in In) (Out, error)) Handler {
	return HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		c := codecFor(req)
		var in In
		if err := decodeParams(c, req.Params, &in); err != nil {
			return nil, err
		}
		out, err := f(ctx, in)
		if err != nil {
			return nil, err
		}
		return encodeResult(c, out)
	})
}

// NoParams adapts a function that takes no params to [Handler]; any params
// the caller sends are ignored. Otherwise it is [Func].
func NoParams[Out any](f func(ctx context.Context) (Out, error)) Handler {
	return HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		out, err := f(ctx)
		if err != nil {
			return nil, err
		}
		return encodeResult(codecFor(req), out)
	})
}

// NoResult adapts a function that returns no result to [Handler]: the caller
// gets null (an empty result) when f succeeds. Otherwise it is [Func].
func NoResult[In any](f func(ctx context.Context, in In) error) Handler {
	return HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		var in In
		if err := decodeParams(codecFor(req), req.Params, &in); err != nil {
			return nil, err
		}
		return nil, f(ctx, in)
	})
}

func decodeParams(c rpc.Codec, params []byte, v any) error {
	if len(params) == 0 {
		return nil
	}
	if err := c.Unmarshal(params, v); err != nil {
		return rpc.Errorf(rpc.CodeInvalidParams, "invalid params: %v", err)
	}
	return nil
}

func encodeResult(c rpc.Codec, v any) ([]byte, error) {
	b, err := c.Marshal(v)
	if err != nil {
		return nil, rpc.Errorf(rpc.CodeInternalError, "encode result: %v", err)
	}
	return b, nil
}
