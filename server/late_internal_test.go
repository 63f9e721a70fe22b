package server

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// A peer serves from the moment it is made, before its connection is
// registered: a call can be in flight on a connection that a Shutdown
// beginning meanwhile does not find, and drains on its own (late). When
// that drain is cut short, Shutdown says so as of any other connection,
// rather than reporting every call finished.
func TestShutdownCountsLateConnectionCutShort(t *testing.T) {
	started := make(chan struct{})
	var once sync.Once
	s, err := New(rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		once.Do(func() { close(started) })
		<-ctx.Done()
		return nil, ctx.Err()
	}))
	if err != nil {
		t.Fatal(err)
	}
	up, proceed := make(chan struct{}), make(chan struct{})
	s.beforeRegister = func() {
		close(up)
		<-proceed
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	defer s.Close()
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer dcancel()
	conn, err := transport.Dial(dctx, "ws"+strings.TrimPrefix(hs.URL, "http"), &transport.DialOptions{Subprotocols: rpc.Subprotocols()})
	if err != nil {
		t.Fatal(err)
	}
	p, err := rpc.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseNow()
	<-up
	reply := make(chan *rpc.Response, 1)
	if err := p.Send(dctx, &rpc.Request{Method: "sleep", Reply: reply}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the call did not start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }() // owned: waited for below
	for {
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if closing {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(proceed) // registered now, after Shutdown took its list
	var se *ShutdownError
	select {
	case err := <-done:
		if !errors.As(err, &se) || se.Connections != 1 || se.Incoming != 1 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want a ShutdownError counting 1 call on 1 connection", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	<-reply
}
