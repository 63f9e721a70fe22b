package handler_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
)

func TestRecover(t *testing.T) {
	tests := []struct {
		name     string
		give     handler.Handler
		want     string   // result
		wantCode rpc.Code // without a panic
		wantLog  string   // in the log; "" for no panic
	}{
		{"no panic", echo, "params", 0, ""},
		{"error passes", fail(rpc.NewError(9, "nine")), "", 9, ""},
		{"panic string", handler.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) {
			panic("secret detail")
		}), "", 0, "secret detail"},
		{"panic error", handler.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) {
			panic(errors.New("secret error"))
		}), "", 0, "secret error"},
		{"panic nil", handler.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) {
			panic(nil)
		}), "", 0, "panic called with nil argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, nil))
			got, err := handler.Recover(logger)(tt.give).ServeRPC(context.Background(), newReq("m", "params"))
			if tt.wantLog == "" {
				wantCode(t, err, tt.wantCode)
				if string(got) != tt.want {
					t.Errorf("result %q, want %q", got, tt.want)
				}
				if buf.Len() != 0 {
					t.Errorf("logged %q without a panic", buf.String())
				}
				return
			}
			wantCode(t, err, rpc.CodeInternalError)
			if strings.Contains(err.Error(), tt.wantLog) {
				t.Errorf("the caller's error %q leaks the panic value", err)
			}
			log := buf.String()
			for _, want := range []string{"level=ERROR", tt.wantLog, "method=m", "stack=", "recover_test.go"} {
				if !strings.Contains(log, want) {
					t.Errorf("log %q lacks %q", log, want)
				}
			}
		})
	}
}

func TestRecoverWithoutLogger(t *testing.T) {
	h := handler.Recover(nil)(handler.HandlerFunc(func(context.Context, *rpc.Request) ([]byte, error) {
		panic("boom")
	}))
	_, err := h.ServeRPC(context.Background(), newReq("m", ""))
	wantCode(t, err, rpc.CodeInternalError)
}
