package pubsub_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/wsrpc/wsrpc/pubsub"
	"github.com/wsrpc/wsrpc/rpc"
)

// AllowSubscribe answers as a $/subscribe would be: an invalid pattern is
// invalid params, a rule's refusal is the refusal, and a topic no rule
// refuses is allowed.
func TestHubAllowSubscribe(t *testing.T) {
	hub, err := pubsub.New(pubsub.WithRule("secret.>", pubsub.Rule{
		Subscribe: func(_ context.Context, p *rpc.Peer, pattern string) error {
			return errors.New("staff only")
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	ctx := context.Background()
	if err := hub.AllowSubscribe(ctx, nil, "public.news"); err != nil {
		t.Errorf("public.news: %v", err)
	}
	for _, pattern := range []string{"secret.plans", "secret.*", ">"} {
		wantCode(t, hub.AllowSubscribe(ctx, nil, pattern), rpc.CodePermissionDenied, "not allowed: staff only")
	}
	for _, bad := range []string{"", "a..b", "a.>.b"} {
		wantCode(t, hub.AllowSubscribe(ctx, nil, bad), rpc.CodeInvalidParams)
	}
}

// Subscribes of one topic that arrive together on one connection each get
// a reply, and replace each other: one subscription is left (none refused
// as already subscribed, which a check and an add apart would allow).
func TestConcurrentSubscribesReplace(t *testing.T) {
	e := newEnv(t)
	for _, codec := range []string{rpc.SubprotocolBinary, rpc.SubprotocolJSON} {
		t.Run(codec, func(t *testing.T) {
			c := e.dial(codec)
			p := c.Peer()
			for round := range 20 {
				topic := fmt.Sprintf("race.%s.%d", codec[:4], round)
				var wg sync.WaitGroup
				errs := make(chan error, 8)
				for range 8 {
					wg.Go(func() {
						if _, err := rawSubscribe(t, p, `{"topic":"`+topic+`"}`); err != nil {
							errs <- err
						}
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					t.Fatalf("round %d: a subscribe among 8 at once: %v", round, err)
				}
			}
			waitFor(t, "one subscription per topic", func() bool { return e.hub.Stats().Subscriptions == 20 })
			_ = c.Close()
			waitFor(t, "no subscription once closed", func() bool { return e.hub.Stats().Subscriptions == 0 })
		})
	}
}
