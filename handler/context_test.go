package handler_test

import (
	"context"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
)

// Outside a call there is no request in the context, and a Request built by
// hand (as in the unit tests of this package) has no peer: every identity
// accessor reads as empty instead of panicking, so the stages of this
// package work on such requests.
func TestIdentityOutsideAConnection(t *testing.T) {
	if r := rpc.RequestFromContext(context.Background()); r != nil {
		t.Errorf("RequestFromContext outside a call = %v", r)
	}
	type key struct{}
	var seen bool
	h := handler.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		seen = true
		if r := rpc.RequestFromContext(ctx); r != nil {
			t.Errorf("RequestFromContext in a direct ServeRPC = %v", r)
		}
		p := req.Peer()
		if p != nil {
			t.Fatalf("Peer of a hand-built Request = %v", p)
		}
		if id, a, h, sp := p.ID(), p.RemoteAddr(), p.Header(), p.Subprotocol(); id != "" || a != nil || h != nil || sp != "" {
			t.Errorf("nil peer: ID %q, RemoteAddr %v, Header %v, Subprotocol %q", id, a, h, sp)
		}
		if at := p.ConnectedAt(); !at.IsZero() {
			t.Errorf("nil peer: ConnectedAt %v", at)
		}
		s := p.Session()
		if s != nil {
			t.Errorf("nil peer: Session %v", s)
		}
		s.SetPrincipal("ignored")
		s.SetValue(key{}, "ignored")
		if pr, v := s.Principal(), s.Value(key{}); pr != nil || v != nil {
			t.Errorf("nil session: Principal %v, Value %v", pr, v)
		}
		if req.WireID() != "0" || req.Outgoing() || req.IsNotification() {
			t.Errorf("hand-built request: WireID %q, Outgoing %v, IsNotification %v", req.WireID(), req.Outgoing(), req.IsNotification())
		}
		return nil, nil
	})
	// Through the stages that read the peer, too.
	mux := handler.NewMux()
	mux.Use(handler.Logging(nil), handler.Authorize(func(_ context.Context, principal any, _ string) error {
		if principal != nil {
			t.Errorf("principal %v without a peer", principal)
		}
		return nil
	}))
	mux.Handle("m", h)
	if _, err := mux.ServeRPC(context.Background(), newReq("m", "")); err != nil || !seen {
		t.Fatalf("ServeRPC = %v (handler ran: %v)", err, seen)
	}
}

// In a call, every stage and the handler find the same request, with its
// peer, in the context; derived contexts (Timeout's) keep it.
func TestRequestFromContextInACall(t *testing.T) {
	type whatSaw struct {
		Method, WireID, PeerID string
		Same                   bool
	}
	saw := make(chan whatSaw, 2)
	probe := func() handler.Middleware {
		return func(next handler.Handler) handler.Handler {
			return handler.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				r := rpc.RequestFromContext(ctx)
				saw <- whatSaw{r.Method, r.WireID(), r.Peer().ID(), r == req}
				return next.ServeRPC(ctx, req)
			})
		}
	}
	mux := handler.NewMux()
	mux.Use(probe(), handler.Timeout(time.Minute, time.Minute))
	mux.Handle("m", handler.NoParams(func(ctx context.Context) (string, error) {
		return rpc.RequestFromContext(ctx).Peer().ID(), nil
	}), probe())
	c, s := connect(t, []rpc.Option{rpc.WithHandler(mux)}, nil)
	var got string
	if err := c.Call(testCtx(t), "m", nil, &got); err != nil {
		t.Fatal(err)
	}
	if got != s.ID() || got == c.ID() {
		t.Errorf("the handler's peer is %q; want the serving peer %q, not the caller %q", got, s.ID(), c.ID())
	}
	for range 2 {
		w := <-saw
		if w != (whatSaw{"m", "1", s.ID(), true}) {
			t.Errorf("a stage saw %+v", w)
		}
	}
}
