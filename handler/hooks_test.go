package handler_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
)

func TestHooks(t *testing.T) {
	stop := rpc.NewError(rpc.CodePermissionDenied, "stopped")
	failure := errors.New("failed")
	tests := []struct {
		name    string
		before  error // returned by the Before hook
		give    handler.Handler
		want    string // the events, in order
		wantErr error
	}{
		{"success", nil, echo, "before(m) run success(m,p)", nil},
		{"failure", nil, fail(failure), "before(m) run error(m,failed)", failure},
		{"stopped", stop, echo, "before(m) error(m,wsrpc: permission denied (-32005): stopped)", stop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var events []string
			h := handler.Chain(
				handler.AfterError(func(_ context.Context, req *rpc.Request, err error) {
					events = append(events, "error("+req.Method+","+err.Error()+")")
				}),
				handler.AfterSuccess(func(_ context.Context, req *rpc.Request, result []byte) {
					events = append(events, "success("+req.Method+","+string(result)+")")
				}),
				handler.Before(func(_ context.Context, req *rpc.Request) error {
					events = append(events, "before("+req.Method+")")
					return tt.before
				}),
			)(handler.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
				events = append(events, "run")
				return tt.give.ServeRPC(ctx, req)
			}))
			got, err := h.ServeRPC(context.Background(), newReq("m", "p"))
			if got := strings.Join(events, " "); got != tt.want {
				t.Errorf("events %q, want %q", got, tt.want)
			}
			if err != tt.wantErr {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if err == nil && string(got) != "p" {
				t.Errorf("result %q", got)
			}
		})
	}
}
