package handler

import (
	"context"
	"errors"

	"github.com/wsrpc/wsrpc/rpc"
)

// Authorize asks allow whether the caller may call the method, before the
// handlers it wraps run. allow gets the call's context, the principal of the
// connection's session (req.Peer().Session().Principal(); nil when nobody
// has authenticated) and the method name. A nil error lets the call through; any other error
// refuses it: an *[rpc.Error] (anywhere in the error's chain) is returned as
// it is, so allow can answer [rpc.CodeUnauthenticated], and any other error
// becomes an *[rpc.Error] with [rpc.CodePermissionDenied] and the error's
// text. allow must be safe for concurrent use.
func Authorize(allow func(ctx context.Context, principal any, method string) error) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			if err := allow(ctx, req.Peer().Session().Principal(), req.Method); err != nil {
				if e := (*rpc.Error)(nil); errors.As(err, &e) {
					return nil, err
				}
				return nil, &rpc.Error{Code: rpc.CodePermissionDenied, Message: err.Error()}
			}
			return next.ServeRPC(ctx, req)
		})
	}
}
