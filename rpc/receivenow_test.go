package rpc_test

import (
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/rpc"
)

// A WithInline func runs on the peer's own reader, never on the
// transport's (where calls and replies are dispatched when they come
// alone): one that waits for the connection to end must not keep it from
// ending, and CloseNow returns.
func TestInlineFuncWaitingForTheEndDoesNotHoldTheConnection(t *testing.T) {
	for _, sub := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		t.Run(sub, func(t *testing.T) {
			running, release := make(chan struct{}), make(chan struct{})
			c, s := peers(t, sub, []rpc.Option{rpc.WithHandler(services(t))}, []rpc.Option{rpc.WithInline("hold", func(req *rpc.Request) {
				close(running)
				select {
				case <-req.Peer().Conn().Done():
				case <-release: // the test failed: let everything end
				}
			})})
			// A call first, so that the connection has dispatched on the
			// transport's reader before the notification comes.
			if err := c.Call(ctxT(t), "echo", []int{1}, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.Notify(ctxT(t), "hold", nil); err != nil {
				t.Fatal(err)
			}
			closeWhileHeld(t, c, running, release, "an inline func")
		})
	}
}

// An OnReply func runs on the peer's own reader, never on the transport's,
// for the same reason: one that waits for the connection to end (as a
// client's subscribe reply waits for its subscription's delivery turn,
// until the connection ends) must not keep it from ending.
func TestOnReplyWaitingForTheEndDoesNotHoldTheConnection(t *testing.T) {
	for _, sub := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		t.Run(sub, func(t *testing.T) {
			running, release := make(chan struct{}), make(chan struct{})
			c, _ := peers(t, sub, []rpc.Option{rpc.WithHandler(services(t))}, nil)
			// A call first, so that the connection has dispatched on the
			// transport's reader before the reply comes.
			if err := c.Call(ctxT(t), "echo", []int{1}, nil); err != nil {
				t.Fatal(err)
			}
			reply := make(chan *rpc.Response, 1)
			err := c.Send(ctxT(t), &rpc.Request{Method: "echo", Params: rpc.Raw(`[2]`), Reply: reply,
				OnReply: func(*rpc.Response) {
					close(running)
					select {
					case <-c.Conn().Done():
					case <-release: // the test failed: let everything end
					}
				}})
			if err != nil {
				t.Fatal(err)
			}
			closeWhileHeld(t, c, running, release, "an OnReply func")
			<-reply
		})
	}
}

// closeWhileHeld waits for a func of the peer's reader (what) to be
// running, then checks that c.CloseNow returns while it waits for the
// connection's end; on failure it closes release, which lets it return.
func closeWhileHeld(t *testing.T, c *rpc.Peer, running <-chan struct{}, release chan struct{}, what string) {
	t.Helper()
	select {
	case <-running:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not run", what)
	}
	done := make(chan struct{})
	go func() { // owned: waited for below
		defer close(done)
		c.CloseNow()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		close(release)
		<-done
		t.Fatalf("CloseNow did not return while %s waited for the connection's end", what)
	}
}
