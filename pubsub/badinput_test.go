package pubsub_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

// TestBadInput sends what a broken or hostile client might to the reserved
// methods, past the client's own checks, and checks each documented
// answer; the connection stays up throughout.
func TestBadInput(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{
				pubsub.WithRule("pub.>", pubsub.Rule{Publish: allowAll}),
			}})
			c := e.dial(codec)
			p := c.Peer()
			tests := []struct {
				name, method, params string
				want                 rpc.Code
			}{
				{"empty topic", pubsub.MethodSubscribe, `{"topic":""}`, rpc.CodeInvalidParams},
				{"no topic", pubsub.MethodSubscribe, `{}`, rpc.CodeInvalidParams},
				{"empty token", pubsub.MethodSubscribe, `{"topic":"a..b"}`, rpc.CodeInvalidParams},
				{"leading dot", pubsub.MethodSubscribe, `{"topic":".a"}`, rpc.CodeInvalidParams},
				{"trailing dot", pubsub.MethodSubscribe, `{"topic":"a."}`, rpc.CodeInvalidParams},
				{"> not last", pubsub.MethodSubscribe, `{"topic":"a.>.b"}`, rpc.CodeInvalidParams},
				{"* in a token", pubsub.MethodSubscribe, `{"topic":"a*"}`, rpc.CodeInvalidParams},
				{"> in a token", pubsub.MethodSubscribe, `{"topic":"a.b>"}`, rpc.CodeInvalidParams},
				{"space", pubsub.MethodSubscribe, `{"topic":"a b"}`, rpc.CodeInvalidParams},
				{"control character", pubsub.MethodSubscribe, `{"topic":"a\u0001"}`, rpc.CodeInvalidParams},
				{"topic not a string", pubsub.MethodSubscribe, `{"topic":7}`, rpc.CodeInvalidParams},
				{"since with a pattern", pubsub.MethodSubscribe, `{"topic":"a.*","since":{"offset":1,"epoch":"e"}}`, rpc.CodeInvalidParams},
				{"since with >", pubsub.MethodSubscribe, `{"topic":"a.>","since":{"offset":0,"epoch":""}}`, rpc.CodeInvalidParams},
				{"since not an object", pubsub.MethodSubscribe, `{"topic":"a","since":"yesterday"}`, rpc.CodeInvalidParams},
				{"negative offset", pubsub.MethodSubscribe, `{"topic":"a","since":{"offset":-1,"epoch":"e"}}`, rpc.CodeInvalidParams},
				{"echo not a bool", pubsub.MethodSubscribe, `{"topic":"a","echo":"yes"}`, rpc.CodeInvalidParams},
				{"params an array", pubsub.MethodSubscribe, `["a"]`, rpc.CodeInvalidParams},
				{"no params", pubsub.MethodSubscribe, ``, rpc.CodeInvalidParams},
				{"unknown sub", pubsub.MethodUnsubscribe, `{"sub":999}`, rpc.CodeInvalidParams},
				{"sub 0", pubsub.MethodUnsubscribe, `{"sub":0}`, rpc.CodeInvalidParams},
				{"no sub", pubsub.MethodUnsubscribe, `{}`, rpc.CodeInvalidParams},
				{"sub not a number", pubsub.MethodUnsubscribe, `{"sub":"1"}`, rpc.CodeInvalidParams},
				{"unsubscribe array", pubsub.MethodUnsubscribe, `[1]`, rpc.CodeInvalidParams},
				{"publish to a pattern", pubsub.MethodPublish, `{"topic":"pub.*","data":1}`, rpc.CodeInvalidParams},
				{"publish to an invalid topic", pubsub.MethodPublish, `{"topic":"pub..x","data":1}`, rpc.CodeInvalidParams},
				{"publish without topic", pubsub.MethodPublish, `{"data":1}`, rpc.CodeInvalidParams},
				{"publish array", pubsub.MethodPublish, `["pub.x",1]`, rpc.CodeInvalidParams},
				{"publish not allowed", pubsub.MethodPublish, `{"topic":"other","data":1}`, rpc.CodePermissionDenied},
				{"publication as a request", pubsub.MethodPublication, `{"sub":1,"topic":"a","offset":1,"epoch":"e","data":1}`, rpc.CodeInvalidRequest},
			}
			for _, tt := range tests {
				res, err := rawCall(t, p, tt.method, tt.params)
				if err == nil {
					t.Errorf("%s: %s %s: result %s, want code %v", tt.name, tt.method, tt.params, res, tt.want)
					continue
				}
				if rpc.CodeOf(err) != tt.want {
					t.Errorf("%s: %s %s: %v, want code %v", tt.name, tt.method, tt.params, err, tt.want)
				}
			}
			// Params that are not JSON at all: only the binary codec can carry
			// them (JSON-RPC params are JSON by construction).
			if codec == rpc.SubprotocolBinary {
				for _, method := range []string{pubsub.MethodSubscribe, pubsub.MethodUnsubscribe, pubsub.MethodPublish} {
					for _, params := range []string{`{"topic":`, "\xff\xfe", `"a.b"`, `42`, `null`} {
						_, err := rawCall(t, p, method, params)
						if rpc.CodeOf(err) != rpc.CodeInvalidParams {
							t.Errorf("%s %q: %v, want invalid params", method, params, err)
						}
					}
				}
				// JSON that is not UTF-8 (encoding/json lets it through into a
				// RawMessage): the client's fault, not the publish hook's, and
				// never fanned out (a JSON-RPC subscriber could not take it).
				for _, params := range []string{"{\"topic\":\"pub.x\",\"data\":\"\xff\"}", "{\"topic\":\"pub.x\",\"data\":{\"\x9e\":[0]}}"} {
					_, err := rawCall(t, p, pubsub.MethodPublish, params)
					if rpc.CodeOf(err) != rpc.CodeInvalidParams {
						t.Errorf("publish %q: %v, want invalid params", params, err)
					}
				}
			}
			if st := e.hub.Stats(); st.Subscriptions != 0 || st.Published != 0 {
				t.Fatalf("bad input left state behind: %+v", st)
			}
			if c.Peer() != p || p.Err() != nil {
				t.Fatalf("the connection did not survive bad input: %v", p.Err())
			}
			// It still works.
			r, err := rawSubscribe(t, p, `{"topic":"pub.x"}`)
			if err != nil {
				t.Fatal(err)
			}
			// Twice on one connection: the subscription is replaced (one
			// left, a fresh reply), with or without since.
			again, err := rawSubscribe(t, p, `{"topic":"pub.x"}`)
			if err != nil || again.Position == nil {
				t.Fatalf("subscribing again: %+v, %v; want a fresh reply", again, err)
			}
			r, err = rawSubscribe(t, p, `{"topic":"pub.x","since":{"offset":0,"epoch":""}}`)
			if err != nil {
				t.Fatal(err)
			}
			if st := e.hub.Stats(); st.Subscriptions != 1 {
				t.Fatalf("Subscriptions = %d after subscribing three times, want 1", st.Subscriptions)
			}
			// Through the client, refused before it is sent.
			sctx := ctxT(t)
			if _, err := c.Subscribe(sctx, "pub.y"); err != nil {
				t.Fatal(err)
			}
			_, err = c.Subscribe(sctx, "pub.y")
			wantCode(t, err, rpc.CodeInvalidParams, "already subscribed")
			// Unsubscribed ids are unknown.
			unsubscribeRaw(t, p, r.Sub)
			_, err = rawCall(t, p, pubsub.MethodUnsubscribe, fmt.Sprintf(`{"sub":%d}`, r.Sub))
			wantCode(t, err, rpc.CodeInvalidParams, fmt.Sprint(r.Sub))
			if st := e.hub.Stats(); st.Subscriptions != 1 {
				t.Fatalf("Subscriptions = %d, want 1 (pub.y)", st.Subscriptions)
			}
			res, err := rawCall(t, p, "echo", `{"still":"up"}`)
			if err != nil || string(res) != `{"still":"up"}` {
				t.Fatalf("an ordinary call after bad input: %s, %v", res, err)
			}
		})
	}
}

// TestReservedNotificationsIgnored: the reserved methods sent as
// notifications (nothing could carry the answer) change nothing, and a
// $/publication a client sends is ignored; the connection stays up.
func TestReservedNotificationsIgnored(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{pubsub.WithRule(">", pubsub.Rule{Publish: allowAll})}})
			ctx := ctxT(t)
			pubs := newPubCollector()
			c := e.dial(codec, client.WithOnPublication(pubs.add))
			p := c.Peer()
			r, err := rawSubscribe(t, p, `{"topic":"kept"}`)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []struct{ method, params string }{
				{pubsub.MethodSubscribe, `{"topic":"ignored"}`},
				{pubsub.MethodUnsubscribe, fmt.Sprintf(`{"sub":%d}`, r.Sub)},
				{pubsub.MethodPublish, `{"topic":"kept","data":"from a notification"}`},
				{pubsub.MethodPublication, `{"sub":1,"topic":"kept","offset":1,"epoch":"e","data":1}`},
				{pubsub.MethodPublication, `not even JSON`},
			} {
				var params any = rpc.Raw(n.params)
				if err := p.Notify(ctx, n.method, params); err != nil {
					if codec == rpc.SubprotocolJSON && rpc.CodeOf(err) == rpc.CodeInvalidParams {
						continue // JSON-RPC cannot carry non-JSON params
					}
					t.Fatalf("notify %s: %v", n.method, err)
				}
			}
			// A call after them: the notifications were read before it (one
			// reader, in order), and their handlers return at once.
			if _, err := rawCall(t, p, "echo", `{}`); err != nil {
				t.Fatal(err)
			}
			// Give a wrongly served notification time to show (as none does).
			deadline := time.Now().Add(100 * time.Millisecond)
			for time.Now().Before(deadline) {
				if st := e.hub.Stats(); st.Subscriptions != 1 || st.Published != 0 {
					t.Fatalf("a notification changed the hub: %+v", st)
				}
				time.Sleep(10 * time.Millisecond)
			}
			// The subscription the $/unsubscribe notification named is still there.
			publishN(t, e.hub, "kept", 1, 1)
			got := pubs.wait(t, "the kept subscription's publication", func(ps []pubsub.Publication) bool { return len(ps) > 0 })
			if got[0].Topic != "kept" || string(got[0].Data) != "1" {
				t.Fatalf("got %+v", got[0])
			}
			if c.Peer() != p || p.Err() != nil {
				t.Fatalf("connection replaced or ended: %v", p.Err())
			}
		})
	}
}
