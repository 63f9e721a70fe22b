package handler_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
)

// newReq builds an incoming request the way a test needs it: no peer, no id.
func newReq(method, params string) *rpc.Request {
	r := &rpc.Request{Method: method}
	if params != "" {
		r.Params = []byte(params)
	}
	return r
}

// echo answers with the params.
var echo = handler.HandlerFunc(func(_ context.Context, req *rpc.Request) ([]byte, error) {
	return req.Params, nil
})

// fail answers with err.
func fail(err error) handler.Handler {
	return handler.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) { return nil, err })
}

// named answers with its name, to tell which route a call took.
func named(name string) handler.Handler {
	return handler.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) { return []byte(name), nil })
}

// trace is a middleware that appends name to *log on the way in and
// "/"+name on the way out. It is for sequential tests only.
func trace(log *[]string, name string) handler.Middleware {
	return func(next handler.Handler) handler.Handler {
		return handler.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			*log = append(*log, name)
			defer func() { *log = append(*log, "/"+name) }()
			return next.ServeRPC(ctx, req)
		})
	}
}

// wantCode fails the test unless err carries code, in an *rpc.Error unless
// it is a context code.
func wantCode(t *testing.T, err error, code rpc.Code) {
	t.Helper()
	if got := rpc.CodeOf(err); got != code {
		t.Fatalf("error %v: code %v, want %v", err, got, code)
	}
	var e *rpc.Error
	ctxCode := code == rpc.CodeCanceled || code == rpc.CodeDeadlineExceeded
	if code != 0 && !ctxCode && !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *rpc.Error", err, err)
	}
}

func TestChain(t *testing.T) {
	tests := []struct {
		name string
		give []string // middleware names, nil entries as ""
		want string
	}{
		{"none", nil, "h"},
		{"one", []string{"a"}, "a h /a"},
		{"order", []string{"a", "b", "c"}, "a b c h /c /b /a"},
		{"nil skipped", []string{"", "a", "", "b", ""}, "a b h /b /a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			var mws []handler.Middleware
			for _, n := range tt.give {
				if n == "" {
					mws = append(mws, nil)
					continue
				}
				mws = append(mws, trace(&log, n))
			}
			h := handler.Chain(mws...)(handler.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) {
				log = append(log, "h")
				return nil, nil
			}))
			if _, err := h.ServeRPC(context.Background(), newReq("m", "")); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(log, " "); got != tt.want {
				t.Errorf("ran %q, want %q", got, tt.want)
			}
		})
	}
}

func TestChainCopiesItsArguments(t *testing.T) {
	var log []string
	mws := []handler.Middleware{trace(&log, "a"), trace(&log, "b")}
	chain := handler.Chain(mws...)
	mws[0] = trace(&log, "x") // must not change chain
	if _, err := chain(echo).ServeRPC(context.Background(), newReq("m", "")); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "/b", "/a"}; !slices.Equal(log, want) {
		t.Errorf("ran %q, want %q", log, want)
	}
}
