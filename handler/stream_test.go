package handler_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// A typed stream handler serves a stream to a caller that asks for one, and
// one array to a plain call; client.Stream reads it.
func TestStreamHandler(t *testing.T) {
	mux := handler.NewMux()
	mux.Handle("count", handler.Stream(func(ctx context.Context, in struct{ N int }, send func(int) error) error {
		for i := 1; i <= in.N; i++ {
			if err := send(i); err != nil {
				return err
			}
		}
		return nil
	}))
	srv, err := server.New(mux)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, codec := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		c, err := client.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), rpc.WithSubprotocols(codec))
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Stream(ctx, "count", map[string]int{"n": 300}, rpc.WithWindow(16))
		if err != nil {
			t.Fatal(err)
		}
		for want := 1; want <= 300; want++ {
			var got int
			if err := s.RecvValue(&got); err != nil || got != want {
				t.Fatalf("%s: result %d: %d, %v", codec, want, got, err)
			}
		}
		if _, err := s.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("%s: end: %v", codec, err)
		}
		var all []int
		if err := c.Call(ctx, "count", map[string]int{"n": 4}, &all); err != nil || len(all) != 4 || all[3] != 4 {
			t.Fatalf("%s: plain call: %v, %v", codec, all, err)
		}
		err = c.Call(ctx, "count", map[string]int{"n": handler.MaxPlainStreamResults + 1}, nil)
		if rpc.CodeOf(err) != rpc.CodeInvalidRequest {
			t.Fatalf("%s: a plain call of too many results: %v", codec, err)
		}
		_ = c.Close()
	}
}
