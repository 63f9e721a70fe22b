package handler

import (
	"context"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
)

// Metrics receives the start and the end of every call [Instrument] sees.
// Its methods are called on the goroutine of each call, so they must be safe
// for concurrent use and quick. [MemoryMetrics] is an implementation.
type Metrics interface {
	// CallStarted is called when a call starts.
	CallStarted(method string)
	// CallFinished is called when the call ends, with its outcome code (0
	// for success; see [rpc.CodeOf]) and how long it took.
	CallFinished(method string, code rpc.Code, d time.Duration)
}

// Instrument reports every call through the handlers it wraps to m. A call
// whose handler panics is reported as [rpc.CodeInternalError] before the
// panic goes on.
//
// Given to [rpc.WithOutgoingMiddleware] too, it reports the calls the peer
// makes, with the code the caller gets; one m then counts both directions
// together under each method name. To count them apart, give each
// direction an Instrument with a Metrics of its own.
func Instrument(m Metrics) Middleware {
	return func(next Handler) Handler {
		return HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			start := now()
			m.CallStarted(req.Method)
			code := rpc.CodeInternalError // unless next returns
			defer func() { m.CallFinished(req.Method, code, now()-start) }()
			result, err := next.ServeRPC(ctx, req)
			code = rpc.CodeOf(err)
			return result, err
		})
	}
}
