package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
)

// metadataOf returns, as JSON, the metadata the call carried; a
// notification's goes to notes.
func metadataOf(notes chan<- rpc.Metadata) func(context.Context, *rpc.Request) ([]byte, error) {
	return func(_ context.Context, req *rpc.Request) ([]byte, error) {
		if req.IsNotification() {
			notes <- req.Metadata.Clone()
			return nil, nil
		}
		return json.Marshal(req.Metadata)
	}
}

// TestMetadata: what reaches the handler's req.Metadata, on both codecs,
// through Call, Go and Notify.
func TestMetadata(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		giveCtx rpc.Metadata        // on the call's ctx
		give    []client.CallOption // the call's options
		want    rpc.Metadata
	}{
		{"none", nil, nil, nil},
		{"WithMetadata", nil, []client.CallOption{client.WithMetadata(rpc.Metadata{"trace": "t1", "tenant": "acme"})}, rpc.Metadata{"trace": "t1", "tenant": "acme"}},
		{"ctx", rpc.Metadata{"trace": "t0"}, nil, rpc.Metadata{"trace": "t0"}},
		{
			"WithMetadata over ctx",
			rpc.Metadata{"trace": "t0", "tenant": "acme"},
			[]client.CallOption{client.WithMetadata(rpc.Metadata{"trace": "t1", "user": "ann"})},
			rpc.Metadata{"trace": "t1", "tenant": "acme", "user": "ann"},
		},
		{
			"WithMetadata twice, with Idempotent",
			nil,
			[]client.CallOption{client.WithMetadata(rpc.Metadata{"a": "1", "b": "1"}), client.Idempotent(), client.WithMetadata(rpc.Metadata{"b": "2"})},
			rpc.Metadata{"a": "1", "b": "2"},
		},
		{"empty WithMetadata", rpc.Metadata{"trace": "t0"}, []client.CallOption{client.WithMetadata(nil)}, rpc.Metadata{"trace": "t0"}},
		{"unicode and empty value", nil, []client.CallOption{client.WithMetadata(rpc.Metadata{"ü": "é", "empty": ""})}, rpc.Metadata{"ü": "é", "empty": ""}},
	}
	for _, proto := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			notes := make(chan rpc.Metadata, 1)
			srv := newTestServer(t, methods{"md": metadataOf(notes)})
			c := dial(t, srv.url(), rpc.WithSubprotocols(proto))
			if sp := c.Peer().Subprotocol(); sp != proto {
				t.Fatalf("subprotocol %q, want %q", sp, proto)
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ctx := rpc.ContextWithMetadata(testContext(t), tt.giveCtx)

					var got rpc.Metadata
					if err := c.Call(ctx, "md", nil, &got, tt.give...); err != nil {
						t.Fatalf("Call: %v", err)
					}
					checkMetadata(t, "Call", got, tt.want)

					reply := make(chan *rpc.Response, 1)
					if err := c.Go(ctx, "md", nil, reply, tt.give...); err != nil {
						t.Fatalf("Go: %v", err)
					}
					r := recv(t, reply, "Go's reply")
					got = nil
					if r.Err != nil || json.Unmarshal(r.Result, &got) != nil {
						t.Fatalf("Go: %s, %v", r.Result, r.Err)
					}
					checkMetadata(t, "Go", got, tt.want)

					if err := c.Notify(ctx, "md", nil, tt.give...); err != nil {
						t.Fatalf("Notify: %v", err)
					}
					checkMetadata(t, "Notify", recv(t, notes, "notification"), tt.want)
				})
			}
		})
	}
}

func checkMetadata(t *testing.T, what string, got, want rpc.Metadata) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s: handler saw metadata %v, want %v", what, got, want)
	}
}

// TestMetadataOverLimit: metadata beyond the client's rpc.WithMaxMetadata
// fails the call unsent with CodeInvalidRequest, and it is not retried. The
// server's bounds are the defaults, looser than the client's: had the call
// been sent, the handler would have run and answered it.
func TestMetadataOverLimit(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	srv := newTestServer(t, methods{"run": func(context.Context, *rpc.Request) ([]byte, error) {
		runs.Add(1)
		return nil, nil
	}})
	var attempts atomic.Int32
	count := func(next rpc.Handler) rpc.Handler {
		return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
			attempts.Add(1)
			return next.ServeRPC(ctx, req)
		})
	}
	tests := []struct {
		name    string
		giveCtx rpc.Metadata
		give    rpc.Metadata
	}{
		{"too many entries", nil, rpc.Metadata{"a": "1", "b": "2", "c": "3"}},
		{"too many entries once merged with ctx's", rpc.Metadata{"a": "1", "b": "2"}, rpc.Metadata{"c": "3"}},
		{"too many bytes", nil, rpc.Metadata{"big": strings.Repeat("x", 100)}},
		{"empty key", nil, rpc.Metadata{"": "x"}},
		{"not UTF-8", nil, rpc.Metadata{"k": "\xff"}},
	}
	for _, proto := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		t.Run(proto, func(t *testing.T) {
			c := dial(t, srv.url(), rpc.WithSubprotocols(proto), rpc.WithMaxMetadata(2, 64), rpc.WithOutgoingMiddleware(count), fastBackoff)
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ctx := rpc.ContextWithMetadata(testContext(t), tt.giveCtx)
					md := client.WithMetadata(tt.give)
					attempts.Store(0)

					// Go's first attempt is made before it returns: the
					// refusal is its error, and no Response comes.
					reply := make(chan *rpc.Response, 1)
					errs := map[string]error{
						"Go":     c.Go(ctx, "run", nil, reply, md, client.Idempotent()),
						"Call":   c.Call(ctx, "run", nil, nil, md, client.Idempotent()),
						"Notify": c.Notify(ctx, "run", nil, md),
					}
					select {
					case r := <-reply:
						t.Errorf("Go refused, yet a Response came: %+v", r)
					default:
					}
					for name, err := range errs {
						if rpc.CodeOf(err) != rpc.CodeInvalidRequest || !strings.Contains(err.Error(), "not sent") {
							t.Errorf("%s = %v, want CodeInvalidRequest, not sent", name, err)
						}
					}
					if n := attempts.Load(); n != 3 {
						t.Errorf("%d attempts, want 3 (one per call: none retried)", n)
					}
				})
			}
			// The connection is still good, and the handler has run only
			// for this call.
			if err := c.Call(testContext(t), "run", nil, nil, client.WithMetadata(rpc.Metadata{"a": "1"})); err != nil {
				t.Fatalf("Call within the bounds: %v", err)
			}
		})
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2 (the calls within the bounds)", n)
	}
}

// TestGoResultIsOwned: the Result Go delivers belongs to the receiver: later
// calls on the same connection, whose replies reuse the peer's buffers, do
// not change it.
func TestGoResultIsOwned(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, methods{"echo": echo})
	c := dial(t, srv.url())
	ctx := testContext(t)
	reply := make(chan *rpc.Response, 1)
	if err := c.Go(ctx, "echo", []string{"first"}, reply); err != nil {
		t.Fatalf("Go: %v", err)
	}
	r := recv(t, reply, "reply")
	if r.Err != nil {
		t.Fatalf("Go: %v", r.Err)
	}
	for range 20 {
		var out rpc.Raw
		if err := c.Call(ctx, "echo", []string{"later"}, &out); err != nil {
			t.Fatalf("Call: %v", err)
		}
	}
	if got := string(r.Result); got != `["first"]` {
		t.Errorf("Result = %s after later calls, want [\"first\"]", got)
	}
	if r.ID == 0 {
		t.Errorf("Response.ID = 0, want the wire id of the attempt")
	}

	// An error reply has no result.
	if err := c.Go(ctx, "nope", nil, reply); err != nil {
		t.Fatalf("Go: %v", err)
	}
	if r := recv(t, reply, "reply"); !errors.Is(r.Err, rpc.ErrMethodNotFound) || r.Result != nil {
		t.Errorf("Go(nope) = %s, %v; want no result, method not found", r.Result, r.Err)
	}
}
