package pubsub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
	"github.com/wsrpc/wsrpc/server"
)

// TestSubscribePermissions: a Rule's Subscribe decides per principal, every
// overlapping rule is asked (a guard on chat.secret.> refuses chat.>), and
// the refusal's code and message reach the client.
func TestSubscribePermissions(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			type ask struct{ user, pattern string }
			asked := make(chan ask, 64)
			e := newEnvWith(t, envConfig{
				srv: []server.Option{authByHeader()},
				hub: []pubsub.Option{
					pubsub.WithRule("chat.secret.>", pubsub.Rule{
						Subscribe: func(ctx context.Context, p *rpc.Peer, pattern string) error {
							asked <- ask{principal(p), pattern}
							if principal(p) != "admin" {
								return fmt.Errorf("%s is not an admin", principal(p))
							}
							return nil
						},
					}),
					pubsub.WithRule("chat.>", pubsub.Rule{
						Subscribe: func(ctx context.Context, p *rpc.Peer, pattern string) error {
							if principal(p) == "" {
								return &rpc.Error{Code: rpc.CodeUnauthenticated, Message: "log in to chat"}
							}
							return nil
						},
					}),
				},
			})
			ctx := ctxT(t)
			nextAsk := func() ask {
				t.Helper()
				select {
				case a := <-asked:
					return a
				case <-ctx.Done():
					t.Fatal("the chat.secret.> guard was not asked")
				}
				return ask{}
			}
			alice := e.dial(codec, withUser("alice"))
			admin := e.dial(codec, withUser("admin"))
			anon := e.dial(codec)

			room, err := alice.Subscribe(ctx, "chat.room")
			if err != nil {
				t.Fatalf("alice chat.room: %v", err)
			}
			select {
			case a := <-asked:
				t.Fatalf("the chat.secret.> guard was asked about %+v, which does not overlap it", a)
			default:
			}
			_, err = alice.Subscribe(ctx, "chat.>")
			wantCode(t, err, rpc.CodePermissionDenied, "alice is not an admin", "chat.>")
			if a := nextAsk(); a != (ask{"alice", "chat.>"}) {
				t.Fatalf("guard asked %+v, want alice about chat.>", a)
			}
			_, err = alice.Subscribe(ctx, "chat.secret.plans")
			wantCode(t, err, rpc.CodePermissionDenied, "alice is not an admin")
			nextAsk()
			_, err = alice.Subscribe(ctx, "chat.*.plans") // matches chat.secret.plans
			wantCode(t, err, rpc.CodePermissionDenied)
			nextAsk()
			_, err = anon.Subscribe(ctx, "chat.room")
			wantCode(t, err, rpc.CodeUnauthenticated, "log in to chat") // an *rpc.Error goes as it is

			// The raw answer is the same: the client adds nothing.
			_, err = rawSubscribe(t, alice.Peer(), `{"topic":"chat.>"}`)
			wantCode(t, err, rpc.CodePermissionDenied, "alice is not an admin")
			nextAsk()

			all, err := admin.Subscribe(ctx, "chat.>")
			if err != nil {
				t.Fatalf("admin chat.>: %v", err)
			}
			if a := nextAsk(); a != (ask{"admin", "chat.>"}) {
				t.Fatalf("guard asked %+v", a)
			}
			publishN(t, e.hub, "chat.room", 1, 1)
			if _, err := e.hub.Publish(ctx, "chat.secret.plans", 2); err != nil {
				t.Fatal(err)
			}
			if p := next(t, room); dataInt(t, p) != 1 || p.Topic != "chat.room" {
				t.Fatalf("alice got %+v", p)
			}
			for i, topic := range []string{"chat.room", "chat.secret.plans"} {
				if p := next(t, all); dataInt(t, p) != i+1 || p.Topic != topic {
					t.Fatalf("admin got %+v, want %d on %s", p, i+1, topic)
				}
			}
			none(t, room) // refused subscriptions left nothing behind
			if st := e.hub.Stats(); st.Subscriptions != 2 {
				t.Fatalf("Stats().Subscriptions = %d, want 2 (refusals are not kept)", st.Subscriptions)
			}
		})
	}
}

// TestClientPublishOffByDefault: without a rule with a Publish func clients
// may not publish, and the first rule matching a topic decides.
func TestClientPublishOffByDefault(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			allow := func(context.Context, *rpc.Peer, *pubsub.Message) error { return nil }
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{
				pubsub.WithRule("chat.ro.>", pubsub.Rule{}), // no Publish: read-only
				pubsub.WithRule("chat.>", pubsub.Rule{Publish: allow}),
			}})
			ctx := ctxT(t)
			c := e.dial(codec)
			sub, err := c.Subscribe(ctx, "chat.>")
			if err != nil {
				t.Fatal(err)
			}
			for _, topic := range []string{"news", "chat.ro.x", "chatter"} {
				_, err := c.Publish(ctx, topic, 1)
				wantCode(t, err, rpc.CodePermissionDenied, topic)
			}
			_, err = rawCall(t, c.Peer(), pubsub.MethodPublish, `{"topic":"chat.ro.x","data":1}`)
			wantCode(t, err, rpc.CodePermissionDenied)
			if st := e.hub.Stats(); st.Published != 0 {
				t.Fatalf("Published = %d after refusals", st.Published)
			}
			other := e.dial(codec)
			pos, err := other.Publish(ctx, "chat.x", 7)
			if err != nil {
				t.Fatal(err)
			}
			if pos.Offset != 1 || pos.Epoch == "" {
				t.Fatalf("Publish position %+v, want offset 1 and an epoch", pos)
			}
			p := next(t, sub)
			if dataInt(t, p) != 7 || p.Topic != "chat.x" || p.Position() != pos {
				t.Fatalf("got %+v, want 7 on chat.x at %+v", p, pos)
			}

			// Without any rule.
			e2 := newEnv(t)
			_, err = e2.dial(codec).Publish(ctx, "a", 1)
			wantCode(t, err, rpc.CodePermissionDenied)
		})
	}
}

// TestPublishHook: a Rule's Publish func sees the principal, transforms the
// data, drops (the call succeeds, nothing is published, Dropped counts) or
// refuses; the after-hooks run with what was done.
func TestPublishHook(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			type event struct {
				what, user, topic string
				pos               pubsub.Position
			}
			events := make(chan event, 64)
			e := newEnvWith(t, envConfig{
				srv: []server.Option{authByHeader()},
				hub: []pubsub.Option{pubsub.WithRule("chat.>", pubsub.Rule{
					Publish: func(ctx context.Context, p *rpc.Peer, m *pubsub.Message) error {
						var text string
						if err := json.Unmarshal(m.Data, &text); err != nil {
							return &rpc.Error{Code: rpc.CodeInvalidParams, Message: "chat messages are strings"}
						}
						switch text {
						case "spam":
							return pubsub.ErrDrop
						case "secret":
							return errors.New("no secrets")
						case "break":
							m.Data = rpc.Raw(`{"not json`)
							return nil
						}
						b, _ := json.Marshal(map[string]string{"from": principal(p), "text": strings.ToUpper(text)})
						m.Data = b
						return nil
					},
					AfterSubscribe: func(p *rpc.Peer, pattern string) {
						events <- event{what: "subscribe", user: principal(p), topic: pattern}
					},
					AfterUnsubscribe: func(p *rpc.Peer, pattern string) {
						events <- event{what: "unsubscribe", user: principal(p), topic: pattern}
					},
					AfterPublish: func(p *rpc.Peer, topic string, pos pubsub.Position) {
						events <- event{what: "publish", user: principal(p), topic: topic, pos: pos}
					},
				})},
			})
			ctx := ctxT(t)
			bob := e.dial(codec, withUser("bob"))
			alice := e.dial(codec, withUser("alice"))
			sub, err := bob.Subscribe(ctx, "chat.*")
			if err != nil {
				t.Fatal(err)
			}
			wantEvent := func(want event) {
				t.Helper()
				select {
				case got := <-events:
					if got != want {
						t.Fatalf("hook event %+v, want %+v", got, want)
					}
				case <-ctx.Done():
					t.Fatalf("no hook event, want %+v", want)
				}
			}
			wantEvent(event{what: "subscribe", user: "bob", topic: "chat.*"})

			pos, err := alice.Publish(ctx, "chat.room", "hello")
			if err != nil {
				t.Fatal(err)
			}
			wantEvent(event{what: "publish", user: "alice", topic: "chat.room", pos: pos})
			p := next(t, sub)
			var got map[string]string
			if err := json.Unmarshal(p.Data, &got); err != nil || got["from"] != "alice" || got["text"] != "HELLO" {
				t.Fatalf("subscriber got %s (%v), want the transformed data", p.Data, err)
			}

			// Dropped: the call succeeds with the zero position, nothing goes out.
			before := e.hub.Stats()
			dpos, err := alice.Publish(ctx, "chat.room", "spam")
			if err != nil || dpos != (pubsub.Position{}) {
				t.Fatalf("dropped publish: pos %+v, err %v; want the zero position and no error", dpos, err)
			}
			after := e.hub.Stats()
			if after.Dropped != before.Dropped+1 || after.Published != before.Published {
				t.Fatalf("after a drop: Dropped %d→%d, Published %d→%d", before.Dropped, after.Dropped, before.Published, after.Published)
			}
			// Refused: a plain error is permission denied with its text; an
			// *rpc.Error goes as it is; a hook leaving bad JSON is an internal error.
			_, err = alice.Publish(ctx, "chat.room", "secret")
			wantCode(t, err, rpc.CodePermissionDenied, "no secrets")
			_, err = alice.Publish(ctx, "chat.room", 42)
			wantCode(t, err, rpc.CodeInvalidParams, "chat messages are strings")
			_, err = alice.Publish(ctx, "chat.room", "break")
			wantCode(t, err, rpc.CodeInternalError)

			// The next publication is the first after "hello": offset 2, the
			// drop and refusals took no offset.
			pos2, err := alice.Publish(ctx, "chat.room", "again")
			if err != nil {
				t.Fatal(err)
			}
			if pos2.Offset != pos.Offset+1 || pos2.Epoch != pos.Epoch {
				t.Fatalf("position after drops %+v, want offset %d", pos2, pos.Offset+1)
			}
			wantEvent(event{what: "publish", user: "alice", topic: "chat.room", pos: pos2})
			p = next(t, sub)
			if err := json.Unmarshal(p.Data, &got); err != nil || got["text"] != "AGAIN" || p.Offset != pos2.Offset {
				t.Fatalf("subscriber got %+v, want AGAIN at %d", p, pos2.Offset)
			}
			select {
			case ev := <-events:
				t.Fatalf("unexpected hook event %+v", ev)
			default:
			}

			// Hub.Publish does not go through the hook.
			if _, err := e.hub.Publish(ctx, "chat.room", "spam"); err != nil {
				t.Fatal(err)
			}
			if p := next(t, sub); string(p.Data) != `"spam"` {
				t.Fatalf("Go publication got %s, want it untouched", p.Data)
			}

			if err := sub.Unsubscribe(ctx); err != nil {
				t.Fatal(err)
			}
			wantEvent(event{what: "unsubscribe", user: "bob", topic: "chat.*"})
			// A subscription ended by the connection's end runs it too.
			if _, err := alice.Subscribe(ctx, "chat.room"); err != nil {
				t.Fatal(err)
			}
			wantEvent(event{what: "subscribe", user: "alice", topic: "chat.room"})
			_ = alice.Close()
			wantEvent(event{what: "unsubscribe", user: "alice", topic: "chat.room"})
		})
	}
}

// TestPublisherExclusion: a client does not get its own publication back
// unless it subscribed with Echo; others do.
func TestPublisherExclusion(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			allow := func(context.Context, *rpc.Peer, *pubsub.Message) error { return nil }
			e := newEnvWith(t, envConfig{hub: []pubsub.Option{pubsub.WithRule("room.>", pubsub.Rule{Publish: allow})}})
			ctx := ctxT(t)
			self := e.dial(codec)
			echo := e.dial(codec)
			other := e.dial(codec)
			selfPat, err := self.Subscribe(ctx, "room.>")
			if err != nil {
				t.Fatal(err)
			}
			echoSub, err := echo.Subscribe(ctx, "room.>", client.Echo())
			if err != nil {
				t.Fatal(err)
			}
			otherSub, err := other.Subscribe(ctx, "room.>")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := self.Publish(ctx, "room.a", "from self"); err != nil {
				t.Fatal(err)
			}
			if _, err := echo.Publish(ctx, "room.a", "from echo"); err != nil {
				t.Fatal(err)
			}
			// A marker from Go code: what came before it on each subscription
			// is all that will.
			if _, err := e.hub.Publish(ctx, "room.a", "marker"); err != nil {
				t.Fatal(err)
			}
			upTo := func(s *client.Subscription) []string {
				t.Helper()
				var got []string
				for {
					p := next(t, s)
					var v string
					_ = json.Unmarshal(p.Data, &v)
					got = append(got, v)
					if v == "marker" {
						return got
					}
				}
			}
			for _, tt := range []struct {
				name string
				sub  *client.Subscription
				want string
			}{
				{"self (no echo)", selfPat, "from echo,marker"},
				{"echo", echoSub, "from self,from echo,marker"},
				{"other", otherSub, "from self,from echo,marker"},
			} {
				if got := strings.Join(upTo(tt.sub), ","); got != tt.want {
					t.Errorf("%s received %s, want %s", tt.name, got, tt.want)
				}
			}
		})
	}
}

// TestPublisherExclusionExactTopic: on an exact topic, the offsets a
// publisher's own (excluded) publications take must not look like lost
// publications to it: the next publication by someone else arrives, without
// Gap.
func TestPublisherExclusionExactTopic(t *testing.T) {
	for _, history := range []int{0, 10} {
		for _, codec := range codecs {
			t.Run(fmt.Sprintf("%s/history=%d", codec, history), func(t *testing.T) {
				allow := func(context.Context, *rpc.Peer, *pubsub.Message) error { return nil }
				e := newEnvWith(t, envConfig{hub: []pubsub.Option{
					pubsub.WithRule("room.>", pubsub.Rule{Publish: allow, HistorySize: history}),
				}})
				ctx := ctxT(t)
				self := e.dial(codec)
				sub, err := self.Subscribe(ctx, "room.a")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := self.Publish(ctx, "room.a", "mine"); err != nil {
					t.Fatal(err)
				}
				publishN(t, e.hub, "room.a", 2, 3)
				for want := 2; want <= 3; want++ {
					p := next(t, sub)
					if dataInt(t, p) != want || p.Offset != uint64(want) || p.Gap {
						t.Fatalf("got %+v (data %s), want %d at offset %d without Gap: only its own publication came before", p, p.Data, want, want)
					}
				}
			})
		}
	}
}

// TestConnectSubscriptions: subscriptions the server makes for each
// connection reach client.WithOnPublication, per principal, and cannot be
// unsubscribed by the client.
func TestConnectSubscriptions(t *testing.T) {
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			e := newEnvWith(t, envConfig{
				srv: []server.Option{authByHeader()},
				hub: []pubsub.Option{pubsub.WithConnectSubscriptions(func(p *rpc.Peer) []string {
					return []string{"user." + principal(p), "broadcast.>", "bad..topic"}
				})},
			})
			ctx := ctxT(t)
			alicePubs, bobPubs := newPubCollector(), newPubCollector()
			alice := e.dial(codec, withUser("alice"), client.WithOnPublication(alicePubs.add))
			e.dial(codec, withUser("bob"), client.WithOnPublication(bobPubs.add))
			// Attach runs as each connection is registered: both hold their two
			// valid subscriptions (the invalid pattern is refused).
			waitFor(t, "4 connect subscriptions", func() bool { return e.hub.Stats().Subscriptions == 4 })

			publishN(t, e.hub, "user.alice", 1, 2)
			if _, err := e.hub.Publish(ctx, "user.bob", 3); err != nil {
				t.Fatal(err)
			}
			if _, err := e.hub.Publish(ctx, "broadcast.all", 4); err != nil {
				t.Fatal(err)
			}
			four := func(ps []pubsub.Publication) bool {
				return len(ps) > 0 && string(ps[len(ps)-1].Data) == "4"
			}
			got := alicePubs.wait(t, "alice's publications", four)
			if len(got) != 3 || got[0].Topic != "user.alice" || string(got[0].Data) != "1" || got[0].Offset != 1 ||
				string(got[1].Data) != "2" || got[1].Offset != 2 || got[2].Topic != "broadcast.all" {
				t.Fatalf("alice got %+v", got)
			}
			got = bobPubs.wait(t, "bob's publications", four)
			if len(got) != 2 || got[0].Topic != "user.bob" || string(got[0].Data) != "3" || got[1].Topic != "broadcast.all" {
				t.Fatalf("bob got %+v", got)
			}

			// Subscription ids are per pattern on the server: another
			// connection's subscribe to user.alice learns the id of alice's
			// server-side subscription, which alice may not end.
			spy := e.dial(codec, withUser("spy"))
			r, err := rawSubscribe(t, spy.Peer(), `{"topic":"user.alice"}`)
			if err != nil {
				t.Fatal(err)
			}
			_, err = rawCall(t, alice.Peer(), pubsub.MethodUnsubscribe, fmt.Sprintf(`{"sub":%d}`, r.Sub))
			wantCode(t, err, rpc.CodeInvalidParams, fmt.Sprint(r.Sub))
			publishN(t, e.hub, "user.alice", 5, 5)
			alicePubs.wait(t, "alice's publication after the refused unsubscribe", func(ps []pubsub.Publication) bool {
				return len(ps) == 4 && string(ps[3].Data) == "5"
			})
			// The client's own subscription to the same pattern is refused:
			// the connection already has it.
			_, err = alice.Subscribe(ctx, "user.alice")
			wantCode(t, err, rpc.CodeInvalidParams, "already subscribed")
		})
	}
}
