package wsrpcotel_test

import (
	"context"
	"fmt"
	"net"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wsrpc/wsrpc/client"
	wsrpcotel "github.com/wsrpc/wsrpc/contrib/otel"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// A call traced on both sides: the client's span and the server's are one
// trace, the trace context carried in the call's metadata.
func Example() {
	rec := tracetest.NewSpanRecorder() // in production: an exporter (OTLP...)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	traced := wsrpcotel.Middleware(wsrpcotel.WithTracerProvider(tp))

	mux := handler.NewMux()
	mux.Use(handler.Recover(nil), traced) // the calls served
	mux.Handle("add", handler.Func(func(_ context.Context, xs [2]float64) (float64, error) { return xs[0] + xs[1], nil }))
	srv, err := server.New(mux, rpc.WithOutgoingMiddleware(traced)) // and the calls the server makes
	if err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	ctx := context.Background()
	c, err := client.Dial(ctx, "ws://"+ln.Addr().String()+"/rpc", rpc.WithOutgoingMiddleware(traced))
	if err != nil {
		panic(err)
	}
	var sum float64
	if err := c.Call(ctx, "add", []float64{1, 2.5}, &sum); err != nil {
		panic(err)
	}
	c.Close()
	srv.Shutdown(ctx) // the server span has ended once the connection's handlers have returned
	<-served

	spans := rec.Ended()
	for _, s := range spans {
		fmt.Println(s.SpanKind(), s.Name())
	}
	fmt.Println("one trace:", spans[0].SpanContext().TraceID() == spans[1].SpanContext().TraceID())
	// Unordered output:
	// server add
	// client add
	// one trace: true
}
