package handler

import (
	"context"

	"github.com/wsrpc/wsrpc/rpc"
)

// Before calls f before the handlers it wraps. An error from f stops the
// call: it is returned as the call's error (an *[rpc.Error] keeps its code;
// see [rpc.Handler]) and the handlers do not run. f must be safe for
// concurrent use and must not modify req.
func Before(f func(ctx context.Context, req *rpc.Request) error) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			if err := f(ctx, req); err != nil {
				return nil, err
			}
			return next.ServeRPC(ctx, req)
		})
	}
}

// AfterSuccess calls f after each call the handlers it wraps answer without
// an error, with the encoded result, which f must not modify. It
// cannot change the outcome. f must be safe for concurrent use.
func AfterSuccess(f func(ctx context.Context, req *rpc.Request, result []byte)) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			result, err := next.ServeRPC(ctx, req)
			if err == nil {
				f(ctx, req, result)
			}
			return result, err
		})
	}
}

// AfterError calls f after each call the handlers it wraps answer with an
// error, with that error. It cannot change the outcome. A panic reaches f
// only when [Recover] runs inside AfterError. f must be safe for concurrent
// use.
func AfterError(f func(ctx context.Context, req *rpc.Request, err error)) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			result, err := next.ServeRPC(ctx, req)
			if err != nil {
				f(ctx, req, err)
			}
			return result, err
		})
	}
}
