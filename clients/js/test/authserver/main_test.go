package main

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/wsrpc/wsrpc/client"
	"github.com/wsrpc/wsrpc/rpc"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lines hands what run writes to a channel, dropping what does not fit.
type lines struct {
	ch chan string
}

func (b *lines) Write(p []byte) (int, error) {
	select {
	case b.ch <- string(p):
	default:
	}
	return len(p), nil
}

// TestAuthServer: calls before auth.login are refused, a bad token is
// refused, a good one becomes the principal, and SIGTERM (ctx) stops it.
func TestAuthServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &lines{ch: make(chan string, 4)}
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, []string{"-addr", "127.0.0.1:0"}, out) }()
	var url string
	select {
	case line := <-out.ch:
		m := regexp.MustCompile(`listening on (ws://\S+)`).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("first line %q", line)
		}
		url = m[1]
	case <-time.After(10 * time.Second):
		t.Fatal("no listening line")
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	c, err := client.Dial(cctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var who any
	if err := c.Call(cctx, "whoami", nil, &who); rpc.CodeOf(err) != rpc.CodeUnauthenticated {
		t.Fatalf("whoami before login: %v, want unauthenticated", err)
	}
	if err := c.Call(cctx, "auth.login", map[string]string{"token": "bad"}, nil); rpc.CodeOf(err) != rpc.CodeUnauthenticated {
		t.Fatalf("bad token: %v, want unauthenticated", err)
	}
	if err := c.Call(cctx, "auth.login", map[string]string{"token": "good-1"}, nil); err != nil {
		t.Fatal(err)
	}
	var u struct{ Name, Token string }
	if err := c.Call(cctx, "whoami", nil, &u); err != nil || u.Name != "1" || u.Token != "good-1" {
		t.Fatalf("whoami = %+v, %v; want name 1, token good-1", u, err)
	}
	// A token for another user does not refresh this connection's; one for the same does.
	var life map[string]any
	if err := c.Call(cctx, rpc.MethodAuthRefresh, map[string]string{"token": "good-2@60000"}, &life); rpc.CodeOf(err) != rpc.CodePermissionDenied {
		t.Fatalf("refresh as another user: %v, want permission denied", err)
	}
	if err := c.Call(cctx, rpc.MethodAuthRefresh, map[string]string{"token": "good-1@60000"}, &life); err != nil || life["expiresIn"] == nil {
		t.Fatalf("refresh: %v, %v; want a lifetime", life, err)
	}
	if err := c.Call(cctx, rpc.MethodAuthRefresh, map[string]string{"token": "good-1@-5"}, &life); rpc.CodeOf(err) != rpc.CodeUnauthenticated {
		t.Fatalf("refresh with an expired token: %v, want unauthenticated", err)
	}
	c.Close()
	cancel()
	if code := <-exited; code != 0 {
		t.Fatalf("exit status %d", code)
	}
}
