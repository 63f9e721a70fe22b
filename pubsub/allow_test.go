package pubsub_test

import (
	"context"
	"errors"
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
