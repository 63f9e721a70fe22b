package handler_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/handler"
	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/rpc"
)

// TestEndToEnd serves a Mux with several stages over a real connection and
// calls it from a client peer.
func TestEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	metrics := handler.NewMemoryMetrics()

	mux := handler.NewMux()
	mux.Use(
		handler.Recover(logger),
		handler.Logging(logger),
		handler.Instrument(metrics),
		handler.Limit(10, 0),
		handler.Timeout(10*time.Second, time.Minute),
		handler.Authorize(func(_ context.Context, principal any, _ string) error {
			if principal == nil {
				return rpc.ErrUnauthenticated
			}
			return nil
		}),
	)
	type whoami struct {
		Principal   string
		Method      string
		ID          string // the call's, on the wire
		Peer        string // the connection's
		Subprotocol string
		Remote      string
		Upgrade     string
		Tenant      any // a session value
	}
	type tenantKey struct{}
	routes := []struct {
		pattern string
		h       handler.Handler
	}{
		{"math.add", handler.Func(func(_ context.Context, xs []int) (int, error) { return xs[0] + xs[1], nil })},
		{"math.*", handler.NoParams(func(ctx context.Context) (string, error) {
			return "math: " + rpc.RequestFromContext(ctx).Method, nil
		})},
		{"whoami", handler.NoParams(func(ctx context.Context) (whoami, error) {
			// Everything about the call and its connection is on the
			// request, which a typed handler gets from its ctx.
			req := rpc.RequestFromContext(ctx)
			p := req.Peer()
			return whoami{
				Principal:   p.Session().Principal().(string),
				Method:      req.Method,
				ID:          req.WireID(),
				Peer:        p.ID(),
				Subprotocol: p.Subprotocol(),
				Remote:      p.RemoteAddr().String(),
				Upgrade:     p.Header().Get("Upgrade"),
				Tenant:      p.Session().Value(tenantKey{}),
			}, nil
		})},
		{"panic", handler.NoParams(func(context.Context) (int, error) { panic("secret detail") })},
		{"callback", handler.NoParams(func(ctx context.Context) (string, error) {
			var name string
			if err := rpc.RequestFromContext(ctx).Peer().Call(ctx, "client.name", nil, &name); err != nil {
				return "", err
			}
			return "the client is " + name, nil
		})},
	}
	for _, r := range routes {
		mux.Handle(r.pattern, r.h)
	}

	var decodes atomic.Int32
	cc, sc := pipe.New(t, pipe.Options{Subprotocol: rpc.SubprotocolBinary})
	server, err := rpc.New(sc,
		rpc.WithHandler(mux),
		rpc.WithPrincipal("alice"), // as the server gives it after authenticating the handshake
		rpc.WithValueCodec(countingCodec{rpc.JSON, &decodes}))
	if err != nil {
		t.Fatal(err)
	}
	clientMux := handler.NewMux()
	clientMux.Handle("client.name", handler.NoParams(func(context.Context) (string, error) { return "bob", nil }))
	client, err := rpc.New(cc, rpc.WithHandler(clientMux))
	if err != nil {
		server.CloseNow()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.CloseNow()
		server.CloseNow()
		client.Wait()
		server.Wait()
	})
	server.Session().SetValue(tenantKey{}, "acme")

	tests := []struct {
		name     string
		method   string
		give     any
		want     any // the decoded result, when the call succeeds
		wantCode rpc.Code
	}{
		{"typed", "math.add", []int{2, 3}, 5.0, 0},
		{"prefix route", "math.mul", nil, "math: math.mul", 0},
		{"unknown method", "nope", nil, nil, rpc.CodeMethodNotFound},
		{"invalid params", "math.add", "x", nil, rpc.CodeInvalidParams},
		{"panic", "panic", nil, nil, rpc.CodeInternalError},
		{"callback to the client", "callback", nil, "the client is bob", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got any
			err := client.Call(ctx, tt.method, tt.give, &got)
			if code := rpc.CodeOf(err); code != tt.wantCode {
				t.Fatalf("error %v: code %d, want %d", err, code, tt.wantCode)
			}
			if err != nil {
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error %q leaks the panic value", err)
				}
				return
			}
			if got != tt.want {
				t.Errorf("result %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("whoami", func(t *testing.T) {
		var got whoami
		if err := client.Call(ctx, "whoami", nil, &got); err != nil {
			t.Fatal(err)
		}
		want := whoami{
			Principal:   "alice",
			Method:      "whoami",
			ID:          got.ID,
			Peer:        server.ID(),
			Subprotocol: rpc.SubprotocolBinary,
			Remote:      sc.RemoteAddr().String(),
			Upgrade:     "websocket",
			Tenant:      "acme",
		}
		if got != want || got.ID == "" || got.ID == "0" {
			t.Errorf("whoami = %+v, want %+v with a non-zero id", got, want)
		}
	})

	t.Run("unauthenticated", func(t *testing.T) {
		server.Session().SetPrincipal(nil) // as a logout handler would
		defer server.Session().SetPrincipal("alice")
		err := client.Call(ctx, "math.add", []int{1, 1}, nil)
		if !errors.Is(err, rpc.ErrUnauthenticated) {
			t.Errorf("error %v, want unauthenticated", err)
		}
	})

	if decodes.Load() == 0 {
		t.Error("typed handlers did not use the connection's codec")
	}
	s := metrics.Snapshot()
	if got := s.Methods["panic"].Finished[rpc.CodeInternalError].Count; got != 1 {
		t.Errorf("metrics: %d panics, want 1", got)
	}
	if got := s.Methods["nope"].Finished[rpc.CodeMethodNotFound].Count; got != 1 {
		t.Errorf("metrics: %d not found, want 1", got)
	}
	log := logs.String()
	for _, want := range []string{`msg="rpc handler panicked"`, "panic=\"secret detail\"", "method=nope", "code=-32601"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// countingCodec counts the values it decodes.
type countingCodec struct {
	rpc.Codec
	decodes *atomic.Int32
}

func (c countingCodec) Unmarshal(data []byte, v any) error {
	c.decodes.Add(1)
	return c.Codec.Unmarshal(data, v)
}

// lockedBuffer is a bytes.Buffer that handlers on several goroutines may
// write to while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
