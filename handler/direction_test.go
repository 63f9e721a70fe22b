package handler_test

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
)

// seenCall is what recording saw of one call.
type seenCall struct {
	peer     string // the ID of the peer the call was on
	outgoing bool
	method   string
	id       string // the wire id, read after the call
	code     rpc.Code
}

// recording is a middleware that reports every call it wraps on seen, once
// the call has returned.
func recording(seen chan<- seenCall) handler.Middleware {
	return func(next handler.Handler) handler.Handler {
		return handler.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			result, err := next.ServeRPC(ctx, req)
			seen <- seenCall{req.Peer().ID(), req.Outgoing(), req.Method, req.WireID(), rpc.CodeOf(err)}
			return result, err
		})
	}
}

// TestOneMiddlewareBothDirections gives the same middleware value to the
// handler chain and to rpc.WithOutgoingMiddleware on both peers: it sees
// every call twice, once on each side, made and served, with the side's
// peer, the direction, the same wire id and the same outcome.
func TestOneMiddlewareBothDirections(t *testing.T) {
	seen := make(chan seenCall, 16)
	metrics := handler.NewMemoryMetrics()
	mw := handler.Chain(recording(seen), handler.Instrument(metrics))

	noted := make(chan struct{}, 1)
	serverMux := handler.NewMux()
	serverMux.Use(mw)
	serverMux.Handle("ping", handler.NoParams(func(context.Context) (string, error) { return "pong", nil }))
	serverMux.Handle("note", handler.NoParams(func(context.Context) (any, error) { noted <- struct{}{}; return nil, nil }))
	clientMux := handler.NewMux()
	clientMux.Use(mw)
	clientMux.Handle("client.ping", handler.NoParams(func(context.Context) (string, error) { return "pong", nil }))
	c, s := connect(t,
		[]rpc.Option{rpc.WithHandler(serverMux), rpc.WithOutgoingMiddleware(mw)},
		[]rpc.Option{rpc.WithHandler(clientMux), rpc.WithOutgoingMiddleware(mw)})

	ctx := testCtx(t)
	var got string
	if err := c.Call(ctx, "ping", nil, &got); err != nil || got != "pong" {
		t.Fatalf("ping: %q, %v", got, err)
	}
	if err := c.Call(ctx, "nope", nil, nil); rpc.CodeOf(err) != rpc.CodeMethodNotFound {
		t.Fatalf("nope: %v", err)
	}
	if err := s.Call(ctx, "client.ping", nil, &got); err != nil || got != "pong" {
		t.Fatalf("server to client: %q, %v", got, err)
	}
	if err := c.Notify(ctx, "note", nil); err != nil {
		t.Fatal(err)
	}
	<-noted

	want := []seenCall{
		{c.ID(), true, "ping", "1", 0}, {s.ID(), false, "ping", "1", 0},
		{c.ID(), true, "nope", "2", rpc.CodeMethodNotFound}, {s.ID(), false, "nope", "2", rpc.CodeMethodNotFound},
		{s.ID(), true, "client.ping", "1", 0}, {c.ID(), false, "client.ping", "1", 0},
		{c.ID(), true, "note", "", 0}, {s.ID(), false, "note", "", 0},
	}
	var calls []seenCall
	for range want {
		select {
		case sc := <-seen:
			calls = append(calls, sc)
		case <-ctx.Done():
			t.Fatalf("saw only %+v", calls)
		}
	}
	byAll := func(a, b seenCall) int {
		return cmp.Or(strings.Compare(a.method, b.method), strings.Compare(a.peer, b.peer))
	}
	slices.SortFunc(calls, byAll)
	slices.SortFunc(want, byAll)
	if !slices.Equal(calls, want) {
		t.Errorf("seen\n%+v\nwant\n%+v", calls, want)
	}

	// One Instrument counts both directions together.
	snap := metrics.Snapshot()
	for _, tt := range []struct {
		give string
		code rpc.Code
	}{{"ping", 0}, {"nope", rpc.CodeMethodNotFound}, {"client.ping", 0}, {"note", 0}} {
		m := snap.Methods[tt.give]
		if m.Started != 2 || m.Finished[tt.code].Count != 2 || len(m.Finished) != 1 {
			t.Errorf("%s: started %d, finished %+v; want 2 and 2 with code %v", tt.give, m.Started, m.Finished, tt.code)
		}
	}
}

// TestLoggingOutgoing: Logging given to rpc.WithOutgoingMiddleware logs the
// calls the peer makes, with the id they were sent with, their outcome and
// direction=outgoing.
func TestLoggingOutgoing(t *testing.T) {
	var logs lockedBuffer
	logger := newLogger(&logs, slog.LevelInfo)
	mux := handler.NewMux()
	mux.Handle("ping", handler.NoParams(func(context.Context) (string, error) { return "pong", nil }))
	mux.Handle("note", handler.NoParams(func(context.Context) (any, error) { return nil, nil }))
	c, _ := connect(t,
		[]rpc.Option{rpc.WithHandler(mux)},
		[]rpc.Option{rpc.WithOutgoingMiddleware(handler.Logging(logger, handler.LogPayloads()))})
	ctx := testCtx(t)
	if err := c.Call(ctx, "ping", []int{1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Call(ctx, "nope", nil, nil); rpc.CodeOf(err) != rpc.CodeMethodNotFound {
		t.Fatalf("nope: %v", err)
	}
	if err := c.Notify(ctx, "note", []int{2}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`level=INFO msg="rpc call" method=ping id=1 direction=outgoing conn=C remote=R duration=D code=0 params=[1] result="\"pong\""`,
		`level=WARN msg="rpc call failed" method=nope id=2 direction=outgoing conn=C remote=R duration=D code=-32601 error="wsrpc: method not found (-32601): method \"nope\" not found" params=""`,
		`level=INFO msg="rpc call" method=note id="" direction=outgoing conn=C remote=R duration=D code=0 params=[2] result=""`,
	}
	if got := strings.Split(strings.TrimSuffix(logs.String(), "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("logged\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
