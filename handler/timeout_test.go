package handler_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
)

// deadlineOf is a handler that reports the time left before its context's
// deadline, or -1 for none.
func deadlineOf(left *time.Duration) handler.Handler {
	return handler.HandlerFunc(func(ctx context.Context, _ *rpc.Request) ([]byte, error) {
		*left = -1
		if dl, ok := ctx.Deadline(); ok {
			*left = time.Until(dl)
		}
		return nil, nil
	})
}

func TestTimeout(t *testing.T) {
	const none = -1
	tests := []struct {
		name      string
		def, max  time.Duration
		give      time.Duration // the ctx's own timeout; none for no deadline
		want      time.Duration // the handler's; none for no deadline
		unchanged bool          // the handler gets the ctx as it is
	}{
		{"no def, no max", 0, 0, none, none, true},
		{"no def, no max, own deadline", 0, 0, time.Hour, time.Hour, true},
		{"def", time.Minute, 0, none, time.Minute, false},
		{"def, own deadline kept", time.Minute, 0, time.Hour, time.Hour, true},
		{"max caps", 0, time.Minute, time.Hour, time.Minute, false},
		{"max keeps a shorter one", 0, time.Hour, time.Minute, time.Minute, true},
		{"max bounds no deadline", 0, time.Minute, none, time.Minute, false},
		{"def above max", time.Hour, time.Minute, none, time.Minute, false},
		{"def and max, no deadline", time.Minute, time.Hour, none, time.Minute, false},
		{"def and max, far deadline", time.Minute, time.Hour, 2 * time.Hour, time.Hour, false},
		{"def and max, near deadline", time.Minute, time.Hour, time.Second, time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.give != none {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.give)
				defer cancel()
			}
			var left time.Duration
			var sameCtx bool
			inner := deadlineOf(&left)
			h := handler.Timeout(tt.def, tt.max)(handler.HandlerFunc(func(c context.Context, req *rpc.Request) ([]byte, error) {
				sameCtx = c == ctx
				return inner.ServeRPC(c, req)
			}))
			if _, err := h.ServeRPC(ctx, newReq("m", "")); err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want == none && left != none:
				t.Errorf("deadline in %v, want none", left)
			case tt.want != none && (left > tt.want || left < tt.want-time.Second):
				t.Errorf("deadline in %v, want %v", left, tt.want)
			}
			if sameCtx != tt.unchanged {
				t.Errorf("handler got the caller's ctx: %v, want %v", sameCtx, tt.unchanged)
			}
		})
	}
}

func TestTimeoutExpires(t *testing.T) {
	wait := handler.HandlerFunc(func(ctx context.Context, _ *rpc.Request) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	tests := []struct {
		name     string
		def, max time.Duration
		give     time.Duration // the caller's own timeout; 0 for none
	}{
		{"def", 10 * time.Millisecond, 0, 0},
		{"cap", 0, 10 * time.Millisecond, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.give > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.give)
				defer cancel()
			}
			_, err := handler.Timeout(tt.def, tt.max)(wait).ServeRPC(ctx, newReq("m", ""))
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("error %v, want a deadline error", err)
			}
			wantCode(t, err, rpc.CodeDeadlineExceeded)
			if ctx.Err() != nil {
				t.Error("the caller's own ctx ended")
			}
		})
	}
}

func TestTimeoutNoAllocWhenSatisfied(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := handler.Timeout(time.Second, time.Hour)(handler.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) {
		return nil, nil
	}))
	req := newReq("m", "")
	if n := testing.AllocsPerRun(100, func() { h.ServeRPC(ctx, req) }); n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
	}
}
