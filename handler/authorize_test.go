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
		principal any // nil: no principal; "-": no session at all
		method    string
		want      error // nil: allowed
		wantSame  bool  // the hook's error is returned as it is
	}{
		{"admin", "admin", "secret", nil, false},
		{"public", nil, "public.info", nil, false},
		{"no session", "-", "public.info", nil, false},
		{"anonymous", nil, "secret", unauthenticated, true},
		{"no session, secret", "-", "secret", unauthenticated, true},
		{"rpc error in a chain", "bob", "wrapped", wrapped, true},
		{"plain error", "bob", "secret", &rpc.Error{Code: rpc.CodePermissionDenied, Message: "bob may not call secret"}, false},
	}
	h := handler.Authorize(allow)(echo)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.principal != "-" {
				s := new(handler.Session)
				s.SetPrincipal(tt.principal)
				ctx = handler.WithSession(ctx, s)
			}
			got, err := h.ServeRPC(ctx, newReq(tt.method, "ran"))
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
