package rpc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// gatedHandler answers "held" once release is closed (or its ctx ends), and
// every other method at once; started reports each "held" call.
func gatedHandler(started chan<- string, release <-chan struct{}) rpc.Handler {
	return rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		if req.Method != "held" {
			return []byte(`"at once"`), nil
		}
		started <- req.Peer().ID()
		select {
		case <-release:
			return []byte(`"finished"`), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
}

func recvResponse(t *testing.T, reply <-chan *rpc.Response) *rpc.Response {
	t.Helper()
	select {
	case r := <-reply:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no Response")
	}
	return nil
}

// TestShutdown: Shutdown lets the calls in flight both ways finish, sends
// the notice, closes with the notice's code and reason, and waits.
func TestShutdown(t *testing.T) {
	for _, cd := range codecs[:2] {
		t.Run(cd.name, func(t *testing.T) {
			release := make(chan struct{})
			c, s, incoming, outgoing := heldBothWays(t, cd.subprotocol, release)

			shut := make(chan error, 1)
			go func() {
				shut <- s.Shutdown(ctxT(t), rpc.Notice{RetryAfter: 2 * time.Second, Reason: "restarting", Code: transport.StatusServiceRestart})
			}()
			select {
			case <-c.GoingAway():
			case <-time.After(10 * time.Second):
				t.Fatal("no shutdown notice")
			}
			if got := c.RetryAfter(); got != 2*time.Second {
				t.Errorf("RetryAfter %v", got)
			}
			if err := c.Call(ctxT(t), "new", nil, nil); rpc.CodeOf(err) != rpc.CodeUnavailable {
				t.Errorf("a call after the notice = %v, want unavailable", err)
			}
			select {
			case err := <-shut:
				t.Fatalf("Shutdown returned %v with calls in flight", err)
			case <-c.Done():
				t.Fatal("the connection closed with calls in flight")
			default:
			}

			close(release)
			if r := recvResponse(t, incoming); r.Err != nil || string(r.Result) != `"finished"` {
				t.Errorf("the incoming call in flight: %q, %v", r.Result, r.Err)
			}
			if r := recvResponse(t, outgoing); r.Err != nil || string(r.Result) != `"finished"` {
				t.Errorf("the outgoing call in flight: %q, %v", r.Result, r.Err)
			}
			select {
			case err := <-shut:
				if err != nil {
					t.Fatalf("Shutdown = %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Shutdown did not return")
			}
			// Shutdown waited: the peer has ended.
			select {
			case <-s.Done():
			default:
				t.Error("Shutdown returned before the peer ended")
			}
			<-c.Done()
			var ce *transport.CloseError
			if !errors.As(c.Err(), &ce) || ce.Code != transport.StatusServiceRestart || ce.Reason != "restarting" || !ce.Remote {
				t.Errorf("the other side saw %v, want 1012 \"restarting\" from the peer", c.Err())
			}
		})
	}
}

// TestShutdownDefaultCode: Code 0 closes with 1001 (going away).
func TestShutdownDefaultCode(t *testing.T) {
	c, s := peers(t, rpc.SubprotocolBinary, nil, nil)
	if err := s.Shutdown(ctxT(t), rpc.Notice{}); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if code := transport.CloseStatus(c.Err()); code != transport.StatusGoingAway {
		t.Errorf("the other side saw %v, want 1001", c.Err())
	}
	if err := s.Shutdown(ctxT(t), rpc.Notice{}); err != nil {
		t.Errorf("a second Shutdown = %v", err)
	}
}

// TestShutdownCutShort: when ctx ends first, Shutdown cancels what is left,
// drops the connection and returns a *DrainError counting it.
func TestShutdownCutShort(t *testing.T) {
	never := make(chan struct{})
	c, s, incoming, outgoing := heldBothWays(t, rpc.SubprotocolBinary, never)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := s.Shutdown(ctx, rpc.Notice{Reason: "bye", Code: transport.StatusServiceRestart})
	var de *rpc.DrainError
	if !errors.As(err, &de) || de.Incoming != 1 || de.Outgoing != 1 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want a DrainError counting 1 incoming and 1 outgoing", err)
	}
	select {
	case <-s.Done():
	default:
		t.Error("Shutdown returned before the peer ended")
	}
	if r := recvResponse(t, outgoing); rpc.CodeOf(r.Err) != rpc.CodeConnectionLost {
		t.Errorf("the outgoing call left: %v, want connection lost", r.Err)
	}
	<-c.Done()
	// Dropped: no closing handshake with the notice's code.
	if code := transport.CloseStatus(c.Err()); code == transport.StatusServiceRestart || code == transport.StatusNormalClosure {
		t.Errorf("the other side saw %v, want the connection dropped", c.Err())
	}
	switch r := recvResponse(t, incoming); rpc.CodeOf(r.Err) {
	case rpc.CodeCanceled, rpc.CodeConnectionLost:
	default:
		t.Errorf("the incoming call cut short: %v", r.Err)
	}
}

// TestDrainIsBoundedWhenTheConnectionEnds: the connection ends during a
// drain while a handler ignores its ctx; Drain still returns once its ctx
// ends, and Wait is what waits for the handler.
func TestDrainIsBoundedWhenTheConnectionEnds(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		close(started)
		<-release // ignores ctx
		return nil, nil
	})
	c, s := peers(t, rpc.SubprotocolBinary, []rpc.Option{rpc.WithHandler(h)}, nil)
	if err := c.Send(ctxT(t), &rpc.Request{Method: "stuck", Reply: make(chan *rpc.Response, 1)}); err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	drained := make(chan error, 1)
	go func() { drained <- s.Drain(ctx, rpc.Notice{}) }()
	c.CloseNow() // the connection ends while the drain waits
	select {
	case err := <-drained:
		var de *rpc.DrainError
		if !errors.As(err, &de) || de.Incoming != 1 {
			t.Errorf("Drain = %v, want a DrainError counting the stuck call", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return after its ctx ended")
	}
	close(release)
	s.Wait()
}

// heldBothWays connects two peers and starts one call each way, both held
// by their handlers until release is closed; it returns once both run.
// incoming gets the reply to the client's call (served by s), outgoing the
// reply to the server's call (served by c).
func heldBothWays(t *testing.T, subprotocol string, release chan struct{}) (c, s *rpc.Peer, incoming, outgoing chan *rpc.Response) {
	t.Helper()
	started := make(chan string, 2)
	c, s = peers(t, subprotocol,
		[]rpc.Option{rpc.WithHandler(gatedHandler(started, release))},
		[]rpc.Option{rpc.WithHandler(gatedHandler(started, release))})
	incoming, outgoing = make(chan *rpc.Response, 1), make(chan *rpc.Response, 1)
	if err := c.Send(ctxT(t), &rpc.Request{Method: "held", Reply: incoming}); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctxT(t), &rpc.Request{Method: "held", Reply: outgoing}); err != nil {
		t.Fatal(err)
	}
	<-started
	<-started
	return c, s, incoming, outgoing
}
