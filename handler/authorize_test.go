package handler_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
)

func TestAuthorize(t *testing.T) {
	unauthenticated := rpc.NewError(rpc.CodeUnauthenticated, "log in first")
	wrapped := fmt.Errorf("policy: %w", unauthenticated)
	// allow lets "admin" call anything, anyone call "public.info", and nobody
	// else anything; it refuses in the ways a hook can.
	allow := func(_ context.Context, principal any, method string) error {
		switch {
		case principal == "admin":
			return nil
		case method == "public.info":
			return nil
		case method == "wrapped":
			return wrapped
		case principal == nil:
			return unauthenticated
		}
		return fmt.Errorf("%v may not call %s", principal, method)
	}
	tests := []struct {
		name      string
		principal any // nil: nobody has authenticated; "-": a Request built by hand, with no peer
		method    string
		want      error // nil: allowed
		wantSame  bool  // the hook's error is returned as it is
	}{
		{"admin", "admin", "secret", nil, false},
		{"public", nil, "public.info", nil, false},
		{"no peer", "-", "public.info", nil, false},
		{"anonymous", nil, "secret", unauthenticated, true},
		{"no peer, secret", "-", "secret", unauthenticated, true},
		{"rpc error in a chain", "bob", "wrapped", wrapped, true},
		{"plain error", "bob", "secret", &rpc.Error{Code: rpc.CodePermissionDenied, Message: "bob may not call secret"}, false},
	}
	h := handler.Authorize(allow)(echo)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []byte
			var err error
			if tt.principal == "-" {
				got, err = h.ServeRPC(context.Background(), newReq(tt.method, "ran"))
			} else {
				// The principal is the connection's, given to its peer as
				// the server does after authenticating the handshake.
				got, err = serveOnce(t, h, []rpc.Option{rpc.WithPrincipal(tt.principal)}, tt.method, "ran")
			}
			switch {
			case tt.want == nil:
				if err != nil || string(got) != "ran" {
					t.Errorf("refused: %q, %v", got, err)
				}
			case tt.wantSame:
				if err != tt.want {
					t.Errorf("error %v, want %v as it is", err, tt.want)
				}
			default:
				var e *rpc.Error
				if !errors.As(err, &e) || e.Error() != tt.want.Error() {
					t.Errorf("error %v, want %v", err, tt.want)
				}
			}
			if tt.want != nil && got != nil {
				t.Errorf("a refused call ran: %q", got)
			}
		})
	}
}

// TestAuthorizeSeesTheSessionChange: a principal a handler records on the
// connection's session (a login method, say) is the one Authorize checks on
// the calls after it.
func TestAuthorizeSeesTheSessionChange(t *testing.T) {
	mux := handler.NewMux()
	mux.Use(handler.Authorize(func(_ context.Context, principal any, method string) error {
		if principal == nil && method != "login" {
			return rpc.ErrUnauthenticated
		}
		return nil
	}))
	mux.Handle("login", handler.Func(func(ctx context.Context, name string) (bool, error) {
		rpc.RequestFromContext(ctx).Peer().Session().SetPrincipal(name)
		return true, nil
	}))
	mux.Handle("whoami", handler.NoParams(func(ctx context.Context) (string, error) {
		return rpc.RequestFromContext(ctx).Peer().Session().Principal().(string), nil
	}))
	c, s := connect(t, []rpc.Option{rpc.WithHandler(mux)}, nil)
	ctx := testCtx(t)
	if err := c.Call(ctx, "whoami", nil, nil); !errors.Is(err, rpc.ErrUnauthenticated) {
		t.Fatalf("before login: %v, want unauthenticated", err)
	}
	if err := c.Call(ctx, "login", "carol", nil); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := c.Call(ctx, "whoami", nil, &got); err != nil || got != "carol" {
		t.Fatalf("after login: %q, %v", got, err)
	}
	if p := s.Session().Principal(); p != "carol" {
		t.Errorf("the serving peer's session holds %v", p)
	}
	if p := c.Session().Principal(); p != nil {
		t.Errorf("the calling peer's own session holds %v: sessions are per end", p)
	}
}
