package wsrpcotel_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/wsrpc/wsrpc/client"
	wsrpcotel "github.com/wsrpc/wsrpc/contrib/otel"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// env is a traced server and a traced client, each with a tracer provider
// of its own recording into rec, and the server's metrics in reader.
type env struct {
	rec      *tracetest.SpanRecorder
	ended    chan sdktrace.ReadOnlySpan // every span as it ends
	url      string
	reader   *sdkmetric.ManualReader
	client   *client.Client
	clientTP *sdktrace.TracerProvider
	md       chan rpc.Metadata // the metadata of each call the server serves
	release  chan struct{}     // the stream "held" sends its second result once closed
}

func newEnv(t *testing.T, codec string) *env {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	ended := endedSpans(make(chan sdktrace.ReadOnlySpan, 64))
	serverTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSpanProcessor(ended))
	clientTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSpanProcessor(ended))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		serverTP.Shutdown(context.Background())
		clientTP.Shutdown(context.Background())
		mp.Shutdown(context.Background())
	})
	e := &env{rec: rec, ended: ended, reader: reader, clientTP: clientTP, md: make(chan rpc.Metadata, 16),
		release: make(chan struct{})}

	traced := wsrpcotel.Middleware(wsrpcotel.WithTracerProvider(serverTP), wsrpcotel.WithMeterProvider(mp))
	mux := handler.NewMux()
	mux.Use(handler.Recover(nil), traced)
	mux.Handle("echo", handler.Func(func(ctx context.Context, v []int) ([]int, error) {
		e.md <- rpc.RequestFromContext(ctx).Metadata.Clone()
		return v, nil
	}))
	mux.Handle("held", handler.Stream(func(ctx context.Context, _ []int, send func(int) error) error {
		if err := send(1); err != nil {
			return err
		}
		select {
		case <-e.release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return send(2)
	}))
	mux.Handle("fail", handler.NoParams(func(context.Context) (any, error) { return nil, rpc.NewError(-32050, "out of stock") }))
	mux.Handle("boom", handler.NoParams(func(context.Context) (any, error) { panic("boom") }))
	mux.Handle("callback", handler.NoParams(func(ctx context.Context) (string, error) {
		var s string
		err := rpc.RequestFromContext(ctx).Peer().Call(ctx, "client.ping", nil, &s)
		return s, err
	}))
	srv, err := server.New(mux, rpc.WithOutgoingMiddleware(traced))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})

	clientTraced := wsrpcotel.Middleware(wsrpcotel.WithTracerProvider(clientTP))
	ping := handler.NewMux()
	ping.Use(clientTraced)
	ping.Handle("client.ping", handler.NoParams(func(context.Context) (string, error) { return "pong", nil }))
	e.url = "ws" + strings.TrimPrefix(hs.URL, "http")
	c, err := client.Dial(ctxT(t), e.url, rpc.WithSubprotocols(codec),
		rpc.WithOutgoingMiddleware(clientTraced), rpc.WithHandler(ping))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e.client = c
	return e
}

// span returns the one ended span named name of kind.
func (e *env) span(t *testing.T, name string, kind trace.SpanKind) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range e.rec.Ended() {
		if s.Name() == name && s.SpanKind() == kind {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s spans named %q, want 1", len(found), kind, name)
	}
	return found[0]
}

// childOf checks that child's parent is parent, across the wire.
func childOf(t *testing.T, child, parent sdktrace.ReadOnlySpan, remote bool) {
	t.Helper()
	if child.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("%s %s is in trace %s, its parent %s %s in %s", child.SpanKind(), child.Name(), child.SpanContext().TraceID(),
			parent.SpanKind(), parent.Name(), parent.SpanContext().TraceID())
	}
	if child.Parent().SpanID() != parent.SpanContext().SpanID() || child.Parent().IsRemote() != remote {
		t.Errorf("%s %s: parent %s (remote %v), want %s (remote %v)", child.SpanKind(), child.Name(),
			child.Parent().SpanID(), child.Parent().IsRemote(), parent.SpanContext().SpanID(), remote)
	}
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

var codecs = []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON}

// TestTraceAcrossTheWire: a call made under a span is one trace on both
// sides: the client span is the child of the caller's span, the server
// span the remote child of the client span; tracestate goes along.
func TestTraceAcrossTheWire(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnv(t, codec)
			ctx, root := e.clientTP.Tracer("test").Start(ctxT(t), "root")
			ts, _ := trace.ParseTraceState("vendor=v1")
			ctx = trace.ContextWithSpanContext(ctx, root.SpanContext().WithTraceState(ts))
			if err := e.client.Call(ctx, "echo", []int{1}, nil); err != nil {
				t.Fatal(err)
			}
			root.End()
			md := <-e.md
			if !strings.HasPrefix(md["traceparent"], "00-"+root.SpanContext().TraceID().String()+"-") || md["tracestate"] != "vendor=v1" {
				t.Errorf("the server got metadata %v", md)
			}
			r := e.span(t, "root", trace.SpanKindInternal)
			cs := e.span(t, "echo", trace.SpanKindClient)
			ss := e.span(t, "echo", trace.SpanKindServer)
			childOf(t, cs, r, false)
			childOf(t, ss, cs, true)
			if got := ss.SpanContext().TraceState().Get("vendor"); got != "v1" {
				t.Errorf("server span tracestate vendor = %q", got)
			}
			for _, s := range []sdktrace.ReadOnlySpan{cs, ss} {
				if s.Status().Code != codes.Unset || attr(s, wsrpcotel.KeySystem).AsString() != "wsrpc" ||
					attr(s, wsrpcotel.KeyMethod).AsString() != "echo" || attr(s, wsrpcotel.KeySubprotocol).AsString() != codec ||
					attr(s, wsrpcotel.KeyRequestID).AsString() == "" || attr(s, wsrpcotel.KeyConn).AsString() == "" {
					t.Errorf("%s span: status %v, attributes %v", s.SpanKind(), s.Status(), s.Attributes())
				}
			}
		})
	}
}

// TestTraceServerToClient: the server's call back to the client, made from
// its handler, continues the trace: client span → server span → the
// server's client span → the client's server span.
func TestTraceServerToClient(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnv(t, codec)
			var pong string
			if err := e.client.Call(ctxT(t), "callback", nil, &pong); err != nil || pong != "pong" {
				t.Fatalf("callback: %q, %v", pong, err)
			}
			c1 := e.span(t, "callback", trace.SpanKindClient)
			s1 := e.span(t, "callback", trace.SpanKindServer)
			c2 := e.span(t, "client.ping", trace.SpanKindClient)
			s2 := e.span(t, "client.ping", trace.SpanKindServer)
			if c1.Parent().IsValid() {
				t.Errorf("the first client span has a parent: %v", c1.Parent())
			}
			childOf(t, s1, c1, true)
			childOf(t, c2, s1, false)
			childOf(t, s2, c2, true)
		})
	}
}

// TestTraceStream: a stream is one span on each side, open from the call
// that opens it to its end (not only to its opening), marked wsrpc.stream,
// the server's a child of the client's across the wire.
func TestTraceStream(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnv(t, codec)
			ctx := ctxT(t)
			s, err := e.client.Stream(ctx, "held", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Recv(); err != nil {
				t.Fatal(err)
			}
			// The handler waits to send its second result: neither side has
			// ended its span.
			for _, sp := range e.rec.Ended() {
				if sp.Name() == "held" {
					t.Fatalf("the %s span ended while the stream was open", sp.SpanKind())
				}
			}
			close(e.release)
			n := 1
			for {
				if _, err := s.Recv(); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if n != 2 {
				t.Fatalf("%d results, want 2", n)
			}
			// Both spans end once the stream has; either may end first.
			waitEnded(t, e, "held", trace.SpanKindClient, trace.SpanKindServer)
			cs := e.span(t, "held", trace.SpanKindClient)
			ss := e.span(t, "held", trace.SpanKindServer)
			childOf(t, ss, cs, true)
			for _, sp := range []sdktrace.ReadOnlySpan{cs, ss} {
				if !attr(sp, wsrpcotel.KeyStream).AsBool() || sp.Status().Code != codes.Unset {
					t.Errorf("%s stream span: status %v, attributes %v", sp.SpanKind(), sp.Status(), sp.Attributes())
				}
			}
		})
	}
}

// TestSpanStatus: a failed call is an error on the client side; on the
// server side only when the server failed.
func TestSpanStatus(t *testing.T) {
	e := newEnv(t, rpc.SubprotocolBinary)
	ctx := ctxT(t)
	if err := e.client.Call(ctx, "fail", nil, nil); rpc.CodeOf(err) != -32050 {
		t.Fatalf("fail: %v", err)
	}
	if err := e.client.Call(ctx, "boom", nil, nil); rpc.CodeOf(err) != rpc.CodeInternalError {
		t.Fatalf("boom: %v", err)
	}
	if err := e.client.Notify(ctx, "echo", []int{2}); err != nil {
		t.Fatal(err)
	}
	<-e.md
	tests := []struct {
		name string
		kind trace.SpanKind
		want codes.Code
		code int64
	}{
		{"fail", trace.SpanKindClient, codes.Error, -32050},
		{"fail", trace.SpanKindServer, codes.Unset, -32050},
		{"boom", trace.SpanKindClient, codes.Error, int64(rpc.CodeInternalError)},
		{"boom", trace.SpanKindServer, codes.Error, int64(rpc.CodeInternalError)},
	}
	for _, tt := range tests {
		s := e.span(t, tt.name, tt.kind)
		if s.Status().Code != tt.want || attr(s, wsrpcotel.KeyCode).AsInt64() != tt.code {
			t.Errorf("%s %s: status %v, code %v; want %v, %d", tt.kind, tt.name, s.Status(), attr(s, wsrpcotel.KeyCode), tt.want, tt.code)
		}
	}
	// The notification: no id, marked, traced across.
	waitEnded(t, e, "echo", trace.SpanKindServer)
	n := e.span(t, "echo", trace.SpanKindServer)
	if !attr(n, wsrpcotel.KeyNotification).AsBool() || attr(n, wsrpcotel.KeyRequestID).Type() != attribute.INVALID {
		t.Errorf("notification span attributes %v", n.Attributes())
	}
	childOf(t, n, e.span(t, "echo", trace.SpanKindClient), true)
}

// waitEnded waits for a span the handler's return ends after the handler
// itself has answered the test.
// With several kinds, it waits for a span of each, in any order.
func waitEnded(t *testing.T, e *env, name string, kinds ...trace.SpanKind) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for len(kinds) > 0 {
		select {
		case s := <-e.ended:
			if i := slices.Index(kinds, s.SpanKind()); s.Name() == name && i >= 0 {
				kinds = slices.Delete(kinds, i, i+1)
			}
		case <-timeout:
			t.Fatalf("no %v span %s ended", kinds, name)
		}
	}
}

// endedSpans is a span processor that passes on the spans as they end
// (dropping them when nobody reads).
type endedSpans chan sdktrace.ReadOnlySpan

func (endedSpans) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (c endedSpans) OnEnd(s sdktrace.ReadOnlySpan) {
	select {
	case c <- s:
	default:
	}
}
func (endedSpans) Shutdown(context.Context) error   { return nil }
func (endedSpans) ForceFlush(context.Context) error { return nil }

// TestMetrics: with a meter provider, each call served is recorded in
// rpc.server.call.duration with its method and code.
func TestMetrics(t *testing.T) {
	e := newEnv(t, rpc.SubprotocolJSON)
	ctx := ctxT(t)
	for range 3 {
		if err := e.client.Call(ctx, "echo", []int{1}, nil); err != nil {
			t.Fatal(err)
		}
		<-e.md
	}
	e.client.Call(ctx, "fail", nil, nil)
	var rm metricdata.ResourceMetrics
	if err := e.reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "rpc.server.call.duration" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				method, _ := dp.Attributes.Value(wsrpcotel.KeyMethod)
				status, _ := dp.Attributes.Value(wsrpcotel.KeyStatus)
				counts[method.AsString()+"/"+status.AsString()] += dp.Count
			}
		}
	}
	if counts["echo/ok"] != 3 || counts["fail/-32050"] != 1 {
		t.Errorf("server durations by method/code: %v", counts)
	}
}

// TestTraceparentFromAPlainClient: a client without the middleware (as a
// client in another language) continues a trace by sending traceparent and
// tracestate in the metadata; a malformed trace context starts a new trace,
// and nothing fails.
func TestTraceparentFromAPlainClient(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnv(t, codec)
			plain, err := client.Dial(ctxT(t), e.url, rpc.WithSubprotocols(codec))
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			call := func(md rpc.Metadata) sdktrace.ReadOnlySpan {
				t.Helper()
				if err := plain.Call(rpc.ContextWithMetadata(ctxT(t), md), "echo", []int{1}, nil); err != nil {
					t.Fatal(err)
				}
				<-e.md
				timeout := time.After(5 * time.Second)
				for {
					select {
					case s := <-e.ended:
						if s.Name() == "echo" && s.SpanKind() == trace.SpanKindServer {
							return s
						}
					case <-timeout:
						t.Fatal("no server span")
					}
				}
			}
			s := call(rpc.Metadata{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "congo=t61rcWkgMzE"})
			if s.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || s.Parent().SpanID().String() != "00f067aa0ba902b7" ||
				!s.Parent().IsRemote() || s.SpanContext().TraceState().Get("congo") != "t61rcWkgMzE" {
				t.Errorf("server span %v, parent %v", s.SpanContext(), s.Parent())
			}
			for _, md := range []rpc.Metadata{
				{"traceparent": "00-zz-yy-01", "tracestate": strings.Repeat("x", 4000)},
				{"traceparent": "00-00000000000000000000000000000000-0000000000000000-01"}, // all zero: invalid
				{"traceparent": "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, // version ff: invalid
			} {
				if s := call(md); s.Parent().IsValid() || !s.SpanContext().IsValid() {
					t.Errorf("%v: parent %v, context %v; want a new root", md, s.Parent(), s.SpanContext())
				}
			}
		})
	}
}
