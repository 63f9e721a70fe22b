package handler_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/rpc"
)

// connect starts a peer on each end of one loopback WebSocket connection
// (wsrpc.v1), the server's made with server and the client's with client.
// Both are closed, and waited for, at the end of the test.
func connect(t testing.TB, server, client []rpc.Option) (c, s *rpc.Peer) {
	t.Helper()
	cc, sc := pipe.New(t, pipe.Options{Subprotocol: rpc.SubprotocolBinary})
	s, err := rpc.New(sc, server...)
	if err != nil {
		t.Fatal(err)
	}
	c, err = rpc.New(cc, client...)
	if err != nil {
		s.CloseNow()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.CloseNow()
		s.CloseNow()
		c.Wait()
		s.Wait()
	})
	return c, s
}

// testCtx is a context that bounds one test.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// serveOnce makes one call to h over a real connection whose serving peer
// is made with opts, and returns what h returned there: the very error
// value, not its copy on the wire, so that a test can compare it. The
// client's error is checked to carry the same code.
func serveOnce(t *testing.T, h handler.Handler, opts []rpc.Option, method, params string) ([]byte, error) {
	t.Helper()
	type outcome struct {
		result []byte
		err    error
	}
	done := make(chan outcome, 1)
	rec := handler.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		if req.Peer() == nil || rpc.RequestFromContext(ctx) != req {
			t.Errorf("a call on a connection: Peer %v, RequestFromContext %v", req.Peer(), rpc.RequestFromContext(ctx))
		}
		result, err := h.ServeRPC(ctx, req)
		done <- outcome{bytes.Clone(result), err} // the result may alias Params, reused once this returns
		return result, err
	})
	c, _ := connect(t, append([]rpc.Option{rpc.WithHandler(rec)}, opts...), nil)
	var raw rpc.Raw
	var p any
	if params != "" {
		p = rpc.Raw(params)
	}
	ctx := testCtx(t)
	callErr := c.Call(ctx, method, p, &raw)
	var o outcome
	select {
	case o = <-done:
	case <-ctx.Done():
		t.Fatalf("the handler never ran; the call returned %v", callErr)
	}
	if got, want := rpc.CodeOf(callErr), rpc.CodeOf(o.err); got != want {
		t.Errorf("the caller got %v (code %v), the handler returned %v (code %v)", callErr, got, o.err, want)
	}
	return o.result, o.err
}
