package handler

import (
	"context"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
)

// Timeout bounds how long the handlers it wraps may run.
//
// A call whose context has no deadline gets def (0: none). A call whose
// deadline is further away than max gets max instead (0: no cap). max is a
// ceiling for every call: when max > 0 and def is 0 or above max, calls
// without a deadline get max. When the context already satisfies both, the
// call runs with it unchanged: that costs at most a clock read, and no
// allocation.
//
// The deadline is one the handler sees on its context; the caller, which
// sent its own deadline or none, learns of it through the error the handler
// returns (usually [rpc.CodeDeadlineExceeded]).
func Timeout(def, max time.Duration) Middleware {
	if max < 0 {
		max = 0
	}
	if def < 0 {
		def = 0
	}
	if max > 0 && (def == 0 || def > max) {
		def = max
	}
	return func(next Handler) Handler {
		if def == 0 && max == 0 {
			return next
		}
		return HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			d := def
			if dl, ok := ctx.Deadline(); ok {
				if max == 0 || time.Until(dl) <= max {
					return next.ServeRPC(ctx, req)
				}
				d = max
			} else if d == 0 {
				return next.ServeRPC(ctx, req)
			}
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next.ServeRPC(ctx, req)
		})
	}
}
