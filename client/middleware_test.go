package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
)

// attempt is what an outgoing middleware saw of one attempt.
type attempt struct {
	method, trace string
	notify        bool
	peer          *rpc.Peer
	code          rpc.Code // of the attempt's error; 0 for none
}

func (a attempt) String() string {
	outcome := "ok"
	if a.code != 0 {
		outcome = a.code.String()
	}
	return fmt.Sprintf("%s trace=%s notify=%v code=%s", a.method, a.trace, a.notify, outcome)
}

// recorder is an outgoing middleware that records every attempt, in order.
type recorder struct {
	mu   sync.Mutex
	seen []attempt
}

func (r *recorder) middleware(next rpc.Handler) rpc.Handler {
	return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		if !req.Outgoing() {
			panic("outgoing middleware given an incoming call")
		}
		res, err := next.ServeRPC(ctx, req)
		var code rpc.Code
		if err != nil {
			code = rpc.CodeOf(err)
		}
		r.mu.Lock()
		r.seen = append(r.seen, attempt{req.Method, req.Metadata["trace"], req.IsNotification(), req.Peer(), code})
		r.mu.Unlock()
		return res, err
	})
}

// take returns what was recorded since the last take.
func (r *recorder) take() []attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := r.seen
	r.seen = nil
	return seen
}

// TestOutgoingMiddleware: rpc.WithOutgoingMiddleware given to Dial wraps
// every attempt of Call, Go and Notify, a retried one included, on every
// connection the client makes, and sees the call's metadata.
func TestOutgoingMiddleware(t *testing.T) {
	t.Parallel()
	// Every method's first call is refused as not started (CodeUnavailable),
	// on a connection that stays up: the client retries it there.
	var mu sync.Mutex
	calls := make(map[string]int)
	notes := make(chan string, 4)
	srv := newTestServer(t, rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		if req.IsNotification() {
			notes <- req.Method
			return nil, nil
		}
		mu.Lock()
		calls[req.Method]++
		first := calls[req.Method] == 1
		mu.Unlock()
		if first {
			return nil, rpc.NotStarted("not now")
		}
		return whoami(ctx, req)
	}))
	var rec recorder
	hook, statuses := recordStatuses()
	c := dial(t, srv.url(), rpc.WithOutgoingMiddleware(rec.middleware), fastBackoff, hook)
	ctx := testContext(t)
	first := c.Peer()

	// Call, with metadata on ctx.
	var idx int
	if err := c.Call(rpc.ContextWithMetadata(ctx, rpc.Metadata{"trace": "c"}), "call", nil, &idx); err != nil {
		t.Fatalf("Call: %v", err)
	}
	// Go, with WithMetadata.
	reply := make(chan *rpc.Response, 1)
	if err := c.Go(ctx, "go", nil, reply, client.WithMetadata(rpc.Metadata{"trace": "g"})); err != nil {
		t.Fatalf("Go: %v", err)
	}
	if r := recv(t, reply, "Go's reply"); r.Err != nil || string(r.Result) != "0" {
		t.Fatalf("Go = %s, %v", r.Result, r.Err)
	}
	// Notify, with both.
	if err := c.Notify(rpc.ContextWithMetadata(ctx, rpc.Metadata{"trace": "x"}), "note", nil, client.WithMetadata(rpc.Metadata{"trace": "n"})); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	recv(t, notes, "notification")
	checkAttempts(t, rec.take(), first, []string{
		"call trace=c notify=false code=unavailable",
		"call trace=c notify=false code=ok",
		"go trace=g notify=false code=unavailable",
		"go trace=g notify=false code=ok",
		"note trace=n notify=true code=ok",
	})

	// The next connection's peer has the middleware too.
	srv.nextConn(t).CloseNow()
	waitStatus(t, statuses, client.Reconnecting)
	waitStatus(t, statuses, client.Connected)
	second := c.Peer()
	if second == first || second == nil {
		t.Fatalf("Peer() = %p after reconnecting, was %p", second, first)
	}
	if err := c.Call(ctx, "again", nil, &idx, client.WithMetadata(rpc.Metadata{"trace": "a"})); err != nil || idx != 1 {
		t.Fatalf("Call after reconnecting = connection %d, %v; want 1", idx, err)
	}
	reply = make(chan *rpc.Response, 1)
	if err := c.Go(ctx, "go again", nil, reply); err != nil {
		t.Fatalf("Go: %v", err)
	}
	if r := recv(t, reply, "Go's reply"); r.Err != nil || string(r.Result) != "1" {
		t.Fatalf("Go after reconnecting = %s, %v", r.Result, r.Err)
	}
	checkAttempts(t, rec.take(), second, []string{
		"again trace=a notify=false code=unavailable",
		"again trace=a notify=false code=ok",
		"go again trace= notify=false code=unavailable",
		"go again trace= notify=false code=ok",
	})
}

// checkAttempts checks the attempts a recorder saw, all made on p.
func checkAttempts(t *testing.T, got []attempt, p *rpc.Peer, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("middleware saw %d attempts %v, want %d: %v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("attempt %d: %v, want %v", i, got[i], want[i])
		}
		if got[i].peer != p {
			t.Errorf("attempt %d (%v) made on peer %p, want %p", i, got[i], got[i].peer, p)
		}
	}
}
