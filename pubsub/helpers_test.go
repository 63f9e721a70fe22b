package pubsub_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// codecs are the two wire codecs every behaviour is tested over.
var codecs = []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON}

type env struct {
	t   testing.TB
	hub *pubsub.Hub
	srv *server.Server
	hs  *httptest.Server
	url string
}

// newEnv starts a server with a hub made with opts.
func newEnv(t testing.TB, opts ...pubsub.Option) *env {
	t.Helper()
	hub, err := pubsub.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		return nil, rpc.Errorf(rpc.CodeMethodNotFound, "no %s", req.Method)
	}), server.WithHub(hub))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	e := &env{t: t, hub: hub, srv: srv, hs: hs, url: "ws" + strings.TrimPrefix(hs.URL, "http")}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
		_ = hub.Close()
	})
	return e
}

// dial connects a client speaking codec.
func (e *env) dial(codec string, opts ...client.Option) *client.Client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts = append([]client.Option{rpc.WithSubprotocols(codec)}, opts...)
	c, err := client.Dial(ctx, e.url, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// next receives one publication or fails.
func next(t testing.TB, s *client.Subscription) pubsub.Publication {
	t.Helper()
	select {
	case p, ok := <-s.C():
		if !ok {
			t.Fatalf("subscription %q ended: %v", s.Topic(), s.Err())
		}
		return p
	case <-time.After(10 * time.Second):
		t.Fatalf("no publication on %q", s.Topic())
	}
	return pubsub.Publication{}
}

// none checks that nothing arrives on s for a short while.
func none(t testing.TB, s *client.Subscription) {
	t.Helper()
	select {
	case p := <-s.C():
		t.Fatalf("unexpected publication on %q: %+v", s.Topic(), p)
	case <-time.After(100 * time.Millisecond):
	}
}

func dataInt(t testing.TB, p pubsub.Publication) int {
	t.Helper()
	var n int
	if err := json.Unmarshal(p.Data, &n); err != nil {
		t.Fatalf("data %s: %v", p.Data, err)
	}
	return n
}
