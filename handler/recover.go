package handler

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/wsrpc/wsrpc/internal/logtext"
	"github.com/wsrpc/wsrpc/rpc"
)

// Recover turns a panic in the handlers it wraps into an *[rpc.Error] with
// [rpc.CodeInternalError], so that the call gets an answer and the
// connection lives on. The caller learns only that the handler failed: the
// panic value stays on this side. With a non-nil logger the panic is logged
// at level Error with the method, the call id, the connection's attributes
// ([rpc.Peer.AppendLogAttrs]), the panic value (as text) and the stack.
//
// Put Recover outermost so that it also covers the other stages.
func Recover(logger *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *rpc.Request) (result []byte, err error) {
			defer func() {
				if v := recover(); v != nil {
					if logger != nil {
						var attrs [7]slog.Attr
						a := append(attrs[:0],
							slog.String("method", logtext.Clip(req.Method)),
							slog.String("id", logtext.Clip(req.WireID())))
						a = req.Peer().AppendLogAttrs(a)
						a = append(a,
							slog.String("panic", logtext.Clip(fmt.Sprint(v))),
							slog.String("stack", string(debug.Stack())))
						logger.LogAttrs(ctx, slog.LevelError, "rpc handler panicked", a...)
					}
					result, err = nil, &rpc.Error{Code: rpc.CodeInternalError, Message: "internal error: handler panicked"}
				}
			}()
			return next.ServeRPC(ctx, req)
		})
	}
}
