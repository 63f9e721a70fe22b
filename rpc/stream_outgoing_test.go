package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"testing"

	"github.com/wsrpc/wsrpc/rpc"
)

// countdown is a handler that streams [n] results, n-1
// down to 0, then ends with "done" and the metadata key "k" it was given.
func countdown() rpc.Handler {
	return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		var args [1]int
		if err := json.Unmarshal(req.Params, &args); err != nil {
			return nil, rpc.Errorf(rpc.CodeInvalidParams, "%v", err)
		}
		n := args[0]
		w := req.Stream()
		if w == nil {
			return nil, rpc.Errorf(rpc.CodeInvalidRequest, "call it as a stream")
		}
		for i := n - 1; i >= 0; i-- {
			if err := w.Send(ctx, i); err != nil {
				return nil, err
			}
		}
		return []byte(strconv.Quote("done " + req.Metadata["k"])), nil
	})
}

// The outgoing middleware sees a call that opens a stream, around its
// whole life: it may add metadata, it learns the stream's end (the final
// result, or the error), and OpensStream tells it apart from a plain call.
// The results do not pass through it.
func TestOutgoingMiddlewareSeesStreams(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			type seen struct {
				method string
				opens  bool
				res    string
				err    error
			}
			log := make(chan seen, 8)
			mw := func(next rpc.Handler) rpc.Handler {
				return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
					if req.Metadata == nil {
						req.Metadata = rpc.Metadata{}
					}
					req.Metadata["k"] = "from-mw"
					res, err := next.ServeRPC(ctx, req)
					log <- seen{req.Method, req.OpensStream(), string(res), err}
					return res, err
				})
			}
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(countdown())}, []rpc.Option{rpc.WithOutgoingMiddleware(mw)})

			s, err := c.Stream(ctxT(t), "count", []int{5})
			if err != nil {
				t.Fatal(err)
			}
			for want := 4; want >= 0; want-- {
				var got int
				if err := s.RecvValue(&got); err != nil || got != want {
					t.Fatalf("result %d, %v; want %d", got, err, want)
				}
			}
			if _, err := s.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the results: %v, want io.EOF", err)
			}
			var final string
			if err := s.Result(&final); err != nil || final != "done from-mw" {
				t.Fatalf("final result %q, %v", final, err)
			}
			if e := <-log; e.method != "count" || !e.opens || e.res != `"done from-mw"` || e.err != nil {
				t.Fatalf("middleware saw %+v", e)
			}

			// A plain call is not a stream to the middleware.
			if err := c.Call(ctxT(t), "count", []int{1}, nil); err == nil {
				t.Fatal("a plain call to the stream handler succeeded")
			}
			if e := <-log; e.opens {
				t.Fatalf("a plain call reported as a stream: %+v", e)
			}

			// A stream the caller closes early ends in the middleware with
			// the cancellation.
			s, err = c.Stream(ctxT(t), "count", []int{1_000_000}, rpc.WithWindow(1))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Recv(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if e := <-log; !errors.Is(e.err, context.Canceled) {
				t.Fatalf("a closed stream ended in the middleware with %v, want context.Canceled", e.err)
			}
		})
	}
}

// An outgoing middleware that refuses a stream (returns an error without
// calling next) makes Peer.Stream fail with its error, and one that returns
// without sending makes it fail too: nothing was sent.
func TestOutgoingMiddlewareRefusesStream(t *testing.T) {
	refused := errors.New("refused by policy")
	for _, tc := range []struct {
		name string
		ret  error
		want error
	}{{"error", refused, refused}, {"nothing sent", nil, nil}} {
		t.Run(tc.name, func(t *testing.T) {
			mw := func(next rpc.Handler) rpc.Handler {
				return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) { return nil, tc.ret })
			}
			c, _ := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(countdown())}, []rpc.Option{rpc.WithOutgoingMiddleware(mw)})
			s, err := c.Stream(ctxT(t), "count", []int{3})
			if err == nil {
				s.Close()
				t.Fatal("the stream opened")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Stream: %v, want %v", err, tc.want)
			}
		})
	}
}
