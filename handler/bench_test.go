package handler_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
)

// BenchmarkPipeline compares a bare handler with the same handler behind a
// Mux and five stages, called directly (no network): the difference is what
// the pipeline costs per call.
func BenchmarkPipeline(b *testing.B) {
	bare := handler.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
		return req.Params, nil
	})

	routed := handler.NewMux()
	routed.Handle("echo", bare)

	// Success is logged at Info; this logger takes Warn and above.
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	staged := handler.NewMux()
	staged.Use(
		handler.Recover(logger),
		handler.Logging(logger),
		handler.Limit(1000, 0),
		handler.Authorize(func(_ context.Context, principal any, _ string) error {
			if principal != "alice" {
				return rpc.ErrUnauthenticated
			}
			return nil
		}),
		handler.Instrument(handler.NewMemoryMetrics()),
	)
	staged.Handle("math.*", bare)
	staged.Handle("echo", bare)

	// A request of a real call, kept past it, so that Authorize reads the
	// principal of a real connection; its Params are replaced (the call's
	// are reused once its handler returns).
	req := requestOfACall(b, rpc.WithPrincipal("alice"))
	req.Params = []byte(`[1,2,3]`)
	ctx := context.Background()

	benchmarks := []struct {
		name string
		h    handler.Handler
	}{
		{"bare", bare},
		{"mux", routed},
		{"mux+5stages", staged},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bm.h.ServeRPC(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// requestOfACall returns a copy of the Request of one call served by a peer
// made with opts.
func requestOfACall(tb testing.TB, opts ...rpc.Option) *rpc.Request {
	got := make(chan rpc.Request, 1)
	keep := handler.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
		got <- *req
		return nil, nil
	})
	c, _ := connect(tb, append([]rpc.Option{rpc.WithHandler(keep)}, opts...), nil)
	if err := c.Call(testCtx(tb), "echo", nil, nil); err != nil {
		tb.Fatal(err)
	}
	req := <-got
	return &req
}
