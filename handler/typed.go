package handler

import (
	"context"
	"reflect"

	"github.com/wsrpc/wsrpc/rpc"
)

// typed is a Handler built by [Func], [NoParams], [NoResult] or [Stream]:
// it knows the Go types of its params and result, for discovery.
type typed struct {
	serve HandlerFunc
	sig   signature
}

// signature is what a typed handler tells discovery.
type signature struct {
	params reflect.Type // nil: takes no params
	result reflect.Type // nil: answers null (or, for a notification, nothing)
	kind   callKind
}

type callKind uint8

const (
	kindCall callKind = iota
	kindNotification
	kindStream // result is the type of one item
)

func (t *typed) ServeRPC(ctx context.Context, req *rpc.Request) ([]byte, error) {
	return t.serve(ctx, req)
}

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
//
// The Handler knows In and Out, so a [Mux] that serves it describes its
// params and result in discovery ([Mux.EnableDiscovery]).
func Func[In, Out any](f func(ctx context.Context, in In) (Out, error)) Handler {
	return typedHandler[In, Out](kindCall, func(ctx context.Context, req *rpc.Request) ([]byte, error) {
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

// typedHandler returns serve as a Handler with the signature of In and Out.
func typedHandler[In, Out any](kind callKind, serve HandlerFunc) Handler {
	return &typed{serve: serve, sig: signature{params: reflect.TypeFor[In](), result: reflect.TypeFor[Out](), kind: kind}}
}

// NoParams adapts a function that takes no params to [Handler]; any params
// the caller sends are ignored. Otherwise it is [Func].
func NoParams[Out any](f func(ctx context.Context) (Out, error)) Handler {
	return &typed{serve: func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		out, err := f(ctx)
		if err != nil {
			return nil, err
		}
		return encodeResult(codecFor(req), out)
	}, sig: signature{result: reflect.TypeFor[Out]()}}
}

// NoResult adapts a function that returns no result to [Handler]: the caller
// gets null (an empty result) when f succeeds. Otherwise it is [Func].
func NoResult[In any](f func(ctx context.Context, in In) error) Handler {
	return noResult(kindCall, f)
}

func noResult[In any](kind callKind, f func(ctx context.Context, in In) error) Handler {
	return &typed{serve: func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		var in In
		if err := decodeParams(codecFor(req), req.Params, &in); err != nil {
			return nil, err
		}
		return nil, f(ctx, in)
	}, sig: signature{params: reflect.TypeFor[In](), kind: kind}}
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
