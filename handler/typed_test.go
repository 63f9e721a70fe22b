package handler_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
)

type addParams struct {
	A, B int
}

func add(_ context.Context, p addParams) (int, error) {
	if p.A < 0 {
		return 0, rpc.NewError(rpc.CodePermissionDenied, "no negatives")
	}
	return p.A + p.B, nil
}

func TestFunc(t *testing.T) {
	h := handler.Func(add)
	tests := []struct {
		name     string
		give     string // params; "" for none
		want     string // result
		wantCode rpc.Code
		wantMsg  string
	}{
		{name: "ok", give: `{"A":2,"B":3}`, want: "5"},
		{name: "absent params", give: "", want: "0"},
		{name: "null params", give: "null", want: "0"},
		{name: "wrong type", give: `{"A":"two"}`, wantCode: rpc.CodeInvalidParams,
			wantMsg: "invalid params: json: cannot unmarshal string into Go struct field addParams.A of type int"},
		{name: "not json", give: `{`, wantCode: rpc.CodeInvalidParams, wantMsg: "invalid params: unexpected end of JSON input"},
		{name: "error passes", give: `{"A":-1}`, wantCode: rpc.CodePermissionDenied, wantMsg: "no negatives"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.ServeRPC(context.Background(), newReq("add", tt.give))
			wantCode(t, err, tt.wantCode)
			if err != nil {
				if msg := err.(*rpc.Error).Message; msg != tt.wantMsg {
					t.Errorf("message %q, want %q", msg, tt.wantMsg)
				}
				return
			}
			if string(got) != tt.want {
				t.Errorf("result %s, want %s", got, tt.want)
			}
		})
	}
}

func TestFuncScalarDecodeError(t *testing.T) {
	h := handler.Func(func(_ context.Context, n int) (int, error) { return n * 2, nil })
	_, err := h.ServeRPC(context.Background(), newReq("double", `"x"`))
	wantCode(t, err, rpc.CodeInvalidParams)
	if want := "invalid params: json: cannot unmarshal string into Go value of type int"; err.(*rpc.Error).Message != want {
		t.Errorf("message %q, want %q", err.(*rpc.Error).Message, want)
	}
}

func TestFuncErrorsUnchanged(t *testing.T) {
	rpcErr := rpc.NewError(7, "seven")
	plain := errors.New("plain")
	for _, give := range []error{rpcErr, plain, context.Canceled} {
		h := handler.Func(func(context.Context, struct{}) (int, error) { return 0, give })
		if _, err := h.ServeRPC(context.Background(), newReq("m", "")); err != give {
			t.Errorf("Func returned %v, want %v unchanged", err, give)
		}
		h = handler.NoParams(func(context.Context) (int, error) { return 0, give })
		if _, err := h.ServeRPC(context.Background(), newReq("m", "")); err != give {
			t.Errorf("NoParams returned %v, want %v unchanged", err, give)
		}
		h = handler.NoResult(func(context.Context, struct{}) error { return give })
		if _, err := h.ServeRPC(context.Background(), newReq("m", "")); err != give {
			t.Errorf("NoResult returned %v, want %v unchanged", err, give)
		}
	}
}

func TestFuncResultNotEncodable(t *testing.T) {
	h := handler.Func(func(context.Context, struct{}) (func(), error) { return func() {}, nil })
	_, err := h.ServeRPC(context.Background(), newReq("m", ""))
	wantCode(t, err, rpc.CodeInternalError)
	if !strings.Contains(err.Error(), "encode result") {
		t.Errorf("error %q does not say what failed", err)
	}
}

func TestNoParams(t *testing.T) {
	h := handler.NoParams(func(context.Context) (string, error) { return "pong", nil })
	for _, give := range []string{"", "[]", `{"ignored":true}`, "not even json"} {
		got, err := h.ServeRPC(context.Background(), newReq("ping", give))
		if err != nil || string(got) != `"pong"` {
			t.Errorf("params %q: %s, %v", give, got, err)
		}
	}
}

func TestNoResult(t *testing.T) {
	var seen []string
	h := handler.NoResult(func(_ context.Context, s []string) error {
		seen = s
		return nil
	})
	got, err := h.ServeRPC(context.Background(), newReq("store", `["a","b"]`))
	if err != nil || got != nil {
		t.Fatalf("got %q, %v; want nil, nil", got, err)
	}
	if len(seen) != 2 || seen[1] != "b" {
		t.Errorf("f saw %q", seen)
	}
	_, err = h.ServeRPC(context.Background(), newReq("store", `{"a":1}`))
	wantCode(t, err, rpc.CodeInvalidParams)
}
