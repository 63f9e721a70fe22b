package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
)

// traceLog gathers, in order, what the tracing middleware of one peer saw.
type traceLog chan string

// mw is an outgoing middleware that logs name on the way in and /name on
// the way out.
func (l traceLog) mw(name string) rpc.Middleware {
	return func(next rpc.Handler) rpc.Handler {
		return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			l <- name
			defer func() { l <- "/" + name }()
			return next.ServeRPC(ctx, req)
		})
	}
}

// take returns the next n entries.
func (l traceLog) take(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	for range n {
		select {
		case s := <-l:
			got = append(got, s)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %v logged", got)
		}
	}
	return got
}

// TestOutgoingMiddlewareOrder: mws[0] is outermost on Call, Notify and
// Send, on either side of a connection, and options given several times
// join their lists.
func TestOutgoingMiddlewareOrder(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			clientLog, serverLog := make(traceLog, 16), make(traceLog, 16)
			c, s := peers(t, cd.subprotocol,
				[]rpc.Option{rpc.WithHandler(services(t)), rpc.WithOutgoingMiddleware(serverLog.mw("a"), nil, serverLog.mw("b")), rpc.WithOutgoingMiddleware(serverLog.mw("c"))},
				[]rpc.Option{rpc.WithHandler(services(t)), rpc.WithOutgoingMiddleware(clientLog.mw("a"), clientLog.mw("b")), rpc.WithOutgoingMiddleware(clientLog.mw("c"))})
			want := []string{"a", "b", "c", "/c", "/b", "/a"}
			for _, side := range []struct {
				name string
				p    *rpc.Peer
				log  traceLog
			}{{"client", c, clientLog}, {"server", s, serverLog}} {
				t.Run(side.name, func(t *testing.T) {
					ways := []struct {
						name string
						do   func() error
					}{
						{"Call", func() error { return side.p.Call(ctxT(t), "echo", []int{1}, nil) }},
						{"Notify", func() error { return side.p.Notify(ctxT(t), "echo", []int{1}) }},
						{"Send", func() error {
							reply := make(chan *rpc.Response, 1)
							if err := side.p.Send(ctxT(t), &rpc.Request{Method: "echo", Params: []byte("[1]"), Reply: reply}); err != nil {
								return err
							}
							return (<-reply).Err
						}},
						{"Send a notification", func() error { return side.p.Send(ctxT(t), &rpc.Request{Method: "echo", Params: []byte("[1]")}) }},
					}
					for _, w := range ways {
						if err := w.do(); err != nil {
							t.Fatalf("%s: %v", w.name, err)
						}
						if got := side.log.take(t, len(want)); !slices.Equal(got, want) {
							t.Errorf("%s: order %v, want %v", w.name, got, want)
						}
					}
				})
			}
			if len(clientLog)+len(serverLog) != 0 {
				t.Errorf("more was logged: the middleware also wrapped incoming calls")
			}
		})
	}
}

// seenOut is what an outgoing middleware saw of a call.
type seenOut struct {
	outgoing, notification bool
	peer                   *rpc.Peer
	method, params         string
	md                     rpc.Metadata
	idBefore, idAfter      string
	result                 string
	err                    error
}

// watcher reports what it sees on seen, and adds an entry to the metadata.
func watcher(seen chan<- seenOut) rpc.Middleware {
	return func(next rpc.Handler) rpc.Handler {
		return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			s := seenOut{outgoing: req.Outgoing(), notification: req.IsNotification(), peer: req.Peer(),
				method: req.Method, params: string(req.Params), md: req.Metadata.Clone(), idBefore: req.WireID()}
			if req.Metadata == nil {
				req.Metadata = rpc.Metadata{}
			}
			req.Metadata["added-by"] = "middleware"
			result, err := next.ServeRPC(ctx, req)
			s.idAfter, s.result, s.err = req.WireID(), string(result), err
			seen <- s
			return result, err
		})
	}
}

// TestOutgoingMiddlewareSeesTheCall: in the chain, the Request is the
// outgoing call: Outgoing, the calling peer, method, params and metadata,
// the wire id once next has sent it, and the encoded result; entries a
// middleware adds to the metadata reach the handler, and the ctx's
// metadata is left alone.
func TestOutgoingMiddlewareSeesTheCall(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			handlerSaw := make(chan seenCall, 4)
			clientSeen, serverSeen := make(chan seenOut, 4), make(chan seenOut, 4)
			c, s := peers(t, cd.subprotocol,
				[]rpc.Option{rpc.WithHandler(metaHandler(handlerSaw)), rpc.WithOutgoingMiddleware(watcher(serverSeen))},
				[]rpc.Option{rpc.WithHandler(metaHandler(handlerSaw)), rpc.WithOutgoingMiddleware(watcher(clientSeen))})
			onCtx := rpc.Metadata{"trace": "t"}
			ctx := rpc.ContextWithMetadata(ctxT(t), onCtx)
			wantMD := rpc.Metadata{"trace": "t", "added-by": "middleware"}
			for _, side := range []struct {
				name string
				p    *rpc.Peer
				seen chan seenOut
			}{{"client", c, clientSeen}, {"server", s, serverSeen}} {
				t.Run(side.name, func(t *testing.T) {
					check := func(how string, got seenOut, notification bool, wantID string) {
						t.Helper()
						if !got.outgoing || got.peer != side.p || got.notification != notification || got.method != "m" || got.params != "[1]" {
							t.Errorf("%s: middleware saw %+v", how, got)
						}
						if !sameMetadata(got.md, onCtx) {
							t.Errorf("%s: middleware saw metadata %v, want %v", how, got.md, onCtx)
						}
						if got.idBefore != "" || got.idAfter != wantID {
							t.Errorf("%s: WireID %q before next, %q after; want \"\" and %q", how, got.idBefore, got.idAfter, wantID)
						}
						if h := recvSeen(t, handlerSaw); !sameMetadata(h.md, wantMD) {
							t.Errorf("%s: the handler saw metadata %v, want %v", how, h.md, wantMD)
						}
					}

					var result json.RawMessage
					if err := side.p.Call(ctx, "m", []int{1}, &result); err != nil {
						t.Fatal(err)
					}
					got := <-side.seen
					check("Call", got, false, got.idAfter)
					if got.idAfter == "" || got.err != nil || got.result != string(result) {
						t.Errorf("Call: the middleware got %q, %v (id %q); the caller %s", got.result, got.err, got.idAfter, result)
					}

					if err := side.p.Notify(ctx, "m", []int{1}); err != nil {
						t.Fatal(err)
					}
					check("Notify", <-side.seen, true, "")

					reply := make(chan *rpc.Response, 1)
					req := &rpc.Request{Method: "m", Params: []byte("[1]"), Reply: reply}
					if err := side.p.Send(ctx, req); err != nil {
						t.Fatal(err)
					}
					check("Send", <-side.seen, false, strconv.FormatUint(req.ID, 10))
					if r := <-reply; r.Err != nil || r.ID != req.ID {
						t.Errorf("Send: Response %+v for id %d", r, req.ID)
					}
					if !sameMetadata(rpc.OutgoingMetadata(ctx), onCtx) {
						t.Errorf("the ctx's metadata became %v", rpc.OutgoingMetadata(ctx))
					}
				})
			}
		})
	}
}

// TestOutgoingMiddlewareMetadataOverTheBound: what a middleware adds is held
// to the bound too, before anything is sent.
func TestOutgoingMiddlewareMetadataOverTheBound(t *testing.T) {
	saw := make(chan seenCall, 1)
	seen := make(chan seenOut, 4)
	c, _ := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(metaHandler(saw))},
		[]rpc.Option{rpc.WithMaxMetadata(1, 0), rpc.WithOutgoingMiddleware(watcher(seen))})
	ctx := rpc.ContextWithMetadata(ctxT(t), rpc.Metadata{"one": "1"}) // the middleware adds a second
	if err := c.Call(ctx, "m", nil, nil); rpc.CodeOf(err) != rpc.CodeInvalidRequest {
		t.Fatalf("Call = %v, want invalid request", err)
	}
	if got := <-seen; got.idAfter != "" || rpc.CodeOf(got.err) != rpc.CodeInvalidRequest {
		t.Errorf("the middleware saw id %q, %v", got.idAfter, got.err)
	}
	if err := c.Send(ctx, &rpc.Request{Method: "m", Reply: make(chan *rpc.Response, 1)}); rpc.CodeOf(err) != rpc.CodeInvalidRequest {
		t.Fatalf("Send = %v, want invalid request", err)
	}
	<-seen
	if err := c.Call(ctxT(t), "m", nil, nil); err != nil {
		t.Fatal(err)
	}
	<-seen
	if got := recvSeen(t, saw); !sameMetadata(got.md, rpc.Metadata{"added-by": "middleware"}) {
		t.Errorf("the first call to arrive carried %v", got.md)
	}
}

// TestSendThroughMiddleware: with outgoing middleware, Send returns once the
// request is queued (not before: a middleware may hold it; not after: the
// reply may take long), or with the error of a middleware that refused it,
// and then no Response arrives.
func TestSendThroughMiddleware(t *testing.T) {
	errRefused := errors.New("refused by policy")
	errRewritten := errors.New("rewritten by the middleware")
	entered, gate := make(chan struct{}, 1), make(chan struct{})
	mw := func(next rpc.Handler) rpc.Handler {
		return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			switch req.Method {
			case "refuse":
				return nil, errRefused
			case "swallow": // returns without sending, and without an error
				return nil, nil
			case "gated":
				entered <- struct{}{}
				<-gate
			case "rewrite":
				if _, err := next.ServeRPC(ctx, req); err != nil {
					return nil, err
				}
				return nil, errRewritten
			}
			return next.ServeRPC(ctx, req)
		})
	}
	started, release := make(chan struct{}, 4), make(chan struct{})
	h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		started <- struct{}{}
		switch req.Method {
		case "slow":
			<-release
		case "wait":
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return []byte(`"done"`), nil
	})
	c, _ := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(h)}, []rpc.Option{rpc.WithOutgoingMiddleware(mw)})

	send := func(method string, reply chan *rpc.Response) (*rpc.Request, chan error) {
		req := &rpc.Request{Method: method, Reply: reply}
		done := make(chan error, 1)
		go func() { done <- c.Send(ctxT(t), req) }()
		return req, done
	}
	waitErr := func(done chan error) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Send did not return")
		}
		return nil
	}

	t.Run("held by a middleware", func(t *testing.T) {
		reply := make(chan *rpc.Response, 1)
		req, done := send("gated", reply)
		<-entered
		select {
		case err := <-done:
			t.Fatalf("Send returned %v while a middleware held the request", err)
		default:
		}
		close(gate)
		if err := waitErr(done); err != nil || req.ID == 0 {
			t.Fatalf("Send = %v, id %d", err, req.ID)
		}
		if r := <-reply; r.Err != nil || r.ID != req.ID || string(r.Result) != `"done"` {
			t.Fatalf("Response %+v", r)
		}
		<-started
	})

	t.Run("before the reply", func(t *testing.T) {
		reply := make(chan *rpc.Response, 1)
		req, done := send("slow", reply)
		if err := waitErr(done); err != nil {
			t.Fatal(err)
		}
		<-started // the handler holds the reply until release
		select {
		case r := <-reply:
			t.Fatalf("a Response before the reply: %+v", r)
		default:
		}
		close(release)
		if r := <-reply; r.Err != nil || r.ID != req.ID {
			t.Fatalf("Response %+v", r)
		}
	})

	t.Run("outcome rewritten", func(t *testing.T) {
		reply := make(chan *rpc.Response, 1)
		req, done := send("rewrite", reply)
		if err := waitErr(done); err != nil {
			t.Fatalf("Send = %v: the request was sent", err)
		}
		if r := <-reply; !errors.Is(r.Err, errRewritten) || r.ID != req.ID {
			t.Fatalf("Response %+v, want the middleware's error", r)
		}
		<-started
	})

	t.Run("cancelled while waiting for the reply", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctxT(t))
		reply := make(chan *rpc.Response, 1)
		if err := c.Send(ctx, &rpc.Request{Method: "wait", Reply: reply}); err != nil {
			t.Fatal(err)
		}
		cancel()
		if r := <-reply; !errors.Is(r.Err, context.Canceled) {
			t.Fatalf("Response %+v, want canceled", r)
		}
		<-started
	})

	refusedReplies := make(chan *rpc.Response, 2)
	t.Run("refused", func(t *testing.T) {
		_, done := send("refuse", refusedReplies)
		if err := waitErr(done); !errors.Is(err, errRefused) {
			t.Fatalf("Send = %v, want the middleware's error", err)
		}
		if err := c.Send(ctxT(t), &rpc.Request{Method: "refuse"}); !errors.Is(err, errRefused) {
			t.Fatalf("Send of a notification = %v, want the middleware's error", err)
		}
	})
	t.Run("returned without sending", func(t *testing.T) {
		_, done := send("swallow", refusedReplies)
		if err := waitErr(done); err == nil {
			t.Fatal("Send = nil for a request that was never sent")
		}
	})
	// Once the peer has ended and its Send goroutines are done, nothing
	// came for the requests that were not sent.
	c.Close()
	c.Wait()
	select {
	case r := <-refusedReplies:
		t.Errorf("a Response for a request never sent: %+v", r)
	default:
	}
	select {
	case <-started:
		t.Error("a refused request reached the handler")
	default:
	}
}

// TestWaitWaitsForSendGoroutines: Peer.Wait returns only once the
// middleware of every Send has returned.
func TestWaitWaitsForSendGoroutines(t *testing.T) {
	inside, hold := make(chan struct{}), make(chan struct{})
	mw := func(next rpc.Handler) rpc.Handler {
		return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			res, err := next.ServeRPC(ctx, req)
			close(inside)
			<-hold // after the reply
			return res, err
		})
	}
	c, s := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(services(t))}, []rpc.Option{rpc.WithOutgoingMiddleware(mw)})
	reply := make(chan *rpc.Response, 1)
	if err := c.Send(ctxT(t), &rpc.Request{Method: "echo", Params: []byte("[1]"), Reply: reply}); err != nil {
		t.Fatal(err)
	}
	<-inside
	c.Close()
	s.Wait()
	waited := make(chan struct{})
	go func() {
		c.Wait()
		close(waited)
	}()
	select {
	case <-waited:
		t.Fatal("Wait returned while a Send's middleware was still running")
	case r := <-reply:
		t.Fatalf("a Response before the middleware returned: %+v", r)
	default:
	}
	close(hold)
	<-waited
	if r := <-reply; r.Err != nil || string(r.Result) != "[1]" {
		t.Fatalf("Response %+v", r)
	}
}

// TestOutgoingMiddlewareRetry: a middleware may call next more than once
// (a retry); each attempt is a request of its own. Send returns once the
// first attempt is queued, with that attempt's id in req.ID, and the one
// Response that arrives carries the id Send gave (a caller matches
// Responses to its Requests by it), with the last attempt's outcome.
func TestOutgoingMiddlewareRetry(t *testing.T) {
	attempts := make(chan string, 4)
	retry := func(next rpc.Handler) rpc.Handler {
		return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			res, err := next.ServeRPC(ctx, req)
			attempts <- req.WireID()
			if rpc.CodeOf(err) != rpc.CodeBusy {
				return res, err
			}
			res, err = next.ServeRPC(ctx, req)
			attempts <- req.WireID()
			return res, err
		})
	}
	var calls atomic.Int32
	h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		if calls.Add(1)%2 == 1 { // every first attempt is refused
			return nil, rpc.ErrBusy
		}
		return []byte(`"ok"`), nil
	})
	c, _ := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(h)}, []rpc.Option{rpc.WithOutgoingMiddleware(retry)})
	var got string
	if err := c.Call(ctxT(t), "m", nil, &got); err != nil || got != "ok" {
		t.Fatalf("Call = %q, %v", got, err)
	}
	if a, b := <-attempts, <-attempts; a == b || a == "" || b == "" {
		t.Errorf("attempts had ids %q and %q", a, b)
	}
	reply := make(chan *rpc.Response, 1)
	req := &rpc.Request{Method: "m", Reply: reply}
	if err := c.Send(ctxT(t), req); err != nil {
		t.Fatal(err)
	}
	r := recvResponse(t, reply)
	if r.Err != nil || string(r.Result) != `"ok"` {
		t.Fatalf("Response %+v", r)
	}
	first, last := <-attempts, <-attempts
	if strconv.FormatUint(req.ID, 10) != first {
		t.Errorf("Send gave id %d; the first attempt was %s", req.ID, first)
	}
	if r.ID != req.ID {
		t.Errorf("Response id %d, but Send gave id %d (attempts %s and %s)", r.ID, req.ID, first, last)
	}
}
