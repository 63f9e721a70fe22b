package wsrpcotel

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/wsrpc/wsrpc/internal/boundednames"
	"github.com/wsrpc/wsrpc/internal/logtext"
	"github.com/wsrpc/wsrpc/rpc"
)

// ScopeName is the instrumentation scope of the tracer and meter.
const ScopeName = "github.com/wsrpc/wsrpc/contrib/otel"

// Attribute keys set on spans (the first two also on metrics, with
// KeyStatus).
const (
	KeySystem       = attribute.Key("rpc.system")             // "wsrpc"
	KeyMethod       = attribute.Key("rpc.method")             // the method, cut to 256 bytes
	KeyCode         = attribute.Key("rpc.jsonrpc.error_code") // the outcome code; 0 for success
	KeyRequestID    = attribute.Key("rpc.jsonrpc.request_id") // the wire id; absent for a notification
	KeyMessage      = attribute.Key("rpc.jsonrpc.error_message")
	KeyNotification = attribute.Key("wsrpc.notification") // true for a notification
	KeyStream       = attribute.Key("wsrpc.stream")       // true for a call that opens a stream
	KeyConn         = attribute.Key("wsrpc.conn")         // the connection's rpc.Peer.ID
	KeySubprotocol  = attribute.Key("wsrpc.subprotocol")  // "wsrpc.v1" or "jsonrpc2.0" ("" for JSON-RPC without one)
	KeyPeerAddress  = attribute.Key("network.peer.address")
	// KeyStatus is on metrics only: the outcome as Prometheus labels it
	// ("ok", "method_not_found", "-32050"; past 32 distinct application
	// codes, "other"), so that the codes the other side chooses cannot
	// make the metrics grow without end.
	KeyStatus = attribute.Key("rpc.response.status_code")
)

// System is the value of rpc.system.
const System = "wsrpc"

// DefaultMaxMethods bounds the distinct method names the metrics label
// (the spans name every method); see [WithMaxMethods].
const DefaultMaxMethods = 256

// Option configures [Middleware].
type Option func(*config)

type config struct {
	tp         trace.TracerProvider
	mp         metric.MeterProvider
	prop       propagation.TextMapPropagator
	maxMethods int
}

// WithTracerProvider sets the TracerProvider (default: otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// WithMeterProvider turns the metrics on, with mp: the histograms
// rpc.server.call.duration and rpc.client.call.duration (seconds), with
// the attributes rpc.system, rpc.method (bounded: [WithMaxMethods]) and
// rpc.response.status_code ([KeyStatus]). Without it there are no metrics.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// WithPropagator sets how the trace context goes into and comes out of the
// call metadata (default: propagation.TraceContext, the W3C traceparent and
// tracestate; add propagation.Baggage with
// propagation.NewCompositeTextMapPropagator to carry baggage too).
func WithPropagator(p propagation.TextMapPropagator) Option { return func(c *config) { c.prop = p } }

// WithMaxMethods bounds the distinct method names the metrics label; later
// names are labelled "(other)" (default [DefaultMaxMethods]). Method names
// come from the network.
func WithMaxMethods(n int) Option { return func(c *config) { c.maxMethods = n } }

// Middleware returns the middleware that traces calls: a server span for
// each call it serves (in a handler chain), a client span for each call it
// makes (given to rpc.WithOutgoingMiddleware). Spans are named by method
// and carry rpc.system, rpc.method, rpc.jsonrpc.request_id, wsrpc.conn,
// wsrpc.subprotocol and network.peer.address; a failed call adds
// rpc.jsonrpc.error_code and rpc.jsonrpc.error_message.
//
// Status: a client span is an error for every failed call (any code but
// 0). A server span is an error only for the codes that say the server
// failed (internal error, unavailable, deadline exceeded, connection lost);
// for the caller's mistakes and the application's own codes (invalid
// params, method not found, permission denied, -32050...) its status stays
// unset, as OpenTelemetry asks of servers. A panic passing through is
// recorded as internal error; put the middleware inside handler.Recover.
func Middleware(opts ...Option) rpc.Middleware {
	c := config{prop: propagation.TraceContext{}, maxMethods: DefaultMaxMethods}
	for _, o := range opts {
		o(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	t := &tracer{
		tracer: c.tp.Tracer(ScopeName),
		prop:   c.prop,
		names:  &boundednames.Set{Max: max(c.maxMethods, 1)},
	}
	if c.mp != nil {
		m := c.mp.Meter(ScopeName)
		t.serverDur, _ = m.Float64Histogram("rpc.server.call.duration", metric.WithUnit("s"),
			metric.WithDescription("How long the calls served took."))
		t.clientDur, _ = m.Float64Histogram("rpc.client.call.duration", metric.WithUnit("s"),
			metric.WithDescription("How long the calls made took, reply included."))
	}
	return func(next rpc.Handler) rpc.Handler {
		return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			if req.Outgoing() {
				return t.outgoing(ctx, req, next)
			}
			return t.incoming(ctx, req, next)
		})
	}
}

type tracer struct {
	tracer               trace.Tracer
	prop                 propagation.TextMapPropagator
	names                *boundednames.Set
	codes                boundednames.Codes
	serverDur, clientDur metric.Float64Histogram // nil without metrics
}

func (t *tracer) incoming(ctx context.Context, req *rpc.Request, next rpc.Handler) (result []byte, err error) {
	ctx = t.prop.Extract(ctx, carrier{md: req.Metadata})
	ctx, span := t.tracer.Start(ctx, spanName(req), trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs(req)...))
	start := time.Now()
	code := rpc.CodeInternalError // unless next returns
	defer func() {
		t.end(span, req, code, err, serverFault(code), t.serverDur, start)
	}()
	result, err = next.ServeRPC(ctx, req)
	code = rpc.CodeOf(err)
	return result, err
}

func (t *tracer) outgoing(ctx context.Context, req *rpc.Request, next rpc.Handler) (result []byte, err error) {
	ctx, span := t.tracer.Start(ctx, spanName(req), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs(req)...))
	if req.Metadata == nil {
		req.Metadata = make(rpc.Metadata, 2)
	}
	t.prop.Inject(ctx, carrier{md: req.Metadata}) // the Request's Metadata is its own copy
	start := time.Now()
	code := rpc.CodeInternalError
	defer func() {
		t.end(span, req, code, err, code != 0, t.clientDur, start)
	}()
	result, err = next.ServeRPC(ctx, req)
	code = rpc.CodeOf(err)
	return result, err
}

// end finishes a call's span and records its duration.
func (t *tracer) end(span trace.Span, req *rpc.Request, code rpc.Code, err error, isError bool, dur metric.Float64Histogram, start time.Time) {
	if id := req.WireID(); id != "" {
		span.SetAttributes(KeyRequestID.String(logtext.Clip(id)))
	}
	if code != 0 {
		msg := "panic"
		if err != nil {
			msg = logtext.Clip(err.Error())
		}
		span.SetAttributes(KeyCode.Int(int(code)), KeyMessage.String(msg))
		if isError {
			span.SetStatus(codes.Error, msg)
		}
	}
	span.End()
	if dur != nil {
		dur.Record(context.Background(), time.Since(start).Seconds(), metric.WithAttributes(
			KeySystem.String(System), KeyMethod.String(t.names.Name(req.Method)), KeyStatus.String(t.codes.Label(code))))
	}
}

// serverFault reports whether code says the server failed, rather than the
// caller or the application's rules.
func serverFault(code rpc.Code) bool {
	switch code {
	case rpc.CodeInternalError, rpc.CodeUnavailable, rpc.CodeDeadlineExceeded, rpc.CodeConnectionLost:
		return true
	}
	return false
}

func spanName(req *rpc.Request) string { return logtext.Clip(req.Method) }

func attrs(req *rpc.Request) []attribute.KeyValue {
	kv := []attribute.KeyValue{KeySystem.String(System), KeyMethod.String(logtext.Clip(req.Method))}
	if req.IsNotification() {
		kv = append(kv, KeyNotification.Bool(true))
	}
	if req.OpensStream() {
		kv = append(kv, KeyStream.Bool(true))
	}
	if p := req.Peer(); p != nil {
		kv = append(kv, KeyConn.String(p.ID()), KeySubprotocol.String(p.Subprotocol()))
		if a := p.RemoteAddr(); a != nil {
			kv = append(kv, KeyPeerAddress.String(a.String()))
		}
	}
	return kv
}

// carrier is a call's metadata seen as a propagation.TextMapCarrier.
type carrier struct{ md rpc.Metadata }

func (c carrier) Get(key string) string { return c.md[key] }

func (c carrier) Set(key, value string) {
	if c.md != nil {
		c.md[key] = value
	}
}

func (c carrier) Keys() []string {
	keys := make([]string, 0, len(c.md))
	for k := range c.md {
		keys = append(keys, k)
	}
	return keys
}
