package rpc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/internal/pipe"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/transport"
)

// Request.OnReplied runs after the call's reply is queued: a notification
// sent from it arrives after the reply, alone or in a JSON-RPC batch,
// whichever element of the batch finishes last.
func TestOnRepliedFollowsTheReply(t *testing.T) {
	h := rpc.HandlerFunc(func(ctx context.Context, req *rpc.Request) ([]byte, error) {
		switch req.Method {
		case "hooked":
			p := req.Peer()
			req.OnReplied(func(sent bool) {
				if sent {
					_ = p.Notify(context.Background(), "after", nil)
				}
			})
			return []byte(`"hooked"`), nil
		case "slow":
			time.Sleep(20 * time.Millisecond)
			return []byte(`"slow"`), nil
		}
		return []byte(`"quick"`), nil
	})
	for _, tt := range []struct{ name, give string }{
		{"alone", `{"jsonrpc":"2.0","id":1,"method":"hooked"}`},
		{"batch of one", `[{"jsonrpc":"2.0","id":1,"method":"hooked"}]`},
		{"batch, hooked first", `[{"jsonrpc":"2.0","id":1,"method":"hooked"},{"jsonrpc":"2.0","id":2,"method":"slow"}]`},
		{"batch, hooked last", `[{"jsonrpc":"2.0","id":2,"method":"slow"},{"jsonrpc":"2.0","id":1,"method":"hooked"}]`},
		{"batch with a notification", `[{"jsonrpc":"2.0","id":1,"method":"hooked"},{"jsonrpc":"2.0","method":"quick"}]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 {
				cc, sc := pipe.New(t, pipe.Options{})
				s, err := rpc.New(sc, rpc.WithHandler(h))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := cc.Send(ctx, transport.Message{Type: transport.Text, Data: []byte(tt.give)}); err != nil {
					t.Fatal(err)
				}
				var got []string
				for len(got) < 2 {
					select {
					case m := <-cc.Recv():
						got = append(got, string(m.Data))
					case <-ctx.Done():
						t.Fatalf("received %q", got)
					}
				}
				cancel()
				if !strings.Contains(got[0], `"hooked"`) || !strings.Contains(got[1], `"after"`) {
					t.Fatalf("received %q, want the reply, then the notification sent from OnReplied", got)
				}
				s.CloseNow()
				cc.CloseNow()
			}
		})
	}
}
