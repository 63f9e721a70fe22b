package rpc_test

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/wsrpc/wsrpc/rpc"
)

// echoPeers is a pair whose server echoes params, the client wrapped in mw.
func echoPeers(t *testing.T, mw rpc.Middleware) (c *rpc.Peer) {
	echo := rpc.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) { return req.Params, nil })
	c, _ = peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(echo), rpc.WithMaxInFlight(100)},
		[]rpc.Option{rpc.WithOutgoingMiddleware(mw)})
	return c
}

// TestOutgoingMiddlewareKeepsAnEarlierResult: a middleware that calls next
// twice and returns the first result gets it intact: the first buffer is
// not recycled under it.
func TestOutgoingMiddlewareKeepsAnEarlierResult(t *testing.T) {
	twice := func(next rpc.Handler) rpc.Handler {
		return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			first, err := next.ServeRPC(ctx, req)
			if err != nil {
				return nil, err
			}
			if _, err := next.ServeRPC(ctx, req); err != nil {
				return nil, err
			}
			return first, nil
		})
	}
	c := echoPeers(t, twice)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				want := bytes.Repeat([]byte(strconv.Itoa(g*1000+i)), 50)
				var got rpc.Raw
				if err := c.Call(ctxT(t), "echo", rpc.Raw(want), &got); err != nil {
					t.Error(err)
					return
				}
				if !bytes.Equal(got, want) {
					t.Errorf("result %q..., want %q...", got[:8], want[:8])
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestSendThroughMiddlewareReusedRequest: a caller may reuse its Request
// once Send has returned; every Response goes to the channel of its own
// Send.
func TestSendThroughMiddlewareReusedRequest(t *testing.T) {
	pass := func(next rpc.Handler) rpc.Handler { return next }
	c := echoPeers(t, pass)
	a, b := make(chan *rpc.Response, 50), make(chan *rpc.Response, 50)
	var req rpc.Request
	for i := range 100 {
		ch := a
		if i%2 == 1 {
			ch = b
		}
		req = rpc.Request{Method: "echo", Params: rpc.Raw(strconv.Itoa(i)), Reply: ch}
		if err := c.Send(ctxT(t), &req); err != nil {
			t.Fatal(err)
		}
	}
	for range 50 {
		if r := recvResponse(t, a); r.Err != nil || len(r.Result) == 0 || (r.Result[len(r.Result)-1]-'0')%2 != 0 {
			t.Fatalf("channel a got %+v, want an even call's reply", r)
		}
		if r := recvResponse(t, b); r.Err != nil || len(r.Result) == 0 || (r.Result[len(r.Result)-1]-'0')%2 != 1 {
			t.Fatalf("channel b got %+v, want an odd call's reply", r)
		}
	}
}

// TestSendThroughMiddlewareRetriedAfterRefusal: a middleware whose first
// attempt is refused before it is sent and whose second is sent makes Send
// succeed, with the second attempt's id on Send and on the Response.
func TestSendThroughMiddlewareRetriedAfterRefusal(t *testing.T) {
	dropMetadata := func(next rpc.Handler) rpc.Handler {
		return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			res, err := next.ServeRPC(ctx, req)
			if rpc.CodeOf(err) == rpc.CodeInvalidRequest {
				req.Metadata = nil // too much: try without
				return next.ServeRPC(ctx, req)
			}
			return res, err
		})
	}
	c := echoPeers(t, dropMetadata)
	reply := make(chan *rpc.Response, 1)
	req := rpc.Request{Method: "echo", Params: rpc.Raw("[1]"), Reply: reply,
		Metadata: rpc.Metadata{"big": string(bytes.Repeat([]byte("x"), rpc.DefaultMaxMetadataBytes+1))}}
	if err := c.Send(ctxT(t), &req); err != nil {
		t.Fatalf("Send = %v, want nil: the second attempt was sent", err)
	}
	r := recvResponse(t, reply)
	if r.Err != nil || string(r.Result) != "[1]" || r.ID != req.ID || req.ID == 0 {
		t.Fatalf("Response %+v (Send's id %d), want the echo with Send's id", r, req.ID)
	}
}
