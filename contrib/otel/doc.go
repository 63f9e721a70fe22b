// Package wsrpcotel traces wsrpc calls with OpenTelemetry
// (go.opentelemetry.io/otel) and, if asked, measures them with OTel
// metrics. Import it as
//
//	import wsrpcotel "github.com/wsrpc/wsrpc/contrib/otel"
//
// It is a module of its own, so that the wsrpc core keeps its three
// dependencies.
//
// [Middleware] is one rpc.Middleware for both directions and both sides:
// in a handler chain (handler.Mux.Use) it makes a server span for each call
// served, continuing the trace the caller sent; given to
// rpc.WithOutgoingMiddleware (on client.Dial or server.New) it makes a
// client span for each call made and sends its trace context with the
// call. So a trace crosses the connection in either direction: a client's
// call to the server, and the server's call back to the client from inside
// its handler.
//
// The trace context travels in the call's metadata (docs/PROTOCOL.md,
// metadata) under the W3C Trace Context keys "traceparent" and
// "tracestate" (the propagator decides: see [WithPropagator]), on both
// wire codecs. A client in another language continues a trace by sending
// those keys, and reads them from the calls the server makes.
//
// A stream (rpc.Peer.Stream, client.Stream, a handler.Stream handler) is
// one span on each side, from the call that opens it to its end, marked
// wsrpc.stream; its results are not spans.
//
// Everything here is safe for concurrent use.
package wsrpcotel
