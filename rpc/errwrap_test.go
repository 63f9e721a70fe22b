package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/wsrpc/wsrpc/rpc"
)

// TestWrappedErrorKeepsItsText: a handler error that wraps an *rpc.Error
// keeps that code and data, and its message is the whole text, wrapper
// included; an *rpc.Error returned as it is goes out unchanged.
func TestWrappedErrorKeepsItsText(t *testing.T) {
	h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		switch req.Method {
		case "ask":
			// A server→client call to a method the client does not have.
			err := req.Peer().Call(ctx, "client.confirm", nil, nil)
			return nil, fmt.Errorf("asking the client: %w", err)
		case "plain":
			return nil, rpc.Errorf(rpc.CodeMethodNotFound, "no such thing")
		case "data":
			e := &rpc.Error{Code: 42, Message: "inner", Data: []byte(`{"k":1}`)}
			return nil, fmt.Errorf("outer: %w", e)
		}
		return nil, nil
	})
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			c, _ := peers(t, cd.subprotocol, []rpc.Option{rpc.WithHandler(h)}, nil)
			tests := []struct {
				give     string
				wantCode rpc.Code
				wantMsg  string
				wantData string
			}{
				{"ask", rpc.CodeMethodNotFound, `asking the client: method "client.confirm" not found`, ""},
				{"plain", rpc.CodeMethodNotFound, "no such thing", ""},
				{"data", 42, "outer: inner", `{"k":1}`},
			}
			for _, tt := range tests {
				err := c.Call(ctxT(t), tt.give, nil, nil)
				var e *rpc.Error
				if !errors.As(err, &e) {
					t.Fatalf("%s: %v, want an *rpc.Error", tt.give, err)
				}
				if e.Code != tt.wantCode || e.Message != tt.wantMsg || string(e.Data) != tt.wantData {
					t.Errorf("%s: code %d, message %q, data %s; want %d, %q, %s", tt.give, e.Code, e.Message, e.Data, tt.wantCode, tt.wantMsg, tt.wantData)
				}
			}
		})
	}
}
