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
		handler.Authorize(func(context.Context, any, string) error { return nil }),
		handler.Instrument(handler.NewMemoryMetrics()),
	)
	staged.Handle("math.*", bare)
	staged.Handle("echo", bare)

	session := new(handler.Session)
	session.SetPrincipal("alice")
	ctx := handler.WithSession(context.Background(), session)
	req := &rpc.Request{Method: "echo", Params: []byte(`[1,2,3]`)}

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
